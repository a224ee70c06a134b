//! Request bodies on a deadline. hyper bounds how long a request head may take
//! (`header_read_timeout`), but nothing bounded its body: a client that announced more bytes
//! than it sent held its request until the 30 s handler limit, which then answered 503 as if
//! the store were down. Here a body must arrive within `body_read_timeout` of the handler's
//! first read (a 408, the client's fault), and a `Content-Length` over `max_body_bytes` is
//! answered 413 before any of the body is read, so a client sending `Expect: 100-continue`
//! learns it at once instead of uploading first. A body without a `Content-Length` (chunked)
//! is held to the same limit as it arrives.
//!
//! Every handler reads its body through [`read`]; none uses axum's body extractors, so no
//! `DefaultBodyLimit` layer is set.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::time::Sleep;

use super::ApiError;

/// The body did not arrive within `body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// The body went over its route's limit (`max_body_bytes`, `max_import_bytes` for an
/// import): a body without a `Content-Length`, or longer than it said.
#[derive(Debug, thiserror::Error)]
#[error("the request body is over {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit it passed.
    pub limit: usize,
    /// Whether it is a directory file (`POST /v1/import`), whose 413 names its own setting.
    pub import: bool,
}

/// Reads a whole request body, within the size and time limits [`super::admit`] set on it.
/// Errors: 413 over the limit, 408 too slow, else 400 (the client closed early or sent
/// broken chunked framing).
///
/// A body that arrived in one piece (every small request with a `Content-Length`, in
/// practice) is returned as that piece, copying nothing; axum's `Bytes` extractor buffered
/// every body through three boxed layers and a queue (issue 16).
pub(crate) async fn read(mut body: Body) -> Result<Bytes, ApiError> {
    let mut whole = Bytes::new();
    let mut pieces: Vec<u8> = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        // Trailers carry no body bytes.
        let Ok(data) = frame.map_err(|error| unreadable(&error))?.into_data() else {
            continue;
        };
        if pieces.is_empty() && whole.is_empty() {
            whole = data;
        } else {
            if pieces.is_empty() {
                pieces.extend_from_slice(&std::mem::take(&mut whole));
            }
            pieces.extend_from_slice(&data);
        }
    }
    Ok(if pieces.is_empty() {
        whole
    } else {
        pieces.into()
    })
}

/// The 413 for a body over `limit` bytes; a directory file's names its own setting.
pub(crate) fn too_large(import: bool, limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(if import {
        format!("a directory file is at most {limit} bytes (`max_import_bytes`)")
    } else {
        format!("a request body is at most {limit} bytes")
    })
}

/// The [`ApiError`] for a body that could not be read.
fn unreadable(error: &axum::Error) -> ApiError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = cause {
        if let Some(too_large) = error.downcast_ref::<BodyTooLarge>() {
            return self::too_large(too_large.import, too_large.limit);
        }
        if let Some(timed_out) = error.downcast_ref::<BodyTimedOut>() {
            return ApiError::RequestTimeout(timed_out.to_string());
        }
        cause = error.source();
    }
    ApiError::MalformedBody(format!("cannot read the body: {error}"))
}

/// A body that fails with [`BodyTimedOut`] unless it ends within `timeout` of the first
/// poll that has to wait for it, and with [`BodyTooLarge`] once it passes `limit` bytes.
pub(crate) struct Deadline {
    inner: Body,
    timeout: Duration,
    /// Started by the first poll that has to wait: time spent authenticating before the
    /// handler reads the body is not the client's.
    timer: Option<Pin<Box<Sleep>>>,
    limit: usize,
    /// Bytes that may still arrive.
    left: usize,
    /// A directory file's body (for the 413's wording).
    import: bool,
}

impl Deadline {
    /// `inner`, failing once it has kept its reader waiting for `timeout` or has gone over
    /// `limit` bytes; `import` for a directory file.
    pub(crate) fn new(inner: Body, timeout: Duration, limit: usize, import: bool) -> Self {
        Deadline {
            inner,
            timeout,
            timer: None,
            limit,
            left: limit,
            import,
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
            let arrived = match &frame {
                Some(Ok(frame)) => frame.data_ref().map_or(0, Bytes::len),
                _ => 0,
            };
            let Some(left) = self.left.checked_sub(arrived) else {
                return Poll::Ready(Some(Err(axum::Error::new(BodyTooLarge {
                    limit: self.limit,
                    import: self.import,
                }))));
            };
            self.left = left;
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
