//! Decisions: `/v1/check`, `/v1/check/batch`, effective permissions and who-can. All are
//! answered from the in-memory snapshot; `consistency` lets a caller wait for a revision.

use std::borrow::Cow;

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::authz::Caller;
use super::extract::{page_request, parse_json, ApiQuery, IdPath, JsonBytes};
use super::respond::next_link;
use super::wire;
use super::{route, ApiError, AppState, Route};
use crate::decide::{Consistency, Question, SubjectError, SubjectSpec, Verdict};
use crate::engine::{Facts, Subject};
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
///
/// Strings borrow from the request body where they can (one without escapes), as in every
/// input type here: a check copies nothing it only parses (issue 16).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubjectInput<'a> {
    #[serde(borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    groups: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    wids: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
}

/// Where a question sits in its request body, for error pointers: the whole body of a
/// check, or one batch item. Pointers are written only for errors, so a valid batch item
/// formats nothing (issue 16).
#[derive(Clone, Copy)]
enum At {
    Body,
    Item(usize),
}

impl At {
    /// The JSON pointer of `field` (`/subject`, `/action`...) in this question.
    fn pointer(self, field: &str) -> String {
        match self {
            At::Body => field.to_owned(),
            At::Item(i) => format!("/checks/{i}{field}"),
        }
    }
}

/// Parses a subject's wire form, recording errors under `{at}/subject`; `None` when
/// invalid. Uuids are checked here; the token, if any, by the decision layer.
fn subject_spec(
    errors: &mut ValidationErrors,
    at: At,
    subject: SubjectInput<'_>,
) -> Option<SubjectSpec> {
    if let Some(token) = subject.token {
        if subject.principal_id.is_some() || !subject.groups.is_empty() || !subject.wids.is_empty()
        {
            errors.push(
                at.pointer("/subject"),
                "give either `token` or `principalId` (with `groups` and `wids`), not both",
            );
            return None;
        }
        return Some(SubjectSpec::Token(token.into_owned()));
    }
    let id = match subject.principal_id.as_deref() {
        Some(raw) => uuid_at(errors, || at.pointer("/subject/principalId"), raw),
        None => {
            errors.push(at.pointer("/subject"), "give `principalId` or `token`");
            None
        }
    };
    let mut uuids = |name: &str, raw: &[Cow<'_, str>]| -> Vec<Uuid> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, g)| uuid_at(errors, || at.pointer(&format!("/subject/{name}/{i}")), g))
            .collect()
    };
    let groups = uuids("groups", &subject.groups);
    let wids = uuids("wids", &subject.wids);
    Some(SubjectSpec::Claims(Subject {
        id: id?,
        groups,
        wids,
    }))
}

/// Validates one question (subject, action, resource), recording errors under `at`. Only
/// a token subject needs IO.
async fn question(
    app: &AppState,
    caller: &Caller,
    errors: &mut ValidationErrors,
    at: At,
    subject: SubjectInput<'_>,
    action: &str,
    resource: &str,
) -> Result<Option<Question>, ApiError> {
    let parsed = parse_question(errors, at, subject, action, resource);
    resolve_question(app, caller, errors, at, parsed).await
}

/// A question's parts as given, each `None` when invalid (its error recorded).
struct Parsed {
    spec: Option<SubjectSpec>,
    action: Option<Action>,
    resource: Option<Scope>,
}

/// [`question`]'s first half, which needs no IO: the subject, action and resource parsed.
fn parse_question(
    errors: &mut ValidationErrors,
    at: At,
    subject: SubjectInput<'_>,
    action: &str,
    resource: &str,
) -> Parsed {
    let spec = subject_spec(errors, at, subject);
    let action = errors.check_at(
        || at.pointer("/action"),
        Action::parse(action).map_err(|e| format!("`{action}` is not an action: {e}")),
    );
    let resource = errors.check_at(
        || at.pointer("/resource"),
        Scope::parse(resource).map_err(|e| format!("`{resource}` is not a resource path: {e}")),
    );
    Parsed {
        spec,
        action,
        resource,
    }
}

