//! Rolecall: an HTTP policy decision point modeled on Microsoft Entra ID custom roles and
//! Azure RBAC. See `DESIGN.md` for the concepts and `README.md` for running it.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
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
use crate::store::{SqlStore, Store};
use crate::sync::Sync;

/// A built, bound, not yet serving Rolecall. Binding happens in [`App::build`], so a test
/// can read the port (bind to port 0) before anything runs.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    /// Follows the change log until the app stops.
    sync: Sync,
}

impl App {
    /// Connects the store, runs migrations and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let catalog = Arc::new(Catalog::builtin().context("loading the built-in role catalog")?);
        let store_catalog = catalog.clone();
        if config.database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "creating the data directory `{}`",
                    config.data_dir.display()
                )
            })?;
        }
        let store = SqlStore::connect(&config.database_url, store_catalog)
            .await
            .context("connecting to the store")?;
        store.migrate().await.context("running migrations")?;
        let store: Arc<dyn Store> = Arc::new(store);
        // Before the snapshot loads, so the first decisions already see the admins.
        bootstrap_admins(store.as_ref(), &config).await?;
        let listen_url = Some(config.database_url.clone());
        let sync = Sync::start(store.clone(), catalog, config.poll_interval, listen_url)
            .await
            .context("loading the decision snapshot")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let verifier = Arc::new(
            auth::Verifier::start(config.issuers.clone(), config.default_tenant)
                .context("starting the token verifier")?,
        );
        let state = AppState::new(store, sync.directory.clone(), config, verifier);
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

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving http");
        drop(self.sync);
        served
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
        .create_role_assignment(tenant, &store::Actor(actor.to_owned()), new)
        .await?;
    Ok(true)
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
