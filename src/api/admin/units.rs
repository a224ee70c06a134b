//! `/v1/administrativeUnits` and their member resources. A member is addressed in URLs by
//! its resource path, percent-encoded into one segment (`%2Fapplications%2F{id}`).
//! Listing, reading, creating, renaming and listing members are shared with groups
//! (`directory.rs`); deleting a unit and changing its members are authorized further: at
//! the member resource, and as lifting the unit's deny assignments from what leaves it.

use axum::extract::State;

use super::directory::Collection;
use crate::api::authz::{object_scope, Caller, MANAGE_UNITS, READ_UNITS, READ_UNIT_MEMBERS};
use crate::api::extract::{ApiJson, IdAndMember, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted};
use crate::api::{ApiError, AppState};
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, AdministrativeUnitMemberInput, Scope,
};

impl Collection for AdministrativeUnit {
    const PATH: &'static str = "administrativeUnits";
    const READ: &'static str = READ_UNITS;
    const CREATE: &'static str = MANAGE_UNITS;
    const UPDATE: &'static str = MANAGE_UNITS;
    const READ_MEMBERS: &'static str = READ_UNIT_MEMBERS;
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
        .units()
        .delete(tenant, &caller.actor, id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
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
        .units()
        .add_member(tenant, &caller.actor, id, resource)
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
        .units()
        .remove_member(tenant, &caller.actor, id, &resource)
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
