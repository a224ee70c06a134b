//! The AuthZEN 1.0 search APIs: `/access/v1/search/subject`, `/resource` and `/action`.
//!
//! The searched-for entity's `id` is ignored; every other entity must be fully identified
//! (a missing one is a 400). An unknown type or id answers `200 {"results": []}`. Results
//! come a page at a time (`page.limit`, at most [`MAX_PAGE`], default [`DEFAULT_PAGE`]):
//! `page.next_token` is empty on the last page and otherwise an opaque token that continues
//! after the last result, bound to the same query (a token from another query is a 400).
//! Pages taken at one revision are exact and disjoint; if the directory changes between
//! pages, later pages follow the newer revision, still without repeats.

use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{action, context, entity, invalid, object_at, resource_path, string_at, AuthzenBody};
use super::{Entity, Problem, SUBJECT_TYPES};
use crate::api::authz::Caller;
use crate::api::{ApiError, AppState};
use crate::decide::actions::CHECK_OTHERS;
use crate::engine::{Facts, Snapshot, Subject};
use crate::model::{Named, PrincipalType, Scope};

/// Results per page when the request names no limit.
pub const DEFAULT_PAGE: usize = 1000;
/// The largest page a request may ask for.
pub const MAX_PAGE: usize = 1000;

/// Which search.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subject,
    Resource,
    Action,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Subject => "subject",
            Kind::Resource => "resource",
            Kind::Action => "action",
        }
    }
}

/// A searched-for entity: its type and properties (its id, if sent, is ignored).
struct Wanted {
    kind: String,
    properties: Map<String, Value>,
}

fn wanted(value: Option<&Value>, key: &str) -> Result<Wanted, Problem> {
    let at = format!("/{key}");
    let value = match value {
        Some(v) if !v.is_null() => v,
        _ => return Err((at, format!("`{key}` is required"))),
    };
    let object = object_at(value, &at, key)?;
    Ok(Wanted {
        kind: string_at(object, "type", &at)?,
        properties: super::properties_at(object, &at)?,
    })
}

fn required_action(body: &Map<String, Value>) -> Result<super::ActionIn, Problem> {
    match body.get("action") {
        Some(v) if !v.is_null() => action(v, "/action"),
        _ => Err(("/action".to_owned(), "`action` is required".to_owned())),
    }
}

fn given(body: &Map<String, Value>, key: &str) -> Result<Entity, Problem> {
    match body.get(key) {
        Some(v) if !v.is_null() => entity(v, &format!("/{key}"), key),
        _ => Err((format!("/{key}"), format!("`{key}` is required"))),
    }
}

/// The page a request asks for.
struct PageIn {
    limit: usize,
    after: Option<String>,
}

/// What a page token carries: the search, a digest of its query, and the last key.
#[derive(Serialize, Deserialize)]
struct Token {
    s: String,
    q: String,
    k: String,
}

/// A digest of the query without its `page`: a token continues only the query it came from.
fn query_digest(kind: Kind, body: &Map<String, Value>) -> String {
    let mut query = body.clone();
    query.remove("page");
    let text = format!("{}\n{}", kind.as_str(), Value::Object(query));
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

fn page_in(kind: Kind, body: &Map<String, Value>) -> Result<PageIn, Problem> {
    let page = match body.get("page") {
        None | Some(Value::Null) => {
            return Ok(PageIn {
                limit: DEFAULT_PAGE,
                after: None,
            })
        }
        Some(v) => object_at(v, "/page", "page")?,
    };
    let limit = match page.get("limit") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
            _ => {
                return Err((
                    "/page/limit".to_owned(),
                    "`limit` is a positive integer".to_owned(),
                ))
            }
        },
    };
    let after = match page.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.is_empty() => None,
        Some(Value::String(t)) => {
            let bad = || {
                (
                    "/page/token".to_owned(),
                    "`token` is not one this search returned for this query".to_owned(),
                )
            };
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .map_err(|_| bad())?;
            let token: Token = serde_json::from_slice(&bytes).map_err(|_| bad())?;
            if token.s != kind.as_str() || token.q != query_digest(kind, body) {
                return Err(bad());
            }
            Some(token.k)
        }
        Some(_) => return Err(("/page/token".to_owned(), "`token` is a string".to_owned())),
    };
    Ok(PageIn { limit, after })
}

