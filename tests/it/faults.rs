//! The fault suite: Rolecall under a lost database, lost notifications and racing writers.
//!
//! - **PostgreSQL down**: a TCP proxy in front of the test's PostgreSQL is cut (the listener
//!   closed, so connecting is refused, and every proxied connection dropped), a real network
//!   fault that leaves the shared server up for the other tests. Writes and `fullyConsistent`
//!   checks answer `503 store-unavailable` with `Retry-After` within the pool's acquire
//!   timeout, checks keep answering from the snapshot, `/readyz` answers at once and reports
//!   the store unreachable, and beyond `max_staleness_ms` checks fail closed (`503
//!   not-ready`) and `/readyz` says not ready.
//! - **Starting without a database**: a replica started while the proxy is cut serves
//!   `/livez` 200 and `/readyz` 503, keeps trying (run with `TEST_LOG=1` to see each attempt
//!   logged), and serves once the store is back. A bad SQLite path still fails at once.
//! - **Lost notifications**: `pg_terminate_backend` on the `LISTEN` connections; replicas
//!   converge within the poll interval and listen again.
//! - **Pooled connections closed while idle**: `pg_terminate_backend` on the pool's
//!   connections (a restart, failover or idle reaper); a connection idle past the ping
//!   window is pinged before a write gets it, so the writes after it all succeed.
//! - **Out-of-order commits**: concurrent writers on two replicas; afterwards each
//!   replica's snapshot describes exactly what a fresh load from the store at the same
//!   revision does.
//! - **Identity provider down**: covered by the token tests (`auth.rs`): a JWKS endpoint that
//!   fails or stalls leaves cached keys in use until `jwks_max_stale_seconds`, then answers
//!   `503 issuer-unavailable` (fail closed), and recovers when the provider does.
//!
//! Each test prints what it measured (`cargo nextest run --test it faults --no-capture`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rolecall::config::Config;
use rolecall::engine::Snapshot;
use rolecall::model::Catalog;
use rolecall::store::PoolSettings;
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::db::{self, TestDb};
use crate::common::spec::expect;

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const READ: &str = "microsoft.directory/users/basic/read";

/// The most a write may take to be refused during an outage in these tests: the default
/// acquire timeout is 1.5 s; the margin keeps a loaded CI machine from failing the test.
const OUTAGE_BOUND: Duration = Duration::from_secs(5);

/// A TCP proxy on loopback in front of a PostgreSQL server, which a test can cut and
/// restore. Cut, its port refuses connections and every connection it carried is closed.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    /// The accept loop while the proxy is up; aborting it drops its connections.
    running: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    /// A proxy to the server `url` names, up.
    async fn start(url: &str) -> Proxy {
        let parsed = url::Url::parse(url).expect("a database url");
        let host = parsed.host_str().expect("a host");
        let port = parsed.port().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host, port))
            .await
            .expect("the database host resolves")
            .next()
            .expect("an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound");
        let proxy = Proxy {
            addr,
            upstream,
            running: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).expect("a database url");
        parsed.set_host(Some("127.0.0.1")).expect("a host");
        parsed.set_port(Some(self.addr.port())).expect("a port");
        parsed.to_string()
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.running.lock().unwrap() = Some(task);
    }

    /// Closes the port and every connection through it.
    async fn cut(&self) {
        let task = self.running.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        // The port refuses from here on.
        assert!(
            TcpStream::connect(self.addr).await.is_err(),
            "the cut port refuses"
        );
    }

    /// Opens the port again.
    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the proxy's port binds again");
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.running.lock().ok().and_then(|mut r| r.take()) {
            task.abort();
        }
    }
}

/// A fresh PostgreSQL database and a proxy in front of it.
async fn proxied_database() -> (TestDb, Proxy) {
    let db = db::fresh_postgres().await;
    let proxy = Proxy::start(&db.url).await;
    (db, proxy)
}

fn config(url: String) -> Config {
    Config::for_tests(url, ADMIN_KEY)
}

async fn check(app: &TestApp, user: Uuid, consistency: Option<Value>) -> Reply {
    let mut body = json!({"subject": {"principalId": user}, "action": READ, "resource": "/"});
    if let Some(consistency) = consistency {
        body["consistency"] = consistency;
    }
    app.post("/v1/check", &body).await
}

async fn assign_reader(app: &TestApp, user: Uuid) -> Reply {
    app.post(
        "/v1/roleAssignments",
        &json!({"principalId": user, "principalType": "user", "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/"}),
    )
    .await
}

