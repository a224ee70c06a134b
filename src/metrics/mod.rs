//! `/metrics`: this app's counters, gauges and histograms in Prometheus' text format
//! (`docs/metrics.md` lists every series).
//!
//! Each [`App`](crate::App) has its own recorder, built with
//! [`PrometheusBuilder::build_recorder`] and never installed as the process's global one:
//! series are registered on it directly and their handles kept. So a scrape describes
//! exactly the app that answers it: two apps in one process (the integration tests start
//! dozens) neither add up their counters nor overwrite each other's gauges (a snapshot
//! revision, a pool's size), and nothing needs a process-wide `OnceLock`. The cost is that
//! the `metrics::counter!` macros, which write to the global recorder, are not used: code
//! that records holds a handle from here instead.
//!
//! The request path touches only cached handles: an HTTP request costs two hash lookups
//! (its route template, then nothing more for a status already seen), one counter
//! increment and one histogram sample; a decision one counter increment and one sample.
//! Everything else (snapshot, sync, token keys, store pool, decision-log drops) is kept by
//! its own component in atomics and copied into gauges and counters when scraped.

mod http;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::MatchedPath;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sqlx::AnyPool;

use crate::api::AppState;
use crate::decide::{DecisionHook, DecisionLog, DecisionRecord, Purpose};

pub(crate) use http::HttpMetricsLayer;

/// The `[metrics]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Record and serve metrics at all (`enabled = true` unless configured).
    pub enabled: bool,
    /// Serve `/metrics` on this address instead of the main listener; `None`: on the main
    /// listener.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            listen: None,
        }
    }
}

/// The media type of Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route label of a request no route matched: a fixed value, so scanners probing
/// random paths cannot grow the number of series.
pub const UNMATCHED: &str = "unmatched";

/// How often histogram samples are folded into their buckets when nobody scrapes (a scrape
/// folds them too): bounds the memory samples take between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How long a scrape waits for the store's latest revision (for the lag in revisions)
/// before leaving that gauge as it was: a scrape must answer during a store outage.
const STORE_REVISION_TIMEOUT: Duration = Duration::from_millis(500);

/// What a series is, for `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (reset by a restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Samples in buckets, with their sum and count.
    Histogram,
}

/// One series family: its name, kind, labels and meaning (its `# HELP`). `docs/metrics.md`
/// documents exactly these; a test holds the two together.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// The name, `rolecall_`-prefixed.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// What it measures.
    pub help: &'static str,
}

const HTTP_REQUESTS: &str = "rolecall_http_requests_total";
const HTTP_DURATION: &str = "rolecall_http_request_duration_seconds";
const DECISIONS: &str = "rolecall_decisions_total";
const CHECK_DURATION: &str = "rolecall_check_duration_seconds";
const SNAPSHOT_REVISION: &str = "rolecall_snapshot_revision";
const SNAPSHOT_LOADED: &str = "rolecall_snapshot_loaded";
const LAG_REVISIONS: &str = "rolecall_snapshot_lag_revisions";
const LAG_SECONDS: &str = "rolecall_snapshot_lag_seconds";
const STORE_REACHABLE: &str = "rolecall_store_reachable";
const SYNC_RELOADS: &str = "rolecall_sync_reloads_total";
const SYNC_ERRORS: &str = "rolecall_sync_errors_total";
const JWKS_REFRESHES: &str = "rolecall_jwks_refreshes_total";
const JWKS_FAILURES: &str = "rolecall_jwks_refresh_failures_total";
const POOL_CONNECTIONS: &str = "rolecall_db_pool_connections";
const POOL_IDLE: &str = "rolecall_db_pool_idle_connections";
const POOL_IN_USE: &str = "rolecall_db_pool_in_use_connections";
const POOL_MAX: &str = "rolecall_db_pool_max_connections";
const DECISION_LOG_DROPPED: &str = "rolecall_decision_log_dropped_total";

