//! Rolecall: an HTTP policy decision point modeled on Microsoft Entra ID custom roles and
//! Azure RBAC. See `DESIGN.md` for the concepts and `README.md` for running it.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod bootstrap;
pub mod client;
pub mod config;
pub mod decide;
pub mod engine;
#[cfg(test)]
mod fuzz;
pub mod gateway;
pub mod metrics;
pub mod model;
mod serve;
pub mod store;
pub mod sync;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::api::AppState;
use crate::config::Config;
use crate::model::Catalog;
use crate::store::{Backend, SqlStore, Store, StoreError};
use crate::sync::{Follower, Published};

use crate::bootstrap::bootstrap_admins;
pub use crate::bootstrap::{bootstrap, recover_admin, GroupDeny, Recovery};

/// A built, bound, not yet serving Rolecall. Binding happens in [`App::build`], so a test
/// can read the port (bind to port 0) before anything runs.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    /// `[metrics] listen`'s listener and its `/metrics`-only router, when set.
    metrics: Option<(TcpListener, axum::Router)>,
    state: AppState,
    /// Follows the change log until the app stops (or keeps trying to start following it).
    sync: Syncing,
}

/// What keeps the snapshot current: sync, or, while the store has been unreachable since
/// start, the task that keeps trying to start it. Dropping it stops either.
enum Syncing {
    /// Held for its `Drop`, which stops sync's tasks.
    Following {
        _follower: Follower,
    },
    Starting(tokio::task::JoinHandle<()>),
}

impl Drop for Syncing {
    fn drop(&mut self) {
        if let Syncing::Starting(task) = self {
            task.abort();
        }
    }
}

/// The first wait between start attempts while the store is unreachable; it doubles up to
/// [`MAX_START_BACKOFF`].
const MIN_START_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between start attempts.
const MAX_START_BACKOFF: Duration = Duration::from_secs(5);

