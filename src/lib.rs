//! Rolecall: an HTTP policy decision point modeled on Microsoft Entra ID custom roles and
//! Azure RBAC. See `DESIGN.md` for the concepts and `README.md` for running it.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod decide;
pub mod engine;
pub mod model;
pub mod store;
pub mod sync;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::api::AppState;
use crate::config::Config;
use crate::model::Catalog;
use crate::store::{Backend, SqlStore, Store};
use crate::sync::Follower;

/// A built, bound, not yet serving Rolecall. Binding happens in [`App::build`], so a test
/// can read the port (bind to port 0) before anything runs.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    /// Follows the change log until the app stops.
    sync: Follower,
}

impl App {
    /// Connects the store, runs migrations and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with(config, decide::Wiring::default()).await
    }

    /// [`App::build`] with the decision layer's clock and decision hook chosen by the
    /// caller (tests move time instead of sleeping, and watch decisions).
    pub async fn build_with(config: Config, wiring: decide::Wiring) -> anyhow::Result<App> {
        let catalog = Arc::new(Catalog::builtin().context("loading the built-in role catalog")?);
        let store_catalog = catalog.clone();
        if config.database_url.backend() == Backend::Sqlite {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "creating the data directory `{}`",
                    config.data_dir.display()
                )
            })?;
        }
        let store = SqlStore::open(&config.database_url, store_catalog)
            .await
            .context("connecting to the store")?;
        store.migrate().await.context("running migrations")?;
        let store: Arc<dyn Store> = Arc::new(store);
        // Before the snapshot loads, so the first decisions already see the admins.
        bootstrap_admins(store.as_ref(), &config).await?;
        let sync = Follower::start(store.clone(), catalog, config.poll_interval)
            .await
            .context("loading the decision snapshot")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let verifier = Arc::new(
            auth::Verifier::start_with(
                config.issuers.clone(),
                config.default_tenant,
                wiring.clock.clone(),
            )
            .context("starting the token verifier")?,
        );
        let state = AppState::new(store, sync.published.clone(), config, verifier, wiring);
        let router = api::router(state.clone());
        Ok(App {
            listener,
            router,
            state,
            sync,
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The state handlers share (tests use it to reach the store).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP/1.1 until `shutdown` resolves, then stops accepting, closes idle
    /// connections and lets in-flight requests finish.
    ///
    /// A connection gets `header_read_timeout` to send each request head and `idle_timeout`
    /// between requests, and at most `max_connections` are served at once; beyond that new
    /// connections wait to be accepted (see `Config`). So a slow or idle client can hold a
    /// connection, and a file descriptor, only for a bounded time.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = serve::Limits::from(self.state.config());
        serve::serve(self.listener, self.router, limits, shutdown).await;
        drop(self.sync);
        Ok(())
    }
}

/// Gives each configured bootstrap admin Privileged Role Administrator at `/` in the default
/// tenant, unless it already holds it there.
async fn bootstrap_admins(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    for admin in &config.bootstrap_admins {
        let created = bootstrap(store, config.default_tenant, *admin, "bootstrap-config")
            .await
            .with_context(|| format!("bootstrapping admin {admin}"))?;
        if created {
            tracing::info!(%admin, "bootstrap: assigned Privileged Role Administrator at /");
        }
    }
    Ok(())
}

/// Assigns Privileged Role Administrator at `/` to `principal` in `tenant`; false when it
/// already held that assignment.
pub async fn bootstrap(
    store: &dyn Store,
    tenant: model::TenantId,
    principal: uuid::Uuid,
    actor: &str,
) -> anyhow::Result<bool> {
    let role = model::PRIVILEGED_ROLE_ADMINISTRATOR;
    let filter = store::RoleAssignmentFilter {
        principal_id: Some(principal),
        role_definition_id: Some(role),
        directory_scope_id: Some(model::Scope::root()),
    };
    let page = store::PageRequest {
        limit: 1,
        cursor: None,
    };
    if !store
        .list_role_assignments(tenant, &filter, &page)
        .await?
        .items
        .is_empty()
    {
        return Ok(false);
    }
    let input: model::RoleAssignmentInput = serde_json::from_value(serde_json::json!({
        "principalId": principal,
        "principalType": "user",
        "roleDefinitionId": role,
        "directoryScopeId": "/",
    }))?;
    let new = input
        .validate()
        .map_err(|e| anyhow::anyhow!("bootstrap assignment is invalid: {e}"))?;
    store
        .create_role_assignment(tenant, &store::Actor::new(actor), new)
        .await?;
    Ok(true)
}

/// What [`recover_admin`] changed and found, for the operator to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// True when a Privileged Role Administrator assignment at `/` was created; false when
    /// an active one was already there.
    pub assigned: bool,
    /// Privileged Role Administrator assignments at `/` of the principal that were not in
    /// force (expired or not yet started): deleted, so that a permanent one could be made.
    pub replaced: Vec<model::RoleAssignment>,
    /// Deny assignments naming the principal itself that deny an admin action: deleted.
    pub removed: Vec<model::DenyAssignment>,
    /// Deny assignments naming a group the principal belongs to (stored memberships) that
    /// deny an admin action. They also bind every other member of the group.
    pub group_denies: Vec<GroupDeny>,
    /// The admin actions Privileged Role Administrator grants at `/` that the principal
    /// still may not perform there (with no token groups). Empty: the recovery worked.
    pub still_denied: Vec<&'static str>,
}