/// Every series this app exports.
pub const SERIES: &[Series] = &[
    Series {
        name: HTTP_REQUESTS,
        kind: Kind::Counter,
        labels: &["method", "route", "status"],
        help: "HTTP requests answered, by method, matched route template and status",
    },
    Series {
        name: HTTP_DURATION,
        kind: Kind::Histogram,
        labels: &["method", "route", "status"],
        help: "Time from a request reaching the router to its response head, in seconds",
    },
    Series {
        name: DECISIONS,
        kind: Kind::Counter,
        labels: &["endpoint", "purpose", "result"],
        help: "Decisions taken, by route, purpose (check or admin) and result (allow or deny)",
    },
    Series {
        name: CHECK_DURATION,
        kind: Kind::Histogram,
        labels: &["purpose"],
        help: "Time one decision took in the decision layer and engine, in seconds",
    },
    Series {
        name: SNAPSHOT_REVISION,
        kind: Kind::Gauge,
        labels: &[],
        help: "The revision of the decision snapshot this replica answers from",
    },
    Series {
        name: SNAPSHOT_LOADED,
        kind: Kind::Gauge,
        labels: &[],
        help: "1 once the decision snapshot has been loaded from the store, else 0",
    },
    Series {
        name: LAG_REVISIONS,
        kind: Kind::Gauge,
        labels: &[],
        help: "The store's latest revision minus the snapshot's, read when scraped",
    },
    Series {
        name: LAG_SECONDS,
        kind: Kind::Gauge,
        labels: &[],
        help: "Seconds since the last successful sync began: the snapshot holds every change committed before then",
    },
    Series {
        name: STORE_REACHABLE,
        kind: Kind::Gauge,
        labels: &[],
        help: "1 when sync's last attempt reached the store, else 0",
    },
    Series {
        name: SYNC_RELOADS,
        kind: Kind::Counter,
        labels: &[],
        help: "Full snapshot reloads while following the change log (a bulk import, or a change that could not be applied)",
    },
    Series {
        name: SYNC_ERRORS,
        kind: Kind::Counter,
        labels: &[],
        help: "Sync attempts (the first load or a catch-up) that failed",
    },
    Series {
        name: JWKS_REFRESHES,
        kind: Kind::Counter,
        labels: &["issuer"],
        help: "Successful fetches of an issuer's signing keys, scheduled or forced by an unknown kid",
    },
    Series {
        name: JWKS_FAILURES,
        kind: Kind::Counter,
        labels: &["issuer"],
        help: "Failed fetches of an issuer's signing keys (the last good set is kept)",
    },
    Series {
        name: POOL_CONNECTIONS,
        kind: Kind::Gauge,
        labels: &[],
        help: "Connections the store pool holds, idle or in use",
    },
    Series {
        name: POOL_IDLE,
        kind: Kind::Gauge,
        labels: &[],
        help: "Idle connections in the store pool",
    },
    Series {
        name: POOL_IN_USE,
        kind: Kind::Gauge,
        labels: &[],
        help: "Store pool connections checked out (connections minus idle)",
    },
    Series {
        name: POOL_MAX,
        kind: Kind::Gauge,
        labels: &[],
        help: "The most connections the store pool opens; at it with none idle, acquires wait",
    },
    Series {
        name: DECISION_LOG_DROPPED,
        kind: Kind::Counter,
        labels: &[],
        help: "Sampled decisions the decision log dropped because its writer fell behind (0 when the log is off)",
    },
];

/// Buckets of [`HTTP_DURATION`], in seconds: a check answers in tens of microseconds, a
/// write waits for its revision (milliseconds), an import may take minutes.
const HTTP_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// Buckets of [`CHECK_DURATION`], in seconds: an engine check takes microseconds.
const CHECK_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.1,
];

/// This app's metrics: the recorder, the handles the request path uses, and what a scrape
/// reads from elsewhere.
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    http: Arc<http::HttpSeries>,
    decisions: Arc<DecisionSeries>,
    /// Where `/metrics` is served; `None`: on the main listener.
    listen: Option<SocketAddr>,
    /// The store's pool, for its size.
    pool: AnyPool,
    /// The decision log, for its drop count.
    decision_log: Option<Arc<DecisionLog>>,
    scraped: ScrapedSeries,
    /// Folds histogram samples into buckets between scrapes; stopped on drop.
    _upkeep: AbortOnDrop,
}

