//! Who is calling, and whether they may: the [`Caller`] extractor authenticates every `/v1`
//! request (a bearer token from a trusted issuer, or the break-glass admin key), and
//! [`Caller::authorize`] asks Rolecall's own engine whether the caller holds an action at a
//! scope.
//!
//! Each admin operation is an action: Entra's name where Entra has one, Rolecall's own
//! namespace (`rolecall/...`) where not. The constants below are the whole list; the README
//! documents it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::extract::TENANT_HEADER;
use super::{ApiError, AppState};
use crate::auth::{Identity, TokenError};
use crate::engine::{CheckRequest, Subject};
use crate::model::{Action, Scope, TenantId};
use crate::store::Actor;

/// Read role definitions (at `/`).
pub const READ_ROLES: &str = "microsoft.directory/roleDefinitions/standard/read";
/// Create, change, clone and delete custom role definitions (at `/`).
pub const MANAGE_ROLES: &str = "microsoft.directory/roleDefinitions/allProperties/allTasks";
/// Read role and deny assignments (at their scope, or `/` for an unfiltered list).
pub const READ_ASSIGNMENTS: &str = "microsoft.directory/roleAssignments/standard/read";
/// Create and delete role and deny assignments (at their scope).
pub const MANAGE_ASSIGNMENTS: &str = "microsoft.directory/roleAssignments/allProperties/allTasks";
/// Read groups (`/groups/{id}`, or `/` to list).
pub const READ_GROUPS: &str = "microsoft.directory/groups/standard/read";
/// Create groups (at `/`).
pub const CREATE_GROUPS: &str = "microsoft.directory/groups/create";
/// Rename or describe a group (`/groups/{id}`).
pub const UPDATE_GROUPS: &str = "microsoft.directory/groups/basic/update";
/// Delete a group (`/groups/{id}`).
pub const DELETE_GROUPS: &str = "microsoft.directory/groups/delete";
/// List a group's members (`/groups/{id}`).
pub const READ_GROUP_MEMBERS: &str = "microsoft.directory/groups/members/read";
/// Add or remove a group's members (`/groups/{id}`).
pub const UPDATE_GROUP_MEMBERS: &str = "microsoft.directory/groups/members/update";
/// Read administrative units (`/administrativeUnits/{id}`, or `/` to list).
pub const READ_UNITS: &str = "microsoft.directory/administrativeUnits/standard/read";
/// List a unit's members (`/administrativeUnits/{id}`).
pub const READ_UNIT_MEMBERS: &str = "microsoft.directory/administrativeUnits/members/read";
/// Create, change and delete units, and change their members (`/administrativeUnits/{id}`;
/// adding or removing a member also needs it at the member resource).
pub const MANAGE_UNITS: &str = "microsoft.directory/administrativeUnits/allProperties/allTasks";
/// Read the change log (at `/`).
pub const READ_CHANGES: &str = "rolecall/changes/read";
/// Ask for decisions about principals other than oneself (at the resource or scope asked
/// about).
pub const CHECK_OTHERS: &str = "rolecall/decisions/check";

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum CallerKind {
    /// The break-glass admin key: every operation is allowed.
    AdminKey,
    /// A validated bearer token.
    Token(Arc<Identity>),
}

/// The authenticated caller of a `/v1` route, and the tenant it acts in. Extracted once per
/// request (kept in the request's extensions); cloning it clones an `Arc`.
#[derive(Debug, Clone)]
pub struct Caller(Arc<CallerInfo>);

impl std::ops::Deref for Caller {
    type Target = CallerInfo;

    fn deref(&self) -> &CallerInfo {
        &self.0
    }
}

/// What [`Caller`] holds.
#[derive(Debug)]
pub struct CallerInfo {
    /// Recorded in `changes.actor`: the principal id, or `admin-key`.
    pub actor: Actor,
    /// The tenant the call acts in: the token's, or for the admin key the
    /// `Rolecall-Tenant` header, else the default tenant.
    pub tenant: TenantId,
    /// How it authenticated.
    pub kind: CallerKind,
}

