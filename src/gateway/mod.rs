//! Gateways delegate each request (DESIGN §4): `[gateway]` route rules map a request's
//! method, path and host to an action and a resource path, which `/v1/gateway/authorize`
//! (nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth, Envoy ext_authz) and
//! AuthZEN's `route` resources decide through the decision layer.
//!
//! Pure apart from [`Gateway::reload`], which reads the config file: no axum here. The rules
//! live in an [`ArcSwap`], so a reload (SIGHUP) swaps the whole table at once and a request
//! in flight finishes with the table it started with.

mod path;
mod rules;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use path::{normalize, PathError, MAX_URI_LEN};
pub use rules::{GatewayError, ResolveError, Routes, Target, Unmatched};

/// The live `[gateway]` settings of one app, reloadable.
#[derive(Debug, Default)]
pub struct Gateway {
    routes: ArcSwap<Routes>,
    /// Where a reload reads from; `None`: settings did not come from a file, so there is
    /// nothing to reload.
    config_file: Option<PathBuf>,
}

/// Why a reload kept the old rules.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Settings did not come from a file.
    #[error("no config file was given at start, so there is nothing to reload")]
    NoConfigFile,
    /// The file is unreadable, not TOML, or its `[gateway]` is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Gateway {
    /// Starts with `routes`, reloading from `config_file` when asked.
    pub fn new(routes: Routes, config_file: Option<PathBuf>) -> Gateway {
        Gateway {
            routes: ArcSwap::from_pointee(routes),
            config_file,
        }
    }

    /// The rules now in force: one atomic load, kept by the caller for the whole request.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    /// Replaces the rules; requests in flight keep the ones they loaded.
    pub fn replace(&self, routes: Routes) {
        self.routes.store(Arc::new(routes));
    }

    /// Reads `[gateway]` from the config file again and, when every rule validates, swaps
    /// it in. On any error the old rules stay. Only `[gateway]` is reloaded: other settings
    /// take a restart.
    pub fn reload(&self) -> Result<Arc<Routes>, ReloadError> {
        let path = self
            .config_file
            .as_deref()
            .ok_or(ReloadError::NoConfigFile)?;
        let routes = Arc::new(crate::config::read_gateway(path)?);
        self.routes.store(routes.clone());
        Ok(routes)
    }

    /// Whether [`Gateway::reload`] has a file to read.
    pub fn reloadable(&self) -> bool {
        self.config_file.is_some()
    }
}

/// Reloads `gateway` on each SIGHUP until dropped, logging the outcome; a bad file keeps the
/// old rules. Nothing is installed when the settings came from no file, so SIGHUP keeps its
/// default meaning (terminate) there.
pub struct ReloadOnHangup(Option<tokio::task::JoinHandle<()>>);

impl ReloadOnHangup {
    /// Starts listening (on Unix; elsewhere it does nothing).
    pub fn start(gateway: Arc<Gateway>) -> ReloadOnHangup {
        if !gateway.reloadable() {
            return ReloadOnHangup(None);
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP; gateway routes will not reload");
                    return ReloadOnHangup(None);
                }
            };
            ReloadOnHangup(Some(tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    // The file is small and read once per signal.
                    match gateway.reload() {
                        Ok(routes) => {
                            tracing::info!(rules = routes.len(), "gateway routes reloaded")
                        }
                        Err(error) => tracing::error!(
                            error = %error,
                            "gateway routes not reloaded; the previous rules stay in force"
                        ),
                    }
                }
            })))
        }
        #[cfg(not(unix))]
        ReloadOnHangup(None)
    }
}

impl Drop for ReloadOnHangup {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