/// [`question`]'s second half: the subject resolved (a token verified).
async fn resolve_question(
    app: &AppState,
    caller: &Caller,
    errors: &mut ValidationErrors,
    at: At,
    Parsed {
        spec,
        action,
        resource,
    }: Parsed,
) -> Result<Option<Question>, ApiError> {
    let subject = match spec {
        None => None,
        Some(spec) => match app.decider().resolve(caller, spec).await {
            Ok(subject) => Some(subject),
            Err(SubjectError::InvalidToken(reason)) => {
                errors.push(at.pointer("/subject/token"), reason);
                None
            }
            Err(SubjectError::KeysUnavailable(reason)) => {
                return Err(ApiError::IssuerUnavailable(reason))
            }
        },
    };
    Ok(match (subject, action, resource) {
        (Some(subject), Some(action), Some(resource)) => {
            Some(Question::new(subject, action, resource))
        }
        _ => None,
    })
}

/// The caller's right to ask `question`.
fn may_ask(app: &AppState, caller: &Caller, question: &Question) -> Result<(), ApiError> {
    let request = &question.request;
    Ok(app.decider().may_ask(
        caller,
        &request.subject,
        question.vouched,
        &request.resource,
    )?)
}

/// `{"atLeast": "<revision>"}` or `{"fullyConsistent": true}`; absent = this replica's
/// current snapshot.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyInput {
    at_least: Option<Revision>,
    fully_consistent: Option<bool>,
}

