//! Rolecall: an HTTP policy decision point modeled on Microsoft Entra ID custom roles and
//! Azure RBAC. See `DESIGN.md` for the concepts and `README.md` for running it.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod bootstrap;
pub mod config;
pub mod decide;
pub mod engine;
#[cfg(test)]
mod fuzz;
pub mod gateway;
pub mod model;
mod serve;
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

use crate::bootstrap::bootstrap_admins;
pub use crate::bootstrap::{bootstrap, recover_admin, GroupDeny, Recovery};

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
    ///
    /// While it serves, SIGHUP reloads `[gateway]` from the config file, when there is one.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = serve::Limits::from(self.state.config());
        let _reload = gateway::ReloadOnHangup::start(self.state.config().gateway.clone());
        serve::serve(self.listener, self.router, limits, shutdown).await;
        drop(self.sync);
        Ok(())
    }
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
