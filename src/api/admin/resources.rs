//! `/v1/resources`: the resource directory of resources named by AuthZEN type and id, at a
//! resource path, with attributes.
//!
//! Each operation is a Rolecall action checked at the resource's path, so an administrator
//! scoped to `/records` manages only the resources under it: reading
//! (`rolecall/resources/standard/read`; listing needs it at `pathPrefix`, else `/`),
//! creating (`rolecall/resources/create`, at the new path), changing
//! (`rolecall/resources/basic/update`, at the path and, when it moves, at the new one) and
//! deleting (`rolecall/resources/delete`). A caller holding neither the read action nor the
//! operation's action at a resource's path is told nothing of it: `404`, as for an unknown
//! one.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::extract::{OriginalUri, State};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::authz::{
    Caller, CREATE_RESOURCES, DELETE_RESOURCES, READ_RESOURCES, UPDATE_RESOURCES,
};
use crate::api::extract::{page_request, pointer_of, ApiJson, ApiQuery, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated, REVISION_HEADER};
use crate::api::{ApiError, AppState};
use crate::model::{
    encode_segment, resource_id_problem, resource_type_problem, EntityType, NewResource, Resource,
    ResourceInput, ResourcePatchInput, Revision, Scope, TenantId, ValidationErrors,
    MAX_BULK_RESOURCES,
};
use crate::store::{ResourceFilter, StoreError, Stored, Upsert, UpsertOutcome};

/// The `{type}/{id}` path parameters, percent-decoded and checked.
pub struct ResourceKey {
    resource_type: String,
    id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ResourceKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((resource_type, id)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid("type", e.body_text()))?;
        if let Some(problem) = resource_type_problem(&resource_type) {
            return Err(ApiError::invalid("type", problem));
        }
        if let Some(problem) = resource_id_problem(&id) {
            return Err(ApiError::invalid("id", problem));
        }
        Ok(ResourceKey { resource_type, id })
    }
}

/// `/v1/resources/{type}/{id}`, each part one percent-encoded segment.
fn location(resource: &Resource) -> String {
    format!(
        "/v1/resources/{}/{}",
        encode_segment(&resource.resource_type),
        encode_segment(&resource.id)
    )
}

fn not_found(resource_type: &str, id: &str) -> ApiError {
    StoreError::NotFound {
        kind: EntityType::Resource.as_str(),
        id: format!("{resource_type}/{id}"),
    }
    .into()
}

/// Query of `GET /v1/resources`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    #[serde(rename = "type")]
    resource_type: Option<String>,
    path_prefix: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists resources ordered by (type, id). Needs the read action at `pathPrefix` (`/`
/// without it): what is listed is exactly what lies there.
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<List<Resource>, ApiError> {
    if let Some(problem) = q.resource_type.as_deref().and_then(resource_type_problem) {
        return Err(ApiError::invalid("?type", problem));
    }
    let path_prefix = q
        .path_prefix
        .map(|raw| {
            Scope::parse(&raw).map_err(|e| {
                ApiError::invalid(
                    "?pathPrefix",
                    format!("`{raw}` is not a resource path: {e}"),
                )
            })
        })
        .transpose()?;
    caller.authorize(
        &app,
        READ_RESOURCES,
        path_prefix.as_ref().unwrap_or(&Scope::root()),
    )?;
    let filter = ResourceFilter {
        resource_type: q.resource_type,
        path_prefix,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app.store().resources().list(tenant, &filter, &page).await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    key: ResourceKey,
) -> Result<One<Resource>, ApiError> {
    let stored = visible(&app, &caller, tenant, &key, READ_RESOURCES).await?;
    Ok(One(stored))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<ResourceInput>,
) -> Result<Created<Resource>, ApiError> {
    let new = body.validate(&app.config().authzen_mappings)?;
    caller.authorize(&app, CREATE_RESOURCES, &new.path)?;
    let written = app
        .store()
        .resources()
        .create(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    let location = location(&written.value);
    Ok(Created { written, location })
}

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    key: ResourceKey,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<ResourcePatchInput>,
) -> Result<Updated<Resource>, ApiError> {
    let patch = body.validate()?;
    let stored = visible(&app, &caller, tenant, &key, UPDATE_RESOURCES).await?;
    caller.authorize(&app, UPDATE_RESOURCES, &stored.value.path)?;
    if let Some(to) = patch.path.as_ref().filter(|to| **to != stored.value.path) {
        caller.authorize(&app, UPDATE_RESOURCES, to)?;
    }
    // Authorized against this version: a change meanwhile is a 412, never a write the
    // caller was not checked for.
    let if_match = if_match.or(Some(stored.revision));
    let written = app
        .store()
        .resources()
        .update(
            tenant,
            &caller.actor,
            &key.resource_type,
            &key.id,
            patch,
            if_match,
        )
        .await?;
    app.wait_for(written.revision).await?;
    Ok(Updated(written))
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    key: ResourceKey,
    IfMatch(if_match): IfMatch,
) -> Result<Deleted, ApiError> {
    let stored = visible(&app, &caller, tenant, &key, DELETE_RESOURCES).await?;
    caller.authorize(&app, DELETE_RESOURCES, &stored.value.path)?;
    let if_match = if_match.or(Some(stored.revision));
    let written = app
        .store()
        .resources()
        .delete(tenant, &caller.actor, &key.resource_type, &key.id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}

/// The stored resource, when the caller may read it or perform `action` at its path;
/// else the `404` an unknown resource gets, so its existence and path stay unknown.
async fn visible(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    key: &ResourceKey,
    action: &'static str,
) -> Result<Stored<Resource>, ApiError> {
    let stored = app
        .store()
        .resources()
        .get(tenant, &key.resource_type, &key.id)
        .await?;
    let path = &stored.value.path;
    if !caller.holds(app, READ_RESOURCES, path) && !caller.holds(app, action, path) {
        return Err(not_found(&key.resource_type, &key.id));
    }
    Ok(stored)
}

/// `POST /v1/resources/bulk` body: the items stay raw JSON until each is read on its own,
/// so every bad item is reported, located by its index.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    value: Vec<Value>,
}

/// One item of the bulk answer: the resource as it now stands and what was done to it.
#[derive(Serialize)]
struct BulkItem {
    #[serde(flatten)]
    resource: Resource,
    result: &'static str,
}

/// The bulk answer: 200, `Rolecall-Revision`, and each item in request order.
pub struct BulkWritten {
    items: Vec<BulkItem>,
    revision: Revision,
}

impl IntoResponse for BulkWritten {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            value: Vec<BulkItem>,
            revision: Revision,
        }
        let mut response = Json(Body {
            value: self.items,
            revision: self.revision,
        })
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&self.revision.to_string()) {
            response.headers_mut().insert(REVISION_HEADER.clone(), v);
        }
        response
    }
}

