//! Gateways delegate each request: `/v1/gateway/authorize` asked directly with each gateway's
//! headers, and behind a real nginx (`auth_request`) and a real Caddy (`forward_auth`), run
//! from `docs/gateways/` as shipped, in front of a small upstream that echoes what it was
//! told about the caller. The gateways are Debian packages (`.ci/run` installs them); a
//! missing one fails the test, it is never skipped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::any;
use axum::{Json, Router};
use reqwest::{Method, StatusCode};
use rolecall::config::{Config, FileSettings, DEFAULT_TENANT};
use rolecall::gateway::{Gateway, Routes};
use rolecall::store::Backend;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::env::{assign, create_role, env_on, Env};
use crate::common::spec::assert_response_matches;

const AUTHORIZE: &str = "/v1/gateway/authorize";
const APP_A: &str = "A1";
const APP_B: &str = "B2";
const READ: &str = "contoso.apps/credentials/read";

/// The rules every test here starts from: reading an application's credentials needs
/// `READ` at the application; changing them, the update action.
const ROUTES: &str = r#"
[gateway]
unmatched = "deny"
[[gateway.routes]]
method = "GET"
path = "/api/apps/{appId}/credentials"
action = "contoso.apps/credentials/read"
resource = "/applications/{appId}"
[[gateway.routes]]
method = ["POST", "PATCH"]
path = "/api/apps/{appId}/credentials"
action = "contoso.apps/credentials/update"
resource = "/applications/{appId}"
"#;

fn routes(toml: &str) -> Routes {
    let file: FileSettings = toml::from_str(toml).expect("the test's [gateway] parses");
    Routes::new(&file.gateway).expect("the test's [gateway] is valid")
}

/// An app trusting a fake identity provider, with `toml`'s rules, and a user who may read
/// application A's credentials (and nothing about B).
struct Fixture {
    env: Env,
    user: Uuid,
    token: String,
    reader: String,
}

async fn fixture_with(
    backend: Backend,
    toml: &str,
    configure: impl FnOnce(&mut Config),
) -> Fixture {
    let gateway = Arc::new(Gateway::new(routes(toml), None));
    let env = env_on(backend, |_, _, config| {
        config.gateway = gateway;
        configure(config);
    })
    .await;
    let user = Uuid::new_v4();
    let reader = create_role(&env.app, "App credential reader", &[READ]).await;
    assign(
        &env.app,
        user,
        "user",
        &reader,
        &format!("/applications/{APP_A}"),
    )
    .await;
    let token = env.token(user);
    Fixture {
        env,
        user,
        token,
        reader,
    }
}

async fn fixture(backend: Backend) -> Fixture {
    fixture_with(backend, ROUTES, |_| {}).await
}

/// Asks `/v1/gateway/authorize` (or `path`) with `headers` and, when given, `token`.
async fn ask(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TestApp::reply(request.send().await.expect("request sent")).await
}

/// nginx's question about `method uri`.
async fn nginx_asks(f: &Fixture, method: &str, uri: &str) -> Reply {
    let headers = [("X-Original-Method", method), ("X-Original-URI", uri)];
    ask(&f.env.app, Method::GET, AUTHORIZE, Some(&f.token), &headers).await
}

/// Asserts a 403 problem as the contract documents it, and returns its detail.
fn denied(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_eq!(reply.problem(), "forbidden");
    assert_response_matches("GET", AUTHORIZE, 403, &reply.body);
    reply.body["detail"].as_str().unwrap_or_default().to_owned()
}

fn assert_allowed(reply: &Reply, user: Uuid) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.header("x-rolecall-principal"),
        Some(user.to_string().as_str())
    );
    assert_eq!(
        reply.header("x-rolecall-tenant"),
        Some(DEFAULT_TENANT.to_string().as_str())
    );
    let decision = reply.header("x-rolecall-decision-id").unwrap_or_default();
    assert!(!decision.is_empty(), "{reply:?}");
    assert_eq!(reply.header("x-request-id"), Some(decision));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