/// Series set from other components' state at scrape time.
struct ScrapedSeries {
    snapshot_revision: Gauge,
    snapshot_loaded: Gauge,
    lag_revisions: Gauge,
    lag_seconds: Gauge,
    store_reachable: Gauge,
    sync_reloads: Counter,
    sync_errors: Counter,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_in_use: Gauge,
    pool_max: Gauge,
    decision_log_dropped: Counter,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Metrics {
    /// A recorder with every series described and the unlabelled ones registered (so they
    /// are exported, at zero, before anything happens), and its upkeep task. Must be
    /// called inside a tokio runtime.
    pub fn start(
        settings: MetricsSettings,
        pool: AnyPool,
        decision_log: Option<Arc<DecisionLog>>,
    ) -> anyhow::Result<Metrics> {
        let recorder = Arc::new(
            PrometheusBuilder::new()
                .set_buckets(HTTP_BUCKETS)?
                .set_buckets_for_metric(Matcher::Full(CHECK_DURATION.to_owned()), CHECK_BUCKETS)?
                .build_recorder(),
        );
        for series in SERIES {
            let name = KeyName::from_const_str(series.name);
            let help = series.help.into();
            match series.kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, Some(Unit::Seconds), help),
            }
        }
        let handle = recorder.handle();
        let upkeep = {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            })
        };
        let gauge = |name| register_gauge(&recorder, name, Vec::new());
        let counter = |name| register_counter(&recorder, name, Vec::new());
        let scraped = ScrapedSeries {
            snapshot_revision: gauge(SNAPSHOT_REVISION),
            snapshot_loaded: gauge(SNAPSHOT_LOADED),
            lag_revisions: gauge(LAG_REVISIONS),
            lag_seconds: gauge(LAG_SECONDS),
            store_reachable: gauge(STORE_REACHABLE),
            sync_reloads: counter(SYNC_RELOADS),
            sync_errors: counter(SYNC_ERRORS),
            pool_connections: gauge(POOL_CONNECTIONS),
            pool_idle: gauge(POOL_IDLE),
            pool_in_use: gauge(POOL_IN_USE),
            pool_max: gauge(POOL_MAX),
            decision_log_dropped: counter(DECISION_LOG_DROPPED),
        };
        Ok(Metrics {
            http: Arc::new(http::HttpSeries::new(recorder.clone())),
            decisions: Arc::new(DecisionSeries::new(recorder.clone())),
            recorder,
            handle,
            listen: settings.listen,
            pool,
            decision_log,
            scraped,
            _upkeep: AbortOnDrop(upkeep),
        })
    }

    /// The decision hook that counts decisions and times them.
    pub fn decision_hook(&self) -> Arc<dyn DecisionHook> {
        self.decisions.clone()
    }

    /// Where `/metrics` is served; `None`: on the main listener.
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// Updates the scrape-time series from `app`'s components, then renders every series.
    /// Reads only memory, except the store's latest revision (bounded by
    /// [`STORE_REVISION_TIMEOUT`]).
    pub async fn render(&self, app: &AppState) -> String {
        let s = &self.scraped;
        let health = app.decider().health();
        s.snapshot_revision.set(health.revision.0 as f64);
        s.snapshot_loaded.set(f64::from(u8::from(health.loaded)));
        s.store_reachable
            .set(f64::from(u8::from(health.store_reachable)));
        if let Some(staleness) = health.staleness {
            s.lag_seconds.set(staleness.as_secs_f64());
        }
        if health.loaded {
            let latest =
                tokio::time::timeout(STORE_REVISION_TIMEOUT, app.store().current_revision()).await;
            if let Ok(Ok(latest)) = latest {
                // Sync may have moved past the revision read (a write since): never below 0.
                let lag = (latest.0 - app.decider().health().revision.0).max(0);
                s.lag_revisions.set(lag as f64);
            }
        }
        let sync = app.decider().sync_counts();
        s.sync_reloads.absolute(sync.reloads);
        s.sync_errors.absolute(sync.errors);
        for issuer in app.verifier().key_fetches() {
            let labels = vec![Label::new("issuer", issuer.issuer.to_owned())];
            register_counter(&self.recorder, JWKS_REFRESHES, labels.clone())
                .absolute(issuer.refreshes);
            register_counter(&self.recorder, JWKS_FAILURES, labels).absolute(issuer.failures);
        }
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        s.pool_connections.set(f64::from(size));
        s.pool_idle.set(f64::from(idle));
        s.pool_in_use.set(f64::from(size.saturating_sub(idle)));
        s.pool_max
            .set(f64::from(self.pool.options().get_max_connections()));
        if let Some(log) = &self.decision_log {
            s.decision_log_dropped.absolute(log.dropped());
        }
        self.handle.render()
    }
}

/// The metadata the exporter ignores but the facade asks for.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn register_counter(
    recorder: &PrometheusRecorder,
    name: &'static str,
    labels: Vec<Label>,
) -> Counter {
    recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
}

fn register_gauge(recorder: &PrometheusRecorder, name: &'static str, labels: Vec<Label>) -> Gauge {
    recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
}

fn register_histogram(
    recorder: &PrometheusRecorder,
    name: &'static str,
    labels: Vec<Label>,
) -> Histogram {
    recorder.register_histogram(&Key::from_parts(name, labels), &METADATA)
}

/// The route templates the API serves, numbered (the same for every app, so built once per
/// process): series tables are indexed by them, and the last index is [`UNMATCHED`].
struct RouteTable {
    templates: Vec<&'static str>,
    /// Looked up two or three times per request (HTTP series, the caller's endpoint, the
    /// decision series): hashbrown's default hasher, not SipHash, which is built to resist
    /// chosen keys (these are fixed).
    index: hashbrown::HashMap<&'static str, usize>,
}

