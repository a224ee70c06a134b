//! The decision log: one JSON line per sampled decision, naming the assignment behind it,
//! written off the request path, on both stores.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::app::{TestApp, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use rolecall::config::Config;
use rolecall::decide::{DecisionLogSettings, LogTarget};
use serde_json::{json, Value};
use uuid::Uuid;

fn log_file() -> PathBuf {
    std::env::temp_dir().join(format!("rolecall-decisions-{}.jsonl", Uuid::new_v4()))
}

fn config(database_url: String, path: &Path, sample_rate: f64) -> Config {
    let mut config = Config::for_tests(database_url, ADMIN_KEY);
    config.decision_log = Some(DecisionLogSettings {
        target: LogTarget::File(path.to_owned()),
        sample_rate,
        admin: false,
        capacity: 1000,
    });
    config
}

/// The decision lines of `path` once there are `n` (every line must parse).
async fn lines(path: &Path, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}`: {e}")))
            .filter(|v: &Value| v["kind"] == "decision")
            .collect();
        if parsed.len() >= n {
            return parsed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} of {n} decision lines after 10 s: {text}",
            parsed.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn check(app: &TestApp, user: Uuid, action: &str, request_id: &str) -> Value {
    let r = app
        .call(
            Method::POST,
            "/v1/check",
            Some(&json!({"subject": {"principalId": user}, "action": action, "resource": "/apps/a1"})),
            &[("x-request-id", request_id)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn each_decision_is_a_line_naming_its_assignment(database_url: String) {
    let path = log_file();
    let app = TestApp::spawn_with(config(database_url, &path, 1.0)).await;
    let role = app
        .post(
            "/v1/roleDefinitions",
            &json!({"displayName": "Reader", "rolePermissions": [{"allowedResourceActions": ["contoso.apps/things/read"]}]}),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{:?}", role.body);
    let user = Uuid::new_v4();
    let assignment = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": user, "principalType": "user", "roleDefinitionId": role.body["id"], "directoryScopeId": "/apps"}),
        )
        .await;
    assert_eq!(
        assignment.status,
        StatusCode::CREATED,
        "{:?}",
        assignment.body
    );

    let allowed = check(&app, user, "contoso.apps/things/read", "req-allow-1").await;
    assert_eq!(allowed["allowed"], true);
    let denied = check(&app, user, "contoso.apps/things/delete", "req-deny-1").await;
    assert_eq!(denied["allowed"], false);

    let logged = lines(&path, 2).await;
    assert_eq!(
        logged.len(),
        2,
        "admin-key writes are not decisions: {logged:?}"
    );
    let allow = &logged[0];
    assert_eq!(allow["requestId"], "req-allow-1");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["purpose"], "check");
    assert_eq!(allow["caller"], "admin-key");
    assert_eq!(allow["subject"], user.to_string());
    assert_eq!(allow["action"], "contoso.apps/things/read");
    assert_eq!(allow["resource"], "/apps/a1");
    assert_eq!(allow["revision"], allowed["revision"]);
    assert_eq!(allow["grantedBy"]["assignmentId"], assignment.body["id"]);
    assert_eq!(allow["grantedBy"]["scope"], "/apps");
    assert!(allow["latencyMicros"].is_u64());
    assert!(allow["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let deny = &logged[1];
    assert_eq!(deny["requestId"], "req-deny-1");
    assert_eq!(deny["decision"], "deny");
    assert_eq!(deny["grantedBy"], Value::Null);
    let _ = std::fs::remove_file(&path);
}

async fn sampling_keeps_the_configured_fraction(database_url: String) {
    let path = log_file();
    let app = TestApp::spawn_with(config(database_url, &path, 0.25)).await;
    let user = Uuid::new_v4();
    for i in 0..20 {
        check(&app, user, "contoso.apps/things/read", &format!("req-{i}")).await;
    }
    let logged = lines(&path, 5).await;
    // Give a sixth line the time to appear, were one coming.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logged_after = lines(&path, 5).await;
    assert_eq!(logged.len(), 5);
    assert_eq!(logged_after.len(), 5, "exactly a quarter of 20");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lines() {
    let db = crate::common::db::fresh_sqlite().await;
    each_decision_is_a_line_naming_its_assignment(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lines() {
    let db = crate::common::db::fresh_postgres().await;
    each_decision_is_a_line_naming_its_assignment(db.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sampling() {
    let db = crate::common::db::fresh_sqlite().await;
    sampling_keeps_the_configured_fraction(db.url.clone()).await;
}

#[test]
fn the_table_is_validated_at_start() {
    let parse = |toml: &str| -> Result<Config, String> {
        let file: rolecall::config::FileSettings =
            toml::from_str(toml).map_err(|e| e.to_string())?;
        Config::resolve(
            file,
            rolecall::config::Overrides {
                admin_key: Some(ADMIN_KEY.to_owned()),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())
    };
    let ok = parse("[decision_log]\npath = \"stdout\"\nsample_rate = 0.1\n").expect("valid");
    let settings = ok.decision_log.expect("on");
    assert_eq!(settings.target, LogTarget::Stdout);
    assert_eq!(settings.sample_rate, 0.1);
    assert!(
        parse("").expect("valid").decision_log.is_none(),
        "off by default"
    );
    for bad in [
        "[decision_log]\n",
        "[decision_log]\npath = \"stdout\"\nsample_rate = 1.5\n",
        "[decision_log]\npath = \"stdout\"\ncapacity = 0\n",
        "[decision_log]\npath = \"stdout\"\nrate = 1\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
