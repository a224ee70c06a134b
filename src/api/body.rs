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
use axum::http::StatusCode;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::time::Sleep;

use super::{ApiError, AppState};

/// The body did not arrive within `body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

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
pub(crate) struct Deadline {
    inner: Body,
    timeout: Duration,
    /// Started by the first poll that has to wait: time spent authenticating before the
    /// handler reads the body is not the client's.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// `inner`, failing once it has kept its reader waiting for `timeout`.
    pub(crate) fn new(inner: Body, timeout: Duration) -> Self {
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