/// Creates or replaces up to [`MAX_BULK_RESOURCES`] resources in one transaction and one
/// revision. Each item is authorized as its own write would be: create at its path when
/// new, update at its path (and at the old one, when it moves) when it exists.
pub async fn bulk(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<BulkInput>,
) -> Result<BulkWritten, ApiError> {
    if body.value.len() > MAX_BULK_RESOURCES {
        return Err(ApiError::PayloadTooLarge(format!(
            "a bulk upsert holds at most {MAX_BULK_RESOURCES} resources; got {}",
            body.value.len()
        )));
    }
    let news = parse_items(&app, body.value)?;
    let keys: Vec<(String, String)> = news
        .iter()
        .map(|n| (n.resource_type.clone(), n.id.clone()))
        .collect();
    let mut stored: HashMap<(String, String), Stored<Resource>> = app
        .store()
        .resources()
        .get_many(tenant, &keys)
        .await?
        .into_iter()
        .map(|s| ((s.value.resource_type.clone(), s.value.id.clone()), s))
        .collect();
    let mut items = Vec::with_capacity(news.len());
    for (new, key) in news.into_iter().zip(keys) {
        let seen = match stored.remove(&key) {
            None => {
                caller.authorize(&app, CREATE_RESOURCES, &new.path)?;
                None
            }
            Some(existing) => {
                let at = &existing.value.path;
                if !caller.holds(&app, READ_RESOURCES, at)
                    && !caller.holds(&app, UPDATE_RESOURCES, at)
                {
                    return Err(ApiError::ForbiddenOther(format!(
                        "resource `{}/{}` exists where the caller may not change it",
                        key.0, key.1
                    )));
                }
                caller.authorize(&app, UPDATE_RESOURCES, at)?;
                if new.path != *at {
                    caller.authorize(&app, UPDATE_RESOURCES, &new.path)?;
                }
                Some(existing.revision)
            }
        };
        items.push(Upsert { new, seen });
    }
    let upserted = app
        .store()
        .resources()
        .upsert(tenant, &caller.actor, items)
        .await?;
    app.wait_for(upserted.revision).await?;
    let items = upserted
        .items
        .into_iter()
        .map(|(resource, outcome)| BulkItem {
            resource,
            result: match outcome {
                UpsertOutcome::Created => "created",
                UpsertOutcome::Updated => "updated",
                UpsertOutcome::Unchanged => "unchanged",
            },
        })
        .collect();
    Ok(BulkWritten {
        items,
        revision: upserted.revision,
    })
}

/// Reads and validates every item, each error located under `/value/{index}`; an item
/// repeating an earlier one's (type, id) is an error too.
fn parse_items(app: &AppState, raw: Vec<Value>) -> Result<Vec<NewResource>, ApiError> {
    let mut errors = ValidationErrors::new();
    if raw.is_empty() {
        errors.push(
            "/value",
            format!("a bulk upsert holds 1 to {MAX_BULK_RESOURCES} resources"),
        );
    }
    let mappings = &app.config().authzen_mappings;
    let mut news = Vec::with_capacity(raw.len());
    let mut first: HashMap<(String, String), usize> = HashMap::new();
    for (i, item) in raw.into_iter().enumerate() {
        let input: ResourceInput = match serde_path_to_error::deserialize(item) {
            Ok(input) => input,
            Err(error) => {
                let pointer = pointer_of(error.path());
                errors.push(format!("/value/{i}{pointer}"), error.inner().to_string());
                continue;
            }
        };
        match input.validate(mappings) {
            Ok(new) => {
                let key = (new.resource_type.clone(), new.id.clone());
                if let Some(earlier) = first.get(&key) {
                    errors.push(
                        format!("/value/{i}/id"),
                        format!(
                            "`{}/{}` repeats item {earlier}; each resource appears once",
                            key.0, key.1
                        ),
                    );
                } else {
                    first.insert(key, i);
                    news.push(new);
                }
            }
            Err(item_errors) => {
                for e in item_errors.errors {
                    errors.push(format!("/value/{i}{}", e.pointer), e.detail);
                }
            }
        }
    }
    errors.finish(|| news).map_err(ApiError::from)
}
