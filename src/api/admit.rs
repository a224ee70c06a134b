//! What every routed request passes before its handler, in one layer with a concrete
//! future: the readiness gate, the body limits, the request's time limit and its `debug`
//! span.
//!
//! These were three `axum::middleware::from_fn` layers and tower-http's `TraceLayer`. Each
//! `from_fn` cloned the boxed route service and boxed its future on every request, so a
//! check paid for four layers of allocation and indirection around a decision that takes
//! microseconds (issue 16). Here the inner route is called in place (after its own
//! `poll_ready`, as tower requires) and nothing is boxed or armed unless it has to be:
//! - the time limit's timer starts only when the handler first waits, so a check answered
//!   from the snapshot in one poll never touches the timer wheel (a handler cannot be
//!   interrupted before it first waits anyway);
//! - a body's read deadline likewise starts when reading it first waits
//!   ([`super::body::Deadline`]);
//! - the span is created at `debug`: when that level is off, `debug_span!` is a disabled
//!   span and entering it costs a branch.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::time::Sleep;
use tower::{Layer, Service};

use super::body::Deadline;
use super::{admin, ApiError, AppState, REQUEST_ID, REQUEST_TIMEOUT};

/// Adds [`Admit`] around each route.
#[derive(Clone)]
pub(crate) struct AdmitLayer {
    app: AppState,
}

impl AdmitLayer {
    /// The layer for `app`'s routes.
    pub(crate) fn new(app: AppState) -> Self {
        AdmitLayer { app }
    }
}

impl<S> Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admit {
            inner,
            app: self.app.clone(),
        }
    }
}

/// The service [`AdmitLayer`] makes.
#[derive(Clone)]
pub(crate) struct Admit<S> {
    inner: S,
    app: AppState,
}

impl<S> Service<Request> for Admit<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Admitted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            route = route.unwrap_or(""),
            request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            tenant = tracing::field::Empty,
        );
        // Timed only when the span is on, for its closing line.
        let started = (!span.is_disabled()).then(Instant::now);
        if let Some(refused) = super::ops::refusal(&self.app, route) {
            return Admitted::answered(refused, span, started);
        }
        let config = self.app.config();
        let path = request.uri().path();
        let import = path == admin::IMPORT_PATH;
        let (max_body, body_timeout) = if import {
            (config.max_import_bytes, config.import_timeout)
        } else {
            (config.max_body_bytes, config.body_read_timeout)
        };
        let limit = if import || path == admin::EXPORT_PATH {
            config.import_timeout
        } else {
            REQUEST_TIMEOUT
        };
        // A `Content-Length` over the limit is answered before any of the body is read, so
        // a client sending `Expect: 100-continue` learns it at once instead of uploading.
        let announced = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|length| length > max_body as u64) {
            return Admitted::answered(
                super::body::too_large(import, max_body).into_response(),
                span,
                started,
            );
        }
        let request =
            request.map(|body| Body::new(Deadline::new(body, body_timeout, max_body, import)));
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Admitted {
            state: State::Running {
                inner,
                limit,
                timer: None,
            },
            span,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's response, or the refusal given instead of calling it.
    pub(crate) struct Admitted<F> {
        #[pin]
        state: State<F>,
        span: tracing::Span,
        started: Option<Instant>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Answered { response: Option<Response> },
        Running {
            #[pin]
            inner: F,
            limit: Duration,
            // Armed by the first poll the handler does not finish.
            timer: Option<Pin<Box<Sleep>>>,
        },
    }
}

impl<F> Admitted<F> {
    fn answered(response: Response, span: tracing::Span, started: Option<Instant>) -> Self {
        Admitted {
            state: State::Answered {
                response: Some(response),
            },
            span,
            started,
        }
    }
}

impl<F, E> Future for Admitted<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let output = match this.state.project() {
            StateProjection::Answered { response } => match response.take() {
                Some(response) => Ok(response),
                // Polled again after it finished: tower services are not, but answer
                // rather than panic.
                None => Ok(ApiError::Internal(anyhow::anyhow!(
                    "a finished response was polled again"
                ))
                .into_response()),
            },
            StateProjection::Running {
                inner,
                limit,
                timer,
            } => match inner.poll(cx) {
                Poll::Ready(output) => output,
                Poll::Pending => {
                    let limit = *limit;
                    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    std::task::ready!(timer.as_mut().poll(cx));
                    Ok(ApiError::Unavailable(anyhow::anyhow!(
                        "the request took longer than {limit:?}"
                    ))
                    .into_response())
                }
            },
        };
        if let (Some(started), Ok(response)) = (this.started.take(), &output) {
            tracing::debug!(
                status = response.status().as_u16(),
                latency_us = started.elapsed().as_micros() as u64,
                "request answered"
            );
        }
        Poll::Ready(output)
    }
}
