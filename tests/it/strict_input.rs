//! Strict, well-formed input: one JSON value per body, bodies on a deadline, protocol-level
//! rejections as problem documents, no blank display names, one spelling of an id in a path.
//! Byte-level cases use raw sockets on loopback so the tests control every byte.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rolecall::config::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::db;

/// How long any test waits for something that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(5);

async fn app_with(body_read_timeout: Duration) -> (TestApp, db::TestDb) {
    let db = db::fresh_sqlite().await;
    let mut config = Config::for_tests(db.url.clone(), ADMIN_KEY);
    config.body_read_timeout = body_read_timeout;
    (TestApp::spawn_with(config).await, db)
}

/// Sends `body` as JSON text, byte for byte.
async fn send_text(app: &TestApp, method: Method, path: &str, body: &str) -> Reply {
    let response = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("answered");
    TestApp::reply(response).await
}

/// One raw exchange: writes `request`, reads until the server closes or one whole
/// `content-length` response has arrived; returns (status, head, body, elapsed).
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, Value, Duration) {
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connects");
    let start = Instant::now();
    // The server may answer and close before taking all of a large request.
    let _ = stream.write_all(request).await;
    let (head, body) = read_response(&mut stream, start + Duration::from_secs(20)).await;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head, body, start.elapsed())
}

async fn read_response(stream: &mut TcpStream, deadline: Instant) -> (String, Value) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("a numeric content-length"))
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                let body = serde_json::from_slice(&received[end + 4..end + 4 + length])
                    .unwrap_or(Value::Null);
                return (head, body);
            }
        }
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => panic!("no whole response in time: {received:?}"),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => panic!("read failed: {error} after {received:?}"),
        };
        assert!(n > 0, "closed before a whole response: {received:?}");
        received.extend_from_slice(&chunk[..n]);
    }
}

