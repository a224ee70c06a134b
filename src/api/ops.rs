//! Operations endpoints: liveness, readiness and the OpenAPI contract.

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use serde_json::json;

use super::{route, ApiError, AppState, Route};
use crate::store::Backend;

/// The contract, served verbatim.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// The operations routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/livez", get(livez)),
        route(Method::GET, "/readyz", get(readyz)),
        route(Method::GET, "/openapi.yaml", get(openapi)),
    ]
}

/// The process is up.
async fn livez() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The store answers and the snapshot is loaded (it is, once the app serves: it loads
/// before the listener accepts); both revisions are reported.
async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    app.store().ping().await?;
    let revision = app.store().current_revision().await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "status": "ready",
            "store": match app.store().backend() {
                Backend::Postgres => "postgres",
                Backend::Sqlite => "sqlite",
            },
            "revision": revision,
            "snapshotRevision": app.decider().snapshot().revision(),
        })),
    ))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}
