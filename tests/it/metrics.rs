//! `/metrics`: after real traffic (checks allowed and denied, admin writes, a token caller,
//! failed requests), every series `docs/metrics.md` documents is exported and the counters
//! move; on both stores. Then the separate listen address, and the switch that turns
//! metrics off.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use rolecall::config::Config;
use rolecall::store::Backend;
use rolecall::App;
use serde_json::json;
use uuid::Uuid;

use crate::common::app::{TestApp, ADMIN_KEY};
use crate::common::db;
use crate::common::env::{assign, call_as, create_role, env_on, self_check};

/// The series `docs/metrics.md` documents: the first column of its table.
fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md is readable");
    let names: Vec<String> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.starts_with("rolecall_"))
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 15, "docs/metrics.md's table: {names:?}");
    names
}

/// One scrape: its text, parsed into (name, labels text, value) samples.
struct Scrape {
    text: String,
    types: Vec<(String, String)>,
    samples: Vec<(String, String, f64)>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut types = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("`# TYPE name kind`");
                types.push((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|e| panic!("`{line}`: {e}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            samples.push((name.to_owned(), labels.to_owned(), value));
        }
        Scrape {
            text,
            types,
            samples,
        }
    }

    /// The names of every family with a sample (a histogram's `_bucket`, `_sum` and
    /// `_count` stand for it).
    fn families(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .map(|(name, _, _)| {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|family| {
                        self.types
                            .iter()
                            .any(|(n, k)| n == family && k == "histogram")
                    });
                family.unwrap_or(name).to_owned()
            })
            .collect()
    }

