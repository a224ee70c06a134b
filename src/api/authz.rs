//! Whether the caller may: [`Caller::authorize`] asks the decision layer whether the caller
//! holds an admin action (`decide::actions`) at a scope, and the rest of this module holds
//! the admin plane's rules against escalation (README, "No privilege escalation"): each
//! write is checked as the grants it amounts to and the deny assignments it lifts.

use uuid::Uuid;

use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::engine::{escalation, CheckRequest, Snapshot};
use crate::model::{
    Action, ActionPattern, DenyAssignment, DenyAssignmentPatch, NewDenyAssignment,
    NewRoleAssignment, RoleDefinition, RolePermission, Scope, TenantId, Timestamp,
};

pub use crate::decide::actions::*;
pub use crate::decide::{Caller, CallerInfo, CallerKind};

impl Caller {
    /// Whether the caller holds `action` at `scope` (the admin key holds everything).
    pub fn holds(&self, app: &AppState, action: &str, scope: &Scope) -> bool {
        app.decider().holds(self, action, scope)
    }

    /// 403 `forbidden` naming `action` and `scope` unless the caller holds it there.
    pub fn authorize(
        &self,
        app: &AppState,
        action: &'static str,
        scope: &Scope,
    ) -> Result<(), ApiError> {
        Ok(app.decider().require(self, action, scope)?)
    }

    /// Creating a role assignment: see [`Caller::authorize_role_grant`].
    pub async fn authorize_assignment(
        &self,
        app: &AppState,
        new: &NewRoleAssignment,
    ) -> Result<(), ApiError> {
        self.authorize_role_grant(
            app,
            new.role_definition_id,
            &new.directory_scope_id,
            new.end_date_time,
        )
        .await
    }

    /// Granting `role_id` at `scope` until `end` (`None`: no end), by an assignment or by a
    /// membership that carries one. The caller must
    /// - manage assignments at `scope`;
    /// - unless it manages assignments at `/`, already hold every permission of the role
    ///   there (no escalation);
    /// - not be fenced by a deny assignment at, above or below `scope` (a unit's members
    ///   included) that overlaps the role's permissions: it cannot hand another principal
    ///   what it is denied itself;
    /// - not outlast its own right: when every grant that lets it manage assignments at
    ///   `scope` ends, the new grant must end by then.
    ///
    /// An unknown role passes here; the store refuses it.
    pub async fn authorize_role_grant(
        &self,
        app: &AppState,
        role_id: Uuid,
        scope: &Scope,
        end: Option<Timestamp>,
    ) -> Result<(), ApiError> {
        self.authorize(app, MANAGE_ASSIGNMENTS, scope)?;
        if self.identity().is_none() {
            return Ok(());
        }
        let role = match app.store().get_role_definition(self.tenant, role_id).await {
            Ok(stored) => stored.value,
            Err(crate::store::StoreError::NotFound { .. }) => return Ok(()),
            Err(other) => return Err(other.into()),
        };
        self.authorize_grant_of(app, &role, scope, end)
    }

    /// Granting `role` (as given, not as stored: an import may create or change it in the
    /// same write) at `scope` until `end`: see [`Caller::authorize_role_grant`].
    pub fn authorize_grant_of(
        &self,
        app: &AppState,
        role: &RoleDefinition,
        scope: &Scope,
        end: Option<Timestamp>,
    ) -> Result<(), ApiError> {
        self.authorize(app, MANAGE_ASSIGNMENTS, scope)?;
        let Some(identity) = self.identity() else {
            return Ok(());
        };
        let snapshot = app.decider().snapshot();
        let now = app.decider().now();
        self.within_own_term(&snapshot, identity, scope, end, now)?;
        if !self.holds(app, MANAGE_ASSIGNMENTS, &Scope::root()) {
            holds_every_permission(
                &snapshot,
                self.tenant,
                identity,
                &role.display_name,
                &role.role_permissions,
                scope,
                now,
            )?;
        }
        not_fenced(
            &snapshot,
            self.tenant,
            identity,
            &role.display_name,
            &role.role_permissions,
            scope,
        )
    }

