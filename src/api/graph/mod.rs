//! Microsoft Graph-compatible role management under `/v1.0/roleManagement/directory`: the
//! paths, request and response shapes, OData query subset ([`odata`]) and error envelope
//! that scripts, PowerShell and SDK code written against Graph expect.
//!
//! An adapter, not a second implementation: each handler translates Graph's shapes to the
//! `/v1` inputs and calls the same functions the `/v1` handlers call (`admin::roles`,
//! `admin::assignments`), so storage, authorization, escalation rules, the change log and
//! read-your-writes are the ones `/v1` has.
//!
//! Errors on these paths, and only these, are Graph's envelope
//! `{"error": {"code", "message", "innerError": {"request-id", "date"}}}` as
//! `application/json` ([`Envelope`] rewrites every problem document answered under
//! [`PREFIX`], whichever layer wrote it).

mod assignments;
mod odata;
mod pim;
mod roles;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tower::{Layer, Service};

use super::{route, ApiError, AppState, Route, REQUEST_ID};

/// Every Graph-compatible path starts with this.
pub const PREFIX: &str = "/v1.0/";

/// The role definitions collection.
pub const ROLE_DEFINITIONS: &str = "/v1.0/roleManagement/directory/roleDefinitions";

/// The role assignments collection.
pub const ROLE_ASSIGNMENTS: &str = "/v1.0/roleManagement/directory/roleAssignments";

/// The largest error body read back to rewrite it; problem documents are far smaller.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// The Graph-compatible routes.
pub fn routes() -> Vec<Route> {
    const ONE_DEFINITION: &str = "/v1.0/roleManagement/directory/roleDefinitions/{id}";
    const ONE_ASSIGNMENT: &str = "/v1.0/roleManagement/directory/roleAssignments/{id}";
    vec![
        route(Method::GET, ROLE_DEFINITIONS, get(roles::list)),
        route(Method::POST, ROLE_DEFINITIONS, post(roles::create)),
        route(Method::GET, ONE_DEFINITION, get(roles::get)),
        route(Method::PATCH, ONE_DEFINITION, patch(roles::update)),
        route(Method::DELETE, ONE_DEFINITION, delete(roles::delete)),
        route(Method::GET, ROLE_ASSIGNMENTS, get(assignments::list)),
        route(Method::POST, ROLE_ASSIGNMENTS, post(assignments::create)),
        route(Method::GET, ONE_ASSIGNMENT, get(assignments::get)),
        route(Method::DELETE, ONE_ASSIGNMENT, delete(assignments::delete)),
        route(
            Method::GET,
            pim::ELIGIBILITY_SCHEDULES,
            get(pim::list_eligibilities),
        ),
        route(
            Method::GET,
            "/v1.0/roleManagement/directory/roleEligibilitySchedules/{id}",
            get(pim::get_eligibility),
        ),
        route(Method::GET, pim::SCHEDULE_REQUESTS, get(pim::list_requests)),
        route(
            Method::POST,
            pim::SCHEDULE_REQUESTS,
            post(pim::submit_request),
        ),
        route(
            Method::GET,
            "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests/{id}",
            get(pim::get_request),
        ),
        route(
            Method::POST,
            "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests/{id}/cancel",
            post(pim::cancel_request),
        ),
    ]
}

/// A failure answered in Graph's own terms: a status and one of Graph's error codes.
///
/// Codes: `BadRequest` (a query that does not parse, as Graph answers "Invalid filter
/// clause") and `Request_UnsupportedQuery` (a query Graph understands that is not served
/// here), as Graph's directory workload answers them (learn.microsoft.com, "Advanced query
/// capabilities on Microsoft Entra ID objects").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct GraphError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Graph's error code.
    pub code: &'static str,
    /// What went wrong, for a developer.
    pub message: String,
}

impl GraphError {
    /// 400 `BadRequest`: the request does not parse.
    pub fn bad_request(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: message.into(),
        }
    }

    /// 400 `Request_UnsupportedQuery`: valid OData that these paths do not serve.
    pub fn unsupported(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::BAD_REQUEST,
            code: "Request_UnsupportedQuery",
            message: message.into(),
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let request_id = crate::telemetry::request_id();
        let id = request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut response = (self.status, body_of(self.code, &self.message, id)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        response
    }
}

/// What a Graph-compatible handler fails with: one of Rolecall's own errors (rendered as a
/// problem, then rewritten by [`Envelope`]) or one in Graph's terms.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// As `/v1` would fail.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A refusal only these paths make (their query language, their bodies).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        Failure::Api(error.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Api(error) => error.into_response(),
            Failure::Graph(error) => error.into_response(),
        }
    }
}

