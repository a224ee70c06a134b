//! The OpenID AuthZEN Authorization API 1.0: discovery, `/access/v1/evaluation` and
//! `/access/v1/evaluations`, answered by the same decision layer as `/v1/check`.
//!
//! The wire rules are the specification's, not the admin API's: unknown fields are ignored
//! at every level, a deny is `200 {"decision": false}`, and every malformed request (wrong
//! content type, bad JSON, a missing or mistyped entity) is a 400 problem. In a batch under
//! `execute_all`, an item that cannot be evaluated is `{"decision": false}` in place, with
//! the reason in its `context`, so one bad item never fails the others.
//!
//! Entities map to Rolecall's through `[[authzen.mappings]]` (see `model::mapping`): the
//! subject's `id` is an object id or any alias in the principal directory; an id naming no
//! one is a principal with no assignments (deny).

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::authz::Caller;
use super::extract::is_json;
use super::{route, wire, ApiError, AppState, Route};
use crate::decide::actions::CHECK_OTHERS;
use crate::decide::{Question, ResolvedSubject};
use crate::engine::{Facts, Snapshot, Subject};
use crate::model::{Action, Named, Scope, ValidationErrors};

/// Where discovery lives (RFC 8615).
pub const CONFIGURATION_PATH: &str = "/.well-known/authzen-configuration";
/// The single evaluation endpoint.
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
/// The batch evaluation endpoint.
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
/// Subject search.
pub const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
/// Resource search.
pub const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
/// Action search.
pub const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";

mod search;
/// The `context` key that asks for an explanation in the response's `context`.
pub const EXPLAIN_KEY: &str = "rolecall_explain";

/// Subject types that name a principal.
const SUBJECT_TYPES: [&str; 3] = ["user", "identity", "servicePrincipal"];

/// The AuthZEN routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, CONFIGURATION_PATH, get(configuration)),
        route(Method::POST, EVALUATION_PATH, post(evaluation)),
        route(Method::POST, EVALUATIONS_PATH, post(evaluations)),
        route(Method::POST, SEARCH_SUBJECT_PATH, post(search::subjects)),
        route(Method::POST, SEARCH_RESOURCE_PATH, post(search::resources)),
        route(Method::POST, SEARCH_ACTION_PATH, post(search::actions)),
    ]
}

/// PDP metadata: the base URL and the endpoints, unauthenticated.
async fn configuration(State(app): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let base = match &app.config().public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}{EVALUATION_PATH}"),
        "access_evaluations_endpoint": format!("{base}{EVALUATIONS_PATH}"),
        "search_subject_endpoint": format!("{base}{SEARCH_SUBJECT_PATH}"),
        "search_resource_endpoint": format!("{base}{SEARCH_RESOURCE_PATH}"),
        "search_action_endpoint": format!("{base}{SEARCH_ACTION_PATH}"),
    }))
}

/// A body that must be a JSON object, sent as `application/json`; every failure is a 400
/// (the specification's rule for these routes, where the admin API would answer 415).
struct AuthzenBody(Map<String, Value>);

impl FromRequest<AppState> for AuthzenBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::MalformedBody(
                "send the body as `application/json`".to_owned(),
            ));
        }
        let bytes = crate::api::body::read(req.into_body()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedBody("the body is empty".to_owned()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(AuthzenBody(map)),
            Ok(_) => Err(ApiError::MalformedBody(
                "the body is a JSON object".to_owned(),
            )),
            Err(e) => Err(ApiError::MalformedBody(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }
}

/// A subject or resource as sent.
#[derive(Debug, Clone)]
struct Entity {
    kind: String,
    id: String,
    properties: Map<String, Value>,
}

/// An action as sent.
#[derive(Debug, Clone)]
struct ActionIn {
    name: String,
    properties: Map<String, Value>,
}

/// One evaluation with its entities in place.
#[derive(Debug, Clone)]
struct Evaluation {
    subject: Entity,
    action: ActionIn,
    resource: Entity,
    context: Map<String, Value>,
}

/// One structural problem, at a JSON pointer.
type Problem = (String, String);

fn string_at(object: &Map<String, Value>, key: &str, at: &str) -> Result<String, Problem> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err((format!("{at}/{key}"), format!("`{key}` is not empty"))),
        None | Some(Value::Null) => Err((format!("{at}/{key}"), format!("`{key}` is required"))),
        Some(_) => Err((format!("{at}/{key}"), format!("`{key}` is a string"))),
    }
}

fn properties_at(object: &Map<String, Value>, at: &str) -> Result<Map<String, Value>, Problem> {
    match object.get("properties") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err((
            format!("{at}/properties"),
            "`properties` is an object".to_owned(),
        )),
    }
}

