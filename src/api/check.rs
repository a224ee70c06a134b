//! Decisions: `/v1/check`, `/v1/check/batch`, effective permissions and who-can. All are
//! answered from the in-memory snapshot; `consistency` lets a caller wait for a revision.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::Method;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{page_request, ApiJson, ApiQuery, Caller, IdPath, Tenant};
use super::respond::next_link;
use super::{route, ApiError, AppState, Route};
use crate::engine::{
    Access, CheckRequest, Decision, EffectivePermissions, Reason, Snapshot, Subject,
};
use crate::model::{Action, Revision, Scope, ValidationErrors};

/// The decision routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/check", post(check)),
        route(Method::POST, "/v1/check/batch", post(check_batch)),
        route(
            Method::GET,
            "/v1/principals/{id}/permissions",
            get(permissions),
        ),
        route(Method::GET, "/v1/access", get(access)),
    ]
}

/// `{"principalId": ..., "groups": [...], "wids": [...]}`: `groups` and `wids` are claims the
/// caller vouches for (from a token it validated).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubjectInput {
    principal_id: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    wids: Vec<String>,
}

/// `{"atLeast": "<revision>"}` or `{"fullyConsistent": true}`; absent = this replica's
/// current snapshot.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyInput {
    at_least: Option<Revision>,
    fully_consistent: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckInput {
    subject: SubjectInput,
    action: String,
    resource: String,
    #[serde(default)]
    consistency: Option<ConsistencyInput>,
    #[serde(default)]
    explain: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchItemInput {
    subject: SubjectInput,
    action: String,
    resource: String,
    #[serde(default)]
    explain: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchInput {
    checks: Vec<BatchItemInput>,
    #[serde(default)]
    consistency: Option<ConsistencyInput>,
    #[serde(default)]
    explain: bool,
}

/// One decision on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionBody {
    allowed: bool,
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<Revision>,
    reasons: Vec<Reason>,
}

impl DecisionBody {
    fn new(decision: Decision, revision: Option<Revision>) -> Self {
        DecisionBody {
            allowed: decision.allowed,
            decision: if decision.allowed { "allow" } else { "deny" },
            revision,
            reasons: decision.reasons,
        }
    }
}

#[derive(Serialize)]
struct BatchBody {
    revision: Revision,
    results: Vec<DecisionBody>,
}

fn uuid_at(errors: &mut ValidationErrors, pointer: String, raw: &str) -> Option<Uuid> {
    errors.check(
        pointer,
        Uuid::parse_str(raw).map_err(|_| format!("`{raw}` is not a uuid")),
    )
}

/// Validates one question, recording errors under `base` (`""` or `/checks/{i}`).
fn request(
    errors: &mut ValidationErrors,
    base: &str,
    subject: SubjectInput,
    action: &str,
    resource: &str,
) -> Option<CheckRequest> {
    let id = uuid_at(
        errors,
        format!("{base}/subject/principalId"),
        &subject.principal_id,
    );
    let groups: Vec<_> = subject
        .groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| uuid_at(errors, format!("{base}/subject/groups/{i}"), g))
        .collect();
    let wids: Vec<_> = subject
        .wids
        .iter()
        .enumerate()
        .filter_map(|(i, w)| uuid_at(errors, format!("{base}/subject/wids/{i}"), w))
        .collect();
    let action = errors.check(
        format!("{base}/action"),
        Action::parse(action).map_err(|e| format!("`{action}` is not an action: {e}")),
    );
    let resource = errors.check(
        format!("{base}/resource"),
        Scope::parse(resource).map_err(|e| format!("`{resource}` is not a resource path: {e}")),
    );
    Some(CheckRequest {
        subject: Subject {
            id: id?,
            groups,
            wids,
        },
        action: action?,
        resource: resource?,
    })
}

/// The snapshot to answer from, honouring the requested consistency.
async fn snapshot_for(
    app: &AppState,
    consistency: Option<ConsistencyInput>,
) -> Result<Arc<Snapshot>, ApiError> {
    match consistency {
        None => Ok(app.directory().snapshot()),
        Some(ConsistencyInput {
            at_least: Some(revision),
            fully_consistent: None | Some(false),
        }) => app.wait_for(revision).await,
        Some(ConsistencyInput {
            at_least: None,
            fully_consistent: Some(true),
        }) => {
            let revision = app.store().current_revision().await?;
            app.wait_for(revision).await
        }
        Some(ConsistencyInput {
            at_least: None,
            fully_consistent: None | Some(false),
        }) => Ok(app.directory().snapshot()),
        Some(_) => Err(ApiError::invalid(
            "/consistency",
            "give either `atLeast` or `fullyConsistent`, not both",
        )),
    }
}