fn problem_type(head: &str, body: &Value) -> String {
    assert!(
        head.contains("content-type: application/problem+json"),
        "not a problem document: {head}"
    );
    body["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("https://rolecall.dev/problems/"))
        .unwrap_or_else(|| panic!("no problem type in {body}"))
        .to_owned()
}

#[tokio::test]
async fn trailing_bytes_after_a_json_body_are_refused_on_writes_and_checks() {
    let (app, _db) = app_with(Duration::from_secs(10)).await;

    let twice = send_text(
        &app,
        Method::POST,
        "/v1/groups",
        r#"{"displayName":"a"}{"displayName":"b"}"#,
    )
    .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{twice:?}");
    assert_eq!(twice.problem(), "malformed-body");
    let garbage = send_text(&app, Method::POST, "/v1/groups", r#"{"displayName":"a"} x"#).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{garbage:?}");
    assert_eq!(garbage.problem(), "malformed-body");
    let listed = app.get("/v1/groups").await;
    assert_eq!(listed.body["value"], json!([]), "nothing was created");

    let spaced = send_text(
        &app,
        Method::POST,
        "/v1/groups",
        "{\"displayName\":\"a\"} \r\n\t ",
    )
    .await;
    assert_eq!(
        spaced.status,
        StatusCode::CREATED,
        "whitespace is fine: {spaced:?}"
    );

    let check = json!({"subject": {"principalId": uuid::Uuid::new_v4()},
        "action": "a.b/c/read", "resource": "/"})
    .to_string();
    let answered = send_text(&app, Method::POST, "/v1/check", &check).await;
    assert_eq!(answered.status, StatusCode::OK, "{answered:?}");
    for trailer in ["{}", "]", "1", "null", "x"] {
        let refused = send_text(
            &app,
            Method::POST,
            "/v1/check",
            &format!("{check}{trailer}"),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{trailer}: {refused:?}"
        );
        assert_eq!(refused.problem(), "malformed-body");
    }

    let evaluation = json!({"subject": {"type": "user", "id": uuid::Uuid::new_v4()},
        "action": {"name": "a.b/c/read"}, "resource": {"type": "applications", "id": "x"}})
    .to_string();
    let answered = send_text(&app, Method::POST, "/access/v1/evaluation", &evaluation).await;
    assert_eq!(answered.status, StatusCode::OK, "{answered:?}");
    let refused = send_text(
        &app,
        Method::POST,
        "/access/v1/evaluation",
        &format!("{evaluation}{evaluation}"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
}

#[tokio::test]
async fn display_names_of_invisible_characters_alone_are_refused() {
    let (app, _db) = app_with(Duration::from_secs(10)).await;
    for blank in [
        "\u{200B}",
        "\u{202E}",
        "\u{200B}\u{202E}\u{2066}\u{FEFF}",
        " \u{200D} ",
    ] {
        let group = app.post("/v1/groups", &json!({"displayName": blank})).await;
        assert_eq!(
            group.status,
            StatusCode::BAD_REQUEST,
            "{blank:?}: {group:?}"
        );
        assert_eq!(group.problem(), "validation");
        assert_eq!(group.body["errors"][0]["pointer"], "/displayName");
        assert!(
            group.body["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("visible character")),
            "{group:?}"
        );
        let role = app
            .post(
                "/v1/roleDefinitions",
                &json!({"displayName": blank, "rolePermissions":
                    [{"allowedResourceActions": ["contoso.expenses/read"]}]}),
            )
            .await;
        assert_eq!(role.status, StatusCode::BAD_REQUEST, "{blank:?}: {role:?}");
        let unit = app
            .post("/v1/administrativeUnits", &json!({"displayName": blank}))
            .await;
        assert_eq!(unit.status, StatusCode::BAD_REQUEST, "{blank:?}: {unit:?}");
    }
    let kept = app
        .post("/v1/groups", &json!({"displayName": "a\u{200B}b"}))
        .await;
    assert_eq!(kept.status, StatusCode::CREATED, "{kept:?}");
}

#[tokio::test]
async fn a_uuid_in_braces_or_as_a_urn_names_nothing_in_a_path() {
    let (app, _db) = app_with(Duration::from_secs(10)).await;
    let created = app
        .post("/v1/groups", &json!({"displayName": "Braced"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = uuid::Uuid::parse_str(created.body["id"].as_str().unwrap()).unwrap();

    for same in [
        id.hyphenated().to_string(),
        id.hyphenated().to_string().to_uppercase(),
        id.simple().to_string(),
    ] {
        let found = app.get(&format!("/v1/groups/{same}")).await;
        assert_eq!(found.status, StatusCode::OK, "{same}: {found:?}");
    }
    for alias in [
        format!("%7B{id}%7D"),
        format!("urn:uuid:{id}"),
        format!("%7B{}%7D", id.hyphenated().to_string().to_uppercase()),
    ] {
        let found = app.get(&format!("/v1/groups/{alias}")).await;
        assert_eq!(found.status, StatusCode::NOT_FOUND, "{alias}: {found:?}");
        assert_eq!(found.problem(), "not-found");
        let role = app.get(&format!("/v1/roleDefinitions/{alias}")).await;
        assert_eq!(role.status, StatusCode::NOT_FOUND, "{alias}: {role:?}");
    }
    let member = app
        .delete(&format!("/v1/groups/{id}/members/%7B{id}%7D"))
        .await;
    assert_eq!(member.status, StatusCode::NOT_FOUND, "{member:?}");
    let not_a_uuid = app.get("/v1/groups/not-a-uuid").await;
    assert_eq!(not_a_uuid.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_shorter_than_its_content_length_is_a_408_after_the_body_read_timeout() {
    let timeout = Duration::from_millis(800);
    let (app, _db) = app_with(timeout).await;
    for path in ["/v1/groups", "/v1/check", "/access/v1/evaluation"] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: rolecall\r\nauthorization: Bearer {ADMIN_KEY}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"displayName\""
        );
        let (status, head, body, took) = raw(&app, request.as_bytes()).await;
        assert_eq!(status, 408, "{path}: {head}\n{body}");
        assert_eq!(problem_type(&head, &body), "request-timeout");
        assert!(head.contains("connection: close"), "{head}");
        assert!(
            took >= timeout - Duration::from_millis(50) && took < timeout + PATIENCE,
            "{path}: answered after {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_by_the_client_closing_is_a_400() {
    let (app, _db) = app_with(Duration::from_secs(10)).await;
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connects");
    let request = format!(
        "POST /v1/groups HTTP/1.1\r\nhost: rolecall\r\nauthorization: Bearer {ADMIN_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"displayName\""
    );
    stream.write_all(request.as_bytes()).await.expect("written");
    stream.shutdown().await.expect("half-closed");
    let start = Instant::now();
    let (head, body) = read_response(&mut stream, start + PATIENCE).await;
    assert!(head.starts_with("http/1.1 400"), "{head}\n{body}");
    assert_eq!(problem_type(&head, &body), "malformed-body");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_with_an_oversized_content_length_is_a_413_at_once() {
    let (app, _db) = app_with(Duration::from_secs(10)).await;
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connects");
    let request = format!(
        "POST /v1/groups HTTP/1.1\r\nhost: rolecall\r\nauthorization: Bearer {ADMIN_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        (1 << 20) + 1
    );
    stream.write_all(request.as_bytes()).await.expect("written");
    let start = Instant::now();
    let (head, body) = read_response(&mut stream, start + PATIENCE).await;
    assert!(
        head.starts_with("http/1.1 413"),
        "no 100 Continue first: {head}"
    );
    assert_eq!(problem_type(&head, &body), "payload-too-large");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // At the limit, the client is told to go on and the body is read.
    let (status, head, _, _) = raw(
        &app,
        format!(
            "POST /v1/groups HTTP/1.1\r\nhost: rolecall\r\nauthorization: Bearer {ADMIN_KEY}\r\n\
             content-type: application/json\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status, 100, "{head}");
}

/// `body` as one chunk of chunked transfer coding, then the last chunk.
fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_read_whole_and_held_to_the_size_limit() {
    let db = db::fresh_sqlite().await;
    let mut config = Config::for_tests(db.url.clone(), ADMIN_KEY);
    // Small, so the refused body fits in the socket buffers and the answer is read whole.
    let max = 4096;
    config.max_body_bytes = max;
    let app = TestApp::spawn_with(config).await;
    let head = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: rolecall\r\nauthorization: Bearer {ADMIN_KEY}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )
    };
    // Within the limit, in several chunks: read whole, as with a `Content-Length`.
    let body = r#"{"displayName": "Chunked"}"#;
    let (first, second) = body.split_at(10);
    let request = format!(
        "{}{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        head("/v1/groups"),
        first.len(),
        second.len()
    );
    let (status, head_in, created, _) = raw(&app, request.as_bytes()).await;
    assert_eq!(status, 201, "{head_in}\n{created}");
    assert_eq!(created["displayName"], "Chunked");

    // Over the limit with no `Content-Length` to refuse up front: 413 once the body passes
    // the limit, on every route that reads a body, and nothing is stored.
    for path in ["/v1/groups", "/v1/check", "/access/v1/evaluation"] {
        let body = format!(r#"{{"displayName": "{}"}}"#, "x".repeat(max));
        let request = format!("{}{}", head(path), chunked(&body));
        let (status, head_out, problem, _) = raw(&app, request.as_bytes()).await;
        assert_eq!(status, 413, "{path}: {head_out}\n{problem}");
        assert_eq!(problem_type(&head_out, &problem), "payload-too-large");
        assert_eq!(
            problem["detail"],
            format!("a request body is at most {max} bytes"),
            "{path}"
        );
    }
    let groups = app.get("/v1/groups").await;
    assert_eq!(groups.body["value"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_level_rejections_are_problem_documents() {
    let (app, _db) = app_with(Duration::from_secs(10)).await;
    let long = "a".repeat(70_000);
    let huge_header = format!("x-big: {}\r\n", "b".repeat(8_000)).repeat(128);
    let many_headers: String = (0..120).map(|i| format!("x-h{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a control byte in the path",
            b"GET /v1/gr\x01oups HTTP/1.1\r\nhost: rolecall\r\n\r\n".to_vec(),
            400,
            "malformed-request",
        ),
        (
            "a space in the path",
            b"GET /v1/gr oups HTTP/1.1\r\nhost: rolecall\r\n\r\n".to_vec(),
            400,
            "malformed-request",
        ),
        (
            "a header line without a colon",
            b"GET /livez HTTP/1.1\r\nhost: rolecall\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "malformed-request",
        ),
        (
            "a header name with a space",
            b"GET /livez HTTP/1.1\r\nhost: rolecall\r\nbad name: x\r\n\r\n".to_vec(),
            400,
            "malformed-request",
        ),
        (
            "a request target over the limit",
            format!("GET /{long} HTTP/1.1\r\nhost: rolecall\r\n\r\n").into_bytes(),
            414,
            "uri-too-long",
        ),
        (
            "headers over the buffer",
            format!("GET /livez HTTP/1.1\r\nhost: rolecall\r\n{huge_header}\r\n").into_bytes(),
            431,
            "headers-too-large",
        ),
        (
            "more header lines than the server takes",
            format!("GET /livez HTTP/1.1\r\nhost: rolecall\r\n{many_headers}\r\n").into_bytes(),
            431,
            "headers-too-large",
        ),
    ];
    for (what, request, status, kind) in cases {
        let (got, head, body, _) = raw(&app, &request).await;
        assert_eq!(got, status, "{what}: {head}\n{body}");
        assert_eq!(problem_type(&head, &body), kind, "{what}");
        assert_eq!(body["status"], status, "{what}");
        assert!(head.contains("connection: close"), "{what}: {head}");
    }
    // The server is unharmed, and its own answers are untouched.
    let (status, head, body, _) =
        raw(&app, b"GET /nowhere HTTP/1.1\r\nhost: rolecall\r\n\r\n").await;
    assert_eq!(status, 404, "{head}");
    assert_eq!(problem_type(&head, &body), "not-found");
}
