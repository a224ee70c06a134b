//! Settings: defaults, then the TOML file, then `ROLECALL_*` environment variables, then
//! command-line flags. Everything is validated into typed values at start, and an error
//! names the bad key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{IssuerSettings, IssuerSpec};
use crate::decide::{DecisionLogSettings, LogTarget};
use crate::gateway::{Gateway, GatewayError, Routes};
use crate::metrics::MetricsSettings;
use crate::model::{Mapping, Mappings, TenantId};
use crate::store::{DatabaseUrl, PoolSettings};
use crate::telemetry::{LogFormat, OtelSettings};

/// The tenant admin-key calls act in when no `Rolecall-Tenant` header is sent.
pub const DEFAULT_TENANT: Uuid = Uuid::from_u128(1);
/// The shortest admin key accepted, in bytes.
pub const MIN_ADMIN_KEY_LEN: usize = 16;
/// `header_read_timeout_ms` unless configured: ample for any real client on any network, and
/// it bounds what a silent or trickling connection holds.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `body_read_timeout_ms` unless configured: a 1 MiB body (the default limit) needs only about
/// 100 KB/s, and a client that announced more than it sends is refused 408 well before the
/// handler's 30 s limit.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `max_import_bytes` unless configured: a million assignments export to about 250 MB.
pub const DEFAULT_MAX_IMPORT_BYTES: usize = 1 << 30;
/// `import_timeout_ms` unless configured.
pub const DEFAULT_IMPORT_TIMEOUT: Duration = Duration::from_secs(600);
/// `idle_timeout_ms` unless configured: longer than the pools that keep connections to
/// Rolecall open (AWS ALB 60 s, nginx upstream keep-alive 60 s, reqwest/hyper and Go 90 s),
/// so they, not Rolecall, close an idle connection and never send on one just closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// `max_connections` unless configured and unless the open-files limit calls for fewer.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
/// File descriptors left for everything but client connections (the store pool of at most 16,
/// SQLite's files, token-key fetches, the listener, logs) when `max_connections` is derived
/// from the open-files limit; at most half the limit.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 128;
/// The longest timeout accepted, so a deadline never overflows: a day.
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("config file `{path}` is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key).
        message: String,
    },
    /// One setting has a bad value.
    #[error("invalid `{key}`: {message}")]
    Invalid {
        /// The setting's name (file key or environment variable).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// One `[[authzen.mappings]]` entry is invalid.
    #[error("invalid `authzen.mappings[{index}]`: {message}")]
    Mapping {
        /// Its position in the file (0-based).
        index: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// One `[[auth.issuers]]` entry is invalid.
    #[error("invalid `auth.issuers[{index}]`: {message}")]
    Issuer {
        /// Its position in the file (0-based).
        index: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The `[gateway]` table is invalid (the message names the key, or both rules of a
    /// conflict).
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The dev signing key could not be created or read.
    #[error("cannot use the dev signing key: {0:#}")]
    DevKey(anyhow::Error),
    /// The dev admin key file could not be created or read.
    #[error("cannot use the dev admin key file `{path}`: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The admin key. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only to compare or print it deliberately.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The config file's shape; unknown keys are errors, so a typo never goes unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// `listen = "127.0.0.1:8080"`.
    pub listen: Option<String>,
    /// `data_dir = "./.rolecall"`.
    pub data_dir: Option<PathBuf>,
    /// `database_url = "postgres://..."` or `"sqlite://..."`.
    pub database_url: Option<String>,
    /// `admin_key = "..."` (prefer the environment).
    pub admin_key: Option<String>,
    /// `default_tenant = "<uuid>"`.
    pub default_tenant: Option<String>,
    /// `log = "info,rolecall=debug"` (tracing filter).
    pub log: Option<String>,
    /// `log_format = "auto"`, `"json"` or `"pretty"`.
    pub log_format: Option<String>,
    /// `poll_interval_ms = 1000`: how often sync polls `changes` besides NOTIFY.
    pub poll_interval_ms: Option<u64>,
    /// `consistency_timeout_ms = 2000`: how long a read waits for a revision.
    pub consistency_timeout_ms: Option<u64>,
    /// `max_batch_checks = 1000`: items allowed in one batch check.
    pub max_batch_checks: Option<usize>,
    /// `max_body_bytes = 1048576`.
    pub max_body_bytes: Option<usize>,
    /// `max_import_bytes = 1073741824`: the largest directory file `POST /v1/import` takes.
    pub max_import_bytes: Option<u64>,
    /// `import_timeout_ms = 600000`: how long one import (its body's arrival included) or
    /// export may take (other requests have 30 s).
    pub import_timeout_ms: Option<u64>,
    /// `header_read_timeout_ms = 10000`: how long a connection may take to send a request's
    /// head (the first request's from accept, a later one's from its first byte).
    pub header_read_timeout_ms: Option<u64>,
    /// `idle_timeout_ms = 120000`: how long a keep-alive connection may wait between requests.
    pub idle_timeout_ms: Option<u64>,
    /// `body_read_timeout_ms = 10000`: how long a request body may take to arrive once the
    /// handler starts reading it.
    pub body_read_timeout_ms: Option<u64>,
    /// `max_connections = 10000`: connections served at once; more wait to be accepted.
    pub max_connections: Option<u64>,
    /// `store_acquire_timeout_ms = 1500`: how long a store call waits for a PostgreSQL
    /// connection, reconnecting included; a write during an outage answers 503 after it.
    pub store_acquire_timeout_ms: Option<u64>,
    /// `store_connect_timeout_ms = 1000`: how long one connection attempt outside the pool
    /// (sync's `LISTEN` connection) may take.
    pub store_connect_timeout_ms: Option<u64>,
    /// `store_statement_timeout_ms = 10000`: PostgreSQL's `statement_timeout` on pooled
    /// connections.
    pub store_statement_timeout_ms: Option<u64>,
    /// `max_staleness_ms = 30000`: beyond this long since the last successful sync, checks
    /// fail closed with 503 and `/readyz` says not ready. Off unless set.
    pub max_staleness_ms: Option<u64>,
    /// `[auth]`: trusted issuers and bootstrap admins.
    #[serde(default)]
    pub auth: AuthSettings,
    /// `[authzen]`: the public base URL and how AuthZEN entities map to Rolecall's.
    #[serde(default)]
    pub authzen: AuthzenSettings,
    /// `[gateway]`: route rules for forward-auth (`/v1/gateway/authorize`).
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// `[decision_log]`: one JSON line per sampled decision (off when absent).
    pub decision_log: Option<DecisionLogFileSettings>,
    /// `[otel]`: OpenTelemetry trace export (off when absent; needs `--features otel`).
    pub otel: Option<OtelFileSettings>,
    /// `[metrics]`: the Prometheus endpoint (on, on the main listener, when absent).
    #[serde(default)]
    pub metrics: MetricsFileSettings,
    /// `[console]`: the web console at `/console`.
    #[serde(default)]
    pub console: ConsoleFileSettings,
}

/// The `[console]` table.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFileSettings {
    /// `session_key = "..."`: seals console session cookies (32 bytes or more); replicas
    /// that share it share sessions. A random key per process when absent.
    pub session_key: Option<String>,
    /// `issuer = "https://login.example.com"`: sign in with OpenID Connect (authorization
    /// code with PKCE) at this issuer, found through its discovery document.
    pub issuer: Option<String>,
    /// `client_id = "rolecall-console"`: the console's client id at `issuer`.
    pub client_id: Option<String>,
    /// `scope = "openid api://rolecall/.default"`: the scopes asked for.
    pub scope: Option<String>,
}

/// OpenID Connect sign-in for the console.
#[derive(Debug, Clone)]
pub struct ConsoleOidc {
    /// Where the discovery document lives (`{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The console's (public) client id.
    pub client_id: String,
    /// The scopes asked for; the access token (else the id token) becomes the session's
    /// bearer credential, so it must be one `[[auth.issuers]]` accepts.
    pub scope: String,
}

impl std::fmt::Debug for ConsoleFileSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleFileSettings")
            .finish_non_exhaustive()
    }
}

