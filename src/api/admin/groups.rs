//! `/v1/groups` and their direct members. Listing, reading, creating, renaming and
//! listing members are shared with administrative units (`directory.rs`); deleting a group
//! and changing its members are authorized as what they grant or lift.

use axum::extract::State;

use super::directory::Collection;
use crate::api::authz::{
    Caller, Membership, CREATE_GROUPS, READ_GROUPS, READ_GROUP_MEMBERS, UPDATE_GROUPS,
};
use crate::api::extract::{ApiJson, IdAndMember, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted};
use crate::api::{ApiError, AppState};
use crate::model::{Group, GroupMember, GroupMemberInput};

impl Collection for Group {
    const PATH: &'static str = "groups";
    const READ: &'static str = READ_GROUPS;
    const CREATE: &'static str = CREATE_GROUPS;
    const UPDATE: &'static str = UPDATE_GROUPS;
    const READ_MEMBERS: &'static str = READ_GROUP_MEMBERS;
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
) -> Result<Deleted, ApiError> {
    caller.authorize_group_delete(&app, id)?;
    let written = app
        .store()
        .groups()
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
    ApiJson(body): ApiJson<GroupMemberInput>,
) -> Result<Created<GroupMember>, ApiError> {
    caller
        .authorize_membership(&app, id, Membership::Add)
        .await?;
    let member = body.validate()?;
    let written = app
        .store()
        .groups()
        .add_member(tenant, &caller.actor, id, member)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/groups/{id}/members/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn remove_member(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdAndMember(id, member): IdAndMember,
) -> Result<Deleted, ApiError> {
    let member = crate::api::extract::path_uuid("memberId", &member)?;
    caller
        .authorize_membership(&app, id, Membership::Remove(member))
        .await?;
    let written = app
        .store()
        .groups()
        .remove_member(tenant, &caller.actor, id, &member)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}