fn object_at<'v>(
    value: &'v Value,
    at: &str,
    what: &str,
) -> Result<&'v Map<String, Value>, Problem> {
    value
        .as_object()
        .ok_or_else(|| (at.to_owned(), format!("`{what}` is an object")))
}

fn entity(value: &Value, at: &str, what: &str) -> Result<Entity, Problem> {
    let object = object_at(value, at, what)?;
    Ok(Entity {
        kind: string_at(object, "type", at)?,
        id: string_at(object, "id", at)?,
        properties: properties_at(object, at)?,
    })
}

fn action(value: &Value, at: &str) -> Result<ActionIn, Problem> {
    let object = object_at(value, at, "action")?;
    Ok(ActionIn {
        name: string_at(object, "name", at)?,
        properties: properties_at(object, at)?,
    })
}

fn context(value: Option<&Value>, at: &str) -> Result<Map<String, Value>, Problem> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err((at.to_owned(), "`context` is an object".to_owned())),
    }
}

/// The request's entities, each taken from `item` when it has the key, else from
/// `defaults` (whole, never merged field by field).
fn evaluation_from(
    item: &Map<String, Value>,
    item_at: &str,
    defaults: &Map<String, Value>,
) -> Result<Evaluation, Problem> {
    let pick = |key: &str| -> Result<(&Value, String), Problem> {
        match item.get(key) {
            Some(v) if !v.is_null() => Ok((v, format!("{item_at}/{key}"))),
            _ => match defaults.get(key) {
                Some(v) if !v.is_null() => Ok((v, format!("/{key}"))),
                _ => Err((format!("{item_at}/{key}"), format!("`{key}` is required"))),
            },
        }
    };
    let (subject, subject_at) = pick("subject")?;
    let (action_value, action_at) = pick("action")?;
    let (resource, resource_at) = pick("resource")?;
    let context_value = item.get("context").or_else(|| defaults.get("context"));
    Ok(Evaluation {
        subject: entity(subject, &subject_at, "subject")?,
        action: action(action_value, &action_at)?,
        resource: entity(resource, &resource_at, "resource")?,
        context: context(context_value, &format!("{item_at}/context"))?,
    })
}

fn invalid((pointer, detail): Problem) -> ApiError {
    ApiError::Validation(ValidationErrors::single(pointer, detail))
}

/// One answer on the wire: exactly `{"decision": bool}` unless there is context to give.
#[derive(Serialize)]
struct Answer {
    decision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Value>,
}

impl Answer {
    fn failed(status: u16, problem: &str, detail: String) -> Answer {
        Answer {
            decision: false,
            context: Some(json!({"error": {"status": status, "type": problem, "detail": detail}})),
        }
    }
}

/// Why an evaluation could not be answered with a decision.
enum Failure {
    /// The request is well formed but cannot be put to the engine: a deny, with the reason
    /// (given only when an explanation was asked for).
    Deny(String),
    /// The caller may not ask this: a 403 for a single evaluation.
    Refused(ApiError),
}

/// The resource path an entity names: `properties.path` when given, else the stored
/// resource's path, else the `[[authzen.mappings]]` rule's. The error says why not.
fn resource_path(
    app: &AppState,
    snapshot: &Snapshot,
    caller: &Caller,
    entity: &Entity,
) -> Result<Scope, String> {
    match entity.properties.get("path") {
        Some(Value::String(path)) => Scope::parse(path).map_err(|err| {
            format!("`resource.properties.path` `{path}` is not a resource path: {err}")
        }),
        Some(_) => Err("`resource.properties.path` is a string".to_owned()),
        None => match snapshot.resource(caller.tenant, &entity.kind, &entity.id) {
            Some(stored) => Ok(stored.path.clone()),
            None => {
                let named = Named {
                    resource_type: &entity.kind,
                    resource_id: &entity.id,
                    action_name: "",
                };
                app.config()
                    .authzen_mappings
                    .path(&named)
                    .map_err(|err| format!("the resource maps to no resource path: {err}"))
            }
        },
    }
}

/// The resource type the gateway's route rules answer.
pub const ROUTE_TYPE: &str = "route";