impl ConsistencyInput {
    /// The consistency asked for; absent means this replica's snapshot.
    fn parse(input: Option<ConsistencyInput>) -> Result<Consistency, ApiError> {
        match input {
            None => Ok(Consistency::Local),
            Some(ConsistencyInput {
                at_least: Some(_),
                fully_consistent: Some(true),
            }) => Err(ApiError::invalid(
                "/consistency",
                "give either `atLeast` or `fullyConsistent`, not both",
            )),
            Some(ConsistencyInput {
                at_least: Some(revision),
                ..
            }) => Ok(Consistency::AtLeast(revision)),
            Some(ConsistencyInput {
                fully_consistent: Some(true),
                ..
            }) => Ok(Consistency::Full),
            Some(_) => Ok(Consistency::Local),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckInput<'a> {
    #[serde(borrow)]
    subject: SubjectInput<'a>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    resource: Cow<'a, str>,
    #[serde(default)]
    consistency: Option<ConsistencyInput>,
    #[serde(default)]
    explain: bool,
    /// `@Subject[...]` for conditions (over the directory's stored attributes).
    #[serde(default)]
    subject_attributes: Map<String, Value>,
    /// `@Resource[...]`.
    #[serde(default)]
    resource_attributes: Map<String, Value>,
    /// `@Action[...]`.
    #[serde(default)]
    action_attributes: Map<String, Value>,
    /// `@Environment[...]`.
    #[serde(default)]
    context: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchItemInput<'a> {
    #[serde(borrow)]
    subject: SubjectInput<'a>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    resource: Cow<'a, str>,
    #[serde(default)]
    explain: Option<bool>,
    /// `@Subject[...]` for conditions (over the directory's stored attributes).
    #[serde(default)]
    subject_attributes: Map<String, Value>,
    /// `@Resource[...]`.
    #[serde(default)]
    resource_attributes: Map<String, Value>,
    /// `@Action[...]`.
    #[serde(default)]
    action_attributes: Map<String, Value>,
    /// `@Environment[...]`.
    #[serde(default)]
    context: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchInput<'a> {
    #[serde(borrow)]
    checks: Vec<BatchItemInput<'a>>,
    #[serde(default)]
    consistency: Option<ConsistencyInput>,
    #[serde(default)]
    explain: bool,
}

/// The attributes a check or batch item gives its conditions.
fn facts(
    subject: Map<String, Value>,
    resource: Map<String, Value>,
    action: Map<String, Value>,
    context: Map<String, Value>,
) -> Facts {
    // Every field named: `..Facts::default()` would build (and drop) four more maps per
    // check.
    Facts {
        subject,
        resource,
        action,
        context,
        resource_id: None,
        resource_type: None,
        action_name: None,
    }
}

/// One decision on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionBody {
    allowed: bool,
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<Revision>,
    reasons: Vec<wire::Reason>,
}

impl DecisionBody {
    fn new(verdict: Verdict, explain: bool, revision: Option<Revision>) -> Self {
        DecisionBody {
            allowed: verdict.allowed,
            decision: if verdict.allowed { "allow" } else { "deny" },
            revision,
            reasons: wire::reasons(verdict, explain),
        }
    }
}

/// A check's answer. Most carry no reasons: those are written from fixed fragments and the
/// revision's digits, without a serializer walking the struct and escaping its keys
/// (issue 16). The `fragments_are_what_serde_writes` test holds the two to the same bytes.
impl IntoResponse for DecisionBody {
    fn into_response(self) -> Response {
        let Some(json) = self.fragments() else {
            return Json(self).into_response();
        };
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response()
    }
}

impl DecisionBody {
    /// The JSON text of a body without reasons; `None` for one with reasons.
    fn fragments(&self) -> Option<Vec<u8>> {
        if !self.reasons.is_empty() {
            return None;
        }
        let mut json = Vec::with_capacity(80);
        json.extend_from_slice(if self.allowed {
            br#"{"allowed":true,"decision":"allow","#
        } else {
            br#"{"allowed":false,"decision":"deny","#
        });
        if let Some(revision) = self.revision {
            json.extend_from_slice(br#""revision":""#);
            json.extend_from_slice(itoa::Buffer::new().format(revision.0).as_bytes());
            json.extend_from_slice(br#"","#);
        }
        json.extend_from_slice(br#""reasons":[]}"#);
        Some(json)
    }
}

#[derive(Serialize)]
struct BatchBody {
    revision: Revision,
    results: Vec<DecisionBody>,
}

fn uuid_at(
    errors: &mut ValidationErrors,
    pointer: impl FnOnce() -> String,
    raw: &str,
) -> Option<Uuid> {
    errors.check_at(
        pointer,
        Uuid::parse_str(raw).map_err(|_| format!("`{raw}` is not a uuid")),
    )
}

async fn check(
    State(app): State<AppState>,
    caller: Caller,
    JsonBytes(bytes): JsonBytes,
) -> Result<DecisionBody, ApiError> {
    let body: CheckInput<'_> = parse_json(&bytes)?;
    let mut errors = ValidationErrors::new();
    let consistency = ConsistencyInput::parse(body.consistency)?;
    let asked = question(
        &app,
        &caller,
        &mut errors,
        At::Body,
        body.subject,
        &body.action,
        &body.resource,
    )
    .await?;
    let mut question = match asked {
        Some(q) if errors.is_empty() => q,
        _ => return Err(errors.into()),
    };
    question.request.facts = facts(
        body.subject_attributes,
        body.resource_attributes,
        body.action_attributes,
        body.context,
    );
    may_ask(&app, &caller, &question)?;
    let decider = app.decider();
    let snapshot = decider.snapshot_at(consistency).await?;
    let verdict = decider.decide(&caller, &snapshot, &question, body.explain);
    Ok(DecisionBody::new(
        verdict,
        body.explain,
        Some(snapshot.revision()),
    ))
}

/// A batch at least this long is parsed and decided on every core (rayon's pool), in runs
/// of at least half of it; a shorter one on the request's own thread, where handing work
/// over would cost more than it saves.
const PARALLEL_BATCH: usize = 128;

/// `f` of each of `items` (with its index), in order: on every core for a batch of at
/// least [`PARALLEL_BATCH`], each worker in the request's span as the handler would be.
fn each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(usize, T) -> R + Send + Sync) -> Vec<R> {
    if items.len() < PARALLEL_BATCH {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect();
    }
    let span = tracing::Span::current();
    items
        .into_par_iter()
        .enumerate()
        .with_min_len(PARALLEL_BATCH / 2)
        .map_init(|| span.clone().entered(), |_, (i, t)| f(i, t))
        .collect()
}

async fn check_batch(
    State(app): State<AppState>,
    caller: Caller,
    JsonBytes(bytes): JsonBytes,
) -> Result<Json<BatchBody>, ApiError> {
    let body: BatchInput<'_> = parse_json(&bytes)?;
    let limit = app.config().max_batch_checks;
    if body.checks.len() > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {limit} checks; got {}",
            body.checks.len()
        )));
    }
    let consistency = ConsistencyInput::parse(body.consistency)?;
    let explain = body.explain;
    let parsed = each(body.checks, |i, item| {
        let mut errors = ValidationErrors::new();
        let parsed = parse_question(
            &mut errors,
            At::Item(i),
            item.subject,
            &item.action,
            &item.resource,
        );
        let facts = facts(
            item.subject_attributes,
            item.resource_attributes,
            item.action_attributes,
            item.context,
        );
        (parsed, errors, facts, item.explain.unwrap_or(explain))
    });
    let mut errors = ValidationErrors::new();
    let mut items = Vec::with_capacity(parsed.len());
    for (i, (parsed, found, facts, explain)) in parsed.into_iter().enumerate() {
        // Each item's errors in item order, as one pass would have found them.
        errors.errors.extend(found.errors);
        let asked = resolve_question(&app, &caller, &mut errors, At::Item(i), parsed).await?;
        items.extend(asked.map(|mut q| {
            q.request.facts = facts;
            (q, explain)
        }));
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    for (question, _) in &items {
        may_ask(&app, &caller, question)?;
    }
    let decider = app.decider();
    let snapshot = decider.snapshot_at(consistency).await?;
    // At size L a check is mostly cache misses, about 1.5 µs each in a batch of random
    // subjects: most of a batch of 1,000's time.
    let results = each(items, |_, (q, explain)| {
        DecisionBody::new(
            decider.decide(&caller, &snapshot, &q, explain),
            explain,
            None,
        )
    });
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
    effective: wire::Effective,
}

