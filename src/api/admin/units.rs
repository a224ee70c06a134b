//! `/v1/administrativeUnits` and their member resources. A member is addressed in URLs by
//! its resource path, percent-encoded into one segment (`%2Fapplications%2F{id}`).

use axum::extract::{OriginalUri, State};

use crate::api::authz::{object_scope, Caller, MANAGE_UNITS, READ_UNITS, READ_UNIT_MEMBERS};
use crate::api::extract::{ApiJson, ApiQuery, IdAndMember, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, AdministrativeUnitMemberInput, NamedObjectInput,
    NamedObjectPatchInput, Scope,
};

use super::roles::PageQuery;

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<List<AdministrativeUnit>, ApiError> {
    caller.authorize(&app, READ_UNITS, &Scope::root())?;
    let page = q.page()?;
    let page = app.store().list_administrative_units(tenant, &page).await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<AdministrativeUnit>, ApiError> {
    caller.authorize(&app, READ_UNITS, &object_scope("administrativeUnits", id))?;
    Ok(One(app.store().get_administrative_unit(tenant, id).await?))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<NamedObjectInput>,
) -> Result<Created<AdministrativeUnit>, ApiError> {
    caller.authorize(&app, MANAGE_UNITS, &Scope::root())?;
    let new = body.validate()?;
    let written = app
        .store()
        .create_administrative_unit(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/administrativeUnits/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<NamedObjectPatchInput>,
) -> Result<Updated<AdministrativeUnit>, ApiError> {
    caller.authorize(&app, MANAGE_UNITS, &object_scope("administrativeUnits", id))?;
    let patch = body.validate()?;
    let written = app
        .store()
        .update_administrative_unit(tenant, &caller.actor, id, patch, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(Updated(written))
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
) -> Result<Deleted, ApiError> {
    caller.authorize(&app, MANAGE_UNITS, &object_scope("administrativeUnits", id))?;
    caller.authorize_unit_release(&app, id)?;
    let written = app
        .store()
        .delete_administrative_unit(tenant, &caller.actor, id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}

pub async fn list_members(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<List<AdministrativeUnitMember>, ApiError> {
    caller.authorize(
        &app,
        READ_UNIT_MEMBERS,
        &object_scope("administrativeUnits", id),
    )?;
    let page = q.page()?;
    app.store().get_administrative_unit(tenant, id).await?;
    let page = app
        .store()
        .list_administrative_unit_members(tenant, id, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn add_member(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AdministrativeUnitMemberInput>,
) -> Result<Created<AdministrativeUnitMember>, ApiError> {
    caller.authorize(&app, MANAGE_UNITS, &object_scope("administrativeUnits", id))?;
    let resource = body.validate()?;
    // Adding a resource to a unit extends the unit's admins to it: the caller must manage
    // units at the resource too.
    caller.authorize(&app, MANAGE_UNITS, &resource)?;
    let written = app
        .store()
        .add_administrative_unit_member(tenant, &caller.actor, id, resource)
        .await?;
    app.wait_for(written.revision).await?;
    let encoded: String = form_encode_segment(written.value.resource.as_str());
    let location = format!("/v1/administrativeUnits/{id}/members/{encoded}");
    Ok(Created { written, location })
}

pub async fn remove_member(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdAndMember(id, member): IdAndMember,
) -> Result<Deleted, ApiError> {
    caller.authorize(&app, MANAGE_UNITS, &object_scope("administrativeUnits", id))?;
    let resource = Scope::parse(&member).map_err(|e| {
        ApiError::invalid(
            "memberId",
            format!("`{member}` is not a percent-encoded resource path: {e}"),
        )
    })?;
    caller.authorize(&app, MANAGE_UNITS, &resource)?;
    caller.authorize_unit_release(&app, id)?;
    let written = app
        .store()
        .remove_administrative_unit_member(tenant, &caller.actor, id, &resource)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}

/// Percent-encodes a resource path into one URL path segment.
fn form_encode_segment(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
