//! What `/v1/groups` and `/v1/administrativeUnits` share: listing, reading, creating and
//! renaming containers, and listing one's members. Each of these is authorized by a single
//! action of the kind ([`Collection`], in `groups.rs` and `units.rs`) at a single scope. What
//! differs between the kinds (deleting, adding and removing members, each authorized as
//! what it removes or extends) stays in those files.

use axum::extract::{OriginalUri, State};
use serde::Serialize;

use crate::api::authz::{object_scope, Caller};
use crate::api::extract::{ApiJson, ApiQuery, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{NamedObjectInput, NamedObjectPatchInput, Scope};
use crate::store::Container;

use super::roles::PageQuery;

/// A container kind as the admin API serves it: its collection and the action each shared
/// operation needs.
pub trait Collection: Container + Serialize {
    /// The collection's path segment under `/v1`, and of its objects' scopes.
    const PATH: &'static str;
    /// Needed at `/` to list, and at the object to read one.
    const READ: &'static str;
    /// Needed at `/` to create one.
    const CREATE: &'static str;
    /// Needed at the object to rename or re-describe it.
    const UPDATE: &'static str;
    /// Needed at the object to list its members.
    const READ_MEMBERS: &'static str;
}

pub async fn list<C: Collection>(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<List<C>, ApiError> {
    caller.authorize(&app, C::READ, &Scope::root())?;
    let page = q.page()?;
    let page = C::of(app.store()).list(tenant, &page).await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get<C: Collection>(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<C>, ApiError> {
    caller.authorize(&app, C::READ, &object_scope(C::PATH, id))?;
    Ok(One(C::of(app.store()).get(tenant, id).await?))
}

pub async fn create<C: Collection>(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<NamedObjectInput>,
) -> Result<Created<C>, ApiError> {
    caller.authorize(&app, C::CREATE, &Scope::root())?;
    let new = body.validate()?;
    let written = C::of(app.store())
        .create(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/{}/{}", C::PATH, written.value.id());
    Ok(Created { written, location })
}

pub async fn update<C: Collection>(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<NamedObjectPatchInput>,
) -> Result<Updated<C>, ApiError> {
    caller.authorize(&app, C::UPDATE, &object_scope(C::PATH, id))?;
    let patch = body.validate()?;
    let written = C::of(app.store())
        .update(tenant, &caller.actor, id, patch, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(Updated(written))
}

pub async fn list_members<C: Collection>(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<List<C::Member>, ApiError> {
    caller.authorize(&app, C::READ_MEMBERS, &object_scope(C::PATH, id))?;
    let page = q.page()?;
    let store = C::of(app.store());
    store.get(tenant, id).await?;
    let page = store.list_members(tenant, id, &page).await?;
    Ok(List::of_stored(&uri, page))
}