impl Caller {
    /// The caller's principal id, when it is a token caller.
    pub fn principal_id(&self) -> Option<Uuid> {
        match &self.kind {
            CallerKind::AdminKey => None,
            CallerKind::Token(identity) => Some(identity.principal_id),
        }
    }

    /// Whether the caller holds `action` at `scope` (the admin key holds everything).
    pub fn holds(&self, app: &AppState, action: &str, scope: &Scope) -> bool {
        let CallerKind::Token(identity) = &self.kind else {
            return true;
        };
        let Ok(action) = Action::parse(action) else {
            return false;
        };
        let request = CheckRequest {
            subject: identity.subject(),
            action,
            resource: scope.clone(),
        };
        app.directory()
            .snapshot()
            .check(self.tenant, &request, chrono::Utc::now(), false)
            .allowed
    }

    /// 403 `forbidden` naming `action` and `scope` unless the caller holds it there.
    pub fn authorize(&self, app: &AppState, action: &str, scope: &Scope) -> Result<(), ApiError> {
        if self.holds(app, action, scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                action: action.to_owned(),
                scope: scope.as_str().to_owned(),
            })
        }
    }

    /// A decision question about `subject`: asking about oneself is always allowed; about
    /// anyone else needs [`CHECK_OTHERS`] at `resource`.
    pub fn authorize_check(
        &self,
        app: &AppState,
        subject: &Subject,
        resource: &Scope,
    ) -> Result<(), ApiError> {
        if self.principal_id() == Some(subject.id) {
            return Ok(());
        }
        self.authorize(app, CHECK_OTHERS, resource)
    }

    /// Creating an assignment of `role_id` at `scope`: the caller must manage assignments
    /// there, and unless it manages assignments at `/`, hold every permission of the role at
    /// `scope` (no privilege escalation). An unknown role passes here; the store refuses it.
    pub async fn authorize_assignment(
        &self,
        app: &AppState,
        role_id: Uuid,
        scope: &Scope,
    ) -> Result<(), ApiError> {
        self.authorize(app, MANAGE_ASSIGNMENTS, scope)?;
        let CallerKind::Token(identity) = &self.kind else {
            return Ok(());
        };
        if self.holds(app, MANAGE_ASSIGNMENTS, &Scope::root()) {
            return Ok(());
        }
        let role = match app.store().get_role_definition(self.tenant, role_id).await {
            Ok(stored) => stored.value,
            Err(crate::store::StoreError::NotFound { .. }) => return Ok(()),
            Err(other) => return Err(other.into()),
        };
        holds_every_permission(app, self.tenant, identity, &role, scope)
    }
}

/// 403 `escalation-refused` unless `identity` already holds every permission of `role` at
/// `scope` (see `engine::escalation`).
fn holds_every_permission(
    app: &AppState,
    tenant: TenantId,
    identity: &Identity,
    role: &crate::model::RoleDefinition,
    scope: &Scope,
) -> Result<(), ApiError> {
    let missing = app.directory().snapshot().missing_permissions(
        tenant,
        &identity.subject(),
        role,
        scope,
        chrono::Utc::now(),
    );
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::EscalationRefused {
            role: role.display_name.clone(),
            scope: scope.as_str().to_owned(),
            missing,
        })
    }
}

/// The scope of one directory object: `/{collection}/{id}`.
pub fn object_scope(collection: &str, id: Uuid) -> Scope {
    // A uuid segment always makes a valid scope; should it not, `/` is the stricter place
    // to authorize.
    Scope::parse(&format!("/{collection}/{id}")).unwrap_or_else(|_| Scope::root())
}