/// The `[metrics]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFileSettings {
    /// `enabled = true`: record metrics and serve `/metrics`.
    pub enabled: Option<bool>,
    /// `listen = "127.0.0.1:9090"`: serve `/metrics` on this address instead of the main
    /// listener (which then answers it 404).
    pub listen: Option<String>,
}

/// The `[otel]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelFileSettings {
    /// `endpoint = "http://127.0.0.1:4318"`: the OTLP http/protobuf collector (required);
    /// `/v1/traces` is added unless the URL ends with it.
    pub endpoint: Option<String>,
    /// `service_name = "rolecall"`: the `service.name` resource attribute.
    pub service_name: Option<String>,
}

/// The `[decision_log]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogFileSettings {
    /// `path = "stdout"` or a file to append to (required).
    pub path: Option<String>,
    /// `sample_rate = 1.0`: the fraction of decisions logged, from 0 to 1.
    pub sample_rate: Option<f64>,
    /// `admin = false`: also log Rolecall's authorization of its own admin API.
    pub admin: Option<bool>,
    /// `capacity = 10000`: decisions queued for the writer at most; beyond, dropped and
    /// counted.
    pub capacity: Option<usize>,
}

/// The `[gateway]` table (reloaded on SIGHUP).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// `unmatched = "deny"` (default) or `"allow"`: what a request no rule matches gets.
    pub unmatched: Option<String>,
    /// `shared_secret = "..."`: when set, a gateway must send it in
    /// `X-Rolecall-Gateway-Secret`.
    pub shared_secret: Option<String>,
    /// `[[gateway.routes]]`; the most specific matching rule wins.
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
}