    /// 403 unless the new grant ends by the time the caller's own right to manage
    /// assignments at `scope` does.
    fn within_own_term(
        &self,
        snapshot: &Snapshot,
        identity: &Identity,
        scope: &Scope,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let Ok(action) = Action::parse(MANAGE_ASSIGNMENTS) else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "the assignment management action does not parse"
            )));
        };
        let request = CheckRequest::new(identity.subject(), action, scope.clone());
        match snapshot.allowed_until(self.tenant, &request, now) {
            Some(Some(until)) if end.is_none_or(|end| end > until) => {
                Err(ApiError::ForbiddenOther(format!(
                    "the caller manages assignments at `{scope}` only until {}; what it grants \
                     there must end by then (set `endDateTime`)",
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether the caller is `principal` or a (transitive) member of it (a token's groups
    /// included): a deny naming `principal` binds the caller.
    fn is_or_is_inside(&self, snapshot: &Snapshot, principal: Uuid) -> bool {
        self.identity().is_some_and(|identity| {
            snapshot
                .principals_of(self.tenant, &identity.subject())
                .contains(&principal)
        })
    }

    /// Creating a deny assignment: the caller may take away only what it could give. It
    /// must manage assignments at the deny's scope and, unless it manages them at `/`, hold
    /// every denied action there; a deny touching one of Rolecall's own administrative
    /// actions needs assignment management at `/`.
    pub fn authorize_deny(&self, app: &AppState, new: &NewDenyAssignment) -> Result<(), ApiError> {
        self.authorize_deny_actions(
            app,
            &new.display_name,
            &new.actions,
            &new.excluded_actions,
            &new.directory_scope_id,
        )
    }

    fn authorize_deny_actions(
        &self,
        app: &AppState,
        name: &str,
        actions: &[ActionPattern],
        excluded: &[ActionPattern],
        scope: &Scope,
    ) -> Result<(), ApiError> {
        self.authorize(app, MANAGE_ASSIGNMENTS, scope)?;
        let Some(identity) = self.identity() else {
            return Ok(());
        };
        let root = Scope::root();
        if touches_administration(actions, excluded) {
            self.authorize(app, MANAGE_ASSIGNMENTS, &root)?;
        }
        if self.holds(app, MANAGE_ASSIGNMENTS, &root) {
            return Ok(());
        }
        let entries = [RolePermission {
            allowed_resource_actions: actions.to_vec(),
            excluded_resource_actions: excluded.to_vec(),
            condition: None,
        }];
        holds_every_permission(
            &app.decider().snapshot(),
            self.tenant,
            identity,
            name,
            &entries,
            scope,
            app.decider().now(),
        )
    }

    /// Changing a deny assignment: as removing the old one and creating the new one.
    pub fn authorize_deny_change(
        &self,
        app: &AppState,
        stored: &DenyAssignment,
        patch: &DenyAssignmentPatch,
    ) -> Result<(), ApiError> {
        self.authorize_deny_delete(app, stored)?;
        if patch.actions.is_some() || patch.excluded_actions.is_some() {
            self.authorize_deny_actions(
                app,
                patch
                    .display_name
                    .as_deref()
                    .unwrap_or(&stored.display_name),
                patch.actions.as_deref().unwrap_or(&stored.actions),
                patch
                    .excluded_actions
                    .as_deref()
                    .unwrap_or(&stored.excluded_actions),
                &stored.directory_scope_id,
            )?;
        }
        Ok(())
    }

    /// Deleting a deny assignment: see [`Caller::authorize_deny_release`]; the caller
    /// escapes it when it names the caller or a group the caller belongs to.
    pub fn authorize_deny_delete(
        &self,
        app: &AppState,
        deny: &DenyAssignment,
    ) -> Result<(), ApiError> {
        let escaping = self.is_or_is_inside(&app.decider().snapshot(), deny.principal_id);
        self.authorize_deny_release(app, deny, escaping)
    }

    /// Lifting `deny` from some or all of those it reaches (deleting or changing it, or
    /// taking a principal out of the group or a resource out of the unit it reaches
    /// through) needs assignment management at its scope, and at `/` when it touches
    /// Rolecall's own administration; and no one lifts a deny from themselves
    /// (`escaping`): another administrator must.
    fn authorize_deny_release(
        &self,
        app: &AppState,
        deny: &DenyAssignment,
        escaping: bool,
    ) -> Result<(), ApiError> {
        self.authorize(app, MANAGE_ASSIGNMENTS, &deny.directory_scope_id)?;
        if self.identity().is_none() {
            return Ok(());
        }
        if escaping {
            return Err(ApiError::ForbiddenOther(format!(
                "deny assignment `{}` ({}) applies to the caller; another administrator must \
                 lift it",
                deny.display_name, deny.id
            )));
        }
        if touches_administration(&deny.actions, &deny.excluded_actions) {
            self.authorize(app, MANAGE_ASSIGNMENTS, &Scope::root())?;
        }
        Ok(())
    }

    /// Changing the members of `group` needs [`UPDATE_GROUP_MEMBERS`] at `/groups/{id}`,
    /// and no escalation through membership: a new member inherits every role assignment of
    /// the group and of the groups it is nested in, so adding one is granting each of them
    /// (see [`Caller::authorize_role_grant`]; memberships have no end); a leaving member
    /// escapes every deny assignment reaching it through the group, so removing one is
    /// lifting each of them (see [`Caller::authorize_deny_release`]), and nobody removes
    /// itself, or a group it is in, from under a deny.
    pub async fn authorize_membership(
        &self,
        app: &AppState,
        group: Uuid,
        change: Membership,
    ) -> Result<(), ApiError> {
        self.authorize(app, UPDATE_GROUP_MEMBERS, &object_scope("groups", group))?;
        let snapshot = app.decider().snapshot();
        let through = snapshot.through_group(self.tenant, group);
        match change {
            Membership::Add => {
                for (role, scope) in through.grants {
                    let scope = Scope::parse(&scope).unwrap_or_else(|_| Scope::root());
                    self.authorize_role_grant(app, role, &scope, None).await?;
                }
            }
            Membership::Remove(member) => {
                let escaping = self.is_or_is_inside(&snapshot, member);
                for deny in &through.denies {
                    self.authorize_deny_release(app, deny, escaping)?;
                }
            }
        }
        Ok(())
    }

    /// Deleting a group removes every member, its own role and deny assignments and its
    /// own memberships: it needs [`DELETE_GROUPS`] there, and is authorized as removing
    /// each member (lifting every deny reaching through the group) and deleting each of its
    /// role assignments (assignment management at their scopes).
    pub fn authorize_group_delete(&self, app: &AppState, group: Uuid) -> Result<(), ApiError> {
        let scope = object_scope("groups", group);
        self.authorize(app, DELETE_GROUPS, &scope)?;
        let snapshot = app.decider().snapshot();
        if snapshot.has_members(self.tenant, group) {
            self.authorize(app, UPDATE_GROUP_MEMBERS, &scope)?;
        }
        let escaping = self.is_or_is_inside(&snapshot, group);
        for deny in &snapshot.through_group(self.tenant, group).denies {
            self.authorize_deny_release(app, deny, escaping)?;
        }
        for (_, scope) in snapshot.assignments_of(self.tenant, group) {
            self.authorize(app, MANAGE_ASSIGNMENTS, &scope)?;
        }
        Ok(())
    }

    /// Taking a resource out of `unit`, or deleting the unit (every resource), lifts each
    /// deny assignment scoped to the unit from those resources: see
    /// [`Caller::authorize_deny_release`].
    pub fn authorize_unit_release(&self, app: &AppState, unit: Uuid) -> Result<(), ApiError> {
        let snapshot = app.decider().snapshot();
        for deny in snapshot.denies_at(self.tenant, &object_scope("administrativeUnits", unit)) {
            let escaping = self.is_or_is_inside(&snapshot, deny.principal_id);
            self.authorize_deny_release(app, &deny, escaping)?;
        }
        Ok(())
    }

    /// Changing a role's permissions (or enabling it) changes what every holder may do
    /// wherever it is assigned: unless the caller manages assignments at `/`, it must hold
    /// every permission of the changed role at `/`; and no caller may add permissions that
    /// a deny assignment anywhere withholds from it (403 `escalation-refused`).
    pub fn authorize_role_change(
        &self,
        app: &AppState,
        before: &RoleDefinition,
        changed: &RoleDefinition,
    ) -> Result<(), ApiError> {
        let Some(identity) = self.identity() else {
            return Ok(());
        };
        let root = Scope::root();
        let snapshot = app.decider().snapshot();
        if !self.holds(app, MANAGE_ASSIGNMENTS, &root) {
            holds_every_permission(
                &snapshot,
                self.tenant,
                identity,
                &changed.display_name,
                &changed.role_permissions,
                &root,
                app.decider().now(),
            )?;
        }
        let added: Vec<RolePermission> = if changed.is_enabled && !before.is_enabled {
            changed.role_permissions.clone()
        } else {
            changed
                .role_permissions
                .iter()
                .filter(|entry| !before.role_permissions.contains(entry))
                .cloned()
                .collect()
        };
        not_fenced(
            &snapshot,
            self.tenant,
            identity,
            &changed.display_name,
            &added,
            &root,
        )
    }
}

/// Which way a membership changes.
#[derive(Debug, Clone, Copy)]
pub enum Membership {
    /// A member joins.
    Add,
    /// This member leaves.
    Remove(Uuid),
}

/// Whether a deny of `actions` minus `excluded` would match one of Rolecall's own
/// administrative actions.
fn touches_administration(actions: &[ActionPattern], excluded: &[ActionPattern]) -> bool {
    ADMIN_ACTIONS
        .iter()
        .any(|action| escalation::denies_action(actions, excluded, action))
}

/// 403 `escalation-refused` unless `identity` already holds every permission of `entries`
/// at `scope` (see `engine::escalation`).
fn holds_every_permission(
    snapshot: &Snapshot,
    tenant: TenantId,
    identity: &Identity,
    name: &str,
    entries: &[RolePermission],
    scope: &Scope,
    now: Timestamp,
) -> Result<(), ApiError> {
    let missing = snapshot.missing_permissions(tenant, &identity.subject(), entries, scope, now);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::EscalationRefused {
            role: name.to_owned(),
            scope: scope.as_str().to_owned(),
            missing,
        })
    }
}

/// 403 `escalation-refused` when a deny assignment reaching `identity` at, above or below
/// `scope` overlaps `entries`: `missing` lists the overlapping patterns.
fn not_fenced(
    snapshot: &Snapshot,
    tenant: TenantId,
    identity: &Identity,
    name: &str,
    entries: &[RolePermission],
    scope: &Scope,
) -> Result<(), ApiError> {
    if entries.is_empty() {
        return Ok(());
    }
    let fences: Vec<DenyAssignment> = snapshot
        .denies_near(tenant, &identity.subject(), scope)
        .into_iter()
        .filter(|deny| escalation::deny_overlaps(deny, entries))
        .collect();
    if fences.is_empty() {
        return Ok(());
    }
    let mut missing: Vec<String> = Vec::new();
    for entry in entries {
        for pattern in &entry.allowed_resource_actions {
            let one = [RolePermission {
                allowed_resource_actions: vec![pattern.clone()],
                excluded_resource_actions: Vec::new(),
                condition: None,
            }];
            if fences
                .iter()
                .any(|deny| escalation::deny_overlaps(deny, &one))
                && !missing.iter().any(|m| m == pattern.as_str())
            {
                missing.push(pattern.as_str().to_owned());
            }
        }
    }
    Err(ApiError::EscalationRefused {
        role: name.to_owned(),
        scope: scope.as_str().to_owned(),
        missing,
    })
}

/// The scope of one directory object: `/{collection}/{id}`.
pub fn object_scope(collection: &str, id: Uuid) -> Scope {
    // A uuid segment always makes a valid scope; should it not, `/` is the stricter place
    // to authorize.
    Scope::parse(&format!("/{collection}/{id}")).unwrap_or_else(|_| Scope::root())
}