// --- the endpoint, asked directly ---

#[tokio::test]
async fn nginx_headers_are_decided_as_the_token_holder_with_the_rule_for_the_path() {
    let f = fixture(Backend::Sqlite).await;
    let allowed = nginx_asks(&f, "GET", &format!("/api/apps/{APP_A}/credentials?page=2")).await;
    assert_allowed(&allowed, f.user);
    let decision = f
        .env
        .app
        .decisions
        .all()
        .into_iter()
        .rev()
        .find(|d| d.action == READ)
        .expect("the decision was reported");
    assert_eq!(decision.subject, f.user);
    assert_eq!(decision.resource, format!("/applications/{APP_A}"));
    assert_eq!(
        Some(decision.request_id.as_str()),
        allowed.header("x-rolecall-decision-id")
    );

    let other = nginx_asks(&f, "GET", &format!("/api/apps/{APP_B}/credentials")).await;
    denied(&other);
    assert_eq!(other.body["action"], READ);
    assert_eq!(other.body["scope"], format!("/applications/{APP_B}"));
    // A method whose rule needs what the user lacks.
    let write = nginx_asks(&f, "post", &format!("/api/apps/{APP_A}/credentials")).await;
    assert_eq!(denied(&write), format!("the caller may not perform `contoso.apps/credentials/update` at `/applications/{APP_A}`"));
}

#[tokio::test]
async fn caddy_and_traefik_headers_and_envoy_paths_ask_the_same_question() {
    let f = fixture(Backend::Sqlite).await;
    let app = &f.env.app;
    let a = format!("/api/apps/{APP_A}/credentials");
    let b = format!("/api/apps/{APP_B}/credentials");
    let forwarded = |uri: &str| {
        [
            ("X-Forwarded-Method", "GET".to_owned()),
            ("X-Forwarded-Uri", uri.to_owned()),
            ("X-Forwarded-Host", "api.contoso.test".to_owned()),
        ]
    };
    for (uri, allowed) in [(&a, true), (&b, false)] {
        let headers = forwarded(uri);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = ask(app, Method::GET, AUTHORIZE, Some(&f.token), &headers).await;
        if allowed {
            assert_allowed(&reply, f.user);
        } else {
            denied(&reply);
        }
        // Envoy: the original method and path under the prefix, any method.
        let reply = ask(
            app,
            Method::GET,
            &format!("{AUTHORIZE}{uri}?x=1"),
            Some(&f.token),
            &[],
        )
        .await;
        if allowed {
            assert_allowed(&reply, f.user);
        } else {
            denied(&reply);
        }
    }
    let patch = ask(
        app,
        Method::PATCH,
        &format!("{AUTHORIZE}{a}"),
        Some(&f.token),
        &[],
    )
    .await;
    assert!(denied(&patch).contains("contoso.apps/credentials/update"));
    // `GET` also answers `HEAD`, without a body.
    let head = ask(
        app,
        Method::HEAD,
        &format!("{AUTHORIZE}{a}"),
        Some(&f.token),
        &[],
    )
    .await;
    assert_eq!(
        head.status,
        StatusCode::FORBIDDEN,
        "HEAD is the original method: no rule"
    );
}

