//! HTTP: routers, extractors, response shapes and [`ApiError`]. Handlers are thin: they
//! validate through the model, call the store or the engine, and shape the answer.

pub mod admin;
mod admit;
mod authn;
pub mod authz;
mod authzen;
mod body;
mod check;
pub mod console;
pub mod error;
pub mod extract;
pub mod gateway;
mod graph;
mod ops;
pub mod request_id;
pub mod respond;
mod unwind;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

pub use error::ApiError;
pub(crate) use ops::metrics_router;
pub use ops::Readiness;

use crate::auth::Verifier;
use crate::config::Config;
use crate::decide::{Decider, Wiring};
use crate::engine::Snapshot;
use crate::metrics::{HttpMetricsLayer, Metrics};
use crate::model::Revision;
use crate::store::Store;
use crate::sync::Published;

/// The header carrying each request's id (set when absent, echoed in the response).
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long one request may take before it is answered 503 `unavailable`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a handler needs; cloning it clones one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    /// The directory's persistence.
    store: Arc<dyn Store>,
    /// Every decision, the admin API's own authorization included, goes through it.
    decider: Decider,
    /// Validated settings.
    config: Config,
    /// Validates bearer tokens.
    verifier: Arc<Verifier>,
    /// This app's metrics; `None` when `[metrics] enabled = false`.
    metrics: Option<Arc<Metrics>>,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(
        store: Arc<dyn Store>,
        published: Arc<Published>,
        config: Config,
        verifier: Arc<Verifier>,
        wiring: Wiring,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let decider = Decider::new(
            published,
            store.clone(),
            verifier.clone(),
            wiring,
            config.consistency_timeout,
        );
        AppState(Arc::new(Shared {
            store,
            decider,
            config,
            verifier,
            metrics,
        }))
    }

    /// This app's metrics, when enabled.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.0.metrics.as_deref()
    }

    /// The token verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// The decision layer.
    pub fn decider(&self) -> &Decider {
        &self.0.decider
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Returns once this replica's snapshot includes `revision` (read-your-writes), or a
    /// 503 `consistency-timeout` after the configured timeout.
    pub async fn wait_for(&self, revision: Revision) -> Result<Arc<Snapshot>, ApiError> {
        Ok(self.decider().wait_for(revision).await?)
    }
}

/// One route: the contract test compares these with `openapi.yaml`.
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template, in OpenAPI's `{param}` syntax (also axum's).
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route the server answers.
pub fn routes() -> Vec<Route> {
    let mut all = admin::routes();
    all.extend(check::routes());
    all.extend(authzen::routes());
    all.extend(gateway::routes());
    all.extend(ops::routes());
    all.extend(graph::routes());
    all
}

/// The whole HTTP surface with its middleware.
pub fn router(state: AppState) -> anyhow::Result<Router> {
    let app = routes()
        .into_iter()
        .fold(Router::new(), |app, r| app.route(r.path, r.handler));
    // The web console (HTML, so outside `routes()` and the OpenAPI contract).
    let app = app.merge(console::router(&state)?);
    // One `layer` call with the whole stack: axum boxes each `Router::layer` separately
    // around every route and clones each box per request, so six calls cost six boxed
    // services and futures, each cloned down the nest, on every check (issue 16). As one
    // `ServiceBuilder` the stack is one concrete service. Listed outermost first.
    let stack = tower::ServiceBuilder::new()
        // Outermost, so a request is timed whole and counted with the status it got.
        .layer(HttpMetricsLayer::of(state.metrics()))
        // Sets and echoes `x-request-id` around everything that can answer.
        .layer(request_id::RequestIdLayer::new())
        // Graph's error envelope, not problem+json, under `/v1.0/` (whichever layer failed).
        .layer(graph::EnvelopeLayer)
        // The readiness gate, the body limits (size and time), the request's time limit and
        // its span. Bodies are read by `body::read`, never by axum's extractors, whose
        // own limit is not set.
        .layer(admit::AdmitLayer::new(state.clone()))
        // A panicking handler is answered 500.
        .layer(unwind::UnwindLayer);
    Ok(app
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(stack)
        .with_state(state))
}

async fn fallback(uri: Uri) -> Response {
    ApiError::NoRoute(uri.path().to_owned()).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}