/// One `[[gateway.routes]]` rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// `"GET"`, `["GET", "HEAD"]` or `"*"`.
    pub method: MethodSetting,
    /// `/api/apps/{appId}/credentials`: `{name}` matches one segment, `{name*}` the rest.
    pub path: String,
    /// The action to check; may use the path's `{name}`s.
    pub action: String,
    /// The resource path to check it at; may use the path's placeholders.
    pub resource: String,
    /// Only requests for this host (port ignored).
    pub host: Option<String>,
}

/// `method = "GET"` or `method = ["GET", "POST"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MethodSetting {
    /// One method, or `*`.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The `[authzen]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzenSettings {
    /// `public_url = "https://pdp.example.com"`: the base URL the discovery document
    /// advertises (default: `http://` and the request's `Host`).
    pub public_url: Option<String>,
    /// `[[authzen.mappings]]`, first match wins.
    #[serde(default)]
    pub mappings: Vec<MappingSettings>,
}

/// One `[[authzen.mappings]]` rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// The AuthZEN `resource.type` it applies to, or `*`.
    pub resource_type: String,
    /// The resource path template (`{type}`, `{id}`); default `/{type}/{id}`.
    pub path: Option<String>,
    /// The action template (`{type}`, `{id}`, `{name}`); default the name when it holds
    /// `/`, else `{type}/{name}`.
    pub action: Option<String>,
}

/// The `[auth]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `[[auth.issuers]]`: token issuers whose tokens authenticate callers and subjects.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// `bootstrap_admins = ["<oid>"]`: principals given Privileged Role Administrator at `/`
    /// in `default_tenant` at start (idempotent).
    #[serde(default)]
    pub bootstrap_admins: Vec<String>,
}

/// Values from flags or the environment (clap reads both); `None` falls back to the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config` / `ROLECALL_CONFIG`.
    pub config: Option<PathBuf>,
    /// `--listen` / `ROLECALL_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `ROLECALL_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url` / `ROLECALL_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `ROLECALL_ADMIN_KEY` (never a flag: argv is visible to every local user).
    pub admin_key: Option<String>,
    /// `--default-tenant` / `ROLECALL_DEFAULT_TENANT`.
    pub default_tenant: Option<String>,
    /// `ROLECALL_LOG`.
    pub log: Option<String>,
    /// `--log-format` / `ROLECALL_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `--metrics-listen` / `ROLECALL_METRICS_LISTEN`.
    pub metrics_listen: Option<String>,
    /// `--dev`: generate and persist an admin key on first start.
    pub dev: bool,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Holds the SQLite file and the dev admin key.
    pub data_dir: PathBuf,
    /// The store; defaults to SQLite in `data_dir`.
    pub database_url: DatabaseUrl,
    /// The break-glass admin credential; off unless configured (or generated by `--dev`).
    pub admin_key: Option<Secret>,
    /// Trusted token issuers (in dev mode, the dev issuer too).
    pub issuers: Vec<IssuerSpec>,
    /// Principals given Privileged Role Administrator at `/` in `default_tenant` at start.
    pub bootstrap_admins: Vec<Uuid>,
    /// Where admin-key calls act without a `Rolecall-Tenant` header.
    pub default_tenant: TenantId,
    /// Tracing filter.
    pub log: String,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Where traces are exported, when configured (only in a build with `otel`).
    pub otel: Option<OtelSettings>,
    /// Sync's poll period (NOTIFY wakes it sooner on Postgres).
    pub poll_interval: Duration,
    /// How long `atLeast` and read-your-writes waits may take.
    pub consistency_timeout: Duration,
    /// Items allowed in one batch check.
    pub max_batch_checks: usize,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Largest directory file `POST /v1/import` accepts.
    pub max_import_bytes: usize,
    /// How long one import (its body's arrival included) or export may take.
    pub import_timeout: Duration,
    /// A connection is closed when a request head takes longer than this to arrive: the first
    /// request's counted from accept, a later one's from its first byte. No request is in
    /// flight then, so nothing is lost.
    pub header_read_timeout: Duration,
    /// A keep-alive connection is closed after this long with no request.
    pub idle_timeout: Duration,
    /// A request body must arrive within this of the handler's first read, else 408
    /// `request-timeout`. Below the handler's own limit, so a slow client is never
    /// reported as a store outage.
    pub body_read_timeout: Duration,
    /// Connections served at once. Beyond it Rolecall stops accepting: new connections wait
    /// in the kernel's accept queue, holding no file descriptor, until one ends.
    pub max_connections: u32,
    /// How PostgreSQL waits are bounded (acquire, connect, statement), so an outage answers
    /// `503 store-unavailable` within `acquire_timeout` instead of hanging.
    pub store_pool: PoolSettings,
    /// Beyond this long since the last successful sync, every request but the operations
    /// endpoints answers `503 not-ready` (fail closed) and `/readyz` says not ready. `None`:
    /// a replica keeps answering from its snapshot however old it grows.
    pub max_staleness: Option<Duration>,
    /// The base URL AuthZEN discovery advertises; `None`: from the request's `Host`.
    pub public_url: Option<String>,
    /// How AuthZEN resource types and action names map to paths and actions.
    pub authzen_mappings: Mappings,
    /// The gateway route rules, shared by every clone and reloaded on SIGHUP.
    pub gateway: Arc<Gateway>,
    /// The decision log, when configured.
    pub decision_log: Option<DecisionLogSettings>,
    /// Whether metrics are recorded, and where `/metrics` is served.
    pub metrics: MetricsSettings,
    /// Seals the web console's session cookies; `None`: a random key per process.
    pub console_session_key: Option<Secret>,
    /// The console's OpenID Connect sign-in, when configured.
    pub console_oidc: Option<ConsoleOidc>,
    /// Dev mode (generated admin key).
    pub dev: bool,
    /// Where the generated dev admin key lives, when `--dev` generated or reused one.
    pub dev_key_file: Option<PathBuf>,
}