#[tokio::test]
async fn a_request_no_gateway_could_have_sent_is_a_400_never_access() {
    let f = fixture(Backend::Sqlite).await;
    let app = &f.env.app;
    let a = format!("/api/apps/{APP_A}/credentials");
    let b = format!("/api/apps/{APP_B}/credentials");
    let (a, b) = (a.as_str(), b.as_str());
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "X-Original-URI"),
        (vec![("X-Original-URI", a)], "X-Original-Method"),
        // A client's own header slipped past the gateway: the sources disagree.
        (
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", a),
                ("X-Forwarded-Uri", b),
            ],
            "name different requests",
        ),
        (
            vec![
                ("X-Original-Method", "GET"),
                ("X-Forwarded-Method", "DELETE"),
                ("X-Original-URI", a),
            ],
            "name different requests",
        ),
        (
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", a),
                ("X-Original-URI", a),
            ],
            "more than once",
        ),
        (
            vec![("X-Original-Method", "G T"), ("X-Original-URI", a)],
            "not an HTTP method",
        ),
        (
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", a),
                ("X-Forwarded-Host", "a.test, b.test"),
            ],
            "one host",
        ),
    ];
    for (headers, needle) in cases {
        let reply = ask(app, Method::GET, AUTHORIZE, Some(&f.token), &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{headers:?}: {reply:?}"
        );
        assert_eq!(reply.problem(), "validation");
        assert_response_matches("GET", AUTHORIZE, 400, &reply.body);
        assert!(
            reply.body.to_string().contains(needle),
            "{needle}: {reply:?}"
        );
    }
    // Envoy's path and a header that agree are one request.
    let envoy = ask(
        app,
        Method::GET,
        &format!("{AUTHORIZE}{a}"),
        Some(&f.token),
        &[("X-Forwarded-Uri", a), ("X-Forwarded-Method", "get")],
    )
    .await;
    assert_allowed(&envoy, f.user);
    let disagree = ask(
        app,
        Method::GET,
        &format!("{AUTHORIZE}{a}"),
        Some(&f.token),
        &[("X-Forwarded-Uri", b)],
    )
    .await;
    assert_eq!(disagree.status, StatusCode::BAD_REQUEST, "{disagree:?}");
}

#[tokio::test]
async fn no_token_or_a_bad_one_is_a_401_with_a_challenge_and_the_admin_key_decides_nothing() {
    let f = fixture(Backend::Sqlite).await;
    let app = &f.env.app;
    let a = format!("/api/apps/{APP_A}/credentials");
    let headers = [("X-Original-Method", "GET"), ("X-Original-URI", a.as_str())];
    let none = ask(app, Method::GET, AUTHORIZE, None, &headers).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{none:?}");
    assert_eq!(none.problem(), "unauthorized");
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"rolecall\"")
    );
    assert_response_matches("GET", AUTHORIZE, 401, &none.body);

    // One changed character (the last one could already be the replacement).
    let mut forged = f.token.clone();
    let last = forged.pop();
    forged.push(if last == Some('A') { 'Q' } else { 'A' });
    for bad in [forged.as_str(), "not-a-token"] {
        let reply = ask(app, Method::GET, AUTHORIZE, Some(bad), &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert_eq!(reply.problem(), "invalid-token");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert_response_matches("GET", AUTHORIZE, 401, &reply.body);
    }
    // A token of another issuer's tenant than the header names.
    let other_tenant = Uuid::new_v4().to_string();
    let mut with_tenant = headers.to_vec();
    with_tenant.push(("Rolecall-Tenant", &other_tenant));
    denied(&ask(app, Method::GET, AUTHORIZE, Some(&f.token), &with_tenant).await);

    let admin = ask(app, Method::GET, AUTHORIZE, Some(ADMIN_KEY), &headers).await;
    assert!(denied(&admin).contains("admin key"), "{admin:?}");
}