async fn permissions(
    State(app): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(q): ApiQuery<PermissionsQuery>,
) -> Result<Json<PermissionsBody>, ApiError> {
    let scope = match q.scope {
        None => Scope::root(),
        Some(raw) => Scope::parse(&raw)
            .map_err(|e| ApiError::invalid("?scope", format!("`{raw}` is not a scope: {e}")))?,
    };
    let snapshot = app.decider().snapshot();
    let effective = app
        .decider()
        .effective_permissions(&caller, &snapshot, id, &scope)?;
    Ok(Json(PermissionsBody {
        principal_id: id,
        scope,
        revision: snapshot.revision(),
        effective: effective.into(),
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
    value: Vec<wire::Holder>,
    next_link: Option<String>,
    revision: Revision,
}

async fn access(
    State(app): State<AppState>,
    caller: Caller,
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
    let snapshot = app.decider().snapshot();
    let mut all = app
        .decider()
        .who_can(&caller, &snapshot, &action, &resource)?;
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
        value: rest
            .iter()
            .take(limit)
            .cloned()
            .map(wire::Holder::from)
            .collect(),
        next_link: next,
        revision: snapshot.revision(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(allowed: bool, revision: Option<i64>, reasons: Vec<wire::Reason>) -> DecisionBody {
        DecisionBody {
            allowed,
            decision: if allowed { "allow" } else { "deny" },
            revision: revision.map(Revision),
            reasons,
        }
    }

    #[test]
    fn fragments_are_what_serde_writes() {
        for allowed in [true, false] {
            for revision in [None, Some(0), Some(7), Some(i64::MAX)] {
                let answer = body(allowed, revision, Vec::new());
                let fast = answer
                    .fragments()
                    .expect("no reasons: written from fragments");
                let serde = serde_json::to_vec(&answer).expect("serializes");
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&serde)
                );
            }
        }
    }

    #[tokio::test]
    async fn a_decision_is_a_json_response_either_way() {
        let verdict = Verdict {
            allowed: false,
            reasons: vec![crate::engine::Reason::NoAssignments {
                principals: vec![Uuid::nil()],
            }],
            groups_overage: false,
            withheld: 0,
        };
        let explained = DecisionBody::new(verdict, true, Some(Revision(3)));
        assert!(explained.fragments().is_none(), "reasons go through serde");
        for answer in [explained, body(true, Some(3), Vec::new())] {
            let expected = serde_json::to_value(&answer).expect("serializes");
            let response = answer.into_response();
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .expect("a body");
            let sent: Value = serde_json::from_slice(&bytes).expect("JSON");
            assert_eq!(sent, expected);
        }
    }
}