/// For `resource.type` `route`, when `[[gateway.routes]]` are configured: the action and
/// resource path the route rules give `action.name` (the method) and `resource.id` (the
/// path, normalized as the forward-auth endpoint does; `resource.properties.host` the
/// host), with the rule's placeholders added to `resource.properties` (the request's own
/// win). `None` for any other request, and when no route rules are configured (mappings
/// then apply as to any type). An unmatched route is a deny, or under `unmatched =
/// "allow"` [`Routed::Unmatched`].
fn gateway_route(app: &AppState, e: &mut Evaluation) -> Result<Option<Routed>, Failure> {
    if e.resource.kind != ROUTE_TYPE {
        return Ok(None);
    }
    let routes = app.config().gateway.routes();
    if routes.is_empty() {
        return Ok(None);
    }
    let host = e.resource.properties.get("host").and_then(Value::as_str);
    match routes.resolve(&e.action.name, &e.resource.id, host) {
        Ok(Some(target)) => {
            for (name, value) in target.captures {
                e.resource
                    .properties
                    .entry(name)
                    .or_insert(Value::String(value));
            }
            Ok(Some(Routed::To(target.action, target.resource)))
        }
        Ok(None) => match routes.unmatched() {
            crate::gateway::Unmatched::Deny => Err(Failure::Deny(format!(
                "no `[[gateway.routes]]` rule matches `{} {}`",
                e.action.name, e.resource.id
            ))),
            crate::gateway::Unmatched::Allow => Ok(Some(Routed::Unmatched)),
        },
        Err(err) => Err(Failure::Deny(err.to_string())),
    }
}

/// Where a `route` resource leads.
enum Routed {
    /// The rule's action at its resource path.
    To(Action, Scope),
    /// No rule, under `unmatched = "allow"`.
    Unmatched,
}

/// A route no rule matches under `unmatched = "allow"`: allowed, as the forward-auth
/// endpoint would let it through, for a known subject the caller may ask about (at `/`).
fn allow_unmatched(
    app: &AppState,
    caller: &Caller,
    snapshot: &Snapshot,
    e: &Evaluation,
    explain: bool,
) -> Result<Answer, Failure> {
    let principal = SUBJECT_TYPES
        .contains(&e.subject.kind.as_str())
        .then(|| snapshot.resolve_principal(caller.tenant, &e.subject.id))
        .flatten()
        .map(|(id, _)| id);
    let root = Scope::root();
    match principal {
        Some(id) => app
            .decider()
            .may_ask(caller, &Subject::new(id), false, &root),
        None => app.decider().require(caller, CHECK_OTHERS, &root),
    }
    .map_err(|err| Failure::Refused(err.into()))?;
    Ok(Answer {
        decision: principal.is_some(),
        context: explain
            .then(|| json!({"reasons": [{"kind": "unmatchedRoute", "unmatched": "allow"}]})),
    })
}

/// Answers one well-formed evaluation from `snapshot`; a deny carries its reason in
/// `context` only when `context.rolecall_explain` asked for one.
fn answer(
    app: &AppState,
    caller: &Caller,
    snapshot: &Snapshot,
    e: Evaluation,
) -> Result<Answer, ApiError> {
    let explain = e
        .context
        .get(EXPLAIN_KEY)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match decide(app, caller, snapshot, e, explain) {
        Ok(answer) => Ok(answer),
        Err(Failure::Refused(error)) => Err(error),
        Err(Failure::Deny(reason)) => Ok(Answer {
            decision: false,
            context: explain
                .then(|| json!({"reasons": [{"kind": "notEvaluated", "detail": reason}]})),
        }),
    }
}

fn decide(
    app: &AppState,
    caller: &Caller,
    snapshot: &Snapshot,
    e: Evaluation,
    explain: bool,
) -> Result<Answer, Failure> {
    let mut e = e;
    let (action, resource) = match gateway_route(app, &mut e)? {
        Some(Routed::To(action, resource)) => (action, resource),
        Some(Routed::Unmatched) => return allow_unmatched(app, caller, snapshot, &e, explain),
        None => {
            let named = Named {
                resource_type: &e.resource.kind,
                resource_id: &e.resource.id,
                action_name: &e.action.name,
            };
            let resource =
                resource_path(app, snapshot, caller, &e.resource).map_err(Failure::Deny)?;
            let action = app
                .config()
                .authzen_mappings
                .action(&named)
                .map_err(|err| {
                    Failure::Deny(format!("the action maps to no Rolecall action: {err}"))
                })?;
            (action, resource)
        }
    };
    if !SUBJECT_TYPES.contains(&e.subject.kind.as_str()) {
        return Err(Failure::Deny(format!(
            "subject type `{}` names no principal; use `user`, `identity` or `servicePrincipal`",
            e.subject.kind
        )));
    }
    let resolved = snapshot
        .resolve_principal(caller.tenant, &e.subject.id)
        .map(|(id, alias)| (id, alias.map(str::to_owned)));
    let Some((principal, alias)) = resolved else {
        // Nobody: no assignment can apply. Asking still takes the right to ask about others.
        app.decider()
            .require(caller, CHECK_OTHERS, &resource)
            .map_err(|e| Failure::Refused(e.into()))?;
        return Ok(Answer {
            decision: false,
            context: explain
                .then(|| json!({"reasons": [{"kind": "unknownSubject", "id": e.subject.id}]})),
        });
    };
    let mut question = Question::new(
        ResolvedSubject {
            subject: Subject::new(principal),
            groups_overage: false,
            vouched: false,
        },
        action,
        resource,
    );
    question.request.facts = Facts {
        subject: e.subject.properties,
        resource: e.resource.properties,
        action: e.action.properties,
        context: e.context,
        resource_id: Some(e.resource.id),
        resource_type: Some(e.resource.kind),
        action_name: Some(e.action.name),
    };
    app.decider()
        .may_ask(
            caller,
            &question.request.subject,
            false,
            &question.request.resource,
        )
        .map_err(|e| Failure::Refused(e.into()))?;
    let verdict = app.decider().decide(caller, snapshot, &question, explain);
    let decision = verdict.allowed;
    let context = explain.then(|| {
        json!({
            "principalId": principal,
            "matchedAlias": alias,
            "action": question.request.action.as_str(),
            "resource": question.request.resource.as_str(),
            "revision": snapshot.revision(),
            "reasons": wire::reasons(verdict, true),
        })
    });
    Ok(Answer { decision, context })
}

