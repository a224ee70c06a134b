//! HTTP: routers, extractors, response shapes and [`ApiError`]. Handlers are thin: they
//! validate through the model, call the store or the engine, and shape the answer.

pub mod admin;
mod authn;
pub mod authz;
mod authzen;
mod body;
mod check;
pub mod error;
pub mod extract;
pub mod gateway;
mod ops;
pub mod respond;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use ops::Readiness;

use crate::auth::Verifier;
use crate::config::Config;
use crate::decide::{Decider, Wiring};
use crate::engine::Snapshot;
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
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(
        store: Arc<dyn Store>,
        published: Arc<Published>,
        config: Config,
        verifier: Arc<Verifier>,
        wiring: Wiring,
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
        }))
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
    all
}

/// The whole HTTP surface with its middleware.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let app = routes()
        .into_iter()
        .fold(Router::new(), |app, r| app.route(r.path, r.handler));
    app.fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::guard,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        ApiError::Unavailable(anyhow::anyhow!(
                            "the request took longer than {REQUEST_TIMEOUT:?}"
                        ))
                    },
                ))
                .layer(tower::timeout::TimeoutLayer::new(REQUEST_TIMEOUT)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(
            TraceLayer::new_for_http()
                .on_request(())
                .on_body_chunk(())
                .on_eos(())
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map(axum::extract::MatchedPath::as_str)
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        route = %route,
                        request_id = %request_id,
                        tenant = tracing::field::Empty,
                    )
                }),
        )
        .layer(SetRequestIdLayer::new(
            REQUEST_ID.clone(),
            SequentialRequestId::new(),
        ))
        .with_state(state)
}

/// Request ids `<process prefix>-<counter>`: unique across replicas (random prefix per
/// process) and far cheaper per request than a random uuid.
#[derive(Clone)]
struct SequentialRequestId {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> Self {
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        SequentialRequestId {
            prefix: prefix[..12].into(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

async fn fallback(uri: Uri) -> Response {
    ApiError::NoRoute(uri.path().to_owned()).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}
