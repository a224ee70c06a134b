//! A handler that panics is answered 500 `internal` instead of dropping the connection.
//!
//! tower-http's `CatchPanicLayer` did this, but it boxes every response body (and axum boxes
//! it again to get its own body type back): two allocations and two dynamic layers on every
//! response, for a case that should never happen (issue 16). Here the route's future is
//! polled inside `catch_unwind` and its response passes through untouched.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::ApiError;

/// Adds [`Unwind`] around a service.
#[derive(Clone, Copy)]
pub(crate) struct UnwindLayer;

impl<S> Layer<S> for UnwindLayer {
    type Service = Unwind<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Unwind { inner }
    }
}

/// The service [`UnwindLayer`] makes.
#[derive(Clone)]
pub(crate) struct Unwind<S> {
    inner: S,
}

/// What a caught panic is answered with. The panic itself was already reported by the
/// panic hook (stderr), with its message and location.
fn panicked() -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

impl<S, R> Service<R> for Unwind<S>
where
    S: Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Unwinding<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => Unwinding::Running { future },
            Err(_) => Unwinding::Panicked,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's future, or the fact that calling it panicked.
    #[project = UnwindingProjection]
    pub(crate) enum Unwinding<F> {
        Running { #[pin] future: F },
        Panicked,
        Done,
    }
}

impl<F, E> Future for Unwinding<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = match self.as_mut().project() {
            UnwindingProjection::Running { future } => {
                catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
            }
            UnwindingProjection::Panicked => {
                self.set(Unwinding::Done);
                return Poll::Ready(Ok(panicked()));
            }
            // Polled again after it finished: tower services are not, but answer rather
            // than panic.
            UnwindingProjection::Done => {
                return Poll::Ready(Ok(ApiError::Internal(anyhow::anyhow!(
                    "a finished response was polled again"
                ))
                .into_response()))
            }
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                // The future is dropped here, not when the connection drops this wrapper.
                self.set(Unwinding::Done);
                Poll::Ready(output)
            }
            // A future that panicked is not polled again, and dropping it could panic
            // anew: it is dropped inside `catch_unwind` too.
            Err(_) => {
                let done = catch_unwind(AssertUnwindSafe(|| self.set(Unwinding::Done)));
                if done.is_err() {
                    tracing::error!("a panicked handler panicked again while being dropped");
                }
                Poll::Ready(Ok(panicked()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    /// The status of `service`'s answer, checking that a 500 is a problem document.
    async fn status_of<S>(service: S) -> StatusCode
    where
        S: Service<(), Response = Response, Error = Infallible>,
    {
        let Ok(response) = UnwindLayer.layer(service).oneshot(()).await;
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
        response.status()
    }

    #[tokio::test]
    async fn a_panic_while_answering_is_a_500_problem() {
        let answers = tower::service_fn(|()| async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom");
            }
            Ok::<_, Infallible>(StatusCode::OK.into_response())
        });
        assert_eq!(status_of(answers).await, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_panic_before_the_future_exists_is_a_500_problem() {
        let refuses = tower::service_fn(|()| -> std::future::Ready<Result<Response, Infallible>> {
            panic!("boom")
        });
        assert_eq!(status_of(refuses).await, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn responses_pass_through_untouched() {
        let teapot = tower::service_fn(|()| async {
            Ok::<_, Infallible>((StatusCode::IM_A_TEAPOT, "short and stout").into_response())
        });
        let response = UnwindLayer.layer(teapot).oneshot(()).await;
        let Ok(response) = response;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        let body = axum::body::to_bytes(response.into_body(), 100).await;
        assert_eq!(body.ok().as_deref(), Some(&b"short and stout"[..]));
    }
}
