//! The web console under `/console`: server-rendered HTML for administrators, with one small
//! vendored-free script compiled into the binary.
//!
//! The console holds no rules of its own. Every page and every form acts as the signed-in
//! principal by calling the `/v1` handlers in process ([`Api`]), with the session's bearer
//! credential in `Authorization`: the same [`Caller`] extractor, the same decision layer and
//! the same store methods answer, so a user sees and can do exactly what the JSON API lets
//! them. Whether to *show* an admin action is asked of the same decision layer
//! ([`Caller::holds`]); the API still decides when the form is sent.
//!
//! Sessions are stateless so replicas sharing one database need no shared session table:
//! the cookie holds the credential sealed with AES-256-GCM under a key derived from
//! `[console] session_key` (see [`session`]). Every state-changing form carries the session's
//! CSRF token, compared in constant time, and the cookie is `SameSite=Strict` besides.

mod html;
mod oidc;
mod pages;
pub mod session;

use std::sync::Arc;

use anyhow::Context as _;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;
use tower::ServiceExt as _;

use super::authz::Caller;
use super::{ApiError, AppState};
pub use session::SessionKey;

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// The strict Content-Security-Policy every console answer carries: no inline script or
/// style, nothing from another origin, forms post only here, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// What the console handlers share: the in-process JSON API and the session key.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

struct Inner {
    /// The `/v1` routes with their handlers and nothing else: the console's only way to
    /// read or change the directory.
    api: Router,
    /// Seals session cookies.
    key: SessionKey,
    /// Talks to the OpenID Connect issuer.
    http: reqwest::Client,
}

/// The console's routes, to be merged into the app's router before its middleware (so the
/// readiness gate, the time limit and the request id apply here too).
pub fn router(state: &AppState) -> anyhow::Result<Router<AppState>> {
    let api = super::routes()
        .into_iter()
        .fold(Router::new(), |api, r| api.route(r.path, r.handler))
        .with_state(state.clone());
    let key = SessionKey::from_config(state.config().console_session_key.as_ref())
        .context("starting the console's session key")?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let console = Console(Arc::new(Inner { api, key, http }));
    Ok(Router::new()
        .route(PREFIX, get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/assets/console.css", get(pages::css))
        .route("/console/assets/console.js", get(pages::js))
        .route("/console/signin", get(pages::signin_page))
        .route("/console/signin/dev", post(pages::signin_dev))
        .route("/console/signin/token", post(pages::signin_token))
        .route("/console/signin/oidc", get(oidc::start))
        .route(oidc::CALLBACK_PATH, get(oidc::callback))
        .route("/console/signout", post(pages::signout))
        .route("/console/roles", get(pages::roles).post(pages::role_create))
        .route("/console/roles/new", get(pages::role_new))
        .route("/console/roles/review", post(pages::role_review))
        .route("/console/roles/{id}", get(pages::role_detail))
        .route(
            "/console/assignments",
            get(pages::assignments).post(pages::assignment_create),
        )
        .route(
            "/console/assignments/{id}/delete",
            post(pages::assignment_delete),
        )
        .route("/console/groups", get(pages::groups))
        .route("/console/groups/{id}", get(pages::group_detail))
        .route(
            "/console/groups/{id}/members",
            post(pages::group_member_add),
        )
        .route(
            "/console/groups/{id}/members/remove",
            post(pages::group_member_remove),
        )
        .route("/console/units", get(pages::units))
        .route("/console/units/{id}", get(pages::unit_detail))
        .route("/console/units/{id}/members", post(pages::unit_member_add))
        .route(
            "/console/units/{id}/members/remove",
            post(pages::unit_member_remove),
        )
        .route("/console/principals", get(pages::principals))
        .route("/console/check", get(pages::check))
        .route("/console/who-can", get(pages::who_can))
        .route("/console/changes", get(pages::changes))
        .route("/console/validate", get(pages::validate))
        .layer(Extension(console))
        .layer(axum::middleware::from_fn(security_headers)))
}

/// Adds the console's security headers to every answer, errors included.
async fn security_headers(request: Request<Body>, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One answer of the in-process API.
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its body parsed as JSON (`Null` when empty).
    pub body: Value,
}

impl Reply {
    /// Whether the API said yes.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's `detail`, or the status when there is none.
    pub fn detail(&self) -> String {
        self.body["detail"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| self.status.to_string())
    }

    /// The problem's field errors as (pointer, detail).
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|e| {
                        (
                            e["pointer"].as_str().unwrap_or_default().to_owned(),
                            e["detail"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `value` array of a list answer (empty when this is not one).
    pub fn items(&self) -> &[Value] {
        self.body["value"].as_array().map_or(&[], Vec::as_slice)
    }
}

impl Console {
    /// The session key.
    pub fn key(&self) -> &SessionKey {
        &self.0.key
    }

    /// The HTTP client for the OpenID Connect issuer.
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Calls `/v1` in process as `credential`. `uri` is a path with its query.
    pub async fn call(
        &self,
        credential: &str,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        request_id: &str,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {credential}"))
            .header(&super::REQUEST_ID, request_id);
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let request = match builder.body(body) {
            Ok(request) => request,
            Err(e) => return internal(format!("cannot build the API request: {e}")),
        };
        let response = match self.0.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        match axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await {
            Ok(bytes) => Reply {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            },
            Err(e) => internal(format!("cannot read the API answer: {e}")),
        }
    }

    /// Authenticates `credential` through the API's own [`Caller`] extractor.
    pub async fn caller(&self, app: &AppState, credential: &str) -> Result<Caller, ApiError> {
        let request = Request::builder()
            .header(header::AUTHORIZATION, format!("Bearer {credential}"))
            .body(())
            .map_err(|_| {
                ApiError::InvalidToken("the credential is not a header value".to_owned())
            })?;
        let (mut parts, ()) = request.into_parts();
        Caller::from_request_parts(&mut parts, app).await
    }
}

fn internal(detail: String) -> Reply {
    tracing::error!(error = %detail, "console");
    Reply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: serde_json::json!({"detail": "internal error"}),
    }
}

/// The request id the request-id layer set, for the in-process calls.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// A 303 to `to`.
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}
