//! The log of a real `rolecall serve`: JSON lines carrying the request id the response
//! echoes, and no secret at `debug`, not the admin key, a token (or its signature), the
//! gateway's shared secret or the database password, even from requests that fail with
//! them.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rolecall");
const ADMIN_KEY: &str = "logs-test-admin-key-3f9c2a7e1b";
const WRONG_KEY: &str = "logs-test-wrong-key-8d41c0b6aa";
const GATEWAY_SECRET: &str = "logs-test-gateway-secret-5e2d";
const DB_PASSWORD: &str = "logs-test-db-password-71ab";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// `rolecall serve --dev` with JSON logs at `debug` into `dir/stderr.log`; killed on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, database_url: &str) -> Server {
        let config = dir.join("rolecall.toml");
        std::fs::write(
            &config,
            format!(
                "[gateway]\nshared_secret = \"{GATEWAY_SECRET}\"\n\
                 [[gateway.routes]]\nmethod = \"GET\"\npath = \"/apps/{{id}}\"\n\
                 action = \"contoso.apps/read\"\nresource = \"/apps/{{id}}\"\n"
            ),
        )
        .unwrap();
        let log = dir.join("stderr.log");
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir)
            .env("ROLECALL_DATABASE_URL", database_url)
            .env("ROLECALL_ADMIN_KEY", ADMIN_KEY)
            .env("ROLECALL_LOG", "debug")
            .env_remove("RUST_LOG")
            .env_remove("ROLECALL_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("rolecall serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("serve exited before listening:\n{log}");
            };
            if let Some(url) = line.strip_prefix("rolecall: listening on ") {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, base, log }
    }

    /// Stops the server and returns its log.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).expect("the log")
    }
}