fn next_token(kind: Kind, body: &Map<String, Value>, last: Option<String>) -> String {
    match last {
        None => String::new(),
        Some(k) => {
            let token = Token {
                s: kind.as_str().to_owned(),
                q: query_digest(kind, body),
                k,
            };
            let bytes = serde_json::to_vec(&token).unwrap_or_default();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }
    }
}

/// A search's answer on the wire.
#[derive(Serialize)]
pub(super) struct Results {
    results: Vec<Value>,
    page: PageOut,
}

#[derive(Serialize)]
struct PageOut {
    next_token: String,
    count: usize,
}

fn results(
    kind: Kind,
    body: &Map<String, Value>,
    items: Vec<Value>,
    last: Option<String>,
) -> Json<Results> {
    let count = items.len();
    Json(Results {
        results: items,
        page: PageOut {
            next_token: next_token(kind, body, last),
            count,
        },
    })
}

fn empty(kind: Kind, body: &Map<String, Value>) -> Json<Results> {
    results(kind, body, Vec::new(), None)
}

/// The principal kinds an AuthZEN subject type stands for.
fn principal_kinds(subject_type: &str) -> &'static [PrincipalType] {
    match subject_type {
        "user" => &[PrincipalType::User],
        "servicePrincipal" => &[PrincipalType::ServicePrincipal],
        "identity" => &[PrincipalType::User, PrincipalType::ServicePrincipal],
        _ => &[],
    }
}

/// The subject an input entity names, if the directory knows the name.
fn subject_of(snapshot: &Snapshot, caller: &Caller, e: &Entity) -> Option<Uuid> {
    if !SUBJECT_TYPES.contains(&e.kind.as_str()) {
        return None;
    }
    snapshot
        .resolve_principal(caller.tenant, &e.id)
        .map(|(id, _)| id)
}

/// The request's facts (its own properties and context), for conditions.
fn facts(
    subject: Map<String, Value>,
    resource: Map<String, Value>,
    context: Map<String, Value>,
) -> Facts {
    Facts {
        subject,
        resource,
        context,
        ..Facts::default()
    }
}

