//! Slow and idle clients: a connection that does not finish its request head is closed after
//! `header_read_timeout`, a kept-alive one after `idle_timeout` without a request, and at most
//! `max_connections` are served at once, others waiting to be accepted. The server is the real
//! one on loopback; clients are raw sockets so the tests control every byte.
//!
//! These tests wait on the wall clock (about a second each): the app's SQLite store runs on
//! its own threads, so `tokio::time::pause()` would let the paused clock race past them.

use std::time::Duration;

use rolecall::config::{Config, ConfigError, Overrides};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::common::app::{TestApp, ADMIN_KEY};
use crate::common::db;

/// How long any test waits for something that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(5);
/// A request that keeps the connection open afterwards.
const LIVEZ: &[u8] = b"GET /livez HTTP/1.1\r\nhost: rolecall\r\n\r\n";

fn config(database_url: String) -> Config {
    Config::for_tests(database_url, ADMIN_KEY)
}

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(address(app)).await.expect("connects")
}

/// Sends `request` and reads one response (head and `content-length` body); returns its head.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.expect("request written");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("a numeric content-length"))
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return head;
            }
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {received:?}");
        received.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the server closes `stream` (EOF or reset); panics after `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => panic!("the server kept the connection open for {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {} // whatever it says before closing does not matter
        }
    }
}

async fn livez(app: &TestApp) -> reqwest::StatusCode {
    app.client
        .get(format!("{}/livez", app.base))
        .send()
        .await
        .expect("livez answered")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let db = db::fresh_sqlite().await;
    let mut config = config(db.url.clone());
    config.header_read_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;

    let start = Instant::now();
    let mut half = connect(&app).await;
    half.write_all(b"GET /liv").await.expect("written");
    let mut silent = connect(&app).await;

    assert_eq!(livez(&app).await, 200, "others are served meanwhile");
    closed_by_server(&mut half, PATIENCE).await;
    closed_by_server(&mut silent, PATIENCE).await;
    let took = start.elapsed();
    eprintln!("both closed {took:?} after connecting");
    assert!(
        took >= Duration::from_millis(950),
        "closed by the timer, not at once: {took:?}"
    );
    assert_eq!(livez(&app).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let db = db::fresh_sqlite().await;
    let mut config = config(db.url.clone());
    // Shorter than the idle timeout: the wait between requests is not a slow head.
    config.header_read_timeout = Duration::from_millis(300);
    config.idle_timeout = Duration::from_millis(1200);
    let app = TestApp::spawn_with(config).await;

    let mut stream = connect(&app).await;
    let head = exchange(&mut stream, LIVEZ).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let head = exchange(&mut stream, LIVEZ).await;
    assert!(head.starts_with("http/1.1 200"), "kept alive: {head}");

    let idle_from = Instant::now();
    closed_by_server(&mut stream, PATIENCE).await;
    let idled = idle_from.elapsed();
    eprintln!("closed after {idled:?} idle");
    assert!(
        idled >= Duration::from_millis(1150),
        "closed by the idle timeout, not the header-read one: {idled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_client_waits_until_one_closes() {
    let db = db::fresh_sqlite().await;
    let mut config = config(db.url.clone());
    config.max_connections = 3;
    config.idle_timeout = Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;

    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        exchange(&mut stream, LIVEZ).await; // accepted, now idle
        held.push(stream);
    }
    // The kernel completes the handshake; Rolecall does not accept it yet.
    let mut waiting = connect(&app).await;
    waiting.write_all(LIVEZ).await.expect("written");
    let mut chunk = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut chunk)).await;
    assert!(early.is_err(), "a fourth connection was served: {early:?}");

    drop(held.pop());
    let mut received = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, waiting.read(&mut chunk))
            .await
            .expect("served once a connection closed")
            .expect("read");
        assert!(n > 0, "closed instead of served");
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 200"), "{received:?}");
    drop(waiting);
    drop(held);
    assert_eq!(livez(&app).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_does_not_wait_on_stalled_clients() {
    let db = db::fresh_sqlite().await;
    let mut config = config(db.url.clone());
    config.header_read_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(60);
    config.consistency_timeout = Duration::from_millis(1500);
    let app = rolecall::App::build(config).await.expect("app builds");
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    let mut idle = TcpStream::connect(addr).await.expect("connects");
    exchange(&mut idle, LIVEZ).await;
    let mut half = TcpStream::connect(addr).await.expect("connects");
    half.write_all(b"GET /liv").await.expect("written");
    // Waits for a revision that never comes, until `consistency_timeout`.
    let body = json!({"subject": {"principalId": uuid::Uuid::new_v4()}, "action": "a.b/c",
        "resource": "/", "consistency": {"atLeast": "999999999"}})
    .to_string();
    let request = format!(
        "POST /v1/check HTTP/1.1\r\nhost: rolecall\r\nauthorization: Bearer {ADMIN_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut slow = TcpStream::connect(addr).await.expect("connects");
    let in_flight = tokio::spawn(async move { exchange(&mut slow, request.as_bytes()).await });
    // No hook says the request has reached its handler; on loopback this is ample.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = Instant::now();
    stop.send(()).expect("the server is running");
    closed_by_server(&mut idle, Duration::from_millis(500)).await;
    let head = in_flight.await.expect("the client task");
    assert!(
        head.starts_with("http/1.1 503"),
        "answered, not cut: {head}"
    );
    closed_by_server(&mut half, PATIENCE).await;
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("shutdown ends within the header-read timeout")
        .expect("the server task")
        .expect("served");
    let took = stopping.elapsed();
    eprintln!("run returned {took:?} after the shutdown signal");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// Loads `text` as a config file.
fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = std::env::temp_dir().join(format!("rolecall-connections-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("rolecall.toml");
    std::fs::write(&path, text).expect("written");
    let loaded = Config::load(Overrides {
        config: Some(path),
        admin_key: Some(ADMIN_KEY.to_owned()),
        ..Overrides::default()
    });
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

#[test]
fn connection_settings_load_and_bad_ones_name_their_key() {
    let config =
        load("header_read_timeout_ms = 2500\nidle_timeout_ms = 30000\nmax_connections = 64\n")
            .expect("valid");
    assert_eq!(config.header_read_timeout, Duration::from_millis(2500));
    assert_eq!(config.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.max_connections, 64);
    let defaults = load("").expect("valid");
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.idle_timeout, Duration::from_secs(120));
    assert!((1..=10_000).contains(&defaults.max_connections));

    for key in [
        "header_read_timeout_ms",
        "idle_timeout_ms",
        "max_connections",
    ] {
        for bad in ["0", "-5", "\"ten\"", "1.5"] {
            let error = load(&format!("{key} = {bad}\n")).expect_err(bad);
            let message = error.to_string();
            assert!(message.contains(key), "{key} = {bad}: {message}");
            assert!(
                !message.contains("unknown field"),
                "{key} is a known setting: {message}"
            );
            if bad == "0" {
                assert!(
                    matches!(error, ConfigError::Invalid { key: k, .. } if k == key),
                    "{error:?}"
                );
            }
        }
    }
    for (key, huge) in [
        ("header_read_timeout_ms", "86400001"),
        ("idle_timeout_ms", "9223372036854775807"),
        ("max_connections", "4294967296"),
    ] {
        let error = load(&format!("{key} = {huge}\n")).expect_err(huge);
        assert!(
            matches!(error, ConfigError::Invalid { key: k, .. } if k == key),
            "{key} = {huge}: {error:?}"
        );
    }
}

/// The `rolecall` binary, killed on drop.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_neither_spins_nor_stops_the_server() {
    use std::io::BufRead as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let dir = std::env::temp_dir().join(format!("rolecall-emfile-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let config = dir.join("rolecall.toml");
    // A cap above what the open-files limit allows, so `accept` itself fails with EMFILE.
    std::fs::write(
        &config,
        "header_read_timeout_ms = 1000\nmax_connections = 1000\n",
    )
    .expect("written");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 96 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rolecall"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&dir)
        .env("ROLECALL_ADMIN_KEY", ADMIN_KEY)
        .env("ROLECALL_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("ROLECALL_DATABASE_URL")
        .env_remove("ROLECALL_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rolecall serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let process = Process(child);
    let failures = Arc::new(AtomicUsize::new(0));
    let (listening, address) = std::sync::mpsc::channel();
    let counted = failures.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("rolecall: listening on ") {
                let _ = listening.send(url.trim().to_owned());
            }
        }
    });
    // The log is on stderr.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("accept failed") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let base = tokio::task::spawn_blocking(move || address.recv_timeout(Duration::from_secs(60)))
        .await
        .expect("the reader task")
        .expect("the server listens");
    let addr = base.trim_start_matches("http://").to_owned();

    // Far more silent or half-sent connections than file descriptors.
    let mut stalled = Vec::new();
    for i in 0..150 {
        let mut stream = TcpStream::connect(&addr).await.expect("connects");
        if i % 2 == 0 {
            stream.write_all(b"GET /liv").await.expect("written");
        }
        stalled.push(stream);
    }
    let started = Instant::now();
    let status = reqwest::Client::new()
        .get(format!("{base}/livez"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("livez answered once stalled connections are cut off")
        .status();
    assert_eq!(status, 200);
    let failed = failures.load(Ordering::Relaxed);
    eprintln!(
        "livez answered after {:?}; {failed} accept failures logged",
        started.elapsed()
    );
    assert!(failed > 0, "the open-files limit was reached");
    assert!(
        failed < 100,
        "accept backs off instead of spinning: {failed}"
    );
    let mut process = process;
    assert!(
        process.0.try_wait().expect("status").is_none(),
        "still running"
    );
    drop(stalled);
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}