/// Validates `[otel]`; a build without the `otel` feature refuses the table rather than
/// ignore it.
fn otel(file: OtelFileSettings) -> Result<OtelSettings, ConfigError> {
    if !cfg!(feature = "otel") {
        return Err(ConfigError::Invalid {
            key: "otel",
            message: "this binary was built without the `otel` feature (`cargo build \
                      --features otel`); remove the `[otel]` table or use a build with it"
                .to_owned(),
        });
    }
    let Some(endpoint) = file.endpoint else {
        return Err(ConfigError::Invalid {
            key: "otel.endpoint",
            message: "the OTLP collector's URL, e.g. `http://127.0.0.1:4318`".to_owned(),
        });
    };
    if file
        .service_name
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        return Err(ConfigError::Invalid {
            key: "otel.service_name",
            message: "is empty".to_owned(),
        });
    }
    OtelSettings::new(&endpoint, file.service_name).map_err(|message| ConfigError::Invalid {
        key: "otel.endpoint",
        message,
    })
}

/// Validates `[decision_log]`.
fn decision_log(file: DecisionLogFileSettings) -> Result<DecisionLogSettings, ConfigError> {
    let target = match file.path.as_deref() {
        None | Some("") => {
            return Err(ConfigError::Invalid {
                key: "decision_log.path",
                message: "`path` is `\"stdout\"` or a file to append to".to_owned(),
            })
        }
        Some("stdout") => LogTarget::Stdout,
        Some(path) => LogTarget::File(PathBuf::from(path)),
    };
    let sample_rate = file.sample_rate.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_rate) {
        return Err(ConfigError::Invalid {
            key: "decision_log.sample_rate",
            message: format!("a fraction from 0 to 1; got {sample_rate}"),
        });
    }
    let capacity = file.capacity.unwrap_or(10_000);
    if capacity == 0 {
        return Err(ConfigError::Invalid {
            key: "decision_log.capacity",
            message: "at least 1".to_owned(),
        });
    }
    Ok(DecisionLogSettings {
        target,
        sample_rate,
        admin: file.admin.unwrap_or(false),
        capacity,
    })
}

/// Validates `[metrics]` (`listen` possibly from the environment) against the main `listen`.
fn metrics(
    file: MetricsFileSettings,
    listen_override: Option<String>,
    main: SocketAddr,
) -> Result<MetricsSettings, ConfigError> {
    let enabled = file.enabled.unwrap_or(true);
    let listen = match listen_override.or(file.listen) {
        None => None,
        Some(raw) => Some(
            raw.parse::<SocketAddr>()
                .map_err(|_| ConfigError::Invalid {
                    key: "metrics.listen",
                    message: format!("`{raw}` is not a socket address like 127.0.0.1:9090"),
                })?,
        ),
    };
    if let Some(listen) = listen {
        if !enabled {
            return Err(ConfigError::Invalid {
                key: "metrics.listen",
                message: "set while `metrics.enabled` is false; drop one of them".to_owned(),
            });
        }
        if listen == main && listen.port() != 0 {
            return Err(ConfigError::Invalid {
                key: "metrics.listen",
                message: format!(
                    "`{listen}` is the main `listen` address; leave `metrics.listen` unset to \
                     serve `/metrics` there"
                ),
            });
        }
    }
    Ok(MetricsSettings { enabled, listen })
}

impl Config {
    /// Layers defaults, the file named by `overrides.config`, and the overrides.
    pub fn load(overrides: Overrides) -> Result<Config, ConfigError> {
        let file = match &overrides.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        Self::resolve(file, overrides)
    }

