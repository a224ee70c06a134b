//! `/v1/roleDefinitions`: built-in and custom roles.

use axum::extract::{OriginalUri, State};
use serde::Deserialize;

use super::parse_bool;
use crate::api::authz::{Caller, MANAGE_ASSIGNMENTS, MANAGE_ROLES, READ_ASSIGNMENTS, READ_ROLES};
use crate::api::extract::{page_request, ApiJson, ApiQuery, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{
    CloneRoleInput, Revision, RoleAssignment, RoleDefinition, RoleDefinitionInput,
    RoleDefinitionPatchInput, Scope, TenantId,
};
use crate::store::{RoleAssignmentFilter, RoleDefinitionFilter, Stored, Written};
use uuid::Uuid;

/// Query of `GET /v1/roleDefinitions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    display_name: Option<String>,
    is_built_in: Option<String>,
    is_enabled: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<List<RoleDefinition>, ApiError> {
    authorize_listing(&app, &caller)?;
    let filter = RoleDefinitionFilter {
        display_name: q.display_name,
        is_built_in: parse_bool("isBuiltIn", q.is_built_in.as_deref())?,
        is_enabled: parse_bool("isEnabled", q.is_enabled.as_deref())?,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app
        .store()
        .list_role_definitions(tenant, &filter, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

/// Listing role definitions needs reading them at `/`; checked before the query is read.
/// `/v1` and the Graph-compatible paths both list after it.
pub(crate) fn authorize_listing(app: &AppState, caller: &Caller) -> Result<(), ApiError> {
    caller.authorize(app, READ_ROLES, &Scope::root())
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<RoleDefinition>, ApiError> {
    Ok(One(read_role(&app, &caller, tenant, id).await?))
}

/// One role definition, for a caller who may read roles at `/`.
pub(crate) async fn read_role(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
) -> Result<Stored<RoleDefinition>, ApiError> {
    caller.authorize(app, READ_ROLES, &Scope::root())?;
    Ok(app.store().get_role_definition(tenant, id).await?)
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<RoleDefinitionInput>,
) -> Result<Created<RoleDefinition>, ApiError> {
    let written = create_role(&app, &caller, tenant, body).await?;
    let location = format!("/v1/roleDefinitions/{}", written.value.id);
    Ok(Created { written, location })
}

/// Creates a custom role: authorized, validated, written, and visible in this replica's
/// snapshot (read-your-writes) when it returns.
pub(crate) async fn create_role(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    body: RoleDefinitionInput,
) -> Result<Written<RoleDefinition>, ApiError> {
    caller.authorize(app, MANAGE_ROLES, &Scope::root())?;
    let new = body.validate()?;
    let written = app
        .store()
        .create_role_definition(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

pub async fn clone(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<CloneRoleInput>,
) -> Result<Created<RoleDefinition>, ApiError> {
    caller.authorize(&app, MANAGE_ROLES, &Scope::root())?;
    let clone = body.validate()?;
    let written = app
        .store()
        .clone_role_definition(tenant, &caller.actor, id, clone)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/roleDefinitions/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<RoleDefinitionPatchInput>,
) -> Result<Updated<RoleDefinition>, ApiError> {
    Ok(Updated(
        update_role(&app, &caller, tenant, id, if_match, body).await?,
    ))
}

/// Changes a custom role; a change of permissions (or enabling it) is checked against
/// escalation. Visible in this replica's snapshot when it returns.
pub(crate) async fn update_role(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
    if_match: Option<Revision>,
    body: RoleDefinitionPatchInput,
) -> Result<Written<RoleDefinition>, ApiError> {
    caller.authorize(app, MANAGE_ROLES, &Scope::root())?;
    let patch = body.validate()?;
    if patch.role_permissions.is_some() || patch.is_enabled == Some(true) {
        let before = app.store().get_role_definition(tenant, id).await?.value;
        let mut changed = before.clone();
        if let Some(permissions) = &patch.role_permissions {
            changed.role_permissions = permissions.clone();
        }
        if let Some(enabled) = patch.is_enabled {
            changed.is_enabled = enabled;
        }
        if !changed.is_built_in {
            caller.authorize_role_change(app, &before, &changed)?;
        }
    }
    let written = app
        .store()
        .update_role_definition(tenant, &caller.actor, id, patch, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

/// Query of `DELETE /v1/roleDefinitions/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    cascade: Option<String>,
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Deleted, ApiError> {
    let cascade = q.cascade.as_deref();
    Ok(delete_role(&app, &caller, tenant, id, if_match, cascade)
        .await?
        .into())
}

/// Deletes a custom role; with `cascade` (`?cascade=`, read after authorization) `true`,
/// every assignment of it too, each authorized at its own scope. Gone from this replica's
/// snapshot when it returns.
pub(crate) async fn delete_role(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
    if_match: Option<Revision>,
    cascade: Option<&str>,
) -> Result<Written<RoleDefinition>, ApiError> {
    caller.authorize(app, MANAGE_ROLES, &Scope::root())?;
    let cascade = parse_bool("cascade", cascade)?.unwrap_or(false);
    if cascade {
        // The cascade deletes every assignment and eligibility of the role: each needs the
        // right to delete it directly, at its own scope.
        for scope in assignment_scopes(app, tenant, id).await? {
            caller.authorize(app, MANAGE_ASSIGNMENTS, &scope)?;
        }
    }
    let written = app
        .store()
        .delete_role_definition(tenant, &caller.actor, id, cascade, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

/// Query of `GET /v1/roleDefinitions/{id}/assignments`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageQuery {
    /// The validated page request.
    pub fn page(self) -> Result<crate::store::PageRequest, ApiError> {
        page_request(self.limit.as_deref(), self.cursor)
    }
}

pub async fn assignments(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<List<RoleAssignment>, ApiError> {
    caller.authorize(&app, READ_ASSIGNMENTS, &Scope::root())?;
    let page = q.page()?;
    // 404 for an unknown role rather than an empty list.
    app.store().get_role_definition(tenant, id).await?;
    let filter = RoleAssignmentFilter {
        role_definition_id: Some(id),
        ..RoleAssignmentFilter::default()
    };
    let page = app
        .store()
        .list_role_assignments(tenant, &filter, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

/// The distinct scopes of every assignment of role `id`, read page by page from the store.
async fn assignment_scopes(
    app: &AppState,
    tenant: crate::model::TenantId,
    id: uuid::Uuid,
) -> Result<Vec<Scope>, ApiError> {
    let filter = RoleAssignmentFilter {
        role_definition_id: Some(id),
        ..RoleAssignmentFilter::default()
    };
    let mut page = crate::store::PageRequest {
        limit: 1000,
        cursor: None,
    };
    let mut scopes: Vec<Scope> = Vec::new();
    loop {
        let listed = app
            .store()
            .list_role_assignments(tenant, &filter, &page)
            .await?;
        for stored in listed.items {
            if !scopes.contains(&stored.value.directory_scope_id) {
                scopes.push(stored.value.directory_scope_id);
            }
        }
        match listed.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    // The cascade removes the role's eligibilities too: each is held at its own scope.
    page.cursor = None;
    loop {
        let listed = app
            .store()
            .list_eligibilities(tenant, &filter, &page)
            .await?;
        for stored in listed.items {
            if !scopes.contains(&stored.value.directory_scope_id) {
                scopes.push(stored.value.directory_scope_id);
            }
        }
        match listed.next {
            Some(next) => page.cursor = Some(next),
            None => return Ok(scopes),
        }
    }
}