impl App {
    /// Connects the store, runs migrations and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with(config, decide::Wiring::default()).await
    }

    /// [`App::build`] with the decision layer's clock and decision hook chosen by the
    /// caller (tests move time instead of sleeping, and watch decisions).
    pub async fn build_with(config: Config, mut wiring: decide::Wiring) -> anyhow::Result<App> {
        let mut decision_log = None;
        if let Some(settings) = &config.decision_log {
            let log =
                Arc::new(decide::DecisionLog::start(settings).context("opening the decision log")?);
            wiring.hook = Arc::new(decide::Both(wiring.hook, log.clone()));
            decision_log = Some(log);
        }
        let catalog = Arc::new(Catalog::builtin().context("loading the built-in role catalog")?);
        let backend = config.database_url.backend();
        if backend == Backend::Sqlite {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "creating the data directory `{}`",
                    config.data_dir.display()
                )
            })?;
        }
        // SQLite opens its file here (a bad path fails at once); a PostgreSQL pool connects
        // on first use.
        let store = Arc::new(
            SqlStore::open_with(&config.database_url, catalog.clone(), config.store_pool)
                .await
                .context("connecting to the store")?,
        );
        let published = Arc::new(Published::unloaded(&catalog));
        let sync = match start(&store, &config, &catalog, &published).await {
            Ok(follower) => Syncing::Following {
                _follower: follower,
            },
            // PostgreSQL may come back: serve as not ready (`/readyz` 503, `/livez` 200)
            // and keep trying. SQLite has no outage to wait out.
            Err(error) if backend == Backend::Postgres && is_outage(&error) => {
                tracing::warn!(
                    attempt = 1,
                    retry_in = ?MIN_START_BACKOFF,
                    error = format!("{error:#}"),
                    "the store is unreachable; serving as not ready until it answers"
                );
                Syncing::Starting(tokio::spawn(keep_starting(
                    store.clone(),
                    config.clone(),
                    catalog.clone(),
                    published.clone(),
                )))
            }
            Err(error) => return Err(error),
        };
        let metrics = if config.metrics.enabled {
            let metrics =
                metrics::Metrics::start(config.metrics, store.pool().clone(), decision_log)
                    .context("starting metrics")?;
            wiring.hook = Arc::new(decide::Both(wiring.hook, metrics.decision_hook()));
            Some(Arc::new(metrics))
        } else {
            None
        };
        let store: Arc<dyn Store> = store;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics_listener = match config.metrics.listen.filter(|_| config.metrics.enabled) {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (`metrics.listen`)"))?,
            ),
            None => None,
        };
        let verifier = Arc::new(
            auth::Verifier::start_with(
                config.issuers.clone(),
                config.default_tenant,
                wiring.clock.clone(),
            )
            .context("starting the token verifier")?,
        );
        let state = AppState::new(store, published, config, verifier, wiring, metrics);
        let router = api::router(state.clone())?;
        let metrics = metrics_listener.map(|l| (l, api::metrics_router(state.clone())));
        Ok(App {
            listener,
            router,
            metrics,
            state,
            sync,
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of `[metrics] listen`, when set (the real port when it asked for
    /// port 0).
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
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
    ///
    /// While it serves, SIGHUP reloads `[gateway]` from the config file, when there is one.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = serve::Limits::from(self.state.config());
        let _reload = gateway::ReloadOnHangup::start(self.state.config().gateway.clone());
        let expiry = tokio::spawn(api::admin::pim::expire_activations(self.state.clone()));
        match self.metrics {
            None => serve::serve(self.listener, self.router, limits, shutdown).await,
            Some((listener, router)) => {
                // Both stop when `shutdown` resolves.
                let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
                tokio::join!(
                    serve::serve(self.listener, self.router, limits, shutdown.clone()),
                    serve::serve(listener, router, limits.for_metrics(), shutdown),
                );
            }
        }
        expiry.abort();
        drop(self.sync);
        Ok(())
    }
}

/// Migrates, gives the configured bootstrap admins their role (before the snapshot loads,
/// so the first decisions already see them), loads the snapshot into `published` and
/// starts following the change log.
async fn start(
    store: &Arc<SqlStore>,
    config: &Config,
    catalog: &Arc<Catalog>,
    published: &Arc<Published>,
) -> anyhow::Result<Follower> {
    store.migrate().await.context("running migrations")?;
    bootstrap_admins(store.as_ref(), config).await?;
    let follower = Follower::start(
        store.clone(),
        catalog.clone(),
        published.clone(),
        config.poll_interval,
    )
    .await
    .context("loading the decision snapshot")?;
    Ok(follower)
}

/// True when `error` comes from a store that could not be reached (worth retrying), not
/// from one that refused (bad credentials, a migration that does not match).
fn is_outage(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_outage)
    })
}

/// Retries [`start`] with backoff until it succeeds, logging each attempt, then keeps sync
/// running until aborted.
async fn keep_starting(
    store: Arc<SqlStore>,
    config: Config,
    catalog: Arc<Catalog>,
    published: Arc<Published>,
) {
    let mut backoff = MIN_START_BACKOFF;
    let mut attempt = 1u32;
    let _follower = loop {
        tokio::time::sleep(backoff).await;
        attempt = attempt.saturating_add(1);
        backoff = (backoff * 2).min(MAX_START_BACKOFF);
        match start(&store, &config, &catalog, &published).await {
            Ok(follower) => {
                tracing::info!(attempt, "the store answers: ready");
                break follower;
            }
            Err(error) if is_outage(&error) => tracing::warn!(
                attempt,
                retry_in = ?backoff,
                error = format!("{error:#}"),
                "the store is still unreachable"
            ),
            // The store answered but refused: that needs an operator. Keep trying (the
            // process cannot exit from here), loudly.
            Err(error) => tracing::error!(
                attempt,
                retry_in = ?backoff,
                error = format!("{error:#}"),
                "cannot start following the store"
            ),
        }
    };
    std::future::pending::<()>().await;
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
