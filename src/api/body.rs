//! Request bodies on a deadline. hyper bounds how long a request head may take
//! (`header_read_timeout`), but nothing bounded its body: a client that announced more bytes
//! than it sent held its request until the 30 s handler limit, which then answered 503 as if
//! the store were down. Here a body must arrive within `body_read_timeout` of the handler's
//! first read (a 408, the client's fault), and a `Content-Length` over `max_body_bytes` is
//! answered 413 before any of the body is read, so a client sending `Expect: 100-continue`
//! learns it at once instead of uploading first.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::time::Sleep;

use super::{ApiError, AppState};

/// The body did not arrive within `body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// Refuses an announced oversized body at once and puts every other body on a deadline.
pub(crate) async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let import = request.uri().path() == super::admin::IMPORT_PATH;
    let max = if import {
        app.config().max_import_bytes
    } else {
        app.config().max_body_bytes
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > max as u64) {
        return ApiError::PayloadTooLarge(format!("a request body is at most {max} bytes"))
            .into_response();
    }
    let timeout = if import {
        app.config().import_timeout
    } else {
        app.config().body_read_timeout
    };
    let request = request.map(|body| Body::new(Deadline::new(body, timeout)));
    next.run(request).await
}

/// The [`ApiError`] for a body that could not be read: 413 over the limit, 408 too slow,
/// else 400 (the client closed early or sent broken chunked framing).
pub(crate) fn unreadable(rejection: &BytesRejection, app: &AppState) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge(format!(
            "a request body is at most {} bytes",
            app.config().max_body_bytes
        ));
    }
    let mut cause: Option<&(dyn StdError + 'static)> = rejection.source();
    while let Some(error) = cause {
        if let Some(timed_out) = error.downcast_ref::<BodyTimedOut>() {
            return ApiError::RequestTimeout(timed_out.to_string());
        }
        cause = error.source();
    }
    ApiError::MalformedBody(format!("cannot read the body: {rejection}"))
}

/// A body that fails with [`BodyTimedOut`] unless it ends within `timeout` of the first
/// poll that has to wait for it.
struct Deadline {
    inner: Body,
    timeout: Duration,
    /// Started by the first poll that has to wait: time spent authenticating before the
    /// handler reads the body is not the client's.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(inner: Body, timeout: Duration) -> Self {
        Deadline {
            inner,
            timeout,
            timer: None,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        // The clock starts the first time the body keeps the handler waiting: a body that
        // has already arrived (every check's, in practice) never arms a timer.
        let timeout = self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
