//! Decisions: `/v1/check`, `/v1/check/batch`, effective permissions and who-can. All are
//! answered from the in-memory snapshot; `consistency` lets a caller wait for a revision.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::Method;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::authz::{Caller, CHECK_OTHERS, READ_ASSIGNMENTS};
use super::extract::{page_request, ApiJson, ApiQuery, IdPath, Tenant};
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

/// Either `{"token": "<jwt>"}` (validated like a caller's token: principal, token groups and,
/// for a trusted issuer, `wids`) or `{"principalId": ..., "groups": [...], "wids": [...]}`,
/// where `groups` and `wids` are claims the caller vouches for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubjectInput {
    principal_id: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    wids: Vec<String>,
    token: Option<String>,
}

/// A subject given by id, or resolved from its token.
enum SubjectSource {
    Given(SubjectInput),
    Token(crate::auth::Identity),
}

/// Validates every token subject up front (they are the only asynchronous part), recording
/// errors under `{base}/subject`.
async fn resolve_subject(
    app: &AppState,
    caller: &Caller,
    errors: &mut ValidationErrors,
    base: &str,
    subject: SubjectInput,
) -> Result<Option<SubjectSource>, ApiError> {
    let Some(token) = subject.token.as_deref() else {
        return Ok(Some(SubjectSource::Given(subject)));
    };
    if subject.principal_id.is_some() || !subject.groups.is_empty() || !subject.wids.is_empty() {
        errors.push(
            format!("{base}/subject"),
            "give either `token` or `principalId` (with `groups` and `wids`), not both",
        );
        return Ok(None);
    }
    if app.verifier().is_empty() {
        errors.push(
            format!("{base}/subject/token"),
            "no token issuer is configured",
        );
        return Ok(None);
    }
    match app.verifier().verify(token).await {
        Ok(identity) if identity.tenant != caller.tenant => {
            errors.push(
                format!("{base}/subject/token"),
                format!(
                    "the token is for tenant {}, and this call acts in {}",
                    identity.tenant, caller.tenant
                ),
            );
            Ok(None)
        }
        Ok(identity) => Ok(Some(SubjectSource::Token(identity))),
        Err(crate::auth::TokenError::Invalid(reason)) => {
            errors.push(
                format!("{base}/subject/token"),
                format!("the subject's token is not valid: {reason}"),
            );
            Ok(None)
        }
        Err(crate::auth::TokenError::KeysUnavailable(reason)) => {
            Err(ApiError::IssuerUnavailable(reason))
        }
    }
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

/// One validated question.
struct Question {
    request: CheckRequest,
    /// The subject's token had a groups overage.
    overage: bool,
    /// The caller vouched for `groups` or `wids` (given, not read from a validated token).
    vouched: bool,
}

impl Question {
    /// Asking about oneself is free only with nothing vouched for: claiming groups or
    /// `wids`, even one's own, is what the checker role is for.
    fn authorize(&self, app: &AppState, caller: &Caller) -> Result<(), ApiError> {
        if self.vouched {
            caller.authorize(app, CHECK_OTHERS, &self.request.resource)
        } else {
            caller.authorize_check(app, &self.request.subject, &self.request.resource)
        }
    }
}

/// Validates one question, recording errors under `base` (`""` or `/checks/{i}`).
fn request(
    errors: &mut ValidationErrors,
    base: &str,
    subject: Option<SubjectSource>,
    action: &str,
    resource: &str,
) -> Option<Question> {
    let mut vouched_claims = false;
    let (id, groups, wids, overage) = match subject {
        None => (None, Vec::new(), Vec::new(), false),
        Some(SubjectSource::Token(identity)) => (
            Some(identity.principal_id),
            identity.groups,
            identity.wids,
            identity.groups_overage,
        ),
        Some(SubjectSource::Given(subject)) => {
            let id = match subject.principal_id.as_deref() {
                Some(raw) => uuid_at(errors, format!("{base}/subject/principalId"), raw),
                None => {
                    errors.push(format!("{base}/subject"), "give `principalId` or `token`");
                    None
                }
            };
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
            vouched_claims = !subject.groups.is_empty() || !subject.wids.is_empty();
            (id, groups, wids, false)
        }
    };
    let action = errors.check(
        format!("{base}/action"),
        Action::parse(action).map_err(|e| format!("`{action}` is not an action: {e}")),
    );
    let resource = errors.check(
        format!("{base}/resource"),
        Scope::parse(resource).map_err(|e| format!("`{resource}` is not a resource path: {e}")),
    );
    Some(Question {
        request: CheckRequest {
            subject: Subject {
                id: id?,
                groups,
                wids,
            },
            action: action?,
            resource: resource?,
        },
        overage,
        vouched: vouched_claims,
    })
}

/// Evaluates one question, noting a groups overage first when explaining, and leaving out
/// of the explanation what the caller may not read.
fn decide_for(
    app: &AppState,
    caller: &Caller,
    snapshot: &Snapshot,
    tenant: crate::model::TenantId,
    question: &Question,
    now: crate::model::Timestamp,
    explain: bool,
) -> Decision {
    let decision = decide(
        snapshot,
        tenant,
        &question.request,
        question.overage,
        now,
        explain,
    );
    if !explain || caller.principal_id() == Some(question.request.subject.id) {
        return decision;
    }
    visible_to(app, caller, decision)
}

/// Keeps the reasons at scopes where the caller may read assignments; the others are
/// counted in one `withheld` reason. Asked about oneself, nothing is withheld.
fn visible_to(app: &AppState, caller: &Caller, decision: Decision) -> Decision {
    let mut withheld = 0usize;
    let mut reasons: Vec<Reason> = decision
        .reasons
        .into_iter()
        .filter(|reason| {
            let scope = match reason {
                Reason::Grant(r) => &r.scope,
                Reason::Deny(r) => &r.scope,
                Reason::NotGranted(r) => &r.scope,
                _ => return true,
            };
            let readable = Scope::parse(scope).is_ok_and(|scope| {
                caller.holds(app, READ_ASSIGNMENTS, &scope)
                    || caller.holds(app, CHECK_OTHERS, &scope)
            });
            if !readable {
                withheld += 1;
            }
            readable
        })
        .collect();
    if withheld > 0 {
        reasons.push(Reason::Withheld { count: withheld });
    }
    Decision {
        allowed: decision.allowed,
        reasons,
    }
}

/// Evaluates one question, noting a groups overage first when explaining.
fn decide(
    snapshot: &Snapshot,
    tenant: crate::model::TenantId,
    request: &CheckRequest,
    overage: bool,
    now: crate::model::Timestamp,
    explain: bool,
) -> Decision {
    let mut decision = snapshot.check(tenant, request, now, explain);
    if explain && overage {
        decision.reasons.insert(0, Reason::GroupsOverage {});
    }
    decision
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
    caller: Caller,
    tenant: Tenant,
    ApiJson(body): ApiJson<CheckInput>,
) -> Result<Json<DecisionBody>, ApiError> {
    let mut errors = ValidationErrors::new();
    let subject = resolve_subject(&app, &caller, &mut errors, "", body.subject).await?;
    let request = request(&mut errors, "", subject, &body.action, &body.resource);
    let question = match request {
        Some(q) if errors.is_empty() => q,
        _ => return Err(errors.into()),
    };
    question.authorize(&app, &caller)?;
    let snapshot = snapshot_for(&app, body.consistency).await?;
    let decision = decide_for(
        &app,
        &caller,
        &snapshot,
        tenant.0,
        &question,
        chrono::Utc::now(),
        body.explain,
    );
    Ok(Json(DecisionBody::new(decision, Some(snapshot.revision()))))
}

async fn check_batch(
    State(app): State<AppState>,
    caller: Caller,
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
    let mut items = Vec::with_capacity(body.checks.len());
    for (i, item) in body.checks.into_iter().enumerate() {
        let explain = item.explain.unwrap_or(body.explain);
        let base = format!("/checks/{i}");
        let subject = resolve_subject(&app, &caller, &mut errors, &base, item.subject).await?;
        let request = request(&mut errors, &base, subject, &item.action, &item.resource);
        items.push((request, explain));
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let items: Vec<_> = items
        .into_iter()
        .filter_map(|(request, explain)| request.map(|r| (r, explain)))
        .collect();
    for (question, _) in &items {
        question.authorize(&app, &caller)?;
    }
    let snapshot = snapshot_for(&app, body.consistency).await?;
    let now = chrono::Utc::now();
    let results = items
        .into_iter()
        .map(|(q, explain)| {
            DecisionBody::new(
                decide_for(&app, &caller, &snapshot, tenant.0, &q, now, explain),
                None,
            )
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
    caller: Caller,
    tenant: Tenant,
    IdPath(id): IdPath,
    ApiQuery(q): ApiQuery<PermissionsQuery>,
) -> Result<Json<PermissionsBody>, ApiError> {
    let scope = match q.scope {
        None => Scope::root(),
        Some(raw) => Scope::parse(&raw)
            .map_err(|e| ApiError::invalid("?scope", format!("`{raw}` is not a scope: {e}")))?,
    };
    caller.authorize_check(&app, &Subject::new(id), &scope)?;
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
    caller: Caller,
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
    caller.authorize(&app, CHECK_OTHERS, &resource)?;
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