const JSON: &str = "application/json";

/// The envelope Graph answers errors with.
fn body_of(code: &str, message: &str, request_id: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner<'a> {
        code: &'a str,
        message: &'a str,
        inner_error: Details<'a>,
    }
    #[derive(Serialize)]
    struct Details<'a> {
        #[serde(rename = "request-id")]
        request_id: &'a str,
        date: String,
    }
    let envelope = Envelope {
        error: Inner {
            code,
            message,
            inner_error: Details {
                request_id,
                // Graph writes UTC without an offset, to the second.
                date: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            },
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{}".to_vec())
}

/// The problem document fields the envelope is made from.
#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

#[derive(Deserialize)]
struct FieldError {
    #[serde(default)]
    pointer: String,
    #[serde(default)]
    detail: String,
}

/// Graph's code for each of Rolecall's problem types, the status kept. Where Graph's
/// directory workload has a code of its own (`Request_BadRequest`,
/// `InvalidAuthenticationToken`, `Authorization_RequestDenied`, `Request_ResourceNotFound`,
/// `Request_MultipleObjectsWithSameKeyValue`) it is used; otherwise the general codes of
/// "Microsoft Graph error responses and resource types" (`notAllowed`, `resourceModified`,
/// `invalidRequest`, `serviceNotAvailable`, `generalException`).
fn code_of(kind: &str, status: StatusCode) -> &'static str {
    match kind {
        "validation" | "malformed-body" | "unprocessable" => "Request_BadRequest",
        "unauthorized" | "invalid-token" => "InvalidAuthenticationToken",
        "forbidden" | "escalation-refused" => "Authorization_RequestDenied",
        "not-found" => "Request_ResourceNotFound",
        "method-not-allowed" => "Request_BadRequest",
        "conflict" => "Request_MultipleObjectsWithSameKeyValue",
        "builtin-role-immutable" => "notAllowed",
        "precondition-failed" => "resourceModified",
        // PIM's code for a request its rules refuse; the message says which rule.
        "activation-refused" => "RoleAssignmentRequestPolicyValidationFailed",
        "request-timeout" | "payload-too-large" | "unsupported-media-type" => "invalidRequest",
        _ if status.is_server_error() && status != StatusCode::INTERNAL_SERVER_ERROR => {
            "serviceNotAvailable"
        }
        _ if status.is_client_error() => "invalidRequest",
        _ => "generalException",
    }
}

/// Adds [`Envelope`] around each route and the fallbacks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EnvelopeLayer;

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Envelope { inner }
    }
}

/// Every `application/problem+json` answer to a request under [`PREFIX`] becomes Graph's
/// error envelope with the same status and headers (`WWW-Authenticate`, `Retry-After` and
/// the rest kept). Whatever wrote the problem (an extractor, the readiness gate, the body
/// limit, the time limit, the 404 and 405 fallbacks, a handler) is covered, so these paths
/// never answer a problem document. Other paths pass through with one prefix test and
/// nothing boxed; only a rewritten error is.
#[derive(Debug, Clone)]
pub(crate) struct Envelope<S> {
    inner: S,
}

impl<S> Service<Request> for Envelope<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Enveloped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let graph = request
            .uri()
            .path()
            .starts_with(PREFIX)
            .then(|| request.headers().get(&REQUEST_ID).cloned());
        Enveloped {
            state: EnvelopeState::Running {
                inner: self.inner.call(request),
                graph,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's response, rewritten when it is a problem answered under [`PREFIX`].
    pub(crate) struct Enveloped<F> {
        #[pin]
        state: EnvelopeState<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = EnvelopeProjection]
    enum EnvelopeState<F> {
        Running {
            #[pin]
            inner: F,
            // `Some(request id)` for a request under `PREFIX`.
            graph: Option<Option<HeaderValue>>,
        },
        Rewriting {
            rewrite: Pin<Box<dyn Future<Output = Response> + Send>>,
        },
    }
}

impl<F, E> Future for Enveloped<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                EnvelopeProjection::Running { inner, graph } => {
                    let response = match inner.poll(cx) {
                        Poll::Ready(Ok(response)) => response,
                        other => return other,
                    };
                    let Some(request_id) = graph.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    let is_problem = response
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
                    if !is_problem {
                        return Poll::Ready(Ok(response));
                    }
                    let rewrite = Box::pin(rewrite(response, request_id));
                    self.as_mut()
                        .project()
                        .state
                        .set(EnvelopeState::Rewriting { rewrite });
                }
                EnvelopeProjection::Rewriting { rewrite } => {
                    return rewrite.as_mut().poll(cx).map(Ok);
                }
            }
        }
    }
}