    /// Validates the merged settings.
    pub fn resolve(file: FileSettings, o: Overrides) -> Result<Config, ConfigError> {
        let listen_raw = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_raw.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("`{listen_raw}` is not a socket address like 127.0.0.1:8080"),
        })?;
        let data_dir = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./.rolecall"));
        let database_url = match o.database_url.or(file.database_url) {
            Some(url) => DatabaseUrl::parse(&url).map_err(|error| ConfigError::Invalid {
                key: "database_url",
                message: error.to_string(),
            })?,
            None => DatabaseUrl::sqlite_file(&data_dir.join("rolecall.db")),
        };
        let default_tenant = match o.default_tenant.or(file.default_tenant) {
            Some(raw) => TenantId(Uuid::parse_str(&raw).map_err(|_| ConfigError::Invalid {
                key: "default_tenant",
                message: format!("`{raw}` is not a uuid"),
            })?),
            None => TenantId(DEFAULT_TENANT),
        };
        let mut dev_key_file = None;
        let admin_key = match o.admin_key.or(file.admin_key) {
            Some(key) => Some(Secret::new(key)),
            None if o.dev => {
                dev_key_file = Some(data_dir.join("admin-key"));
                Some(dev_admin_key(&data_dir)?)
            }
            None => None,
        };
        if admin_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < MIN_ADMIN_KEY_LEN)
        {
            return Err(ConfigError::Invalid {
                key: "admin_key",
                message: format!("an admin key is at least {MIN_ADMIN_KEY_LEN} bytes"),
            });
        }
        let mut issuers = file
            .auth
            .issuers
            .into_iter()
            .enumerate()
            .map(|(index, settings)| {
                IssuerSpec::from_settings(settings)
                    .map_err(|message| ConfigError::Issuer { index, message })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if o.dev {
            let key =
                crate::auth::dev::DevKey::load_or_create(&data_dir).map_err(ConfigError::DevKey)?;
            issuers.push(key.issuer());
        }
        if admin_key.is_none() && issuers.is_empty() {
            return Err(ConfigError::Invalid {
                key: "auth.issuers",
                message: "nothing can authenticate: configure `[[auth.issuers]]`, or set ROLECALL_ADMIN_KEY (break-glass), or run with --dev".to_owned(),
            });
        }
        let bootstrap_admins = file
            .auth
            .bootstrap_admins
            .iter()
            .map(|raw| {
                Uuid::parse_str(raw).map_err(|_| ConfigError::Invalid {
                    key: "auth.bootstrap_admins",
                    message: format!("`{raw}` is not a uuid"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let positive = |key: &'static str, value: Option<u64>, default: u64| match value {
            Some(0) => Err(ConfigError::Invalid {
                key,
                message: "must be greater than 0".to_owned(),
            }),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let poll_interval_ms = positive("poll_interval_ms", file.poll_interval_ms, 1000)?;
        let consistency_timeout_ms =
            positive("consistency_timeout_ms", file.consistency_timeout_ms, 2000)?;
        let max_batch_checks = positive(
            "max_batch_checks",
            file.max_batch_checks.map(|v| v as u64),
            1000,
        )? as usize;
        let max_body_bytes = positive(
            "max_body_bytes",
            file.max_body_bytes.map(|v| v as u64),
            1 << 20,
        )? as usize;
        let timeout = |key: &'static str, value: Option<u64>, default: Duration| {
            let ms = positive(key, value, default.as_millis() as u64)?;
            if ms > MAX_TIMEOUT_MS {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("must be at most {MAX_TIMEOUT_MS} (a day)"),
                });
            }
            Ok(Duration::from_millis(ms))
        };
        let header_read_timeout = timeout(
            "header_read_timeout_ms",
            file.header_read_timeout_ms,
            DEFAULT_HEADER_READ_TIMEOUT,
        )?;
        let idle_timeout = timeout(
            "idle_timeout_ms",
            file.idle_timeout_ms,
            DEFAULT_IDLE_TIMEOUT,
        )?;
        let max_import_bytes = positive(
            "max_import_bytes",
            file.max_import_bytes,
            DEFAULT_MAX_IMPORT_BYTES as u64,
        )?;
        let max_import_bytes =
            usize::try_from(max_import_bytes).map_err(|_| ConfigError::Invalid {
                key: "max_import_bytes",
                message: format!("must be at most {}", usize::MAX),
            })?;
        let import_timeout = timeout(
            "import_timeout_ms",
            file.import_timeout_ms,
            DEFAULT_IMPORT_TIMEOUT,
        )?;
        let body_read_timeout = timeout(
            "body_read_timeout_ms",
            file.body_read_timeout_ms,
            DEFAULT_BODY_READ_TIMEOUT,
        )?;
        if body_read_timeout >= crate::api::REQUEST_TIMEOUT {
            return Err(ConfigError::Invalid {
                key: "body_read_timeout_ms",
                message: format!(
                    "must be below the {:?} a request may take",
                    crate::api::REQUEST_TIMEOUT
                ),
            });
        }
        let defaults = PoolSettings::default();
        let store_pool = PoolSettings {
            acquire_timeout: timeout(
                "store_acquire_timeout_ms",
                file.store_acquire_timeout_ms,
                defaults.acquire_timeout,
            )?,
            connect_timeout: timeout(
                "store_connect_timeout_ms",
                file.store_connect_timeout_ms,
                defaults.connect_timeout,
            )?,
            statement_timeout: timeout(
                "store_statement_timeout_ms",
                file.store_statement_timeout_ms,
                defaults.statement_timeout,
            )?,
        };
        let max_staleness = match file.max_staleness_ms {
            None => None,
            Some(ms) => {
                let max = timeout("max_staleness_ms", Some(ms), Duration::ZERO)?;
                // A healthy replica syncs once a poll interval at least: a bound at or below
                // it would take replicas out of service for no outage at all.
                if ms <= poll_interval_ms {
                    return Err(ConfigError::Invalid {
                        key: "max_staleness_ms",
                        message: format!(
                            "must be greater than poll_interval_ms ({poll_interval_ms}); \
                             several poll intervals is sensible"
                        ),
                    });
                }
                Some(max)
            }
        };
        let max_connections = match file.max_connections {
            None => default_max_connections(open_files_limit()),
            Some(value) => {
                let value = positive("max_connections", Some(value), 0)?;
                u32::try_from(value).map_err(|_| ConfigError::Invalid {
                    key: "max_connections",
                    message: format!("must be at most {}", u32::MAX),
                })?
            }
        };
        let public_url = match file.authzen.public_url {
            None => None,
            Some(raw) => Some(public_url(&raw).map_err(|message| ConfigError::Invalid {
                key: "authzen.public_url",
                message,
            })?),
        };
        let authzen_mappings = Mappings::new(
            file.authzen
                .mappings
                .iter()
                .enumerate()
                .map(|(index, m)| {
                    Mapping::new(&m.resource_type, m.path.as_deref(), m.action.as_deref())
                        .map_err(|message| ConfigError::Mapping { index, message })
                })
                .collect::<Result<Vec<_>, _>>()?,
        );
        let gateway = Arc::new(Gateway::new(Routes::new(&file.gateway)?, o.config.clone()));
        let decision_log = file.decision_log.map(decision_log).transpose()?;
        let console_session_key = match file.console.session_key {
            Some(key) if key.len() < 32 => {
                return Err(ConfigError::Invalid {
                    key: "console.session_key",
                    message: "a session key is at least 32 bytes".to_owned(),
                })
            }
            key => key.map(Secret::new),
        };
        let console_oidc = match (file.console.issuer, file.console.client_id) {
            (None, None) => None,
            (Some(issuer), Some(client_id)) => {
                if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                    return Err(ConfigError::Invalid {
                        key: "console.issuer",
                        message: format!("`{issuer}` is not an http(s) URL"),
                    });
                }
                Some(ConsoleOidc {
                    issuer: issuer.trim_end_matches('/').to_owned(),
                    client_id,
                    scope: file.console.scope.unwrap_or_else(|| "openid".to_owned()),
                })
            }
            _ => {
                return Err(ConfigError::Invalid {
                    key: "console.issuer",
                    message: "set both `issuer` and `client_id`, or neither".to_owned(),
                })
            }
        };
        let log_format = match o.log_format.or(file.log_format) {
            None => LogFormat::default(),
            Some(raw) => raw.parse().map_err(|message| ConfigError::Invalid {
                key: "log_format",
                message,
            })?,
        };
        let otel = file.otel.map(otel).transpose()?;
        let metrics = metrics(file.metrics, o.metrics_listen, listen)?;
        Ok(Config {
            listen,
            data_dir,
            database_url,
            admin_key,
            issuers,
            bootstrap_admins,
            default_tenant,
            log: o.log.or(file.log).unwrap_or_else(|| "info".to_owned()),
            log_format,
            otel,
            poll_interval: Duration::from_millis(poll_interval_ms),
            consistency_timeout: Duration::from_millis(consistency_timeout_ms),
            max_batch_checks,
            max_body_bytes,
            max_import_bytes,
            import_timeout,
            header_read_timeout,
            idle_timeout,
            body_read_timeout,
            max_connections,
            store_pool,
            max_staleness,
            public_url,
            authzen_mappings,
            gateway,
            decision_log,
            metrics,
            console_session_key,
            console_oidc,
            dev: o.dev,
            dev_key_file,
        })
    }

    /// Settings for tests and embedding: the given database URL (panics unless it is a
    /// `postgres://`, `postgresql://` or `sqlite:` one), port 0, a fixed key.
    pub fn for_tests(database_url: String, admin_key: &str) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::from("."),
            database_url: DatabaseUrl::parse(&database_url)
                .unwrap_or_else(|error| panic!("`database_url`: {error}")),
            admin_key: Some(Secret::new(admin_key)),
            issuers: Vec::new(),
            bootstrap_admins: Vec::new(),
            default_tenant: TenantId(DEFAULT_TENANT),
            log: "info".to_owned(),
            log_format: LogFormat::default(),
            otel: None,
            poll_interval: Duration::from_millis(1000),
            consistency_timeout: Duration::from_millis(2000),
            max_batch_checks: 1000,
            max_body_bytes: 1 << 20,
            max_import_bytes: DEFAULT_MAX_IMPORT_BYTES,
            import_timeout: DEFAULT_IMPORT_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            store_pool: PoolSettings::default(),
            max_staleness: None,
            public_url: None,
            authzen_mappings: Mappings::default(),
            gateway: Arc::new(Gateway::default()),
            decision_log: None,
            metrics: MetricsSettings::default(),
            console_session_key: None,
            console_oidc: None,
            dev: false,
            dev_key_file: None,
        }
    }
}

