//! Two `rolecall` replicas on one PostgreSQL: a write through one is visible through the
//! other (LISTEN/NOTIFY wakes it), and each replica reads its own writes. The poll interval
//! is set to a minute so that only NOTIFY and the read-your-writes kick can explain a
//! prompt answer.

use std::time::{Duration, Instant};

use crate::common::app::{TestApp, ADMIN_KEY};
use reqwest::StatusCode;
use rolecall::config::Config;
use serde_json::json;
use uuid::Uuid;

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

async fn replica(url: &str) -> TestApp {
    let mut config = Config::for_tests(url.to_owned(), ADMIN_KEY);
    config.poll_interval = Duration::from_secs(60);
    TestApp::spawn_with(config).await
}

async fn allowed(app: &TestApp, user: Uuid) -> bool {
    let r = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "microsoft.directory/users/basic/read", "resource": "/"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["allowed"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_replica_is_visible_through_the_other() {
    let db = crate::common::db::fresh_postgres().await;
    let (one, two) = (replica(&db.url).await, replica(&db.url).await);
    let mut lags = Vec::new();
    for _ in 0..30 {
        let user = Uuid::new_v4();
        assert!(!allowed(&two, user).await);
        let written = Instant::now();
        let r = one
            .post(
                "/v1/roleAssignments",
                &json!({"principalId": user, "principalType": "user", "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        // Read-your-writes on the replica that took the write: no waiting, no consistency token.
        assert!(allowed(&one, user).await);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !allowed(&two, user).await {
            assert!(Instant::now() < deadline, "replica two never saw the write");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lags.push(written.elapsed());
    }
    lags.sort();
    eprintln!(
        "replica convergence over {} writes: median {:?}, p99 {:?}, max {:?}",
        lags.len(),
        lags[lags.len() / 2],
        lags[lags.len() * 99 / 100],
        lags[lags.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_least_token_from_one_replica_is_honoured_by_the_other() {
    let db = crate::common::db::fresh_postgres().await;
    let (one, two) = (replica(&db.url).await, replica(&db.url).await);
    let user = Uuid::new_v4();
    let r = one
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": user, "principalType": "user", "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/"}),
        )
        .await;
    let revision = r.body["revision"].as_str().unwrap();
    let checked = two
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "microsoft.directory/users/basic/read",
                    "resource": "/", "consistency": {"atLeast": revision}}),
        )
        .await;
    assert_eq!(checked.body["allowed"], true, "{:?}", checked.body);
    let full = two
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "microsoft.directory/users/basic/read",
                    "resource": "/", "consistency": {"fullyConsistent": true}}),
        )
        .await;
    assert_eq!(full.body["allowed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_later_loads_the_whole_directory() {
    let db = crate::common::db::fresh_postgres().await;
    let one = replica(&db.url).await;
    let user = Uuid::new_v4();
    one.post(
        "/v1/roleAssignments",
        &json!({"principalId": user, "principalType": "user", "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/"}),
    )
    .await;
    let two = replica(&db.url).await;
    assert!(allowed(&two, user).await);
}