/// A deny assignment that reaches the recovered principal through its groups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDeny {
    /// The deny assignment.
    pub deny: model::DenyAssignment,
    /// The groups from the principal to the denied group (inclusive).
    pub via: Vec<uuid::Uuid>,
    /// True when it was deleted (only when asked to).
    pub removed: bool,
}

/// Gives `principal` the admin API back without the admin key: the lock-out recovery that
/// `rolecall bootstrap --admin` runs against the database.
///
/// It makes `principal` Privileged Role Administrator at `/` (replacing such an assignment
/// that is not in force), and deletes every deny assignment naming `principal` itself that
/// denies one of [`api::authz::ADMIN_ACTIONS`] at any scope, whatever else it denies;
/// other deny assignments on it stay. A deny assignment naming one of its groups binds
/// every member, so it is deleted only when `remove_group_denies`; otherwise it is
/// reported. Matching is the engine's own (a check of each admin action at each deny
/// scope, with explanation), so patterns, exclusions, nesting and its depth bound, and
/// unit scopes count exactly as in any decision.
/// Every write is logged with `actor`. Finally the engine is asked again, on a fresh
/// snapshot, whether `principal` holds at `/` each admin action that Privileged Role
/// Administrator grants: [`Recovery::still_denied`] lists the ones it does not.
///
/// Costs two full store dumps and a few checks per distinct deny scope of the tenant.
pub async fn recover_admin(
    store: &dyn Store,
    tenant: model::TenantId,
    principal: uuid::Uuid,
    actor: &str,
    remove_group_denies: bool,
) -> anyhow::Result<Recovery> {
    let writer = store::Actor::new(actor);
    let now = chrono::Utc::now();
    let mut replaced = Vec::new();
    let filter = store::RoleAssignmentFilter {
        principal_id: Some(principal),
        role_definition_id: Some(model::PRIVILEGED_ROLE_ADMINISTRATOR),
        directory_scope_id: Some(model::Scope::root()),
    };
    let page = store::PageRequest {
        limit: 10,
        cursor: None,
    };
    for held in store
        .list_role_assignments(tenant, &filter, &page)
        .await?
        .items
    {
        if !held.value.active_at(now) {
            store
                .delete_role_assignment(tenant, &writer, held.value.id, None)
                .await?;
            replaced.push(held.value);
        }
    }
    let assigned = bootstrap(store, tenant, principal, actor).await?;

    let dump = store.dump().await?;
    let snapshot = engine::Snapshot::build(&dump, store.catalog());
    let denies: Vec<&model::DenyAssignment> = dump
        .tenants
        .iter()
        .filter(|t| t.tenant == tenant)
        .flat_map(|t| &t.deny_assignments)
        .collect();
    let mut scopes: Vec<model::Scope> = denies
        .iter()
        .map(|d| d.directory_scope_id.clone())
        .collect();
    scopes.sort();
    scopes.dedup();
    let mut found: std::collections::BTreeMap<uuid::Uuid, Vec<uuid::Uuid>> = Default::default();
    for scope in &scopes {
        for action in api::authz::ADMIN_ACTIONS {
            let request = engine::CheckRequest {
                subject: engine::Subject::new(principal),
                action: model::Action::parse(action)?,
                resource: scope.clone(),
            };
            for reason in snapshot.check(tenant, &request, now, true).reasons {
                if let engine::Reason::Deny(deny) = reason {
                    found.entry(deny.deny_assignment_id).or_insert(deny.via);
                }
            }
        }
    }

    let mut removed = Vec::new();
    let mut group_denies = Vec::new();
    for deny in denies {
        let Some(via) = found.remove(&deny.id) else {
            continue;
        };
        let direct = deny.principal_id == principal;
        if direct || remove_group_denies {
            match store
                .delete_deny_assignment(tenant, &writer, deny.id, None)
                .await
            {
                // Deleted meanwhile by someone else: nothing left to do.
                Ok(_) | Err(store::StoreError::NotFound { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        if direct {
            removed.push(deny.clone());
        } else {
            group_denies.push(GroupDeny {
                deny: deny.clone(),
                via,
                removed: remove_group_denies,
            });
        }
    }

    let snapshot = engine::Snapshot::build(&store.dump().await?, store.catalog());
    let mut still_denied = Vec::new();
    for &action in api::authz::ADMIN_ACTIONS {
        let ask = |subject: engine::Subject| -> anyhow::Result<bool> {
            let request = engine::CheckRequest {
                subject,
                action: model::Action::parse(action)?,
                resource: model::Scope::root(),
            };
            Ok(snapshot.check(tenant, &request, now, false).allowed)
        };
        // What the role grants, asked for a principal nobody has denied anything.
        let role_only = engine::Subject {
            wids: vec![model::PRIVILEGED_ROLE_ADMINISTRATOR],
            ..engine::Subject::new(uuid::Uuid::new_v4())
        };
        if ask(role_only)? && !ask(engine::Subject::new(principal))? {
            still_denied.push(action);
        }
    }
    Ok(Recovery {
        assigned,
        replaced,
        removed,
        group_denies,
        still_denied,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The accept loop and connection driver behind [`App::run`]. `axum::serve` has no header-read
/// timeout, no idle timeout and no connection cap, so a client that sends half a request line,
/// or none, held its connection (and a file descriptor) for ever.
mod serve {
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
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            timer.as_mut().poll(cx).map(|()| Ended::TimedOut(timeout))
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

    /// The client's socket, telling [`Activity`] when bytes arrive.
    struct Watched {
        stream: TcpStream,
        activity: Arc<Activity>,
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
            Pin::new(&mut self.stream).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
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
}