    /// The sum of the samples of `name` whose labels include every `key="value"` given.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

async fn scrape(client: &reqwest::Client, base: &str) -> Scrape {
    let response = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scraped");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(response.text().await.expect("body"))
}

async fn check(app: &TestApp, subject: Uuid, action: &str) -> bool {
    let r = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": subject}, "action": action, "resource": "/apps/a1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["allowed"].as_bool().expect("allowed")
}

async fn every_documented_series_is_exported_after_traffic(backend: Backend) {
    let env = env_on(backend, |_, _, _| {}).await;
    let app = &env.app;
    let before = scrape(&app.client, &app.base).await;

    // Admin writes, checks allowed and denied, a token caller, and failed requests.
    let role = create_role(app, "Reader", &["contoso.apps/things/read"]).await;
    let user = Uuid::new_v4();
    assign(app, user, "user", &role, "/apps").await;
    assert!(check(app, user, "contoso.apps/things/read").await);
    assert!(!check(app, user, "contoso.apps/things/delete").await);
    let caller = Uuid::new_v4();
    let token = env.token(caller);
    assert_eq!(self_check(app, &token, caller).await.status, StatusCode::OK);
    let refused = call_as(
        app,
        Some(&token),
        Method::POST,
        "/v1/groups",
        Some(&json!({"displayName": "Not mine"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(
        app.get("/no/such/route").await.status,
        StatusCode::NOT_FOUND
    );
    let invalid = app.post("/v1/check", &json!({"subject": 1})).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);

    let after = scrape(&app.client, &app.base).await;
    let families = after.families();
    for name in documented() {
        assert!(
            families.contains(&name),
            "`{name}` is documented but not exported:\n{}",
            after.text
        );
    }
    for name in &families {
        assert!(name.starts_with("rolecall_"), "`{name}` lacks the prefix");
    }

    let grew = |name: &str, labels: &[(&str, &str)]| {
        let (was, is) = (before.value(name, labels), after.value(name, labels));
        assert!(is > was, "{name}{labels:?}: {was} -> {is}\n{}", after.text);
    };
    let requests = "rolecall_http_requests_total";
    grew(
        requests,
        &[
            ("method", "POST"),
            ("route", "/v1/check"),
            ("status", "200"),
        ],
    );
    grew(
        requests,
        &[("route", "/v1/roleDefinitions"), ("status", "201")],
    );
    grew(requests, &[("route", "/v1/check"), ("status", "400")]);
    grew(requests, &[("route", "/v1/groups"), ("status", "403")]);
    grew(requests, &[("route", "unmatched"), ("status", "404")]);
    assert!(
        !after.text.contains("/no/such/route"),
        "a raw path became a label"
    );
    grew(
        "rolecall_http_request_duration_seconds_count",
        &[("route", "/v1/check"), ("status", "200")],
    );
    let decisions = "rolecall_decisions_total";
    let asked = [("endpoint", "/v1/check"), ("purpose", "check")];
    grew(decisions, &[asked[0], asked[1], ("result", "allow")]);
    grew(decisions, &[asked[0], asked[1], ("result", "deny")]);
    grew(
        decisions,
        &[
            ("endpoint", "/v1/groups"),
            ("purpose", "admin"),
            ("result", "deny"),
        ],
    );
    grew(
        "rolecall_check_duration_seconds_count",
        &[("purpose", "check")],
    );
    let issuer = format!("{}/{{tid}}/v2.0", env.idp.issuer());
    assert!(
        after.value("rolecall_jwks_refreshes_total", &[("issuer", &issuer)]) >= 1.0,
        "{}",
        after.text
    );
    let revision = app.get("/readyz").await.body["snapshotRevision"]
        .as_str()
        .and_then(|r| r.parse::<f64>().ok())
        .expect("a loaded snapshot's revision");
    assert!(after.value("rolecall_snapshot_revision", &[]) >= revision);
    assert!(
        after.value("rolecall_snapshot_revision", &[])
            > before.value("rolecall_snapshot_revision", &[])
    );
    assert_eq!(after.value("rolecall_snapshot_loaded", &[]), 1.0);
    assert_eq!(after.value("rolecall_store_reachable", &[]), 1.0);
    assert!(after.value("rolecall_snapshot_lag_revisions", &[]) >= 0.0);
    assert!(after.value("rolecall_db_pool_max_connections", &[]) >= 1.0);
    assert!(after.value("rolecall_db_pool_connections", &[]) >= 1.0);

    // Counters only grow, scrape after scrape.
    assert!(check(app, user, "contoso.apps/things/read").await);
    let later = scrape(&app.client, &app.base).await;
    for (name, labels, value) in &after.samples {
        let counter = after.types.iter().any(|(n, k)| n == name && k == "counter");
        if counter {
            let now = later
                .samples
                .iter()
                .find(|(n, l, _)| n == name && l == labels)
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("{name}{{{labels}}} vanished"));
            assert!(now >= *value, "{name}{{{labels}}}: {value} -> {now}");
        }
    }
    assert!(
        later.value(decisions, &[asked[0], asked[1], ("result", "allow")])
            > after.value(decisions, &[asked[0], asked[1], ("result", "allow")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_documented_series_is_exported_after_traffic() {
    every_documented_series_is_exported_after_traffic(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_documented_series_is_exported_after_traffic() {
    every_documented_series_is_exported_after_traffic(Backend::Postgres).await;
}

/// Starts `config` and serves it until the returned sender is dropped; answers the main
/// and the metrics base URLs.
async fn start(config: Config) -> (String, Option<String>, tokio::sync::oneshot::Sender<()>) {
    let app = App::build(config).await.expect("app builds");
    let main = app.local_addr().expect("bound");
    let metrics = app.metrics_addr().map(|addr| addr.expect("metrics bound"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let url = |addr: SocketAddr| format!("http://{addr}");
    (url(main), metrics.map(url), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_listen_address_serves_metrics_and_the_main_one_does_not() {
    let db = db::fresh_sqlite().await;
    let mut config = Config::for_tests(db.url.clone(), ADMIN_KEY);
    config.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let (main, metrics, _stop) = start(config).await;
    let metrics = metrics.expect("a metrics listener");
    assert_ne!(main, metrics);
    let client = reqwest::Client::new();

    let on_main = client
        .get(format!("{main}/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(on_main.status(), StatusCode::NOT_FOUND);
    let checked = client
        .post(format!("{main}/v1/check"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"subject": {"principalId": Uuid::new_v4()}, "action": "a.b/c/read", "resource": "/"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(checked.status(), StatusCode::OK);

    let scraped = scrape(&client, &metrics).await;
    assert!(
        scraped.value(
            "rolecall_http_requests_total",
            &[("route", "/v1/check"), ("status", "200")]
        ) >= 1.0,
        "{}",
        scraped.text
    );
    assert!(
        scraped.value(
            "rolecall_http_requests_total",
            &[("route", "/metrics"), ("status", "404")]
        ) >= 1.0,
        "the main listener's refusal is API traffic: {}",
        scraped.text
    );
    let only_metrics = client
        .post(format!("{metrics}/v1/check"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        only_metrics.status(),
        StatusCode::NOT_FOUND,
        "the metrics listener serves nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_metrics_are_not_served() {
    let db = db::fresh_sqlite().await;
    let mut config = Config::for_tests(db.url.clone(), ADMIN_KEY);
    config.metrics.enabled = false;
    let (main, metrics, _stop) = start(config).await;
    assert_eq!(metrics, None);
    let reply = reqwest::get(format!("{main}/metrics")).await.expect("sent");
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
}