async fn check(
    State(app): State<AppState>,
    _caller: Caller,
    tenant: Tenant,
    ApiJson(body): ApiJson<CheckInput>,
) -> Result<Json<DecisionBody>, ApiError> {
    let mut errors = ValidationErrors::new();
    let request = request(&mut errors, "", body.subject, &body.action, &body.resource);
    let request = match request {
        Some(r) if errors.is_empty() => r,
        _ => return Err(errors.into()),
    };
    let snapshot = snapshot_for(&app, body.consistency).await?;
    let decision = snapshot.check(tenant.0, &request, chrono::Utc::now(), body.explain);
    Ok(Json(DecisionBody::new(decision, Some(snapshot.revision()))))
}

async fn check_batch(
    State(app): State<AppState>,
    _caller: Caller,
    tenant: Tenant,
    ApiJson(body): ApiJson<BatchInput>,
) -> Result<Json<BatchBody>, ApiError> {
    let limit = app.config().max_batch_checks;
    if body.checks.len() > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {limit} checks; got {}",
            body.checks.len()
        )));
    }
    let mut errors = ValidationErrors::new();
    let items: Vec<_> = body
        .checks
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let explain = item.explain.unwrap_or(body.explain);
            let base = format!("/checks/{i}");
            (
                request(
                    &mut errors,
                    &base,
                    item.subject,
                    &item.action,
                    &item.resource,
                ),
                explain,
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let snapshot = snapshot_for(&app, body.consistency).await?;
    let now = chrono::Utc::now();
    let results = items
        .into_iter()
        .filter_map(|(request, explain)| request.map(|r| (r, explain)))
        .map(|(request, explain)| {
            DecisionBody::new(snapshot.check(tenant.0, &request, now, explain), None)
        })
        .collect();
    Ok(Json(BatchBody {
        revision: snapshot.revision(),
        results,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsQuery {
    scope: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PermissionsBody {
    principal_id: Uuid,
    scope: Scope,
    revision: Revision,
    #[serde(flatten)]
    effective: EffectivePermissions,
}

async fn permissions(
    State(app): State<AppState>,
    _caller: Caller,
    tenant: Tenant,
    IdPath(id): IdPath,
    ApiQuery(q): ApiQuery<PermissionsQuery>,
) -> Result<Json<PermissionsBody>, ApiError> {
    let scope = match q.scope {
        None => Scope::root(),
        Some(raw) => Scope::parse(&raw)
            .map_err(|e| ApiError::invalid("?scope", format!("`{raw}` is not a scope: {e}")))?,
    };
    let snapshot = app.directory().snapshot();
    let effective =
        snapshot.effective_permissions(tenant.0, &Subject::new(id), &scope, chrono::Utc::now());
    Ok(Json(PermissionsBody {
        principal_id: id,
        scope,
        revision: snapshot.revision(),
        effective,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessQuery {
    resource: Option<String>,
    action: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessBody {
    value: Vec<Access>,
    next_link: Option<String>,
    revision: Revision,
}

async fn access(
    State(app): State<AppState>,
    _caller: Caller,
    tenant: Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<AccessQuery>,
) -> Result<Json<AccessBody>, ApiError> {
    let mut errors = ValidationErrors::new();
    let resource = match q.resource.as_deref() {
        None => {
            errors.push("?resource", "`resource` is required");
            None
        }
        Some(raw) => errors.check(
            "?resource",
            Scope::parse(raw).map_err(|e| format!("`{raw}` is not a resource path: {e}")),
        ),
    };
    let action = match q.action.as_deref() {
        None => {
            errors.push("?action", "`action` is required");
            None
        }
        Some(raw) => errors.check(
            "?action",
            Action::parse(raw).map_err(|e| format!("`{raw}` is not an action: {e}")),
        ),
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let (Some(resource), Some(action)) = (resource, action) else {
        return Err(errors.into());
    };
    let after =
        match page.cursor.as_deref() {
            None => None,
            Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
                ApiError::invalid("?cursor", "`cursor` is not one this API returned")
            })?),
        };
    let snapshot = app.directory().snapshot();
    let mut all = snapshot.who_can(tenant.0, &action, &resource, chrono::Utc::now());
    // INVARIANT: one entry per principal, ordered by id, so the cursor (the last id) pages
    // through the whole answer without loss or repeats.
    all.sort_by_key(|a| a.principal_id);
    all.dedup_by_key(|a| a.principal_id);
    let start = after.map_or(0, |id| all.partition_point(|a| a.principal_id <= id));
    let rest = &all[start..];
    let limit = page.limit as usize;
    let next =
        (rest.len() > limit).then(|| next_link(&uri, &rest[limit - 1].principal_id.to_string()));
    Ok(Json(AccessBody {
        value: rest.iter().take(limit).cloned().collect(),
        next_link: next,
        revision: snapshot.revision(),
    }))
}
