//! The accept loop and connection driver behind [`crate::App::run`]. `axum::serve` has no header-read
//! timeout, no idle timeout and no connection cap, so a client that sends half a request line,
//! or none, held its connection (and a file descriptor) for ever.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::{open_files_limit, Config, RESERVED_FILE_DESCRIPTORS};

/// After a failed `accept` (EMFILE, ENFILE, ENOBUFS), the loop waits this long, doubling
/// up to [`MAX_ACCEPT_BACKOFF`] while failures continue: retrying at once would spin on
/// the error, and stopping would turn a passing shortage into an outage.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between failing `accept`s (so at most one warning a second).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The limits every connection of one server gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: u32,
}

impl Limits {
    /// The limits of `[metrics] listen`'s listener: the same timeouts, and few connections
    /// (it has a scraper or two, and must not take file descriptors from the API's).
    pub(crate) fn for_metrics(self) -> Limits {
        Limits {
            max_connections: self.max_connections.min(MAX_METRICS_CONNECTIONS),
            ..self
        }
    }
}

/// The most connections `[metrics] listen`'s listener serves at once.
const MAX_METRICS_CONNECTIONS: u32 = 16;

impl From<&Config> for Limits {
    fn from(config: &Config) -> Self {
        Limits {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// Accepts and serves connections until `shutdown` resolves, then stops accepting, asks
/// every connection to close once its current request is answered, and returns when all
/// have ended (the timeouts still apply, so a stalled client cannot hold shutdown up).
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    tracing::info!(
        header_read_timeout = ?limits.header_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        max_connections = limits.max_connections,
        "serving http/1.1"
    );
    if let Some(limit) = open_files_limit() {
        if u64::from(limits.max_connections) + RESERVED_FILE_DESCRIPTORS > limit {
            tracing::warn!(
                max_connections = limits.max_connections,
                open_files_limit = limit,
                "the open-files limit may run out before max_connections is reached; \
                 raise `ulimit -n` or lower max_connections"
            );
        }
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        // INVARIANT: a permit is taken before accepting and held by the connection's task
        // until it ends, so at most `max_connections` are open, and once every permit is
        // back every connection has ended. Beyond the cap nothing is accepted: new
        // connections wait in the kernel's accept queue, holding no file descriptor.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break, // never closed
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                tokio::spawn(connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    stopping.clone(),
                    permit,
                ));
            }
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "accept: the client left first");
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "accept failed; backing off");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
    drop(listener);
    stop.send_replace(true);
    let _all_ended = permits.acquire_many(limits.max_connections).await;
}

/// Errors about one connection that died before it was accepted, not about the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// How a connection ended.
enum Ended {
    /// hyper finished it: the client closed, asked to, or broke the protocol.
    Served(hyper::Result<()>),
    /// Rolecall closed it, with no request in flight.
    TimedOut(Timeout),
}

/// Serves one connection until it ends or times out. `_permit` is its place under the cap.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
        rewrite: None,
    });
    let answering = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = Answering::begin(answering.clone());
        let response = router.clone().oneshot(request);
        async move {
            let response = response.await?;
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
        }
    });
    // hyper's own header-read timer also runs while a kept-alive connection waits for its
    // next request, which would make it the idle timeout as well; `Activity` keeps the two
    // apart, so hyper's is off.
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut timer = pin!(tokio::time::sleep(limits.header_read_timeout));
    let mut stop = pin!(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    let mut stopped = false;
    let ended = poll_fn(|cx| {
        if !stopped && stop.as_mut().poll(cx).is_ready() {
            stopped = true;
            // Closes the connection now if idle, else after the current response.
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(served) = conn.as_mut().poll(cx) {
            return Poll::Ready(Ended::Served(served));
        }
        // INVARIANT: `activity` changes only inside `conn.poll` just above (this task reads
        // the socket, calls the service and drops response bodies), so this deadline is
        // current; while a request is answered there is none.
        let Some((deadline, timeout)) = activity.deadline() else {
            return Poll::Pending;
        };
        // The timer is re-armed only when the deadline moved earlier. A kept-alive
        // connection's idle deadline moves later with every response, and re-arming for
        // each would touch the timer wheel once per request (issue 16): instead, a timer
        // that fires before the current deadline is pushed out to it then.
        if deadline < timer.deadline() {
            timer.as_mut().reset(deadline);
        }
        loop {
            std::task::ready!(timer.as_mut().poll(cx));
            if timer.deadline() >= deadline {
                return Poll::Ready(Ended::TimedOut(timeout));
            }
            timer.as_mut().reset(deadline);
        }
    })
    .await;
    match ended {
        Ended::Served(Ok(())) => {}
        Ended::Served(Err(error)) => tracing::debug!(%peer, %error, "connection failed"),
        Ended::TimedOut(Timeout::HeaderRead) => {
            tracing::debug!(%peer, "closing a connection: request head not received in time");
        }
        Ended::TimedOut(Timeout::Idle) => {
            tracing::debug!(%peer, "closing an idle connection");
        }
    }
}

/// Which timeout closed a connection.
#[derive(Clone, Copy, Debug)]
enum Timeout {
    /// `header_read_timeout`.
    HeaderRead,
    /// `idle_timeout`.
    Idle,
}

/// What a connection is doing, for its timeouts. Its reader, its service and its driver
/// share it, but all run in the connection's one task, so the lock is never contended.
struct Activity {
    limits: Limits,
    phase: Mutex<Phase>,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// A request head is due: on a new connection from accept, on a kept-alive one from
    /// the first byte after the last response.
    Head { since: Instant },
    /// Kept alive, waiting for a next request with no byte of it yet.
    Idle { since: Instant },
    /// Requests being answered (head read, response body not yet all written).
    Answering { requests: usize },
}

impl Activity {
    fn new(limits: Limits) -> Self {
        Activity {
            limits,
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle connection, they start a request head.
    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
        }
    }

    /// When the connection is to be closed, and why; `None` while a request is answered.
    fn deadline(&self) -> Option<(Instant, Timeout)> {
        match *self.phase() {
            Phase::Head { since } => since
                .checked_add(self.limits.header_read_timeout)
                .map(|at| (at, Timeout::HeaderRead)),
            Phase::Idle { since } => since
                .checked_add(self.limits.idle_timeout)
                .map(|at| (at, Timeout::Idle)),
            Phase::Answering { .. } => None,
        }
    }
}

/// Marks its connection busy from the moment a request head is read until hyper drops the
/// response body (its last bytes taken, or the connection gone): no timeout cuts a request
/// off. Bytes still queued for a client that stopped reading fall under `idle_timeout`.
struct Answering(Arc<Activity>);

impl Answering {
    fn begin(activity: Arc<Activity>) -> Self {
        {
            let mut phase = activity.phase();
            *phase = match *phase {
                Phase::Answering { requests } => Phase::Answering {
                    requests: requests + 1,
                },
                Phase::Head { .. } | Phase::Idle { .. } => Phase::Answering { requests: 1 },
            };
        }
        Answering(activity)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Answering { requests } if requests > 1 => Phase::Answering {
                requests: requests - 1,
            },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        };
    }
}