fn route_table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut templates: Vec<&'static str> = Vec::new();
        for route in crate::api::routes() {
            if !templates.contains(&route.path) {
                templates.push(route.path);
            }
        }
        let index = templates.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        RouteTable { templates, index }
    })
}

impl RouteTable {
    /// The slot of `template`; [`UNMATCHED`]'s for anything else.
    fn slot(&self, template: &str) -> usize {
        self.index
            .get(template)
            .copied()
            .unwrap_or(self.templates.len())
    }

    /// How many slots: every template and [`UNMATCHED`].
    fn slots(&self) -> usize {
        self.templates.len() + 1
    }

    /// The label of a slot.
    fn label(&self, slot: usize) -> &'static str {
        self.templates.get(slot).copied().unwrap_or(UNMATCHED)
    }
}

/// The route template a request matched, as a `'static` label; [`UNMATCHED`] when none
/// did. What the decision layer reports as a decision's endpoint.
pub fn endpoint(matched: Option<&MatchedPath>) -> &'static str {
    let table = route_table();
    matched.map_or(UNMATCHED, |m| table.label(table.slot(m.as_str())))
}

/// Decisions by endpoint, purpose and result, and their durations by purpose.
struct DecisionSeries {
    recorder: Arc<PrometheusRecorder>,
    /// Per route slot, per purpose (check, admin), per result (allow, deny); registered on
    /// first use, so only pairs that happen are exported.
    counts: Box<[[[OnceLock<Counter>; 2]; 2]]>,
    /// Per purpose (check, admin).
    durations: [Histogram; 2],
}

const PURPOSES: [&str; 2] = ["check", "admin"];
const RESULTS: [&str; 2] = ["allow", "deny"];

impl DecisionSeries {
    fn new(recorder: Arc<PrometheusRecorder>) -> Self {
        let slots = route_table().slots();
        let duration = |purpose: &'static str| {
            register_histogram(
                &recorder,
                CHECK_DURATION,
                vec![Label::new("purpose", purpose)],
            )
        };
        DecisionSeries {
            durations: [duration(PURPOSES[0]), duration(PURPOSES[1])],
            counts: (0..slots).map(|_| Default::default()).collect(),
            recorder,
        }
    }
}

impl DecisionHook for DecisionSeries {
    fn record(&self, record: &DecisionRecord<'_>) {
        let table = route_table();
        let slot = table.slot(record.endpoint);
        let purpose = match record.purpose {
            Purpose::Check => 0,
            Purpose::Admin => 1,
        };
        let result = usize::from(!record.allowed);
        if let Some(cell) = self
            .counts
            .get(slot)
            .and_then(|by_purpose| by_purpose.get(purpose))
            .and_then(|by_result| by_result.get(result))
        {
            cell.get_or_init(|| {
                register_counter(
                    &self.recorder,
                    DECISIONS,
                    vec![
                        Label::new("endpoint", table.label(slot)),
                        Label::new("purpose", PURPOSES[purpose]),
                        Label::new("result", RESULTS[result]),
                    ],
                )
            })
            .increment(1);
        }
        self.durations[purpose].record(record.latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series named in `docs/metrics.md`'s table (its first column, in backticks).
    fn documented() -> Vec<String> {
        include_str!("../../docs/metrics.md")
            .lines()
            .filter_map(|line| line.strip_prefix("| `rolecall_"))
            .filter_map(|rest| rest.split('`').next())
            .map(|name| format!("rolecall_{name}"))
            .collect()
    }

    #[test]
    fn every_series_is_documented_and_every_documented_series_exists() {
        let documented = documented();
        for series in SERIES {
            assert!(
                documented.iter().any(|d| d == series.name),
                "`{}` is not in docs/metrics.md",
                series.name
            );
            assert!(series.name.starts_with("rolecall_"), "{}", series.name);
            if series.kind == Kind::Counter {
                assert!(series.name.ends_with("_total"), "{}", series.name);
            }
        }
        for name in &documented {
            assert!(
                SERIES.iter().any(|s| s.name == name),
                "docs/metrics.md documents `{name}`, which is not exported"
            );
        }
    }

    #[test]
    fn unknown_paths_share_one_route_label() {
        let table = route_table();
        assert_eq!(table.label(table.slot("/no/such/route")), UNMATCHED);
        assert_eq!(table.label(table.slot("/v1/check")), "/v1/check");
        assert_eq!(table.slots(), table.templates.len() + 1);
    }
}
