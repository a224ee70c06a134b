//! `/v1/principals`: the principal directory of users and service principals, their
//! aliases and attributes.
//!
//! Each operation is Entra's action for the principal's kind: `microsoft.directory/users/...`
//! for a user, `microsoft.directory/servicePrincipals/...` for a service principal, checked
//! at `/users/{id}` or `/servicePrincipals/{id}` (`/` to create or list). A caller that may
//! act on neither kind at the id is refused (403); one that may act only on the other kind
//! is told nothing of the principal (404, as for an unknown id).
//!
//! Deleting a principal deletes its directory record only: role and deny assignments and
//! group memberships naming the object id stay, since a principal is optional and an object
//! id the directory does not hold works everywhere.

use axum::extract::{OriginalUri, State};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::authz::{
    object_scope, Caller, CREATE_SERVICE_PRINCIPALS, CREATE_USERS, DELETE_SERVICE_PRINCIPALS,
    DELETE_USERS, READ_SERVICE_PRINCIPALS, READ_USERS, UPDATE_SERVICE_PRINCIPALS, UPDATE_USERS,
};
use crate::api::extract::{page_request, ApiJson, ApiQuery, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{
    EntityType, Principal, PrincipalInput, PrincipalPatchInput, PrincipalType, Scope, TenantId,
};
use crate::store::{PrincipalFilter, StoreError, Stored};

/// The admin actions of one kind of principal and where its objects' scopes live.
pub(super) struct Actions {
    /// The scope collection: `/users/{id}` or `/servicePrincipals/{id}`.
    pub(super) collection: &'static str,
    read: &'static str,
    pub(super) create: &'static str,
    pub(super) update: &'static str,
    pub(super) delete: &'static str,
}

const USERS: Actions = Actions {
    collection: "users",
    read: READ_USERS,
    create: CREATE_USERS,
    update: UPDATE_USERS,
    delete: DELETE_USERS,
};

const SERVICE_PRINCIPALS: Actions = Actions {
    collection: "servicePrincipals",
    read: READ_SERVICE_PRINCIPALS,
    create: CREATE_SERVICE_PRINCIPALS,
    update: UPDATE_SERVICE_PRINCIPALS,
    delete: DELETE_SERVICE_PRINCIPALS,
};

/// The actions for a kind of principal. Groups never reach here (validation refuses them),
/// and a stored one would be read as a user: the stricter of nothing.
pub(super) fn actions_of(kind: PrincipalType) -> &'static Actions {
    match kind {
        PrincipalType::ServicePrincipal => &SERVICE_PRINCIPALS,
        PrincipalType::User | PrincipalType::Group => &USERS,
    }
}

/// Query of `GET /v1/principals`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    alias: Option<String>,
    #[serde(rename = "type")]
    principal_type: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_type(raw: Option<&str>) -> Result<Option<PrincipalType>, ApiError> {
    match raw {
        None => Ok(None),
        Some("user") => Ok(Some(PrincipalType::User)),
        Some("servicePrincipal") => Ok(Some(PrincipalType::ServicePrincipal)),
        Some(other) => Err(ApiError::invalid(
            "?type",
            format!("`type` is `user` or `servicePrincipal`; got `{other}`"),
        )),
    }
}

/// Lists principals. Listing one kind (`?type=`) needs its read action at `/`; listing
/// both needs both.
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<List<Principal>, ApiError> {
    let principal_type = parse_type(q.principal_type.as_deref())?;
    let kinds = match principal_type {
        Some(kind) => vec![kind],
        None => vec![PrincipalType::User, PrincipalType::ServicePrincipal],
    };
    for kind in kinds {
        caller.authorize(&app, actions_of(kind).read, &Scope::root())?;
    }
    let filter = PrincipalFilter {
        alias: q.alias,
        principal_type,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app
        .store()
        .principals()
        .list(tenant, &filter, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<Principal>, ApiError> {
    let stored = authorized(&app, &caller, tenant, id, |a| a.read).await?;
    Ok(One(stored))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<PrincipalInput>,
) -> Result<Created<Principal>, ApiError> {
    let new = body.validate()?;
    caller.authorize(&app, actions_of(new.principal_type).create, &Scope::root())?;
    let written = app
        .store()
        .principals()
        .create(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/principals/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<PrincipalPatchInput>,
) -> Result<Updated<Principal>, ApiError> {
    let patch = body.validate()?;
    authorized(&app, &caller, tenant, id, |a| a.update).await?;
    let written = app
        .store()
        .principals()
        .update(tenant, &caller.actor, id, patch, if_match)
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
    authorized(&app, &caller, tenant, id, |a| a.delete).await?;
    let written = app
        .store()
        .principals()
        .delete(tenant, &caller.actor, id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}

/// Principal `id`, once the caller is known to hold `pick`'s action at its scope. A caller
/// holding it for neither kind at this id is refused (403, naming the user action); one
/// holding it only for the other kind gets the 404 an unknown id gets, so it learns
/// nothing of principals it may not touch.
async fn authorized(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
    pick: fn(&Actions) -> &'static str,
) -> Result<Stored<Principal>, ApiError> {
    let may =
        |actions: &Actions| caller.holds(app, pick(actions), &object_scope(actions.collection, id));
    if !may(&USERS) && !may(&SERVICE_PRINCIPALS) {
        caller.authorize(app, pick(&USERS), &object_scope(USERS.collection, id))?;
    }
    let stored = app.store().principals().get(tenant, id).await?;
    if !may(actions_of(stored.value.principal_type)) {
        return Err(StoreError::NotFound {
            kind: EntityType::Principal.as_str(),
            id: id.to_string(),
        }
        .into());
    }
    Ok(stored)
}