/// The problem document `response` as Graph's envelope.
async fn rewrite(response: Response, request_id: Option<HeaderValue>) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_PROBLEM_BYTES)
        .await
        .unwrap_or_default();
    let problem: Problem = serde_json::from_slice(&bytes).unwrap_or(Problem {
        kind: String::new(),
        detail: String::new(),
        errors: Vec::new(),
    });
    let kind = problem
        .kind
        .strip_prefix(super::error::PROBLEM_BASE)
        .unwrap_or("");
    let mut message = problem.detail.clone();
    for field in &problem.errors {
        let at = if field.pointer.is_empty() {
            "(the body)"
        } else {
            field.pointer.as_str()
        };
        message.push_str(&format!("; {at}: {}", field.detail));
    }
    let request_id = request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body = body_of(code_of(kind, parts.status), &message, request_id);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Response::from_parts(parts, Body::from(body))
}

/// The base URL links are built on: `[authzen] public_url` when set (the one public URL
/// setting), else `http://` and the request's `Host`, as AuthZEN discovery does.
fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    match &app.config().public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    }
}

/// `@odata.context` for `entity_set` (`roleDefinitions`), e.g.
/// `…/v1.0/$metadata#roleManagement/directory/roleDefinitions(id,principal())/$entity`.
fn context(base: &str, entity_set: &str, options: &odata::Options, entity: bool) -> String {
    let mut shape: Vec<String> = options.select.clone().unwrap_or_default();
    shape.extend(options.expand.iter().map(|e| format!("{e}()")));
    let shape = if shape.is_empty() {
        String::new()
    } else {
        format!("({})", shape.join(","))
    };
    let suffix = if entity { "/$entity" } else { "" };
    format!("{base}/v1.0/$metadata#roleManagement/directory/{entity_set}{shape}{suffix}")
}

/// `@odata.nextLink`: the same request for the page after `cursor`.
fn next_link(base: &str, path: &str, options: &odata::Options, cursor: &str) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(filter) = &options.raw_filter {
        pairs.push(("$filter", filter.clone()));
    }
    if let Some(select) = &options.select {
        pairs.push(("$select", select.join(",")));
    }
    if !options.expand.is_empty() {
        pairs.push(("$expand", options.expand.join(",")));
    }
    if let Some(top) = options.top {
        pairs.push(("$top", top.to_string()));
    }
    pairs.push(("$skiptoken", cursor.to_owned()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{base}{path}?{query}")
}

/// Keeps only the `$select`ed properties (matched ignoring case, as Graph does) of
/// `object`, plus annotations and expanded navigation properties. Unknown names were
/// refused before, by [`check_select`].
fn select(object: &mut Map<String, Value>, options: &odata::Options) {
    let Some(selected) = &options.select else {
        return;
    };
    object.retain(|key, _| {
        key.starts_with('@')
            || options.expand.iter().any(|e| e.eq_ignore_ascii_case(key))
            || selected.iter().any(|s| s.eq_ignore_ascii_case(key))
    });
}

/// 400 `BadRequest` unless every `$select`ed name is a property of `entity` (`known`).
fn check_select(options: &odata::Options, entity: &str, known: &[&str]) -> Result<(), GraphError> {
    for name in options.select.iter().flatten() {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.{entity}'"
            )));
        }
    }
    Ok(())
}

/// `Request_UnsupportedQuery` for options a single-object read does not take.
fn only_select_and_expand(options: &odata::Options) -> Result<(), GraphError> {
    if !options.filter.is_empty() || options.top.is_some() || options.skip_token.is_some() {
        return Err(GraphError::unsupported(
            "reading one object takes only `$select` and `$expand`",
        ));
    }
    Ok(())
}

/// Headers of a write: `ETag` and `Rolecall-Revision` (and `Location` for a create).
fn write_headers(revision: crate::model::Revision, location: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&super::extract::etag(revision)) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&revision.to_string()) {
        headers.insert(super::respond::REVISION_HEADER.clone(), v);
    }
    if let Some(location) = location {
        if let Ok(v) = HeaderValue::from_str(location) {
            headers.insert(header::LOCATION, v);
        }
    }
    headers
}

/// A JSON body with `headers` and `status`.
fn json(status: StatusCode, headers: HeaderMap, body: &Value) -> Response {
    (status, headers, axum::Json(body)).into_response()
}

/// 204 No Content, as Graph answers an update or a delete, with `ETag` and
/// `Rolecall-Revision` so a client can wait for the write elsewhere.
fn json_empty(revision: crate::model::Revision) -> Response {
    (StatusCode::NO_CONTENT, write_headers(revision, None)).into_response()
}