#[tokio::test]
async fn a_traversal_is_decided_where_it_lands_and_ambiguous_paths_are_denied() {
    let f = fixture(Backend::Sqlite).await;
    // `..` (however spelled) is resolved before matching: A's rights never reach B.
    for uri in [
        format!("/api/apps/{APP_A}/../{APP_B}/credentials"),
        format!("/api/apps/{APP_A}/%2e%2E/{APP_B}/credentials"),
        format!("/api/apps/{APP_A}/./../{APP_B}//credentials/"),
        format!("http://api.contoso.test/api/apps/{APP_A}/../{APP_B}/credentials"),
    ] {
        let reply = nginx_asks(&f, "GET", &uri).await;
        assert_eq!(
            reply.body["scope"],
            format!("/applications/{APP_B}"),
            "{uri}: {reply:?}"
        );
        denied(&reply);
    }
    let landed = nginx_asks(
        &f,
        "GET",
        &format!("/api/apps/{APP_B}/../{APP_A}/credentials"),
    )
    .await;
    assert_allowed(&landed, f.user);
    // An id is one segment: `A1%40x` is the resource `/applications/A1%40x`, not A1.
    let encoded = nginx_asks(&f, "GET", &format!("/api/apps/{APP_A}%40x/credentials")).await;
    assert_eq!(encoded.body["scope"], format!("/applications/{APP_A}%40x"));
    denied(&encoded);
    for (uri, needle) in [
        (
            format!("/api/apps/{APP_A}%2F..%2F{APP_B}/credentials"),
            "encoded `/`",
        ),
        (
            format!("/api/apps/{APP_A}/..;/{APP_B}/credentials"),
            "`;` parameter",
        ),
        (
            format!("/api/apps/{APP_A}/%252e%252e/{APP_B}/credentials"),
            "doubly encoded",
        ),
        ("/api/../../etc/passwd".to_owned(), "above `/`"),
        (
            format!("/api/apps/{APP_A}\\..\\{APP_B}/credentials"),
            "`\\`",
        ),
        ("/api/apps/%zz/credentials".to_owned(), "two hex digits"),
        ("api/apps".to_owned(), "start with `/`"),
    ] {
        let reply = nginx_asks(&f, "GET", &uri).await;
        let detail = denied(&reply);
        assert!(detail.contains(needle), "{uri}: {detail}");
        assert!(reply.body.get("action").is_none(), "{reply:?}");
    }
}

#[tokio::test]
async fn an_unmatched_route_is_denied_unless_unmatched_is_allow() {
    let f = fixture(Backend::Sqlite).await;
    for (method, uri) in [
        ("GET", "/api/other?secret=1".to_owned()),
        ("DELETE", format!("/api/apps/{APP_A}/credentials")),
        ("GET", format!("/api/apps/{APP_A}")),
        ("GET", "/".to_owned()),
    ] {
        let detail = denied(&nginx_asks(&f, method, &uri).await);
        assert!(detail.starts_with("no gateway route matches"), "{detail}");
        assert!(
            !detail.contains("secret"),
            "the query stays out of messages: {detail}"
        );
    }
    let open = fixture_with(
        Backend::Sqlite,
        &ROUTES.replace("\"deny\"", "\"allow\""),
        |_| {},
    )
    .await;
    assert_allowed(&nginx_asks(&open, "GET", "/api/other").await, open.user);
    // A matched route is still decided.
    denied(&nginx_asks(&open, "GET", &format!("/api/apps/{APP_B}/credentials")).await);
}

#[tokio::test]
async fn a_host_rule_applies_to_its_host_only_and_wins_over_a_rule_for_any_host() {
    let toml = format!(
        "{ROUTES}\n{}",
        r#"
[[gateway.routes]]
method = "GET"
host = "admin.contoso.test"
path = "/api/apps/{appId}/credentials"
action = "contoso.apps/credentials/administer"
resource = "/applications/{appId}"
"#
    );
    let f = fixture_with(Backend::Sqlite, &toml, |_| {}).await;
    let a = format!("/api/apps/{APP_A}/credentials");
    let on_host = |host| {
        [
            ("X-Original-Method", "GET"),
            ("X-Original-URI", a.as_str()),
            ("X-Forwarded-Host", host),
        ]
    };
    let api = ask(
        &f.env.app,
        Method::GET,
        AUTHORIZE,
        Some(&f.token),
        &on_host("api.contoso.test"),
    )
    .await;
    assert_allowed(&api, f.user);
    let admin = ask(
        &f.env.app,
        Method::GET,
        AUTHORIZE,
        Some(&f.token),
        &on_host("ADMIN.contoso.test:8443"),
    )
    .await;
    denied(&admin);
    assert_eq!(admin.body["action"], "contoso.apps/credentials/administer");
}