fn dev_token(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("dev-token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("dev-token runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `url` with `password` set.
fn with_password(url: &str, password: &str) -> String {
    let mut url = url::Url::parse(url).expect("a database URL");
    url.set_password(Some(password)).expect("a URL with a host");
    url.to_string()
}

/// The log's lines, each parsed as JSON.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// Panics naming each secret that appears in `log`.
fn assert_no_secrets(log: &str, secrets: &[(&str, &str)]) {
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, secret)| log.contains(secret))
        .map(|(name, _)| *name)
        .collect();
    assert!(leaked.is_empty(), "the log holds {leaked:?}:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_log_holds_request_ids_and_no_secrets() {
    let dir = std::env::temp_dir().join(format!("rolecall-logs-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = crate::common::db::fresh_postgres().await;
    let server = Server::start(&dir, &with_password(&db.url, DB_PASSWORD));
    let client = reqwest::Client::new();
    let admin = Uuid::new_v4();
    let token = dev_token(&dir, &["--oid", &admin.to_string(), "--wids", GLOBAL_ADMIN]);
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let user = Uuid::new_v4();
    let user_token = dev_token(&dir, &["--oid", &user.to_string()]);

    // (request id sent or none, method, path, credential, body) and the status expected.
    let base = &server.base;
    let calls: Vec<(Option<&str>, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            Some("logs-admin-key"),
            client
                .post(format!("{base}/v1/groups"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"displayName": "Log readers"})),
            StatusCode::CREATED,
        ),
        (
            Some("logs-wrong-key"),
            client
                .get(format!("{base}/v1/groups"))
                .bearer_auth(WRONG_KEY),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("logs-token"),
            client
                .get(format!("{base}/v1/roleDefinitions"))
                .bearer_auth(&token),
            StatusCode::OK,
        ),
        (
            Some("logs-tampered-token"),
            client
                .get(format!("{base}/v1/roleDefinitions"))
                .bearer_auth(&tampered),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("logs-subject-token"),
            client
                .post(format!("{base}/v1/check"))
                .bearer_auth(&user_token)
                .json(&json!({
                    "subject": {"token": user_token},
                    "action": "contoso.apps/read",
                    "resource": "/apps/1",
                })),
            StatusCode::OK,
        ),
        (
            Some("logs-gateway"),
            client
                .get(format!("{base}/v1/gateway/authorize"))
                .bearer_auth(&user_token)
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-uri", "/apps/1")
                .header("x-rolecall-gateway-secret", format!("{GATEWAY_SECRET}-not")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("has a space"),
            client.get(format!("{base}/nowhere")).bearer_auth(WRONG_KEY),
            StatusCode::NOT_FOUND,
        ),
        (
            None,
            client.get(format!("{base}/v1/groups")),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    let mut echoed = Vec::new();
    for (sent, request, status) in calls {
        let request = match sent {
            Some(id) => request.header("x-request-id", id),
            None => request,
        };
        let response = request.send().await.expect("sent");
        let id = response
            .headers()
            .get("x-request-id")
            .expect("every response echoes a request id")
            .to_str()
            .unwrap()
            .to_owned();
        let got = response.status();
        let body = response.text().await.unwrap();
        assert!(
            got == status || (sent == Some("logs-gateway") && got.is_client_error()),
            "{sent:?}: {got} {body}"
        );
        match sent {
            Some(sent) if !sent.contains(' ') => assert_eq!(id, sent, "a valid id is kept"),
            _ => assert!(!id.contains(' ') && !id.is_empty(), "replaced: {id}"),
        }
        if got.is_client_error() && body.starts_with('{') {
            let problem: Value = serde_json::from_str(&body).unwrap();
            if problem.get("type").is_some() {
                assert_eq!(problem["requestId"], id.as_str(), "{body}");
            }
        }
        echoed.push(id);
    }

    let log = server.stop();
    assert_no_secrets(
        &log,
        &[
            ("the admin key", ADMIN_KEY),
            ("the wrong admin key", WRONG_KEY),
            ("a token", &token),
            ("a token's signature", &signature),
            ("a tampered token", &tampered),
            ("a subject token", &user_token),
            ("the gateway secret", GATEWAY_SECRET),
            ("the database password", DB_PASSWORD),
        ],
    );
    let lines = json_lines(&log);
    assert!(lines.len() > 10, "a debug log says something:\n{log}");
    for id in &echoed {
        let with_id: Vec<&Value> = lines
            .iter()
            .filter(|l| l["request_id"] == id.as_str())
            .collect();
        assert!(
            !with_id.is_empty(),
            "no log line carries request id {id}:\n{log}"
        );
    }
    // Inside the request span, every line carries the span's request id.
    for line in &lines {
        let Some(spans) = line["spans"].as_array() else {
            continue;
        };
        if let Some(request) = spans.iter().find(|s| s["name"] == "request") {
            assert_eq!(line["request_id"], request["request_id"], "{line}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_logged_without_its_password() {
    let dir = std::env::temp_dir().join(format!("rolecall-logs-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://rolecall:{DB_PASSWORD}@127.0.0.1:{port}/rolecall");
    let server = Server::start(&dir, &url);
    // Serving as not ready; wait for a retry or two to be logged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        if log.matches("unreachable").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.stop();
    assert!(log.contains("unreachable"), "the outage is logged:\n{log}");
    assert_no_secrets(&log, &[("the database password", DB_PASSWORD)]);
    json_lines(&log);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_validated_config_debug_prints_no_secret() {
    let file: rolecall::config::FileSettings = toml::from_str(&format!(
        "admin_key = \"{ADMIN_KEY}\"\n\
         database_url = \"postgres://rolecall:{DB_PASSWORD}@db.example/rolecall\"\n\
         [gateway]\nshared_secret = \"{GATEWAY_SECRET}\"\n"
    ))
    .unwrap();
    let config =
        rolecall::config::Config::resolve(file, rolecall::config::Overrides::default()).unwrap();
    assert_no_secrets(
        &format!("{config:?}"),
        &[
            ("the admin key", ADMIN_KEY),
            ("the gateway secret", GATEWAY_SECRET),
            ("the database password", DB_PASSWORD),
        ],
    );
}
