//! `/v1/roleAssignments` and `/v1/denyAssignments`.

use axum::extract::{OriginalUri, State};
use serde::Deserialize;

use super::parse_uuid;
use crate::api::authz::{Caller, MANAGE_ASSIGNMENTS, READ_ASSIGNMENTS};
use crate::api::extract::{page_request, ApiJson, ApiQuery, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{
    DenyAssignment, DenyAssignmentInput, DenyAssignmentPatchInput, EntityType, Revision,
    RoleAssignment, RoleAssignmentInput, Scope, TenantId,
};
use crate::store::{RoleAssignmentFilter, Stored, Written};
use uuid::Uuid;

/// Query of `GET /v1/roleAssignments`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    principal_id: Option<String>,
    role_definition_id: Option<String>,
    directory_scope_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<List<RoleAssignment>, ApiError> {
    let directory_scope_id = scope_query(q.directory_scope_id)?;
    authorize_listing(&app, &caller, directory_scope_id.as_ref())?;
    let filter = RoleAssignmentFilter {
        principal_id: parse_uuid("principalId", q.principal_id.as_deref())?,
        role_definition_id: parse_uuid("roleDefinitionId", q.role_definition_id.as_deref())?,
        directory_scope_id,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app
        .store()
        .list_role_assignments(tenant, &filter, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

/// The `directoryScopeId` query parameter of a listing.
pub(crate) fn scope_query(raw: Option<String>) -> Result<Option<Scope>, ApiError> {
    raw.map(|s| {
        Scope::parse(&s).map_err(|e| {
            ApiError::invalid("?directoryScopeId", format!("`{s}` is not a scope: {e}"))
        })
    })
    .transpose()
}

/// Listing role assignments: filtered to one scope, reading there suffices; unfiltered
/// needs reading at `/`. `/v1` and the Graph-compatible paths both list after it.
pub(crate) fn authorize_listing(
    app: &AppState,
    caller: &Caller,
    directory_scope_id: Option<&Scope>,
) -> Result<(), ApiError> {
    caller.authorize(
        app,
        READ_ASSIGNMENTS,
        directory_scope_id.unwrap_or(&Scope::root()),
    )
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<RoleAssignment>, ApiError> {
    Ok(One(read_assignment(&app, &caller, tenant, id).await?))
}

/// One role assignment; 404, as for an unknown id, when the caller may not read at its
/// scope (not even its scope is told).
pub(crate) async fn read_assignment(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
) -> Result<Stored<RoleAssignment>, ApiError> {
    let stored = app.store().get_role_assignment(tenant, id).await?;
    if !caller.holds(app, READ_ASSIGNMENTS, &stored.value.directory_scope_id) {
        return Err(not_found(EntityType::RoleAssignment, id));
    }
    Ok(stored)
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<RoleAssignmentInput>,
) -> Result<Created<RoleAssignment>, ApiError> {
    let written = create_assignment(&app, &caller, tenant, body).await?;
    let location = format!("/v1/roleAssignments/{}", written.value.id);
    Ok(Created { written, location })
}

/// Creates a role assignment (or finds the same one): validated, authorized against
/// escalation, written, and visible in this replica's snapshot when it returns.
pub(crate) async fn create_assignment(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    body: RoleAssignmentInput,
) -> Result<Written<RoleAssignment>, ApiError> {
    let new = body.validate()?;
    caller.authorize_assignment(app, &new).await?;
    let written = app
        .store()
        .create_role_assignment(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
) -> Result<Deleted, ApiError> {
    Ok(delete_assignment(&app, &caller, tenant, id, if_match)
        .await?
        .into())
}

/// Deletes a role assignment, for a caller who manages assignments at its scope. Gone from
/// this replica's snapshot when it returns.
pub(crate) async fn delete_assignment(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
    if_match: Option<Revision>,
) -> Result<Written<RoleAssignment>, ApiError> {
    let stored = app.store().get_role_assignment(tenant, id).await?;
    caller.authorize(app, MANAGE_ASSIGNMENTS, &stored.value.directory_scope_id)?;
    let written = app
        .store()
        .delete_role_assignment(tenant, &caller.actor, id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

/// Query of `GET /v1/denyAssignments`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyListQuery {
    principal_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list_deny(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<DenyListQuery>,
) -> Result<List<DenyAssignment>, ApiError> {
    caller.authorize(&app, READ_ASSIGNMENTS, &Scope::root())?;
    let principal = parse_uuid("principalId", q.principal_id.as_deref())?;
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app
        .store()
        .list_deny_assignments(tenant, principal, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get_deny(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<DenyAssignment>, ApiError> {
    let stored = app.store().get_deny_assignment(tenant, id).await?;
    if !caller.holds(&app, READ_ASSIGNMENTS, &stored.value.directory_scope_id) {
        return Err(not_found(EntityType::DenyAssignment, id));
    }
    Ok(One(stored))
}

pub async fn create_deny(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<DenyAssignmentInput>,
) -> Result<Created<DenyAssignment>, ApiError> {
    let new = body.validate()?;
    caller.authorize_deny(&app, &new)?;
    let written = app
        .store()
        .create_deny_assignment(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/denyAssignments/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn update_deny(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<DenyAssignmentPatchInput>,
) -> Result<Updated<DenyAssignment>, ApiError> {
    let patch = body.validate()?;
    let stored = app.store().get_deny_assignment(tenant, id).await?;
    caller.authorize_deny_change(&app, &stored.value, &patch)?;
    let written = app
        .store()
        .update_deny_assignment(tenant, &caller.actor, id, patch, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(Updated(written))
}

pub async fn delete_deny(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
) -> Result<Deleted, ApiError> {
    let stored = app.store().get_deny_assignment(tenant, id).await?;
    caller.authorize_deny_delete(&app, &stored.value)?;
    let written = app
        .store()
        .delete_deny_assignment(tenant, &caller.actor, id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}

/// The 404 an unknown id gets, word for word, also given for an object the caller may not
/// read.
pub(crate) fn not_found(entity: EntityType, id: uuid::Uuid) -> ApiError {
    crate::store::StoreError::NotFound {
        kind: entity.as_str(),
        id: id.to_string(),
    }
    .into()
}