#[tokio::test]
async fn with_a_shared_secret_only_the_gateway_that_sends_it_is_answered() {
    const SECRET: &str = "gateway-secret-0123456789";
    let toml = ROUTES.replace(
        "unmatched = \"deny\"",
        &format!("unmatched = \"deny\"\nshared_secret = \"{SECRET}\""),
    );
    let f = fixture_with(Backend::Sqlite, &toml, |_| {}).await;
    let a = format!("/api/apps/{APP_A}/credentials");
    let mut headers = vec![("X-Original-Method", "GET"), ("X-Original-URI", a.as_str())];
    let without = ask(&f.env.app, Method::GET, AUTHORIZE, Some(&f.token), &headers).await;
    assert!(denied(&without).contains("X-Rolecall-Gateway-Secret"));
    // Checked before the token: an unknown gateway learns nothing about tokens.
    let anonymous = ask(&f.env.app, Method::GET, AUTHORIZE, None, &headers).await;
    denied(&anonymous);
    headers.push(("X-Rolecall-Gateway-Secret", "gateway-secret-0123456788"));
    denied(&ask(&f.env.app, Method::GET, AUTHORIZE, Some(&f.token), &headers).await);
    headers.pop();
    headers.push(("X-Rolecall-Gateway-Secret", SECRET));
    assert_allowed(
        &ask(&f.env.app, Method::GET, AUTHORIZE, Some(&f.token), &headers).await,
        f.user,
    );
}

#[tokio::test]
async fn the_route_table_answers_the_authzen_route_resource_type_the_same_way() {
    // What AuthZEN's `resource.type == "route"` calls: resource.id is the path, action.name
    // the method.
    let f = fixture(Backend::Sqlite).await;
    let routes = f.env.app.state.config().gateway.routes();
    let target = routes
        .resolve(
            "get",
            &format!("/api/apps/{APP_A}/../{APP_B}/credentials?x"),
            None,
        )
        .expect("resolves")
        .expect("a rule matches");
    assert_eq!(target.action.as_str(), READ);
    assert_eq!(target.resource.as_str(), format!("/applications/{APP_B}"));
    assert_eq!(target.rule, 0);
    assert_eq!(target.captures, [("appId".to_owned(), APP_B.to_owned())]);
    assert!(routes
        .resolve("GET", "/nothing", None)
        .expect("a valid path")
        .is_none());
    assert!(routes.resolve("GET", "/a/%2F", None).is_err());
}

#[tokio::test]
async fn authzen_evaluations_of_routes_decide_as_the_gateway_does() {
    let f = fixture(Backend::Sqlite).await;
    let evaluate = |method: &str, path: String| {
        json!({
            "subject": {"type": "user", "id": f.user},
            "action": {"name": method},
            "resource": {"type": "route", "id": path},
        })
    };
    let cases = [
        ("GET", format!("/api/apps/{APP_A}/credentials"), true),
        ("GET", format!("/api/apps/{APP_A}/credentials?page=2"), true),
        ("GET", format!("/api/apps/{APP_B}/credentials"), false),
        // Traversal lands on B's rule, not A's.
        (
            "GET",
            format!("/api/apps/{APP_A}/../{APP_B}/credentials"),
            false,
        ),
        ("POST", format!("/api/apps/{APP_A}/credentials"), false),
        ("GET", "/api/unmapped".to_owned(), false),
        ("GET", "/api/apps/a%2Fb/credentials".to_owned(), false),
    ];
    for (method, path, expected) in cases {
        let r = f
            .env
            .app
            .post("/access/v1/evaluation", &evaluate(method, path.clone()))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}: {:?}", r.body);
        assert_eq!(r.body["decision"], expected, "{method} {path}");
        // And the same through the forward-auth endpoint.
        let gateway = nginx_asks(&f, method, &path).await;
        assert_eq!(
            gateway.status == StatusCode::OK,
            expected,
            "{method} {path}"
        );
    }
    let mut explained = evaluate("GET", format!("/api/apps/{APP_B}/credentials"));
    explained["context"] = json!({"rolecall_explain": true});
    let r = f.env.app.post("/access/v1/evaluation", &explained).await;
    assert_eq!(r.body["context"]["action"], READ, "{:?}", r.body);
    assert_eq!(
        r.body["context"]["resource"],
        format!("/applications/{APP_B}")
    );
}

