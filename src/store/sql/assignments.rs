//! [`AssignmentStore`] in SQL: `role_assignments`, unique per (principal, role, scope), and
//! `deny_assignments`.

use async_trait::async_trait;
use uuid::Uuid;

use super::rows::{
    is_unique_violation, unprocessable, Arg, Filter, Key, DENY_ASSIGNMENTS, ROLE_ASSIGNMENTS,
};
use super::write::{Done, WriteTx};
use super::SqlStore;
use crate::model::{
    DenyAssignment, DenyAssignmentPatch, NewDenyAssignment, NewRoleAssignment, Revision,
    RoleAssignment, RoleDefinition, Scope, TenantId,
};
use crate::store::{
    Actor, AssignmentStore, Page, PageRequest, RoleAssignmentFilter, StoreError, StoreResult,
    Stored, Written,
};

#[async_trait]
impl AssignmentStore for SqlStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_role_assignments(
        &self,
        tenant: TenantId,
        filter: &RoleAssignmentFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleAssignment>>> {
        self.list_by_id(ROLE_ASSIGNMENTS, tenant, &filters_of(filter), page)
            .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_role_assignment(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleAssignment>> {
        self.get_by_id(ROLE_ASSIGNMENTS, tenant, id).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_role_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleAssignment,
    ) -> StoreResult<Written<RoleAssignment>> {
        self.create_assignment_grouped(tenant, actor, new).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_role_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let done = w.delete_checked(ROLE_ASSIGNMENTS, id, if_match).await?;
            if let Done::Changed(assignment) = &done {
                super::pim::revoke_deleted(&mut w, assignment).await?;
            }
            Ok(done)
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_deny_assignments(
        &self,
        tenant: TenantId,
        principal_id: Option<Uuid>,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<DenyAssignment>>> {
        let filters: Vec<Filter> = principal_id
            .map(|principal| Filter::Eq("principal_id", Arg::id(principal)))
            .into_iter()
            .collect();
        self.list_by_id(DENY_ASSIGNMENTS, tenant, &filters, page)
            .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_deny_assignment(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<DenyAssignment>> {
        self.get_by_id(DENY_ASSIGNMENTS, tenant, id).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewDenyAssignment,
    ) -> StoreResult<Written<DenyAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_deny(new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: DenyAssignmentPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<DenyAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let before = w.get_for_write(DENY_ASSIGNMENTS, id, if_match).await?;
            let after = before.patched(patch, w.now);
            w.update(DENY_ASSIGNMENTS, id, &[], &after).await?;
            w.log_updated(DENY_ASSIGNMENTS, id.to_string(), &before, &after)
                .await?;
            Ok(Done::Changed(after))
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<DenyAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_checked(DENY_ASSIGNMENTS, id, if_match).await;
        w.finish(result).await
    }
}

/// A listing filter on (principal, role, scope) columns, shared by role assignments and
/// eligibilities.
pub(super) fn filters_of(filter: &RoleAssignmentFilter) -> Vec<Filter> {
    let mut filters: Vec<Filter> = Vec::new();
    if let Some(principal) = filter.principal_id {
        filters.push(Filter::Eq("principal_id", Arg::id(principal)));
    }
    if let Some(role) = filter.role_definition_id {
        filters.push(Filter::Eq("role_definition_id", Arg::id(role)));
    }
    if let Some(scope) = &filter.directory_scope_id {
        filters.push(Filter::Eq(
            "directory_scope_id",
            Arg::Text(scope.to_string()),
        ));
    }
    filters
}

/// The columns that make an assignment unique in its tenant: (principal, role, scope).
pub(super) fn natural_key(principal_id: Uuid, role_definition_id: Uuid, scope: &Scope) -> [Key; 3] {
    let [principal, role, scope_column] = NATURAL_KEY_COLUMNS;
    [
        (principal, Arg::id(principal_id)),
        (role, Arg::id(role_definition_id)),
        (scope_column, Arg::Text(scope.to_string())),
    ]
}

/// The columns of [`natural_key`], as the unique constraint on `role_assignments` names them
/// after `tenant_id`.
pub(super) const NATURAL_KEY_COLUMNS: [&str; 3] =
    ["principal_id", "role_definition_id", "directory_scope_id"];

/// Whether `new` may be created, given the assignment already stored under its natural key
/// (`existing`) and the role it names as this write read it (`role`; `None`: no such role).
/// `Ok(Some(existing))` is an idempotent find; `Ok(None)` means create it.
///
/// The key stays (principal, role, scope): a condition does not make a second assignment.
/// Finding one whose condition differs is a conflict, not a find: answering with it would
/// tell the client its condition holds when another one does.
pub(super) fn admit_assignment(
    new: &NewRoleAssignment,
    existing: Option<Stored<RoleAssignment>>,
    role: Option<&Stored<RoleDefinition>>,
) -> StoreResult<Option<Stored<RoleAssignment>>> {
    if let Some(existing) = existing {
        if (&existing.value.condition, &existing.value.condition_version)
            != (&new.condition, &new.condition_version)
        {
            return Err(StoreError::Conflict(
                "this principal already holds this role at this scope with a different \
                 condition (or none); delete that assignment first"
                    .to_owned(),
            ));
        }
        return Ok(Some(existing));
    }
    let role = role.ok_or_else(|| {
        unprocessable(
            "/roleDefinitionId",
            format!(
                "role definition `{}` does not exist in this tenant",
                new.role_definition_id
            ),
        )
    })?;
    if !role.value.assignable_at(&new.directory_scope_id) {
        let scopes: Vec<&str> = role
            .value
            .assignable_scopes
            .iter()
            .map(Scope::as_str)
            .collect();
        return Err(unprocessable(
            "/directoryScopeId",
            format!(
                "role `{}` is not assignable at `{}`; its assignable scopes are `{}`",
                role.value.display_name,
                new.directory_scope_id,
                scopes.join("`, `")
            ),
        ));
    }
    Ok(None)
}

impl SqlStore {
    /// Creates one assignment in a transaction of its own (or finds it).
    pub(super) async fn create_assignment_alone(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleAssignment,
    ) -> StoreResult<Written<RoleAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let role = self
                .find_role(w.conn(), tenant, new.role_definition_id)
                .await?;
            w.create_assignment(role, new).await
        }
        .await;
        w.finish(result).await
    }
}

impl WriteTx {
    /// Creates the assignment, or finds the one with the same (principal, role, scope)
    /// ([`admit_assignment`] says which, or why neither). `role` is the role it names, as
    /// this write read it (`None`: there is no such role).
    async fn create_assignment(
        &mut self,
        role: Option<Stored<RoleDefinition>>,
        new: NewRoleAssignment,
    ) -> StoreResult<Done<RoleAssignment>> {
        let natural_key = natural_key(
            new.principal_id,
            new.role_definition_id,
            &new.directory_scope_id,
        );
        let existing = self.get(ROLE_ASSIGNMENTS, &natural_key).await?;
        if let Some(found) = admit_assignment(&new, existing, role.as_ref())? {
            return Ok(Done::Found(found.value, found.revision));
        }
        let assignment = RoleAssignment::new(Uuid::new_v4(), new, self.now);
        let mut columns = vec![("id", Arg::id(assignment.id))];
        columns.extend(natural_key);
        self.insert(ROLE_ASSIGNMENTS, &columns, &assignment)
            .await
            .map_err(|error| match error {
                // Writers are serialized, so this means a bug, not a race; say so plainly.
                StoreError::Unavailable(e) if is_unique_violation(&e) => StoreError::Conflict(
                    "this principal already holds this role at this scope".to_owned(),
                ),
                other => other,
            })?;
        self.log_created(ROLE_ASSIGNMENTS, assignment.id.to_string(), &assignment)
            .await?;
        Ok(Done::Created(assignment))
    }

    /// Deletes an assignment that is being removed with what it depends on (its role or
    /// its group).
    pub(super) async fn delete_assignment_row(
        &mut self,
        assignment: &RoleAssignment,
    ) -> StoreResult<()> {
        self.delete_by_id(ROLE_ASSIGNMENTS, assignment.id, assignment)
            .await
    }

    /// Deletes a deny assignment that is being removed with its group.
    pub(super) async fn delete_deny_row(&mut self, deny: &DenyAssignment) -> StoreResult<()> {
        self.delete_by_id(DENY_ASSIGNMENTS, deny.id, deny).await
    }

    async fn create_deny(&mut self, new: NewDenyAssignment) -> StoreResult<Done<DenyAssignment>> {
        let deny = DenyAssignment::new(Uuid::new_v4(), new, self.now);
        let columns = [
            ("id", Arg::id(deny.id)),
            ("principal_id", Arg::id(deny.principal_id)),
        ];
        self.insert(DENY_ASSIGNMENTS, &columns, &deny).await?;
        self.log_created(DENY_ASSIGNMENTS, deny.id.to_string(), &deny)
            .await?;
        Ok(Done::Created(deny))
    }
}
