//! `/v1/groups` and their direct members.

use axum::extract::{OriginalUri, State};

use crate::api::authz::{
    object_scope, Caller, Membership, CREATE_GROUPS, READ_GROUPS, READ_GROUP_MEMBERS, UPDATE_GROUPS,
};
use crate::api::extract::{ApiJson, ApiQuery, IdAndMember, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{
    Group, GroupMember, GroupMemberInput, NamedObjectInput, NamedObjectPatchInput, Scope,
};

use super::roles::PageQuery;

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<List<Group>, ApiError> {
    caller.authorize(&app, READ_GROUPS, &Scope::root())?;
    let page = q.page()?;
    Ok(List::of_stored(
        &uri,
        app.store().list_groups(tenant, &page).await?,
    ))
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<Group>, ApiError> {
    caller.authorize(&app, READ_GROUPS, &object_scope("groups", id))?;
    Ok(One(app.store().get_group(tenant, id).await?))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<NamedObjectInput>,
) -> Result<Created<Group>, ApiError> {
    caller.authorize(&app, CREATE_GROUPS, &Scope::root())?;
    let new = body.validate()?;
    let written = app.store().create_group(tenant, &caller.actor, new).await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/groups/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<NamedObjectPatchInput>,
) -> Result<Updated<Group>, ApiError> {
    caller.authorize(&app, UPDATE_GROUPS, &object_scope("groups", id))?;
    let patch = body.validate()?;
    let written = app
        .store()
        .update_group(tenant, &caller.actor, id, patch, if_match)
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
    caller.authorize_group_delete(&app, id)?;
    let written = app
        .store()
        .delete_group(tenant, &caller.actor, id, if_match)
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
) -> Result<List<GroupMember>, ApiError> {
    caller.authorize(&app, READ_GROUP_MEMBERS, &object_scope("groups", id))?;
    let page = q.page()?;
    app.store().get_group(tenant, id).await?;
    let page = app.store().list_group_members(tenant, id, &page).await?;
    Ok(List::of_stored(&uri, page))
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
        .add_group_member(tenant, &caller.actor, id, member)
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
    let member = uuid::Uuid::parse_str(&member)
        .map_err(|_| ApiError::invalid("memberId", format!("`{member}` is not a uuid")))?;
    caller
        .authorize_membership(&app, id, Membership::Remove(member))
        .await?;
    let written = app
        .store()
        .remove_group_member(tenant, &caller.actor, id, member)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}