#[tokio::test]
async fn sighup_reloads_the_rules_and_a_bad_file_keeps_the_ones_in_force() {
    let dir = std::env::temp_dir().join(format!("rolecall-gateway-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rolecall.toml");
    std::fs::write(&file, ROUTES).unwrap();
    let loaded = rolecall::config::read_gateway(&file).expect("the file is valid");
    let gateway = Arc::new(Gateway::new(loaded, Some(file.clone())));
    let f = fixture_with(Backend::Sqlite, ROUTES, |config| {
        config.gateway = gateway.clone()
    })
    .await;
    let a = format!("/api/apps/{APP_A}/credentials");
    // A served request means the app runs, so its SIGHUP handler is installed (it is, before
    // the first connection is accepted); until then SIGHUP would end this process.
    assert_allowed(&nginx_asks(&f, "GET", &a).await, f.user);

    std::fs::write(
        &file,
        ROUTES.replace("credentials/read", "credentials/list"),
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let mut reloaded = false;
    for _ in 0..200 {
        if gateway
            .routes()
            .resolve("GET", &a, None)
            .unwrap()
            .unwrap()
            .action
            .as_str()
            == "contoso.apps/credentials/list"
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(reloaded, "SIGHUP did not reload the rules");
    let now = nginx_asks(&f, "GET", &a).await;
    assert_eq!(now.body["action"], "contoso.apps/credentials/list");
    denied(&now);

    // Conflicting rules: refused, naming both; the rules in force stay.
    let conflicting = format!(
        "{ROUTES}\n[[gateway.routes]]\nmethod = \"GET\"\npath = \"/api/apps/{{id}}/credentials\"\naction = \"x.y/z\"\nresource = \"/\"\n"
    );
    std::fs::write(&file, conflicting).unwrap();
    let error = gateway
        .reload()
        .expect_err("a conflict is refused")
        .to_string();
    assert!(
        error.contains("`gateway.routes[0]` and `gateway.routes[2]`"),
        "{error}"
    );
    std::fs::write(&file, "[gateway]\nunmatched = ").unwrap();
    assert!(gateway.reload().is_err());
    assert_eq!(
        nginx_asks(&f, "GET", &a).await.body["action"],
        "contoso.apps/credentials/list"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// --- behind real gateways ---

/// A small upstream: answers every request with what it was told about the caller, and
/// counts the requests that reached it.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let echo = move |uri: axum::http::Uri, headers: HeaderMap| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Json(json!({
                    "uri": uri.to_string(),
                    "principal": header("x-rolecall-principal"),
                    "tenant": header("x-rolecall-tenant"),
                    "decisionId": header("x-rolecall-decision-id"),
                }))
            }
        };
        let router = Router::new().fallback(any(echo));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Upstream { addr, hits, task }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway process of its own, in a temporary directory, stopped (and the directory
/// removed) when dropped.
struct Proxy {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The binary, from `PATH` or the Debian locations; a clear failure when it is missing.
fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the gateway tests run a real {name} \
                 (`apt-get install {name}`; .ci/run installs it)"
            )
        })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A shipped configuration with the documented addresses replaced by this test's.