impl Caller {
    /// Changing the members of `group` needs [`UPDATE_GROUP_MEMBERS`] at `/groups/{id}`,
    /// and no escalation through membership: a new member inherits every role assignment of
    /// the group and of the groups it is nested in, so adding one needs the right to create
    /// each of those assignments; a leaving member escapes every deny assignment reaching it
    /// through the group, so removing one needs assignment management at each of their
    /// scopes. Callers managing assignments at `/` pass both.
    pub async fn authorize_membership(
        &self,
        app: &AppState,
        group: Uuid,
        adding: bool,
    ) -> Result<(), ApiError> {
        self.authorize(app, UPDATE_GROUP_MEMBERS, &object_scope("groups", group))?;
        // The admin key holds everything, this included.
        if self.holds(app, MANAGE_ASSIGNMENTS, &Scope::root()) {
            return Ok(());
        }
        let through = app.directory().snapshot().through_group(self.tenant, group);
        if adding {
            for (role, scope) in through.grants {
                let scope = Scope::parse(&scope).unwrap_or_else(|_| Scope::root());
                self.authorize_assignment(app, role, &scope).await?;
            }
        } else {
            for scope in through.deny_scopes {
                let scope = Scope::parse(&scope).unwrap_or_else(|_| Scope::root());
                self.authorize(app, MANAGE_ASSIGNMENTS, &scope)?;
            }
        }
        Ok(())
    }

    /// Changing a role's permissions (or enabling it) changes what every holder may do:
    /// unless the caller manages assignments at `/`, it must hold every permission of the
    /// changed role at `/` (403 `escalation-refused` otherwise).
    pub fn authorize_role_change(
        &self,
        app: &AppState,
        changed: &crate::model::RoleDefinition,
    ) -> Result<(), ApiError> {
        let CallerKind::Token(identity) = &self.kind else {
            return Ok(());
        };
        let root = Scope::root();
        if self.holds(app, MANAGE_ASSIGNMENTS, &root) {
            return Ok(());
        }
        holds_every_permission(app, self.tenant, identity, changed, &root)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(parts, state).await?;
        tracing::Span::current().record("tenant", tracing::field::display(caller.tenant));
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "send `Authorization: Bearer <token>`",
        ));
    };
    let credential = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| {
            ApiError::InvalidToken("the Authorization header is not `Bearer <token>`".to_owned())
        })?;
    let header_tenant = match parts.headers.get(TENANT_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
                .map(TenantId)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Rolecall-Tenant",
                        "the Rolecall-Tenant header is not a uuid",
                    )
                })?,
        ),
    };
    if let Some(key) = &state.config().admin_key {
        // INVARIANT: constant-time comparison, so response timing says nothing about the key.
        if bool::from(credential.as_bytes().ct_eq(key.expose().as_bytes())) {
            return Ok(Caller(Arc::new(CallerInfo {
                actor: Actor("admin-key".to_owned()),
                tenant: header_tenant.unwrap_or(state.config().default_tenant),
                kind: CallerKind::AdminKey,
            })));
        }
    }
    if state.verifier().is_empty() {
        return Err(ApiError::InvalidToken(
            super::error::INVALID_CREDENTIAL.to_owned(),
        ));
    }
    let identity = state
        .verifier()
        .verify(credential)
        .await
        .map_err(|e| match e {
            TokenError::Invalid(reason) => ApiError::InvalidToken(reason),
            TokenError::KeysUnavailable(reason) => ApiError::IssuerUnavailable(reason),
        })?;
    if header_tenant.is_some_and(|t| t != identity.tenant) {
        return Err(ApiError::ForbiddenOther(format!(
            "a token acts only in its own tenant ({}); drop the Rolecall-Tenant header",
            identity.tenant
        )));
    }
    Ok(Caller(Arc::new(CallerInfo {
        actor: Actor(identity.principal_id.to_string()),
        tenant: identity.tenant,
        kind: CallerKind::Token(Arc::new(identity)),
    })))
}
