//! Two `rolecall` replicas on one PostgreSQL: a write through one is visible through the
//! other (LISTEN/NOTIFY wakes it), and each replica reads its own writes. The poll interval
//! is set to a minute so that only NOTIFY and the read-your-writes kick can explain a
//! prompt answer.

use std::time::{Duration, Instant};

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use reqwest::StatusCode;
use rolecall::config::Config;
use serde_json::{json, Value};
use uuid::Uuid;

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

async fn replica(url: &str) -> TestApp {
    let mut config = Config::for_tests(url.to_owned(), ADMIN_KEY);
    config.poll_interval = Duration::from_secs(60);
    TestApp::spawn_with(config).await
}

/// Makes `user` a global reader at `/` through `app`.
async fn assign_reader(app: &TestApp, user: Uuid) -> Reply {
    app.post(
        "/v1/roleAssignments",
        &json!({"principalId": user, "principalType": "user", "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/"}),
    )
    .await
}

/// Asks whether `user` may read users at `/` through `app`, with `consistency` when it is not
/// null.
async fn checked(app: &TestApp, user: Uuid, consistency: Value) -> Reply {
    let mut body = json!({"subject": {"principalId": user}, "action": "microsoft.directory/users/basic/read", "resource": "/"});
    if !consistency.is_null() {
        body["consistency"] = consistency;
    }
    app.post("/v1/check", &body).await
}

async fn allowed(app: &TestApp, user: Uuid) -> bool {
    let r = checked(app, user, Value::Null).await;
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
        let r = assign_reader(&one, user).await;
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
    let r = assign_reader(&one, user).await;
    let revision = r.body["revision"].as_str().unwrap();
    let at_least = checked(&two, user, json!({"atLeast": revision})).await;
    assert_eq!(at_least.body["allowed"], true, "{:?}", at_least.body);
    let full = checked(&two, user, json!({"fullyConsistent": true})).await;
    assert_eq!(full.body["allowed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_later_loads_the_whole_directory() {
    let db = crate::common::db::fresh_postgres().await;
    let one = replica(&db.url).await;
    let user = Uuid::new_v4();
    assign_reader(&one, user).await;
    let two = replica(&db.url).await;
    assert!(allowed(&two, user).await);
}

/// Each write the replica commits is handed to its own sync, which applies it without
/// reading the change log: here a trigger empties the log as it is written, so only the
/// hand-off can explain that the writer sees its write (and the other replica, which can
/// only read, does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_applies_its_own_writes_without_reading_the_change_log() {
    let db = crate::common::db::fresh_postgres().await;
    let (one, two) = (replica(&db.url).await, replica(&db.url).await);
    let store = db.store().await;
    for statement in [
        "CREATE FUNCTION forget_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         DELETE FROM changes WHERE revision = NEW.revision AND sequence = NEW.sequence; \
         RETURN NULL; END $$",
        "CREATE TRIGGER forget_change AFTER INSERT ON changes \
         FOR EACH ROW EXECUTE FUNCTION forget_change()",
    ] {
        sqlx::query(statement).execute(store.pool()).await.unwrap();
    }
    let user = Uuid::new_v4();
    let r = assign_reader(&one, user).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM changes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(logged, 0, "the trigger left the change log empty");
    assert!(
        allowed(&one, user).await,
        "the writer applied its own write"
    );
    assert!(
        !allowed(&two, user).await,
        "the other replica can only read the (empty) log"
    );
}

/// Writes through two replicas, interleaved: each replica's own write often follows one it
/// has not read yet (the other's), so it must hold its own until the read fills the gap.
/// Every replica reads its own writes at once, and both end with every assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_writes_through_two_replicas_are_read_back_in_order() {
    let db = crate::common::db::fresh_postgres().await;
    let (one, two) = (replica(&db.url).await, replica(&db.url).await);
    let mut users = Vec::new();
    for i in 0..40 {
        let (writer, other) = if i % 2 == 0 {
            (&one, &two)
        } else {
            (&two, &one)
        };
        let user = Uuid::new_v4();
        let r = assign_reader(writer, user).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert!(
            allowed(writer, user).await,
            "write {i}: read your own write"
        );
        // The other replica's token-bearing read waits for the same revision.
        let revision = r.body["revision"].as_str().unwrap();
        let at_least = checked(other, user, json!({"atLeast": revision})).await;
        assert_eq!(at_least.status, StatusCode::OK, "{:?}", at_least.body);
        assert_eq!(at_least.body["allowed"], json!(true), "write {i}: at least");
        users.push(user);
    }
    for user in users {
        assert!(allowed(&one, user).await && allowed(&two, user).await);
    }
}
