//! A fake identity provider, an app that trusts it, and helpers to call the app as a token
//! holder: shared by the token and admin-plane tests.

use reqwest::{Method, StatusCode};
use rolecall::auth::IssuerSettings;
use rolecall::auth::IssuerSpec;
use rolecall::config::{Config, DEFAULT_TENANT};
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

use super::app::{Reply, TestApp, ADMIN_KEY};
use super::db;
use super::idp::{self, Idp, SigningKey};

pub const AUDIENCE: &str = "api://rolecall";
pub const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const CHECKER: &str = "3c1ab9f2-7a54-4c41-9d0e-5f2b8e6d1a07";
pub const MANAGE_ASSIGNMENTS: &str = "microsoft.directory/roleAssignments/allProperties/allTasks";

/// An identity provider, an app trusting it, and the keys it publishes.
pub struct Env {
    /// The fake identity provider.
    pub idp: Idp,
    /// The app trusting it.
    pub app: TestApp,
    /// The key the provider signs with.
    pub rsa: SigningKey,
    /// Kept alive for the app's lifetime.
    pub _db: db::TestDb,
}

impl Env {
    /// The issuer string for the default tenant (the template's `{tid}` filled in).
    pub fn iss(&self) -> String {
        format!("{}/{DEFAULT_TENANT}/v2.0", self.idp.issuer())
    }

    /// Standard claims for `oid` in the default tenant, valid for an hour.
    pub fn claims(&self, oid: Uuid) -> Value {
        idp::claims(&self.iss(), AUDIENCE, oid, DEFAULT_TENANT, 3600)
    }

    /// A valid RS256 token for `oid`.
    pub fn token(&self, oid: Uuid) -> String {
        self.rsa.sign(&self.claims(oid))
    }

    /// A valid token for `oid` with extra claims merged in.
    pub fn token_with(&self, oid: Uuid, extra: Value) -> String {
        let mut claims = self.claims(oid);
        merge(&mut claims, extra);
        self.rsa.sign(&claims)
    }
}

pub fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        for (k, v) in extra {
            if v.is_null() {
                into.remove(&k);
            } else {
                into.insert(k, v);
            }
        }
    }
}

/// The default trusted issuer: an Entra-style `{tid}` template on the fake provider.
pub fn issuer_settings(idp: &Idp) -> IssuerSettings {
    IssuerSettings {
        issuer: format!("{}/{{tid}}/v2.0", idp.issuer()),
        audiences: vec![AUDIENCE.to_owned()],
        jwks_uri: Some(idp.jwks_uri()),
        trust_wids: true,
        ..IssuerSettings::default()
    }
}

pub async fn env_on(
    backend: Backend,
    configure: impl FnOnce(&Idp, &mut IssuerSettings, &mut Config),
) -> Env {
    let rsa = SigningKey::rsa(1, "rsa-1");
    let idp = Idp::start(&[&rsa]).await;
    let db = db::fresh(backend).await;
    let mut config = Config::for_tests(db.url.clone(), ADMIN_KEY);
    let mut settings = issuer_settings(&idp);
    configure(&idp, &mut settings, &mut config);
    config
        .issuers
        .push(IssuerSpec::from_settings(settings).expect("valid issuer settings"));
    let app = TestApp::spawn_with(config).await;
    Env {
        idp,
        app,
        rsa,
        _db: db,
    }
}

pub async fn env(configure: impl FnOnce(&Idp, &mut IssuerSettings, &mut Config)) -> Env {
    env_on(Backend::Sqlite, configure).await
}

/// Sends a request with `token` as the bearer credential.
pub async fn call_as(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.client.request(method, format!("{}{}", app.base, path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    TestApp::reply(request.send().await.expect("request sent")).await
}

/// Like [`call_as`], taking the body by value (so closures can build it).
pub async fn send_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: impl AsRef<str>,
    body: Option<Value>,
) -> Reply {
    call_as(app, Some(token), method, path.as_ref(), body.as_ref()).await
}

/// A check of oneself: always allowed to ask, so the status says only whether the token
/// authenticated.
pub async fn self_check(app: &TestApp, token: &str, oid: Uuid) -> Reply {
    let body = json!({
        "subject": {"principalId": oid},
        "action": "contoso.expenses/reports/read",
        "resource": "/",
    });
    call_as(app, Some(token), Method::POST, "/v1/check", Some(&body)).await
}

pub fn assert_invalid_token(reply: &Reply, needle: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.problem(), "invalid-token", "{reply:?}");
    let challenge = reply.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(challenge.contains("error_description=\""), "{challenge}");
    let detail = reply.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(needle),
        "expected `{needle}` in the detail, got {reply:?}"
    );
}

pub async fn create_role(app: &TestApp, name: &str, actions: &[&str]) -> String {
    let reply = app
        .post(
            "/v1/roleDefinitions",
            &json!({
                "displayName": name,
                "rolePermissions": [{"allowedResourceActions": actions}],
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"].as_str().expect("id").to_owned()
}

pub async fn assign(app: &TestApp, principal: Uuid, kind: &str, role: &str, scope: &str) -> String {
    let reply = app
        .post(
            "/v1/roleAssignments",
            &assignment_body(principal, kind, role, scope),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"].as_str().expect("id").to_owned()
}

pub fn assignment_body(principal: Uuid, kind: &str, role: &str, scope: &str) -> Value {
    json!({
        "principalId": principal,
        "principalType": kind,
        "roleDefinitionId": role,
        "directoryScopeId": scope,
    })
}

pub async fn create_group(app: &TestApp, name: &str) -> Uuid {
    let reply = app.post("/v1/groups", &json!({"displayName": name})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .expect("group id")
}