/// `POST /access/v1/evaluation`.
async fn evaluation(
    State(app): State<AppState>,
    caller: Caller,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<Answer>, ApiError> {
    single(&app, &caller, &body)
}

fn single(
    app: &AppState,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Json<Answer>, ApiError> {
    let e = evaluation_from(body, "", &Map::new()).map_err(invalid)?;
    let snapshot = app.decider().snapshot();
    Ok(Json(answer(app, caller, &snapshot, e)?))
}

/// How a batch runs (`options.evaluations_semantic`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

#[derive(Serialize)]
struct Batch {
    evaluations: Vec<Answer>,
}

/// `POST /access/v1/evaluations`.
async fn evaluations(
    State(app): State<AppState>,
    caller: Caller,
    AuthzenBody(body): AuthzenBody,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let items = match body.get("evaluations") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Array(items)) => Some(items),
        Some(_) => {
            return Err(invalid((
                "/evaluations".to_owned(),
                "`evaluations` is an array".to_owned(),
            )))
        }
    };
    let Some(items) = items else {
        return Ok(single(&app, &caller, &body)?.into_response());
    };
    let semantic = match body.get("options").and_then(|o| o.get("evaluations_semantic")) {
        None | Some(Value::Null) => Semantic::ExecuteAll,
        Some(Value::String(s)) if s == "execute_all" => Semantic::ExecuteAll,
        Some(Value::String(s)) if s == "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
        Some(Value::String(s)) if s == "permit_on_first_permit" => Semantic::PermitOnFirstPermit,
        Some(other) => {
            return Err(invalid((
                "/options/evaluations_semantic".to_owned(),
                format!("`evaluations_semantic` is `execute_all`, `deny_on_first_deny` or `permit_on_first_permit`; got {other}"),
            )))
        }
    };
    let limit = app.config().max_batch_checks;
    if items.len() > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {limit} evaluations; got {}",
            items.len()
        )));
    }
    // The defaults themselves must be well formed when given: a malformed top level is the
    // whole request's fault.
    for key in ["subject", "resource"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            entity(v, &format!("/{key}"), key).map_err(invalid)?;
        }
    }
    if let Some(v) = body.get("action").filter(|v| !v.is_null()) {
        action(v, "/action").map_err(invalid)?;
    }
    context(body.get("context"), "/context").map_err(invalid)?;
    let snapshot = app.decider().snapshot();
    let mut answers = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("/evaluations/{i}");
        let answer = match item.as_object() {
            None => Answer::failed(400, "validation", format!("`{at}` is an object")),
            Some(item) => match evaluation_from(item, &at, &body) {
                Err((pointer, detail)) => {
                    Answer::failed(400, "validation", format!("{pointer}: {detail}"))
                }
                Ok(e) => match answer(&app, &caller, &snapshot, e) {
                    Ok(answer) => answer,
                    Err(error) => Answer::failed(403, "forbidden", error.to_string()),
                },
            },
        };
        let decision = answer.decision;
        answers.push(answer);
        match semantic {
            Semantic::DenyOnFirstDeny if !decision => break,
            Semantic::PermitOnFirstPermit if decision => break,
            _ => {}
        }
    }
    Ok(Json(Batch {
        evaluations: answers,
    })
    .into_response())
}