/// `POST /access/v1/search/subject`.
pub(super) async fn subjects(
    State(app): State<AppState>,
    caller: Caller,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<Results>, ApiError> {
    let kind = Kind::Subject;
    let want = wanted(body.get("subject"), "subject").map_err(invalid)?;
    let act = required_action(&body).map_err(invalid)?;
    let resource = given(&body, "resource").map_err(invalid)?;
    let ctx = context(body.get("context"), "/context").map_err(invalid)?;
    let page = page_in(kind, &body).map_err(invalid)?;
    let snapshot = app.decider().snapshot();
    let Ok(scope) = resource_path(&app, &snapshot, &caller, &resource) else {
        return Ok(empty(kind, &body));
    };
    app.decider().require(&caller, CHECK_OTHERS, &scope)?;
    let kinds = principal_kinds(&want.kind);
    let named = Named {
        resource_type: &resource.kind,
        resource_id: &resource.id,
        action_name: &act.name,
    };
    let (Ok(mapped), false) = (
        app.config().authzen_mappings.action(&named),
        kinds.is_empty(),
    ) else {
        return Ok(empty(kind, &body));
    };
    let after = match &page.after {
        None => None,
        Some(k) => Some(Uuid::parse_str(k).map_err(|_| {
            invalid((
                "/page/token".to_owned(),
                "`token` is not one this search returned".to_owned(),
            ))
        })?),
    };
    let mut facts = facts(want.properties, resource.properties, ctx);
    facts.action = act.properties;
    facts.action_name = Some(act.name.clone());
    facts.resource_id = Some(resource.id.clone());
    facts.resource_type = Some(resource.kind.clone());
    let found = snapshot.search_subjects(
        caller.tenant,
        kinds,
        &mapped,
        &scope,
        &facts,
        app.decider().now(),
        after,
        page.limit,
    );
    let last = found
        .more
        .then(|| found.items.last().map(Uuid::to_string))
        .flatten();
    let items = found
        .items
        .iter()
        .map(|id| {
            let name = snapshot
                .principal(caller.tenant, id)
                .and_then(|p| p.aliases.first().cloned())
                .unwrap_or_else(|| id.to_string());
            json!({"type": want.kind, "id": name})
        })
        .collect();
    Ok(results(kind, &body, items, last))
}

/// `POST /access/v1/search/resource`.
pub(super) async fn resources(
    State(app): State<AppState>,
    caller: Caller,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<Results>, ApiError> {
    let kind = Kind::Resource;
    let subject = given(&body, "subject").map_err(invalid)?;
    let act = required_action(&body).map_err(invalid)?;
    let want = wanted(body.get("resource"), "resource").map_err(invalid)?;
    let ctx = context(body.get("context"), "/context").map_err(invalid)?;
    let page = page_in(kind, &body).map_err(invalid)?;
    let snapshot = app.decider().snapshot();
    let Some(principal) = subject_of(&snapshot, &caller, &subject) else {
        return Ok(empty(kind, &body));
    };
    let subject_id = Subject::new(principal);
    // About oneself, anything; about others, only where the caller may ask.
    let myself = caller.principal_id() == Some(principal);
    let everywhere = myself || app.decider().holds(&caller, CHECK_OTHERS, &Scope::root());
    let mappings = &app.config().authzen_mappings;
    let named = Named {
        resource_type: &want.kind,
        resource_id: "",
        action_name: &act.name,
    };
    let mut facts = facts(subject.properties, want.properties, ctx);
    facts.action = act.properties;
    facts.action_name = Some(act.name.clone());
    let per_resource = |id: &str| {
        mappings
            .action(&Named {
                resource_id: id,
                ..named
            })
            .ok()
    };
    let fixed = if mappings.action_uses_id(&want.kind) {
        None
    } else {
        match mappings.action(&named) {
            Ok(a) => Some(a),
            Err(_) => return Ok(empty(kind, &body)),
        }
    };
    let search = match &fixed {
        Some(a) => crate::engine::SearchAction::Fixed(a),
        None => crate::engine::SearchAction::PerResource(&per_resource),
    };
    let found = snapshot.search_resources(
        caller.tenant,
        &subject_id,
        &want.kind,
        search,
        &facts,
        app.decider().now(),
        page.after.as_deref(),
        page.limit,
    );
    let last = found
        .more
        .then(|| found.items.last().map(|r| r.id.clone()))
        .flatten();
    let items = found
        .items
        .iter()
        .filter(|r| everywhere || app.decider().holds(&caller, CHECK_OTHERS, &r.path))
        .map(|r| json!({"type": r.resource_type, "id": r.id}))
        .collect();
    Ok(results(kind, &body, items, last))
}

/// `POST /access/v1/search/action`.
pub(super) async fn actions(
    State(app): State<AppState>,
    caller: Caller,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<Results>, ApiError> {
    let kind = Kind::Action;
    let subject = given(&body, "subject").map_err(invalid)?;
    let resource = given(&body, "resource").map_err(invalid)?;
    let ctx = context(body.get("context"), "/context").map_err(invalid)?;
    let page = page_in(kind, &body).map_err(invalid)?;
    let snapshot = app.decider().snapshot();
    let Some(principal) = subject_of(&snapshot, &caller, &subject) else {
        return Ok(empty(kind, &body));
    };
    let Ok(scope) = resource_path(&app, &snapshot, &caller, &resource) else {
        return Ok(empty(kind, &body));
    };
    let subject_id = Subject::new(principal);
    app.decider().may_ask(&caller, &subject_id, false, &scope)?;
    let mut facts = facts(subject.properties, resource.properties, ctx);
    facts.resource_id = Some(resource.id.clone());
    facts.resource_type = Some(resource.kind.clone());
    let mappings = &app.config().authzen_mappings;
    let name_of = |action: &str| mappings.name_of(&resource.kind, &resource.id, action);
    let all = snapshot.search_actions(
        caller.tenant,
        &subject_id,
        &scope,
        &facts,
        app.decider().now(),
        &name_of,
    );
    let start = page
        .after
        .as_deref()
        .map_or(0, |k| all.partition_point(|(name, _)| name.as_str() <= k));
    let rest = &all[start..];
    let shown = &rest[..rest.len().min(page.limit)];
    let last = (rest.len() > shown.len())
        .then(|| shown.last().map(|(name, _)| name.clone()))
        .flatten();
    let items = shown
        .iter()
        .map(|(name, _)| json!({"name": name}))
        .collect();
    Ok(results(kind, &body, items, last))
}