/// A response body that keeps its connection marked busy until dropped.
struct Tracked {
    body: axum::body::Body,
    _busy: Answering,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's socket, telling [`Activity`] when bytes arrive, and giving hyper's own
/// answers to unparsable request heads a problem document.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// A problem response being written in place of hyper's bare one.
    rewrite: Option<Rewrite>,
}

/// hyper's automatic answers are a status line, `content-length: 0` and a date: far below
/// this. Larger writes are never looked into.
const MAX_AUTOMATIC_HEAD: usize = 512;

/// A replacement response, and how many of hyper's bytes it stands for.
struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
    replaces: usize,
}

/// When `head` is hyper's automatic answer to a request head it could not parse (a 400, 414
/// or 431 with an empty body, before any service ran), the same answer as
/// `application/problem+json`. hyper has no hook for these answers, so they are recognized
/// on the way out.
// INVARIANT: hyper writes such an answer only when it has nothing else to write (its writer
// is idle), as one head with `content-length: 0` and nothing after it. Every response
// Rolecall's handlers give with one of these statuses has a problem body, so none matches.
// A write that holds more (pipelined responses still buffered) passes through unchanged.
fn protocol_problem(head: &[u8]) -> Option<Vec<u8>> {
    let (status, kind, title, detail) = match head.get(..13)? {
        b"HTTP/1.1 400 " => (
            400,
            "malformed-request",
            "Bad Request",
            "the request line or a header line is not valid HTTP/1.1",
        ),
        b"HTTP/1.1 414 " => (
            414,
            "uri-too-long",
            "URI Too Long",
            "the request target is longer than 65534 bytes",
        ),
        b"HTTP/1.1 431 " => (
            431,
            "headers-too-large",
            "Request Header Fields Too Large",
            "the request head is larger than the server buffers",
        ),
        _ => return None,
    };
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != head.len() {
        return None;
    }
    let text = std::str::from_utf8(&head[..end]).ok()?.to_ascii_lowercase();
    if !text.lines().any(|line| line == "content-length: 0") {
        return None;
    }
    let body = serde_json::json!({
        "type": format!("{}{kind}", crate::api::error::PROBLEM_BASE),
        "title": title,
        "status": status,
        "detail": detail,
    })
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl Watched {
    /// Writes the pending replacement; once it is all out, reports hyper's bytes written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some(rewrite) = self.rewrite.as_mut() else {
                return Poll::Ready(Ok(0));
            };
            if rewrite.written == rewrite.bytes.len() {
                let replaced = rewrite.replaces;
                self.rewrite = None;
                return Poll::Ready(Ok(replaced));
            }
            let rest = &rewrite.bytes[rewrite.written..];
            match Pin::new(&mut self.stream).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => rewrite.written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.rewrite.is_none()
            && buf.len() <= MAX_AUTOMATIC_HEAD
            && buf.starts_with(b"HTTP/1.1 4")
        {
            if let Some(bytes) = protocol_problem(buf) {
                self.rewrite = Some(Rewrite {
                    bytes,
                    written: 0,
                    replaces: buf.len(),
                });
            }
        }
        if self.rewrite.is_some() {
            return self.poll_rewrite(cx);
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.rewrite.is_none()
            && total <= MAX_AUTOMATIC_HEAD
            && first.is_some_and(|b| b.starts_with(b"HTTP/1.1 4"))
        {
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(bytes) = protocol_problem(&whole) {
                self.rewrite = Some(Rewrite {
                    bytes,
                    written: 0,
                    replaces: whole.len(),
                });
            }
        }
        if self.rewrite.is_some() {
            return self.poll_rewrite(cx);
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
