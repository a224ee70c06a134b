//! `x-request-id`: accepted from the client when it is a sane token, generated otherwise,
//! set on the request before anything reads it, echoed on every response (problem
//! documents included), and made the request id of every log line the request writes.
//!
//! One layer does all of it, outermost, so nothing inside (the timeout, the panic
//! catcher, the readiness gate, the body limit, the 404 and 405 fallbacks) can answer
//! without the id.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, Response};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::REQUEST_ID;

/// The longest request id accepted from a client; a longer one is replaced. Ids from
/// tracing systems and load balancers (uuids, W3C trace ids, AWS's `Root=1-…`) fit.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// True for an id a client may choose: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
/// characters (no spaces or control characters, which could forge log lines).
pub fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

/// Adds [`RequestIds`] around a service.
#[derive(Clone)]
pub struct RequestIdLayer {
    ids: SequentialRequestId,
}

impl RequestIdLayer {
    /// A layer whose generated ids share one random per-process prefix.
    #[allow(clippy::new_without_default)] // each call draws a new prefix
    pub fn new() -> Self {
        RequestIdLayer {
            ids: SequentialRequestId::new(),
        }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIds<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIds {
            inner,
            ids: self.ids.clone(),
        }
    }
}

/// The service [`RequestIdLayer`] makes.
#[derive(Clone)]
pub struct RequestIds<S> {
    inner: S,
    ids: SequentialRequestId,
}

impl<S, B, R> Service<Request<B>> for RequestIds<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Echo<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = match request.headers().get(&REQUEST_ID) {
            Some(id) if acceptable(id.as_bytes()) => id.clone(),
            _ => {
                let id = self.ids.next();
                request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        let inner = &mut self.inner;
        let future = crate::telemetry::sync_scope(id.clone(), || inner.call(request));
        Echo {
            future: crate::telemetry::scope(id.clone(), future),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response future, run with the request id in scope; sets `x-request-id`
    /// on the response.
    pub struct Echo<F> {
        #[pin]
        future: TaskLocalFuture<HeaderValue, F>,
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for Echo<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(REQUEST_ID.clone(), id);
        }
        Poll::Ready(Ok(response))
    }
}

/// The length of a generated id's per-process prefix (hex digits).
const PREFIX_LEN: usize = 12;

/// Request ids `<process prefix>-<counter>`: unique across replicas (random prefix per
/// process) and far cheaper per request than a random uuid: written into a stack buffer,
/// so the header value is the only allocation.
#[derive(Clone)]
struct SequentialRequestId {
    prefix: [u8; PREFIX_LEN],
    next: Arc<AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> Self {
        let mut prefix = [0; PREFIX_LEN];
        let random = uuid::Uuid::new_v4().simple().to_string();
        prefix.copy_from_slice(&random.as_bytes()[..PREFIX_LEN]);
        SequentialRequestId {
            prefix,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        // The prefix, `-`, and at most 20 decimal digits.
        let mut id = [0; PREFIX_LEN + 1 + 20];
        id[..PREFIX_LEN].copy_from_slice(&self.prefix);
        id[PREFIX_LEN] = b'-';
        let len = PREFIX_LEN + 1 + digits.len();
        id[PREFIX_LEN + 1..len].copy_from_slice(digits);
        // INVARIANT: hex digits, `-` and decimal digits are valid header bytes.
        HeaderValue::from_bytes(&id[..len]).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_bounded_visible_ascii() {
        assert!(acceptable(b"abc-123"));
        assert!(acceptable(b"Root=1-5759e988-bd862e3fe1be46a994272793"));
        assert!(acceptable("x".repeat(MAX_REQUEST_ID_LEN).as_bytes()));
        assert!(!acceptable("x".repeat(MAX_REQUEST_ID_LEN + 1).as_bytes()));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"two words"));
        assert!(!acceptable(b"line\tbreak"));
        assert!(!acceptable("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn generated_ids_are_acceptable_and_distinct() {
        let ids = SequentialRequestId::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert!(acceptable(a.as_bytes()), "{a:?}");
        let prefix = std::str::from_utf8(&ids.prefix).unwrap();
        assert_eq!(a, format!("{prefix}-1").as_str());
        assert_eq!(b, format!("{prefix}-2").as_str());
        ids.next.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(ids.next(), format!("{prefix}-{}", u64::MAX).as_str());
    }
}