/// `GET path` without credentials, and how long it took.
/// `/metrics`' text, asserting it answered 200 within a second (it is outside the readiness
/// gate, and its one store read is bounded).
async fn metrics_text(app: &TestApp) -> String {
    let started = Instant::now();
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    text
}

async fn timed_get(app: &TestApp, path: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("answered");
    (TestApp::reply(response).await, started.elapsed())
}

/// Polls `probe` every 50 ms until it holds, failing after `within`; returns how long it
/// took.
async fn eventually<F, Fut>(within: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if probe().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_store_unavailable(reply: &Reply, elapsed: Duration, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {reply:?}"
    );
    assert_eq!(reply.problem(), "store-unavailable", "{what}");
    assert_eq!(reply.header("retry-after"), Some("1"), "{what}");
    assert!(
        elapsed < OUTAGE_BOUND,
        "{what} took {elapsed:?} to be refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_postgres_outage_writes_answer_503_within_the_bound_and_checks_keep_answering() {
    let (db, proxy) = proxied_database().await;
    let app = TestApp::spawn_with(config(proxy.url(&db.url))).await;
    let reader = Uuid::new_v4();
    assert_eq!(
        assign_reader(&app, reader).await.status,
        StatusCode::CREATED
    );
    assert_eq!(check(&app, reader, None).await.body["allowed"], true);

    proxy.cut().await;

    // Writes: refused within the acquire timeout, never hanging, never a 500.
    let mut refused = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let reply = app
            .post(
                "/v1/groups",
                &json!({"displayName": format!("during outage {i}")}),
            )
            .await;
        let elapsed = started.elapsed();
        assert_store_unavailable(&reply, elapsed, "a write");
        expect(&reply, 503, "POST", "/v1/groups");
        refused.push(elapsed);
    }
    // A check that must read the store's newest revision first: refused the same way.
    let started = Instant::now();
    let full = check(&app, reader, Some(json!({"fullyConsistent": true}))).await;
    let full_elapsed = started.elapsed();
    assert_store_unavailable(&full, full_elapsed, "a fullyConsistent check");
    expect(&full, 503, "POST", "/v1/check");
    // Checks keep answering from the snapshot, at once.
    let started = Instant::now();
    let local = check(&app, reader, None).await;
    let check_elapsed = started.elapsed();
    assert_eq!(local.status, StatusCode::OK, "{local:?}");
    assert_eq!(local.body["allowed"], true);
    // Readiness answers at once, still ready (no staleness bound), and reports the outage
    // once sync has tried the store.
    let mut readyz_latency = Duration::ZERO;
    let cut = Instant::now();
    loop {
        let (ready, elapsed) = timed_get(&app, "/readyz").await;
        readyz_latency = readyz_latency.max(elapsed);
        expect(&ready, 200, "GET", "/readyz");
        if ready.body["storeReachable"] == false {
            break;
        }
        assert!(
            cut.elapsed() < Duration::from_secs(10),
            "readyz never reports the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        readyz_latency < Duration::from_secs(1),
        "{readyz_latency:?}"
    );

    refused.sort();
    eprintln!(
        "outage: writes refused 503 in median {:?}, max {:?} (acquire timeout {:?}); \
         fullyConsistent check refused in {full_elapsed:?}; a snapshot check answered in \
         {check_elapsed:?}; /readyz answered in at most {readyz_latency:?}",
        refused[refused.len() / 2],
        refused[refused.len() - 1],
        PoolSettings::default().acquire_timeout,
    );

    // The store comes back: writes go through again, and sync reaches it.
    proxy.restore().await;
    let back = eventually(
        Duration::from_secs(15),
        "a write after the outage",
        || async { assign_reader(&app, Uuid::new_v4()).await.status == StatusCode::CREATED },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "readyz reports the store reachable",
        || async { timed_get(&app, "/readyz").await.0.body["storeReachable"] == true },
    )
    .await;
    eprintln!("outage: the first write after the store came back succeeded within {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_staleness_bound_checks_fail_closed_and_readyz_says_not_ready() {
    let (db, proxy) = proxied_database().await;
    let mut config = config(proxy.url(&db.url));
    config.poll_interval = Duration::from_millis(200);
    config.max_staleness = Some(Duration::from_secs(1));
    config.store_pool.acquire_timeout = Duration::from_millis(300);
    let app = TestApp::spawn_with(config).await;
    let reader = Uuid::new_v4();
    assert_eq!(
        assign_reader(&app, reader).await.status,
        StatusCode::CREATED
    );
    let (ready, _) = timed_get(&app, "/readyz").await;
    expect(&ready, 200, "GET", "/readyz");
    assert_eq!(ready.body["maxStalenessSeconds"], 1.0);
    assert!(
        ready.body["stalenessSeconds"].as_f64().unwrap() < 1.0,
        "{ready:?}"
    );

    proxy.cut().await;
    let cut = Instant::now();
    let stale = eventually(Duration::from_secs(10), "readyz says not ready", || async {
        timed_get(&app, "/readyz").await.0.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (ready, readyz_elapsed) = timed_get(&app, "/readyz").await;
    expect(&ready, 503, "GET", "/readyz");
    assert_eq!(ready.problem(), "not-ready");
    assert_eq!(ready.header("retry-after"), Some("1"));
    let readiness = &ready.body["readiness"];
    assert_eq!(readiness["status"], "not-ready");
    assert_eq!(readiness["storeReachable"], false);
    assert_eq!(readiness["snapshotLoaded"], true);
    assert!(readiness["stalenessSeconds"].as_f64().unwrap() > 1.0);
    assert!(
        readyz_elapsed < Duration::from_secs(1),
        "{readyz_elapsed:?}"
    );
    // Metrics answer, saying why.
    let text = metrics_text(&app).await;
    assert!(
        text.lines().any(|l| l == "rolecall_store_reachable 0"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "rolecall_snapshot_loaded 1"),
        "{text}"
    );
    // Checks fail closed, and say why; liveness is unaffected.
    let refused = check(&app, reader, None).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refused:?}"
    );
    assert_eq!(refused.problem(), "not-ready");
    assert_eq!(refused.header("retry-after"), Some("1"));
    expect(&refused, 503, "POST", "/v1/check");
    assert_eq!(refused.body["readiness"]["storeReachable"], false);
    let (live, _) = timed_get(&app, "/livez").await;
    assert_eq!(live.status, StatusCode::OK);
    eprintln!(
        "staleness: not ready {:?} after the cut (bound 1 s, poll 200 ms)",
        cut.elapsed().min(stale + Duration::from_millis(50))
    );

    proxy.restore().await;
    let back = eventually(Duration::from_secs(10), "ready again", || async {
        timed_get(&app, "/readyz").await.0.status == StatusCode::OK
    })
    .await;
    assert_eq!(check(&app, reader, None).await.body["allowed"], true);
    eprintln!("staleness: ready again {back:?} after the store came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_while_postgres_is_down_is_not_ready_until_the_store_answers() {
    let (db, proxy) = proxied_database().await;
    proxy.cut().await;
    let mut config = config(proxy.url(&db.url));
    config.store_pool.acquire_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let app = TestApp::spawn_with(config).await;
    let build = started.elapsed();
    assert!(build < Duration::from_secs(5), "built in {build:?}");

    let (live, _) = timed_get(&app, "/livez").await;
    assert_eq!(live.status, StatusCode::OK);
    let (ready, readyz_elapsed) = timed_get(&app, "/readyz").await;
    expect(&ready, 503, "GET", "/readyz");
    assert_eq!(ready.problem(), "not-ready");
    let readiness = &ready.body["readiness"];
    assert_eq!(readiness["snapshotLoaded"], false);
    assert_eq!(readiness["storeReachable"], false);
    assert_eq!(readiness["snapshotRevision"], Value::Null);
    assert_eq!(readiness["stalenessSeconds"], Value::Null);
    assert!(
        readyz_elapsed < Duration::from_secs(1),
        "{readyz_elapsed:?}"
    );
    let text = metrics_text(&app).await;
    assert!(
        text.lines().any(|l| l == "rolecall_snapshot_loaded 0"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "rolecall_store_reachable 0"),
        "{text}"
    );
    // Nothing is answered from the empty snapshot: not even a deny.
    let reader = Uuid::new_v4();
    let refused = check(&app, reader, None).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refused:?}"
    );
    assert_eq!(refused.problem(), "not-ready");
    let write = assign_reader(&app, reader).await;
    assert_eq!(write.problem(), "not-ready");
    // A few attempts go by (200 ms, 400 ms, 800 ms apart), and the replica stays up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(timed_get(&app, "/readyz").await.0.status, 503);

    proxy.restore().await;
    let back = eventually(
        Duration::from_secs(15),
        "ready once the store is back",
        || async { timed_get(&app, "/readyz").await.0.status == StatusCode::OK },
    )
    .await;
    assert_eq!(
        assign_reader(&app, reader).await.status,
        StatusCode::CREATED
    );
    assert_eq!(check(&app, reader, None).await.body["allowed"], true);
    eprintln!(
        "start without a database: App::build returned in {build:?} (acquire timeout \
         300 ms); ready {back:?} after the store came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_sqlite_path_still_fails_at_start() {
    let dir = std::env::temp_dir().join(format!("rolecall-missing-{}", Uuid::new_v4()));
    let url = format!(
        "sqlite://{}",
        dir.join("nested").join("rolecall.db").display()
    );
    let started = Instant::now();
    let built = rolecall::App::build(config(url)).await;
    let error = match built {
        Ok(_) => panic!("an SQLite file in a missing directory cannot be opened"),
        Err(error) => format!("{error:#}"),
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.contains("connecting to the store"), "{error}");
}

/// The backends of the test database `database` (at `url`) that hold a `LISTEN`.
async fn listeners(url: &str, database: &str) -> Vec<i32> {
    backends(url, database, true).await
}

/// The backends of the test database `database` (at `url`), other than the one asking:
/// those that hold a `LISTEN` when `listening`, the others (the pool's) otherwise.
async fn backends(url: &str, database: &str, listening: bool) -> Vec<i32> {
    let mut admin = sqlx::PgConnection::connect(url).await.expect("connects");
    let pids = sqlx::query(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
         AND (query ILIKE 'LISTEN%') = $2 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .bind(listening)
    .fetch_all(&mut admin)
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|row| row.get::<i32, _>(0))
    .collect();
    let _ = admin.close().await;
    pids
}

/// `pg_terminate_backend(pid)` through `admin`: whether a backend was signalled.
async fn terminate(admin: &mut sqlx::PgConnection, pid: i32) -> bool {
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .expect("pg_terminate_backend")
        .get(0)
}

async fn allowed(app: &TestApp, user: Uuid) -> bool {
    let reply = check(app, user, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["allowed"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listen_connection_is_terminated_converges_and_listens_again() {
    let db = db::fresh_postgres().await;
    let database = url::Url::parse(&db.url).unwrap().path()[1..].to_owned();
    let poll = Duration::from_secs(2);
    let replica = || {
        let mut config = config(db.url.clone());
        config.poll_interval = poll;
        TestApp::spawn_with(config)
    };
    let (one, two) = (replica().await, replica().await);
    let (url, database) = (db.url.as_str(), database.as_str());
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    eventually(Duration::from_secs(10), "both replicas listen", || async {
        listeners(url, database).await.len() == 2
    })
    .await;

    let mut lags = Vec::new();
    for round in 0..3 {
        let killed = listeners(url, database).await;
        for pid in &killed {
            assert!(
                terminate(&mut admin, *pid).await,
                "round {round}: backend {pid} terminated"
            );
        }
        // A write through one replica while neither listens: the other still converges,
        // within the poll interval.
        let user = Uuid::new_v4();
        assert_eq!(assign_reader(&one, user).await.status, StatusCode::CREATED);
        let written = Instant::now();
        let lag = eventually(
            poll + Duration::from_secs(2),
            "replica two converges",
            || allowed(&two, user),
        )
        .await;
        assert!(
            lag < poll + Duration::from_secs(1),
            "round {round}: {lag:?}"
        );
        lags.push(written.elapsed());
        // Both listen again, on new backends.
        let killed = &killed;
        let relisten = eventually(
            Duration::from_secs(10),
            "both replicas listen again",
            || async {
                let now = listeners(url, database).await;
                now.len() == 2 && now.iter().all(|pid| !killed.contains(pid))
            },
        )
        .await;
        eprintln!("lost notifications, round {round}: converged in {lag:?}, listening again after {relisten:?}");
    }
    // Listening again means notified again: a write converges well within the poll interval.
    let user = Uuid::new_v4();
    assert_eq!(assign_reader(&one, user).await.status, StatusCode::CREATED);
    let notified = eventually(poll, "replica two converges by NOTIFY", || {
        allowed(&two, user)
    })
    .await;
    eprintln!(
        "lost notifications: after reconnecting, a write converged in {notified:?} (poll {poll:?})"
    );
    let _ = admin.close().await;
}

/// One writer's mixed work through `app`: assignments created and some deleted, groups
/// with members, and deny assignments.
async fn writer(app: &TestApp, seed: usize, writes: usize) {
    let mut assignments = Vec::new();
    for i in 0..writes {
        let user = Uuid::new_v4();
        match (seed + i) % 4 {
            0 | 1 => {
                let r = assign_reader(app, user).await;
                assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
                assignments.push(r.body["id"].as_str().unwrap().to_owned());
            }
            2 => {
                let group = app
                    .post(
                        "/v1/groups",
                        &json!({"displayName": format!("g{seed}-{i}")}),
                    )
                    .await;
                assert_eq!(group.status, StatusCode::CREATED, "{group:?}");
                let id = group.body["id"].as_str().unwrap();
                let member = app
                    .post(
                        &format!("/v1/groups/{id}/members"),
                        &json!({"id": user, "type": "user"}),
                    )
                    .await;
                assert!(member.status.is_success(), "{member:?}");
            }
            _ => {
                if let Some(id) = assignments.pop() {
                    let r = app.delete(&format!("/v1/roleAssignments/{id}")).await;
                    assert!(r.status.is_success(), "{r:?}");
                }
                let r = app
                    .post(
                        "/v1/denyAssignments",
                        &json!({"displayName": format!("d{seed}-{i}"), "principalId": user,
                                "principalType": "user", "actions": [READ], "directoryScopeId": "/"}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_replicas_leave_every_snapshot_equal_to_a_fresh_load() {
    let db = db::fresh_postgres().await;
    let replica = || {
        let mut config = config(db.url.clone());
        config.poll_interval = Duration::from_millis(500);
        TestApp::spawn_with(config)
    };
    let (one, two) = (replica().await, replica().await);
    let (writers, writes) = (4, 12);
    let started = Instant::now();
    let mut work = Vec::new();
    for seed in 0..writers {
        work.push(writer(&one, seed, writes));
        work.push(writer(&two, seed + 1, writes));
    }
    futures::future::join_all(work).await;
    let wrote = started.elapsed();

    let store = one.state.store();
    let revision = store.current_revision().await.unwrap();
    for (name, app) in [("one", &one), ("two", &two)] {
        app.state
            .decider()
            .wait_for(revision)
            .await
            .unwrap_or_else(|e| panic!("replica {name}: {e}"));
    }
    let dump = store.dump().await.unwrap();
    assert_eq!(dump.revision, revision, "nothing wrote since");
    let catalog = Arc::new(Catalog::builtin().unwrap());
    let fresh = Snapshot::build(&dump, &catalog).describe();
    for (name, app) in [("one", &one), ("two", &two)] {
        let snapshot = app.state.decider().snapshot();
        assert_eq!(snapshot.revision(), revision, "replica {name}");
        let described = snapshot.describe();
        assert!(
            described == fresh,
            "replica {name}'s snapshot differs from a fresh load at revision {revision}:\n{}",
            first_difference(&described, &fresh)
        );
    }
    eprintln!(
        "out-of-order commits: {} writers x {writes} writes on two replicas in {wrote:?}, \
         revision {revision}; both snapshots equal a fresh load ({} lines)",
        writers * 2,
        fresh.lines().count()
    );
}

/// The first line where two descriptions part, with its neighbours.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(3);
    format!(
        "replica:\n{}\nfresh:\n{}",
        a[from..(at + 3).min(a.len())].join("\n"),
        b[from..(at + 3).min(b.len())].join("\n")
    )
}

/// A connection that was used a moment ago is handed out without a ping (one round trip
/// less per write); one idle for longer is pinged first. So a pooled connection the server
/// closed while it sat idle, as a restart, a failover or an idle-connection reaper does, is
/// never handed to a write: the writes after it all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_the_server_closed_while_idle_are_never_handed_to_a_write() {
    let db = db::fresh_postgres().await;
    let database = url::Url::parse(&db.url).unwrap().path()[1..].to_owned();
    let app = TestApp::spawn_with(config(db.url.clone())).await;
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let me: i32 = sqlx::query("SELECT pg_backend_pid()")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    for round in 0..3 {
        // Several writes at once, so the pool holds several connections.
        let writes = (0..8).map(|_| assign_reader(&app, Uuid::new_v4()));
        for reply in futures::future::join_all(writes).await {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "round {round}: {reply:?}"
            );
        }
        let mut pool = backends(&db.url, &database, false).await;
        pool.retain(|pid| *pid != me);
        assert!(
            !pool.is_empty(),
            "round {round}: the pool holds connections"
        );
        for pid in &pool {
            terminate(&mut admin, *pid).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        for i in 0..4 {
            let reply = assign_reader(&app, Uuid::new_v4()).await;
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "round {round}, write {i} after {} pooled connections were closed: {reply:?}",
                pool.len()
            );
        }
    }
    let _ = admin.close().await;
}
