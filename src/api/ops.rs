//! Operations endpoints: liveness, readiness, metrics and the OpenAPI contract, and the
//! readiness gate in front of every other route.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::{route, ApiError, AppState, Route};
use crate::model::Revision;

/// The contract, served verbatim.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Routes that answer whether or not the snapshot is loaded or fresh: they read neither it
/// nor the store (`/metrics` reads the store's latest revision, bounded, and reports the
/// snapshot's state: it must answer most when the replica is not ready).
const UNGATED: [&str; 5] = [
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.yaml",
    "/.well-known/authzen-configuration",
];

/// The operations routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/livez", get(livez)),
        route(Method::GET, "/readyz", get(readyz)),
        route(Method::GET, "/metrics", get(metrics)),
        route(Method::GET, "/openapi.yaml", get(openapi)),
    ]
}

/// The process is up.
async fn livez() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// This replica's readiness: the body of `/readyz`, and the `readiness` member of a
/// `not-ready` problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready` or `not-ready`.
    pub status: &'static str,
    /// `postgres` or `sqlite`.
    pub store: &'static str,
    /// Whether sync's last attempt reached the store.
    pub store_reachable: bool,
    /// Whether the snapshot has been loaded from the store.
    pub snapshot_loaded: bool,
    /// The snapshot's revision, once loaded.
    pub snapshot_revision: Option<Revision>,
    /// Seconds since the last successful sync began, once loaded.
    pub staleness_seconds: Option<f64>,
    /// `max_staleness_ms` in seconds, when set.
    pub max_staleness_seconds: Option<f64>,
}

/// `Ok` with the readiness when this replica may answer from its snapshot, else the
/// `not-ready` problem saying why.
fn readiness(app: &AppState) -> Result<Readiness, ApiError> {
    let health = app.decider().health();
    let max_staleness = app.config().max_staleness;
    let not_ready = health.not_ready(max_staleness);
    let readiness = Readiness {
        status: if not_ready.is_none() {
            "ready"
        } else {
            "not-ready"
        },
        store: app.store().backend().as_str(),
        store_reachable: health.store_reachable,
        snapshot_loaded: health.loaded,
        snapshot_revision: health.loaded.then_some(health.revision),
        staleness_seconds: health.staleness.map(seconds),
        max_staleness_seconds: max_staleness.map(seconds),
    };
    match not_ready {
        None => Ok(readiness),
        Some(reason) => Err(ApiError::NotReady {
            reason,
            readiness: Box::new(readiness),
        }),
    }
}

/// Whether this replica can answer checks: its snapshot is loaded and, when
/// `max_staleness_ms` is set, synced recently enough (else `503 not-ready`, the same
/// readiness in the problem's `readiness`). Reads only what sync recorded (no store round
/// trip), so it answers at once during an outage too; store reachability and staleness are
/// reported, and only the staleness bound makes them matter.
async fn readyz(State(app): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    readiness(&app).map(Json)
}

/// Seconds, to the millisecond.
fn seconds(duration: Duration) -> f64 {
    (duration.as_millis() as f64) / 1000.0
}

/// `503 not-ready` instead of routing while the snapshot is not loaded, or is older than
/// `max_staleness_ms`: a replica that cannot know the directory answers nothing from it
/// (fail closed). The operations routes and unknown routes (`route` is `None`) pass. On the
/// hot path this is two atomic loads; the problem is built only when refusing.
pub(super) fn refusal(app: &AppState, route: Option<&str>) -> Option<Response> {
    let gated = route.is_some_and(|path| !UNGATED.contains(&path));
    if !gated
        || app
            .decider()
            .health()
            .not_ready(app.config().max_staleness)
            .is_none()
    {
        return None;
    }
    readiness(app).err().map(IntoResponse::into_response)
}

/// This app's metrics in Prometheus' text format, when they are served on the main
/// listener; otherwise (disabled, or `[metrics] listen` set) `404`, like an unknown path.
/// Needs no credentials, like `/livez`: it tells counts, never identities or secrets, and
/// scrapers send none. Keep it off a public interface with `[metrics] listen`.
async fn metrics(State(app): State<AppState>, uri: Uri) -> Response {
    match app.metrics() {
        Some(metrics) if metrics.listen().is_none() => render_metrics(&app, metrics).await,
        _ => ApiError::NoRoute(uri.path().to_owned()).into_response(),
    }
}

async fn render_metrics(app: &AppState, metrics: &crate::metrics::Metrics) -> Response {
    let text = metrics.render(app).await;
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// `/metrics` alone, for the listener `[metrics] listen` names: no other route, no
/// credentials, no readiness gate.
pub(crate) fn metrics_router(state: AppState) -> Router {
    async fn serve(State(app): State<AppState>, uri: Uri) -> Response {
        match app.metrics() {
            Some(metrics) => render_metrics(&app, metrics).await,
            None => ApiError::NoRoute(uri.path().to_owned()).into_response(),
        }
    }
    Router::new()
        .route("/metrics", get(serve))
        .fallback(super::fallback)
        .method_not_allowed_fallback(super::method_not_allowed)
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}