fn shipped(file: &str, rolecall: &str, upstream: SocketAddr, port: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/gateways")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for documented in ["127.0.0.1:8080", "127.0.0.1:3000", "127.0.0.1:8000"] {
        assert!(
            text.contains(documented),
            "{file} no longer names {documented}"
        );
    }
    text.replace("127.0.0.1:8080", rolecall)
        .replace("127.0.0.1:3000", &upstream.to_string())
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-{name}-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Proxy {
    /// nginx, single process in the foreground, with `docs/gateways/nginx.conf` in `http {}`.
    async fn nginx(rolecall: &str, upstream: SocketAddr) -> Proxy {
        let nginx = binary("nginx");
        let dir = temp_dir("nginx");
        let port = free_port();
        std::fs::write(
            dir.join("rolecall.conf"),
            shipped("nginx.conf", rolecall, upstream, port),
        )
        .unwrap();
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/rolecall.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("start nginx");
        Proxy::ready("nginx", child, dir, port).await
    }

    /// Caddy in the foreground, with `docs/gateways/Caddyfile` after test-only global
    /// options (no admin endpoint, no automatic HTTPS, state in the temporary directory).
    async fn caddy(rolecall: &str, upstream: SocketAddr) -> Proxy {
        let caddy = binary("caddy");
        let dir = temp_dir("caddy");
        let port = free_port();
        let site = shipped("Caddyfile", rolecall, upstream, port);
        let config = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
        std::fs::write(dir.join("Caddyfile"), config).unwrap();
        let child = Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(dir.join("Caddyfile"))
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("start caddy");
        Proxy::ready("caddy", child, dir, port).await
    }

    /// Waits until the gateway accepts connections; fails with its log if it exits first.
    async fn ready(name: &'static str, mut child: Child, dir: PathBuf, port: u16) -> Proxy {
        for _ in 0..400 {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                let errors = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("{name} exited ({status}) before serving:\n{log}\n{errors}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Proxy {
                    name,
                    child,
                    dir,
                    base: format!("http://127.0.0.1:{port}"),
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{name} did not listen on 127.0.0.1:{port} within 10 s");
    }

    /// The gateway's logs, for failure messages.
    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One request through the gateway.
async fn through(
    proxy: &Proxy,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", proxy.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TestApp::reply(request.send().await.expect("request through the gateway")).await
}

/// The status of a request sent byte for byte as written: clients (reqwest included)
/// resolve `..` before sending, so a traversal has to be typed by hand.
async fn raw_status(proxy: &Proxy, path: &str, token: &str) -> u16 {
    let address = proxy.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line from {}: {text}", proxy.name))
}

/// What the issue asks of each gateway: allow (the upstream sees the principal), deny, no
/// token and a bad token, an unmapped route, a traversal, a client's own headers, and a role
/// change through the admin API taking effect on the next request.
async fn behind(proxy: &Proxy, f: &Fixture, upstream: &Upstream) {
    let name = proxy.name;
    let a = format!("/api/apps/{APP_A}/credentials");
    let b = format!("/api/apps/{APP_B}/credentials");
    let token = Some(f.token.as_str());

    // Allow: the upstream is told who the caller is, and a client cannot tell it otherwise.
    let spoof = [(
        "X-Rolecall-Principal",
        "00000000-0000-0000-0000-00000000beef",
    )];
    let allowed = through(proxy, Method::GET, &format!("{a}?page=2"), token, &spoof).await;
    assert_eq!(
        allowed.status,
        StatusCode::OK,
        "{name}: {allowed:?}\n{}",
        proxy.logs()
    );
    assert_eq!(allowed.body["principal"], f.user.to_string(), "{name}");
    assert_eq!(allowed.body["tenant"], DEFAULT_TENANT.to_string(), "{name}");
    assert!(
        allowed.body["decisionId"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{name}"
    );
    assert_eq!(allowed.body["uri"], format!("{a}?page=2"), "{name}");
    let reached = upstream.hits.load(Ordering::SeqCst);

    // Deny.
    let deny = through(proxy, Method::GET, &b, token, &[]).await;
    assert_eq!(deny.status, StatusCode::FORBIDDEN, "{name}: {deny:?}");
    let write = through(proxy, Method::POST, &a, token, &[]).await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{name}: {write:?}");

    // No token, a bad token: 401 with the challenge passed on.
    let none = through(proxy, Method::GET, &a, None, &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{name}: {none:?}");
    assert!(
        none.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer")),
        "{name}: {none:?}"
    );
    let bad = through(proxy, Method::GET, &a, Some("not-a-token"), &[]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{name}: {bad:?}");

    // An unmapped route.
    let unmapped = through(proxy, Method::GET, "/api/other", token, &[]).await;
    assert_eq!(
        unmapped.status,
        StatusCode::FORBIDDEN,
        "{name}: {unmapped:?}"
    );
    let unmapped_method = through(proxy, Method::DELETE, &a, token, &[]).await;
    assert_eq!(
        unmapped_method.status,
        StatusCode::FORBIDDEN,
        "{name}: {unmapped_method:?}"
    );

    // A traversal from A to B is decided as B; from B to A, as A.
    for path in [
        format!("/api/apps/{APP_A}/../{APP_B}/credentials"),
        format!("/api/apps/{APP_A}/%2e%2e/{APP_B}/credentials"),
        format!("/api/apps/{APP_A}%2F..%2F{APP_B}/credentials"),
    ] {
        assert_eq!(
            raw_status(proxy, &path, &f.token).await,
            403,
            "{name}: {path}"
        );
    }
    assert_eq!(
        upstream.hits.load(Ordering::SeqCst),
        reached,
        "{name}: a denied request reached the upstream"
    );
    assert_eq!(
        raw_status(
            proxy,
            &format!("/api/apps/{APP_B}/../{APP_A}/credentials"),
            &f.token
        )
        .await,
        200,
        "{name}"
    );
    let reached = upstream.hits.load(Ordering::SeqCst);

    // A client's own forward-auth headers naming A while asking for B never pick the route:
    // Rolecall refuses the disagreement, and the gateway answers an error, not the upstream.
    for header in ["X-Original-URI", "X-Forwarded-Uri"] {
        let smuggled = through(proxy, Method::GET, &b, token, &[(header, a.as_str())]).await;
        assert!(
            smuggled.status.is_client_error() || smuggled.status.is_server_error(),
            "{name}, {header}: {smuggled:?}"
        );
    }
    assert_eq!(
        upstream.hits.load(Ordering::SeqCst),
        reached,
        "{name}: a smuggled request reached the upstream"
    );

    // A role change through the admin API takes effect on the next request.
    let assignment = assign(
        &f.env.app,
        f.user,
        "user",
        &f.reader,
        &format!("/applications/{APP_B}"),
    )
    .await;
    let now = through(proxy, Method::GET, &b, token, &[]).await;
    assert_eq!(now.status, StatusCode::OK, "{name}: {now:?}");
    assert_eq!(now.body["principal"], f.user.to_string());
    let removed = f
        .env
        .app
        .call(
            Method::DELETE,
            &format!("/v1/roleAssignments/{assignment}"),
            None,
            &[],
        )
        .await;
    assert!(removed.status.is_success(), "{removed:?}");
    let again = through(proxy, Method::GET, &b, token, &[]).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "{name}: {again:?}");
}

async fn behind_gateway(
    backend: Backend,
    start: fn(String, SocketAddr) -> futures::future::BoxFuture<'static, Proxy>,
) {
    let f = fixture(backend).await;
    let upstream = Upstream::start().await;
    let rolecall = f.env.app.base.trim_start_matches("http://").to_owned();
    let proxy = start(rolecall, upstream.addr).await;
    behind(&proxy, &f, &upstream).await;
}

fn nginx(rolecall: String, upstream: SocketAddr) -> futures::future::BoxFuture<'static, Proxy> {
    Box::pin(async move { Proxy::nginx(&rolecall, upstream).await })
}

fn caddy(rolecall: String, upstream: SocketAddr) -> futures::future::BoxFuture<'static, Proxy> {
    Box::pin(async move { Proxy::caddy(&rolecall, upstream).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_auth_request_on_sqlite() {
    behind_gateway(Backend::Sqlite, nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_auth_request_on_postgres() {
    behind_gateway(Backend::Postgres, nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_caddy_forward_auth_on_sqlite() {
    behind_gateway(Backend::Sqlite, caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_caddy_forward_auth_on_postgres() {
    behind_gateway(Backend::Postgres, caddy).await;
}