/// `max_connections` unless configured: [`DEFAULT_MAX_CONNECTIONS`], or fewer when the
/// open-files limit would run out first, so the cap (not `accept` failing with EMFILE) is
/// what turns connections away and the store can still open its own.
fn default_max_connections(open_files_limit: Option<u64>) -> u32 {
    match open_files_limit {
        Some(limit) => {
            let reserved = RESERVED_FILE_DESCRIPTORS.min(limit / 2);
            // Lossless: clamped to a u32 constant.
            (limit - reserved).clamp(1, u64::from(DEFAULT_MAX_CONNECTIONS)) as u32
        }
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// This process's soft open-files limit (`ulimit -n`), read from `/proc/self/limits`; `None`
/// where there is no such file (not Linux) or the limit is `unlimited`.
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// An absolute `http(s)` URL with no query or fragment, without its trailing `/`.
fn public_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("`{raw}` is not an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{raw}` has a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The `[gateway]` table of the config file at `path`, validated: what a reload swaps in.
pub fn read_gateway(path: &Path) -> Result<Routes, ConfigError> {
    Ok(Routes::new(&read_file(path)?.gateway)?)
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Reads `data_dir/admin-key`, creating it (mode 0600, 32 random bytes) on first start.
fn dev_admin_key(data_dir: &Path) -> Result<Secret, ConfigError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;

    let path = data_dir.join("admin-key");
    let fail = |source| ConfigError::KeyFile {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok(Secret::new(key.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| fail(std::io::Error::other("the system random source failed")))?;
    let key = format!(
        "rc_dev_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(fail)?;
    std::io::Write::write_all(&mut file, key.as_bytes()).map_err(fail)?;
    Ok(Secret::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> Overrides {
        Overrides {
            admin_key: Some("0123456789abcdef".to_owned()),
            ..Overrides::default()
        }
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file: FileSettings =
            toml::from_str("listen = \"127.0.0.1:9000\"\nlog = \"debug\"").unwrap();
        let config = Config::resolve(
            file,
            Overrides {
                listen: Some("127.0.0.1:9001".to_owned()),
                ..overrides()
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.log, "debug");
        assert_eq!(config.database_url.backend(), crate::store::Backend::Sqlite);
        assert_eq!(config.default_tenant, TenantId(DEFAULT_TENANT));
    }

    #[test]
    fn an_unknown_file_key_is_an_error_naming_it() {
        let err = toml::from_str::<FileSettings>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::resolve(
            FileSettings::default(),
            Overrides {
                listen: Some("nowhere".to_owned()),
                ..overrides()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`listen`"), "{err}");
        let err = Config::resolve(FileSettings::default(), Overrides::default()).unwrap_err();
        assert!(
            err.to_string().contains("nothing can authenticate"),
            "{err}"
        );
        let err = Config::resolve(
            FileSettings::default(),
            Overrides {
                admin_key: Some("short".to_owned()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least"), "{err}");
    }

    #[test]
    fn store_timeouts_and_the_staleness_bound_are_settings() {
        let config = Config::resolve(FileSettings::default(), overrides()).unwrap();
        assert_eq!(config.store_pool, PoolSettings::default());
        assert!(config.store_pool.acquire_timeout <= Duration::from_secs(2));
        assert_eq!(config.max_staleness, None, "off by default");
        let file: FileSettings = toml::from_str(
            "store_acquire_timeout_ms = 700\nstore_connect_timeout_ms = 300\n\
             store_statement_timeout_ms = 4000\nmax_staleness_ms = 5000",
        )
        .unwrap();
        let config = Config::resolve(file, overrides()).unwrap();
        assert_eq!(
            config.store_pool,
            PoolSettings {
                acquire_timeout: Duration::from_millis(700),
                connect_timeout: Duration::from_millis(300),
                statement_timeout: Duration::from_millis(4000),
            }
        );
        assert_eq!(config.max_staleness, Some(Duration::from_secs(5)));
        for (text, key) in [
            ("store_acquire_timeout_ms = 0", "store_acquire_timeout_ms"),
            ("max_staleness_ms = 1000", "max_staleness_ms"),
            ("max_staleness_ms = 0", "max_staleness_ms"),
        ] {
            let file: FileSettings = toml::from_str(text).unwrap();
            let err = Config::resolve(file, overrides()).unwrap_err();
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    fn the_documented_issuer_shape_parses_and_validates() {
        let text = r#"
default_tenant = "6f9a1c3e-0000-4000-8000-000000000001"
[[auth.issuers]]
issuer = "https://login.microsoftonline.com/{tid}/v2.0"
audiences = ["api://rolecall"]
jwks_uri = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
algorithms = ["RS256", "ES256", "EdDSA"]
trust_wids = true
leeway_seconds = 60
allowed_tenants = []
"#;
        let file: FileSettings = toml::from_str(text).expect("the README's shape parses");
        let config = Config::resolve(file, Overrides::default()).expect("valid without a key");
        assert!(
            config.admin_key.is_none(),
            "the admin key is off unless configured"
        );
        assert_eq!(config.issuers.len(), 1);
        assert!(config.issuers[0].trust_wids);
        assert_eq!(
            config.default_tenant.0.to_string(),
            "6f9a1c3e-0000-4000-8000-000000000001"
        );
        let bad = r#"
[[auth.issuers]]
issuer = "https://idp.example"
audiences = ["a"]
jwks_uri = "https://idp.example/keys"
algorithms = ["HS256"]
"#;
        let file: FileSettings = toml::from_str(bad).expect("parses");
        let err = Config::resolve(file, overrides()).unwrap_err();
        assert!(err.to_string().contains("auth.issuers[0]"), "{err}");
        let typo = toml::from_str::<FileSettings>("[[auth.issuers]]\nisuer = \"x\"").unwrap_err();
        assert!(typo.to_string().contains("isuer"), "{typo}");
    }

    #[test]
    fn the_gateway_table_is_validated_at_start_naming_the_key() {
        let text = r#"
[gateway]
unmatched = "deny"
[[gateway.routes]]
method = "GET"
path = "/api/apps/{appId}/credentials"
action = "contoso.apps/credentials/read"
resource = "/applications/{appId}"
host = "api.contoso.test"
"#;
        let file: FileSettings = toml::from_str(text).expect("the README's shape parses");
        let config = Config::resolve(file, overrides()).expect("valid");
        assert_eq!(config.gateway.routes().len(), 1);
        assert!(!config.gateway.reloadable(), "no file, nothing to reload");
        let bad = text.replace("{appId}\"\nhost", "{app}\"\nhost");
        let file: FileSettings = toml::from_str(&bad).expect("parses");
        let err = Config::resolve(file, overrides()).unwrap_err();
        assert!(err.to_string().contains("gateway.routes[0]"), "{err}");
        let typo = toml::from_str::<FileSettings>("[[gateway.routes]]\nmethd = \"GET\"");
        assert!(typo.unwrap_err().to_string().contains("methd"));
    }

    #[test]
    fn the_metrics_table_is_validated_naming_the_key() {
        let config = Config::resolve(FileSettings::default(), overrides()).unwrap();
        assert_eq!(config.metrics, MetricsSettings::default());
        assert!(config.metrics.enabled, "on by default");
        assert_eq!(
            config.metrics.listen, None,
            "on the main listener by default"
        );
        let file: FileSettings =
            toml::from_str("[metrics]\nenabled = true\nlisten = \"127.0.0.1:9090\"").unwrap();
        let config = Config::resolve(file, overrides()).unwrap();
        assert_eq!(config.metrics.listen.map(|a| a.port()), Some(9090));
        let file: FileSettings = toml::from_str("[metrics]\nlisten = \"127.0.0.1:9090\"").unwrap();
        let config = Config::resolve(
            file,
            Overrides {
                metrics_listen: Some("127.0.0.1:9091".to_owned()),
                ..overrides()
            },
        )
        .unwrap();
        assert_eq!(
            config.metrics.listen.map(|a| a.port()),
            Some(9091),
            "the environment overrides the file"
        );
        let file: FileSettings = toml::from_str("[metrics]\nenabled = false").unwrap();
        let config = Config::resolve(file, overrides()).unwrap();
        assert!(!config.metrics.enabled);
        for text in [
            "[metrics]\nlisten = \"nowhere\"",
            "[metrics]\nenabled = false\nlisten = \"127.0.0.1:9090\"",
            "listen = \"127.0.0.1:9090\"\n[metrics]\nlisten = \"127.0.0.1:9090\"",
        ] {
            let file: FileSettings = toml::from_str(text).unwrap();
            let err = Config::resolve(file, overrides()).unwrap_err();
            assert!(
                err.to_string().contains("`metrics.listen`"),
                "{text}: {err}"
            );
        }
        let typo = toml::from_str::<FileSettings>("[metrics]\nenable = true").unwrap_err();
        assert!(typo.to_string().contains("enable"), "{typo}");
    }

    #[test]
    fn the_connection_cap_leaves_file_descriptors_for_the_store() {
        assert_eq!(default_max_connections(None), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(default_max_connections(Some(1024)), 1024 - 128);
        assert_eq!(default_max_connections(Some(100)), 50);
        assert_eq!(default_max_connections(Some(0)), 1);
    }

    #[test]
    fn dev_mode_generates_a_key_once_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("rolecall-config-{}", Uuid::new_v4()));
        let dev = || Overrides {
            data_dir: Some(dir.clone()),
            dev: true,
            ..Overrides::default()
        };
        let first = Config::resolve(FileSettings::default(), dev()).unwrap();
        let second = Config::resolve(FileSettings::default(), dev()).unwrap();
        assert_eq!(first.admin_key, second.admin_key);
        assert!(first
            .admin_key
            .is_some_and(|k| k.expose().len() >= MIN_ADMIN_KEY_LEN));
        assert_eq!(first.issuers.len(), 1, "dev mode trusts the dev issuer");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
