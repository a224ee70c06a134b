//! Bearer tokens end to end: a fake identity provider serves its JWKS over real HTTP on
//! loopback, tests mint real signed tokens (RS256, PS256, ES256, EdDSA), and the app
//! validates them, then authorizes its own admin API with its engine.

use std::time::Duration;

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::env::*;
use crate::common::idp::{self, SigningKey};
use reqwest::{Method, StatusCode};
use rolecall::config::DEFAULT_TENANT;
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

// --- signatures and algorithms ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_signed_with_each_accepted_algorithm_authenticate() {
    let ps = SigningKey::rsa_pss(2, "ps-2");
    let ec = SigningKey::ec_p256("ec-1");
    let ed = SigningKey::ed25519("ed-1");
    let env = env(|_, _, _| {}).await;
    env.idp.set_keys(&[&env.rsa, &ps, &ec, &ed]);
    for key in [&env.rsa, &ps, &ec, &ed] {
        let oid = Uuid::new_v4();
        let reply = self_check(&env.app, &key.sign(&env.claims(oid)), oid).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}: {reply:?}", key.alg);
        assert_eq!(reply.body["allowed"], false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_token_is_refused_with_invalid_token() {
    let tenant_elsewhere = Uuid::new_v4();
    let env = env(|_, s, _| {
        s.allowed_tenants = vec![DEFAULT_TENANT.to_string(), tenant_elsewhere.to_string()];
    })
    .await;
    let oid = Uuid::new_v4();
    let good = env.claims(oid);
    let with = |extra: Value| {
        let mut c = good.clone();
        merge(&mut c, extra);
        c
    };
    let now = chrono::Utc::now().timestamp();
    let rsa_header = |extra: Value| {
        let mut h = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"});
        merge(&mut h, extra);
        h
    };
    let stranger = SigningKey::rsa(2, "rsa-1");
    let unknown_kid = SigningKey::rsa(2, "ghost");
    let mut huge = good.clone();
    huge["padding"] = json!("x".repeat(17 * 1024));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            idp::unsigned_token(&json!({"alg": "none", "typ": "JWT"}), &good),
            "alg: none",
        ),
        (
            "HMAC signed with the RSA public key (key confusion)",
            idp::hs256_token(
                &SigningKey::rsa_public_der(1),
                &json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}),
                &good,
            ),
            "not accepted",
        ),
        (
            "an algorithm the issuer is not configured for",
            env.rsa
                .sign_with_header(&rsa_header(json!({"alg": "RS512"})), &good),
            "not accepted",
        ),
        (
            "a kid the issuer does not publish",
            unknown_kid.sign(&good),
            "not in issuer",
        ),
        (
            "jku header",
            env.rsa.sign_with_header(
                &rsa_header(json!({"jku": "https://evil.example/keys"})),
                &good,
            ),
            "`jku`",
        ),
        (
            "x5u header",
            env.rsa
                .sign_with_header(&rsa_header(json!({"x5u": "https://evil.example/c"})), &good),
            "`x5u`",
        ),
        (
            "embedded jwk header",
            env.rsa
                .sign_with_header(&rsa_header(json!({"jwk": stranger.jwk.clone()})), &good),
            "`jwk`",
        ),
        (
            "unknown crit header",
            env.rsa.sign_with_header(
                &rsa_header(json!({"crit": ["exp-ext"], "exp-ext": 1})),
                &good,
            ),
            "`crit`",
        ),
        (
            "signed by another key under our kid",
            stranger.sign(&good),
            "signature",
        ),
        (
            "expired beyond the leeway",
            env.rsa.sign(&with(json!({"exp": now - 120}))),
            "expired",
        ),
        (
            "not valid yet",
            env.rsa.sign(&with(json!({"nbf": now + 600}))),
            "not valid yet",
        ),
        (
            "issued in the future",
            env.rsa.sign(&with(json!({"iat": now + 600}))),
            "issued in the future",
        ),
        ("no exp", env.rsa.sign(&with(json!({"exp": null}))), "`exp`"),
        (
            "unknown issuer",
            env.rsa
                .sign(&with(json!({"iss": "https://login.evil.example/v2.0"}))),
            "not trusted",
        ),
        (
            "wrong audience",
            env.rsa.sign(&with(json!({"aud": "api://someone-else"}))),
            "audience",
        ),
        (
            "expired and for another audience: the lifetime is named first",
            env.rsa.sign(&with(
                json!({"aud": "api://someone-else", "exp": now - 120}),
            )),
            "expired",
        ),
        (
            "neither oid nor sub",
            env.rsa.sign(&with(json!({"oid": null, "sub": null}))),
            "neither `oid` nor `sub`",
        ),
        ("no tid", env.rsa.sign(&with(json!({"tid": null}))), "`tid`"),
        (
            "tid differs from the tenant in iss",
            env.rsa.sign(&with(json!({"tid": tenant_elsewhere}))),
            "does not match",
        ),
        (
            "a tenant the issuer may not vouch for",
            {
                let other = Uuid::new_v4();
                env.rsa.sign(&with(json!({
                    "iss": format!("{}/{other}/v2.0", env.idp.issuer()),
                    "tid": other,
                })))
            },
            "not allowed",
        ),
        ("over 16 KiB", env.rsa.sign(&huge), "over 16384 bytes"),
        ("not base64", "a*b.c*d.e*f".to_owned(), "not base64url"),
        (
            "not JSON",
            "bm90IGpzb24.bm90IGpzb24.c2ln".to_owned(),
            "not a JSON object",
        ),
        (
            "not a JWT",
            "opaque-token".to_owned(),
            "three base64url parts",
        ),
    ];
    for (what, token, needle) in cases {
        let reply = self_check(&env.app, &token, oid).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {reply:?}");
        assert_invalid_token(&reply, needle);
    }
    // A validated token is remembered; changing any byte of it is validated afresh.
    let valid = env.token(oid);
    assert_eq!(
        self_check(&env.app, &valid, oid).await.status,
        StatusCode::OK
    );
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let other = Uuid::new_v4();
    parts[1] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(env.claims(other).to_string())
    };
    let forged = parts.join(".");
    assert_invalid_token(&self_check(&env.app, &forged, other).await, "signature");
    // Within the leeway is accepted.
    let reply = self_check(
        &env.app,
        &env.rsa.sign(&with(json!({"exp": now - 20}))),
        oid,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refetches_once_then_is_rate_limited() {
    let env = env(|_, _, _| {}).await;
    let oid = Uuid::new_v4();
    // The first good token loads the keys (or the startup fetch already did).
    assert_eq!(
        self_check(&env.app, &env.token(oid), oid).await.status,
        StatusCode::OK
    );
    let before = env.idp.fetches();
    let ghost = SigningKey::rsa(2, "ghost");
    let reply = self_check(&env.app, &ghost.sign(&env.claims(oid)), oid).await;
    assert_invalid_token(&reply, "not in issuer");
    assert_eq!(
        env.idp.fetches(),
        before + 1,
        "one refetch for an unknown kid"
    );
    for _ in 0..5 {
        let reply = self_check(&env.app, &ghost.sign(&env.claims(oid)), oid).await;
        assert_invalid_token(&reply, "not in issuer");
    }
    assert_eq!(
        env.idp.fetches(),
        before + 1,
        "unknown kids within 30 s do not refetch again"
    );
    // The limit is kept by the app's clock: 30 s on, the next unknown kid refetches.
    env.app.clock.advance(chrono::Duration::seconds(30));
    let reply = self_check(&env.app, &ghost.sign(&env.claims(oid)), oid).await;
    assert_invalid_token(&reply, "not in issuer");
    assert_eq!(
        env.idp.fetches(),
        before + 2,
        "30 s later, one more refetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_is_picked_up_and_the_old_key_dropped() {
    let env = env(|_, s, _| {
        s.jwks_min_refetch_seconds = Some(1);
    })
    .await;
    let oid = Uuid::new_v4();
    let old = env.token(oid);
    assert_eq!(self_check(&env.app, &old, oid).await.status, StatusCode::OK);
    // The issuer rotates: publishes a new key and retires the old one.
    let next = SigningKey::ec_p256("ec-2");
    env.idp.set_keys(&[&next]);
    let fresh = next.sign(&env.claims(oid));
    assert_eq!(
        self_check(&env.app, &fresh, oid).await.status,
        StatusCode::OK,
        "the new kid is fetched on first sight, without a restart"
    );
    let reply = self_check(&env.app, &old, oid).await;
    assert_invalid_token(&reply, "not in issuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_outage_keeps_cached_keys_within_the_staleness_bound() {
    // The bound and the rate limit are kept by the app's clock, which the test moves. The
    // refresh task runs on real time: after its first fetch it waits 60 s (30 s after a
    // failure), far longer than this test, so every fetch below is one a verification made.
    let env = env(|_, s, _| {
        s.jwks_refresh_seconds = Some(60);
        s.jwks_max_stale_seconds = Some(300);
        s.jwks_min_refetch_seconds = Some(30);
    })
    .await;
    let oid = Uuid::new_v4();
    let seconds = |n| env.app.clock.advance(chrono::Duration::seconds(n));
    assert_eq!(
        self_check(&env.app, &env.token(oid), oid).await.status,
        StatusCode::OK
    );
    let fetched = env.idp.fetches();
    env.idp.set_down(true);
    // Four minutes into a five-minute bound (the real time this test takes is the margin).
    seconds(240);
    assert_eq!(
        self_check(&env.app, &env.token(oid), oid).await.status,
        StatusCode::OK,
        "cached keys keep working while the issuer is down"
    );
    // A fresh token too: it is checked against the cached keys, not refused for the outage.
    let another = Uuid::new_v4();
    assert_eq!(
        self_check(&env.app, &env.token(another), another)
            .await
            .status,
        StatusCode::OK,
        "new tokens are verified with the cached keys"
    );
    assert_eq!(
        env.idp.fetches(),
        fetched,
        "keys within the bound are not refetched"
    );
    seconds(120);
    let reply = self_check(&env.app, &env.token(oid), oid).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.problem(), "issuer-unavailable");
    assert_eq!(
        env.idp.fetches(),
        fetched + 1,
        "past the bound, one refetch, which failed"
    );
    env.idp.set_down(false);
    let reply = self_check(&env.app, &env.token(oid), oid).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "within 30 s of the failed refetch, no other: {reply:?}"
    );
    assert_eq!(env.idp.fetches(), fetched + 1);
    seconds(30);
    assert_eq!(
        self_check(&env.app, &env.token(oid), oid).await.status,
        StatusCode::OK,
        "the issuer's return is picked up"
    );
    assert_eq!(env.idp.fetches(), fetched + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lifetimes_are_checked_on_the_app_clock_even_for_a_remembered_token() {
    let env = env(|_, _, _| {}).await;
    let oid = Uuid::new_v4();
    // Valid for 10 minutes; the leeway is 60 s.
    let token = env.token_with(oid, json!({"exp": chrono::Utc::now().timestamp() + 600}));
    let later = env.token_with(oid, json!({"nbf": chrono::Utc::now().timestamp() + 600}));
    let ahead = env.token_with(oid, json!({"iat": chrono::Utc::now().timestamp() + 600}));
    assert_eq!(
        self_check(&env.app, &token, oid).await.status,
        StatusCode::OK
    );
    assert_invalid_token(&self_check(&env.app, &later, oid).await, "not valid yet");
    assert_invalid_token(
        &self_check(&env.app, &ahead, oid).await,
        "issued in the future",
    );
    env.app.clock.advance(chrono::Duration::seconds(630));
    assert_eq!(
        self_check(&env.app, &token, oid).await.status,
        StatusCode::OK,
        "30 s past `exp`: within the leeway"
    );
    assert_eq!(
        self_check(&env.app, &later, oid).await.status,
        StatusCode::OK
    );
    assert_eq!(
        self_check(&env.app, &ahead, oid).await.status,
        StatusCode::OK
    );
    env.app.clock.advance(chrono::Duration::seconds(31));
    assert_invalid_token(&self_check(&env.app, &token, oid).await, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_discovery_or_a_file() {
    let discovered = env(|idp, s, _| {
        s.issuer = idp.issuer();
        s.jwks_uri = None;
        s.discovery = true;
    })
    .await;
    let oid = Uuid::new_v4();
    let mut claims = idp::claims(&discovered.idp.issuer(), AUDIENCE, oid, DEFAULT_TENANT, 600);
    let reply = self_check(&discovered.app, &discovered.rsa.sign(&claims), oid).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    let dir = std::env::temp_dir().join(format!("rolecall-jwks-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("jwks.json");
    let ed = SigningKey::ed25519("file-ed");
    std::fs::write(&file, json!({"keys": [ed.jwk.clone()]}).to_string()).expect("write");
    let from_file = env(|idp, s, _| {
        s.issuer = idp.issuer();
        s.jwks_uri = None;
        s.jwks_file = Some(file.clone());
    })
    .await;
    claims["iss"] = json!(from_file.idp.issuer());
    let reply = self_check(&from_file.app, &ed.sign(&claims), oid).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- 401 versus 403, and the admin key ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_401_and_missing_rights_403() {
    let env = env(|_, _, _| {}).await;
    let none = call_as(&env.app, None, Method::GET, "/v1/groups", None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.problem(), "unauthorized");
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"rolecall\"")
    );

    let nobody = env.token(Uuid::new_v4());
    let reply = call_as(&env.app, Some(&nobody), Method::GET, "/v1/groups", None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_eq!(reply.problem(), "forbidden");
    assert_eq!(
        reply.body["action"],
        "microsoft.directory/groups/standard/read"
    );
    assert_eq!(reply.body["scope"], "/");

    // A token acts in its own tenant only.
    let mut request = env
        .app
        .client
        .get(format!("{}/v1/groups", env.app.base))
        .bearer_auth(&nobody);
    request = request.header("Rolecall-Tenant", Uuid::new_v4().to_string());
    let reply = TestApp::reply(request.send().await.expect("sent")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_key_is_off_unless_configured() {
    let env = env(|_, _, config| config.admin_key = None).await;
    let reply = call_as(&env.app, Some(ADMIN_KEY), Method::GET, "/v1/groups", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.problem(), "invalid-token");
}

// --- subjects: wids, groups, overage ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wids_from_a_trusted_issuer_administer_rolecall_out_of_the_box() {
    let env = env(|_, _, _| {}).await;
    let admin = Uuid::new_v4();
    let token = env.token_with(admin, json!({"wids": [PRA]}));
    let reply = call_as(
        &env.app,
        Some(&token),
        Method::POST,
        "/v1/roleDefinitions",
        Some(&json!({
            "displayName": "Made by a token",
            "rolePermissions": [{"allowedResourceActions": ["contoso.expenses/reports/read"]}],
        })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    // Entra's Privileged Role Administrator manages roles, not groups.
    let reply = call_as(
        &env.app,
        Some(&token),
        Method::POST,
        "/v1/groups",
        Some(&json!({"displayName": "Not for a role admin"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    // The change log records the caller's principal id.
    let changes = call_as(&env.app, Some(&token), Method::GET, "/v1/changes", None).await;
    assert_eq!(changes.status, StatusCode::OK, "{changes:?}");
    let last = changes.body["value"]
        .as_array()
        .and_then(|v| v.last())
        .cloned()
        .expect("a change");
    assert_eq!(last["actor"], admin.to_string());

    // The same claim from an issuer not trusted for wids grants nothing.
    let untrusting = env_on(Backend::Sqlite, |_, s, _| s.trust_wids = false).await;
    let token = untrusting.token_with(admin, json!({"wids": [PRA]}));
    let reply = call_as(
        &untrusting.app,
        Some(&token),
        Method::GET,
        "/v1/groups",
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_subjects_bring_their_groups_and_wids_into_decisions() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        let role = create_role(
            &env.app,
            "Expense Approver",
            &["contoso.expenses/reports/approve"],
        )
        .await;
        let parent = create_group(&env.app, "Finance").await;
        let team = create_group(&env.app, "Finance EMEA").await;
        let reply = env
            .app
            .post(
                &format!("/v1/groups/{parent}/members"),
                &json!({"id": team, "type": "group"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        assign(&env.app, parent, "group", &role, "/").await;
        let user = Uuid::new_v4();
        let subject_token = env.token_with(user, json!({"groups": [team], "wids": [GLOBAL_ADMIN]}));
        let body = |action: &str| {
            json!({
                "subject": {"token": subject_token},
                "action": action,
                "resource": "/expenses/42",
                "explain": true,
            })
        };
        // The admin key asks about the token's subject.
        let reply = env
            .app
            .post("/v1/check", &body("contoso.expenses/reports/approve"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body["allowed"], true, "{reply:?}");
        let grant = &reply.body["reasons"][0];
        assert_eq!(grant["principalId"], parent.to_string());
        assert_eq!(grant["viaTokenGroups"], true);
        assert_eq!(grant["via"], json!([team, parent]));
        let reply = env
            .app
            .post("/v1/check", &body("microsoft.directory/users/delete"))
            .await;
        assert_eq!(reply.body["allowed"], true, "{reply:?}");
        assert_eq!(reply.body["reasons"][0]["source"], "widsClaim");

        // A bad subject token is a 400 naming the field, never a decision.
        let mut bad = body("contoso.expenses/reports/approve");
        bad["subject"]["token"] = json!(format!("{subject_token}x"));
        let reply = env.app.post("/v1/check", &bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
        assert_eq!(reply.body["errors"][0]["pointer"], "/subject/token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_overage_uses_stored_memberships_and_says_so() {
    let env = env(|_, _, _| {}).await;
    let role = create_role(&env.app, "Report Reader", &["contoso.reports/read"]).await;
    let group = create_group(&env.app, "Readers").await;
    let user = Uuid::new_v4();
    let reply = env
        .app
        .post(
            &format!("/v1/groups/{group}/members"),
            &json!({"id": user, "type": "user"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assign(&env.app, group, "group", &role, "/").await;
    let token = env.token_with(
        user,
        json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}},
        }),
    );
    let reply = call_as(
        &env.app,
        Some(&token),
        Method::POST,
        "/v1/check",
        Some(&json!({
            "subject": {"token": token},
            "action": "contoso.reports/read",
            "resource": "/reports/1",
            "explain": true,
        })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["allowed"], true, "{reply:?}");
    assert_eq!(reply.body["reasons"][0]["kind"], "groupsOverage");
    assert_eq!(reply.body["reasons"][1]["principalId"], group.to_string());
}

// --- delegated administration and escalation ---

/// An "App Assignment Admin" (assignment management plus `contoso.apps/settings/read`)
/// assigned at `/applications/a`, and an "App Reader" role: (admin role, reader role, the
/// admin's id, its token).
async fn app_admin(env: &Env) -> (String, String, Uuid, String) {
    let admin_role = create_role(
        &env.app,
        "App Assignment Admin",
        &[MANAGE_ASSIGNMENTS, "contoso.apps/settings/read"],
    )
    .await;
    let reader = create_role(&env.app, "App Reader", &["contoso.apps/settings/read"]).await;
    let admin = Uuid::new_v4();
    assign(&env.app, admin, "user", &admin_role, "/applications/a").await;
    (admin_role, reader, admin, env.token(admin))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_scoped_to_one_application_manages_only_that_application() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        let (_, reader, admin, token) = app_admin(&env).await;
        let user = Uuid::new_v4();
        let post = |scope: &str, role: &str| {
            send_as(
                &env.app,
                &token,
                Method::POST,
                "/v1/roleAssignments",
                Some(assignment_body(user, "user", role, scope)),
            )
        };
        let reply = post("/applications/a", &reader).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        let created = reply.body["id"].as_str().expect("id").to_owned();
        let reply = post("/applications/a/secrets/s1", &reader).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "below its scope: {reply:?}"
        );
        for elsewhere in ["/applications/b", "/"] {
            let reply = post(elsewhere, &reader).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{elsewhere}: {reply:?}"
            );
            assert_eq!(reply.problem(), "forbidden");
            assert_eq!(reply.body["action"], MANAGE_ASSIGNMENTS);
            assert_eq!(reply.body["scope"], elsewhere);
        }
        // Deleting follows the assignment's scope too.
        let other = assign(&env.app, user, "user", &reader, "/applications/b").await;
        let reply = call_as(
            &env.app,
            Some(&token),
            Method::DELETE,
            &format!("/v1/roleAssignments/{other}"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        let reply = call_as(
            &env.app,
            Some(&token),
            Method::DELETE,
            &format!("/v1/roleAssignments/{created}"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        // Its own changes are recorded under its principal id.
        let changes = env.app.get("/v1/changes").await;
        let actors: Vec<_> = changes.body["value"]
            .as_array()
            .expect("changes")
            .iter()
            .filter(|c| c["entityType"] == "roleAssignment")
            .map(|c| c["actor"].clone())
            .collect();
        assert!(actors.contains(&json!(admin.to_string())), "{actors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigning_a_role_one_does_not_hold_is_refused_as_escalation() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        let (app_admin, reader, _, token) = app_admin(&env).await;
        let writer = create_role(
            &env.app,
            "App Writer",
            &["contoso.apps/settings/read", "contoso.apps/settings/update"],
        )
        .await;
        let user = Uuid::new_v4();
        let post = |role: &str| {
            send_as(
                &env.app,
                &token,
                Method::POST,
                "/v1/roleAssignments",
                Some(assignment_body(user, "user", role, "/applications/a")),
            )
        };
        assert_eq!(post(&reader).await.status, StatusCode::CREATED);
        let reply = post(&writer).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert_eq!(reply.problem(), "escalation-refused");
        assert_eq!(
            reply.body["missing"],
            json!(["contoso.apps/settings/update"])
        );
        let reply = post(GLOBAL_ADMIN).await;
        assert_eq!(reply.problem(), "escalation-refused", "{reply:?}");
        // Assigning its own role hands out only what it holds.
        assert_eq!(post(&app_admin).await.status, StatusCode::CREATED);

        // Privileged Role Administrator (role management at `/`) may assign any role.
        let pra = env.token_with(Uuid::new_v4(), json!({"wids": [PRA]}));
        let reply = call_as(
            &env.app,
            Some(&pra),
            Method::POST,
            "/v1/roleAssignments",
            Some(&assignment_body(user, "user", GLOBAL_ADMIN, "/")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");

        // Nor can a group's member manager escalate by joining a group holding a role.
        let groups_admin = create_role(
            &env.app,
            "Group Member Manager",
            &["microsoft.directory/groups/members/update"],
        )
        .await;
        let manager = Uuid::new_v4();
        assign(&env.app, manager, "user", &groups_admin, "/").await;
        let powerful = create_group(&env.app, "Writers").await;
        assign(&env.app, powerful, "group", &writer, "/").await;
        let plain = create_group(&env.app, "Plain").await;
        let token = env.token(manager);
        let join = |group: Uuid| {
            send_as(
                &env.app,
                &token,
                Method::POST,
                format!("/v1/groups/{group}/members"),
                Some(json!({"id": manager, "type": "user"})),
            )
        };
        assert_eq!(join(plain).await.status, StatusCode::CREATED);
        let reply = join(powerful).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        // Joining would hand it the group's assignment, which it could not create itself.
        assert_eq!(reply.body["action"], MANAGE_ASSIGNMENTS);
        // Leaving a group escapes its deny assignments: refused too, while leaving a plain
        // group is fine.
        let fenced = create_group(&env.app, "Fenced").await;
        let reply = env
            .app
            .post(
                &format!("/v1/groups/{fenced}/members"),
                &json!({"id": manager, "type": "user"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        let reply = env
            .app
            .post(
                "/v1/denyAssignments",
                &json!({
                    "displayName": "No secrets",
                    "principalId": fenced,
                    "principalType": "group",
                    "actions": ["contoso.apps/secrets/*"],
                    "directoryScopeId": "/",
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        let leave = |group: Uuid| {
            send_as(
                &env.app,
                &token,
                Method::DELETE,
                format!("/v1/groups/{group}/members/{manager}"),
                None,
            )
        };
        assert_eq!(leave(plain).await.status, StatusCode::OK);
        let reply = leave(fenced).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert_eq!(reply.body["action"], MANAGE_ASSIGNMENTS);

        // Editing a role changes what every holder may do: a role editor cannot widen a
        // role it holds beyond its own permissions.
        let editor_role = create_role(
            &env.app,
            "Role Editor",
            &[
                "microsoft.directory/roleDefinitions/allProperties/allTasks",
                "contoso.apps/settings/read",
            ],
        )
        .await;
        let editor = Uuid::new_v4();
        assign(&env.app, editor, "user", &editor_role, "/").await;
        let token = env.token(editor);
        let patch = |actions: Value| {
            send_as(
                &env.app,
                &token,
                Method::PATCH,
                format!("/v1/roleDefinitions/{editor_role}"),
                Some(json!({"rolePermissions": [{"allowedResourceActions": actions}]})),
            )
        };
        let reply = patch(json!([
            "microsoft.directory/roleDefinitions/allProperties/allTasks",
            "contoso.apps/settings/read",
            "contoso.apps/settings/update",
        ]))
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert_eq!(reply.problem(), "escalation-refused");
        assert_eq!(
            reply.body["missing"],
            json!(["contoso.apps/settings/update"])
        );
        let reply = patch(json!([
            "microsoft.directory/roleDefinitions/allProperties/allTasks",
        ]))
        .await;
        assert_eq!(reply.status, StatusCode::OK, "narrowing is fine: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_others_needs_the_checker_role_at_the_resource() {
    let env = env(|_, _, _| {}).await;
    let service = Uuid::new_v4();
    assign(
        &env.app,
        service,
        "servicePrincipal",
        CHECKER,
        "/applications/a",
    )
    .await;
    let token = env.token(service);
    let someone = Uuid::new_v4();
    let ask = |resource: &str, who: Uuid| {
        let body = json!({
            "subject": {"principalId": who},
            "action": "contoso.apps/settings/read",
            "resource": resource,
        });
        send_as(&env.app, &token, Method::POST, "/v1/check", Some(body))
    };
    assert_eq!(
        ask("/applications/a/x", someone).await.status,
        StatusCode::OK
    );
    let reply = ask("/applications/b", someone).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_eq!(reply.body["action"], "rolecall/decisions/check");
    // Oneself: always.
    assert_eq!(ask("/applications/b", service).await.status, StatusCode::OK);
    // Vouching for groups or wids, even about oneself, is what the checker role is for.
    let vouching = send_as(
        &env.app,
        &token,
        Method::POST,
        "/v1/check",
        Some(json!({
            "subject": {"principalId": service, "wids": [GLOBAL_ADMIN]},
            "action": "contoso.apps/settings/read",
            "resource": "/applications/b",
        })),
    )
    .await;
    assert_eq!(vouching.status, StatusCode::FORBIDDEN, "{vouching:?}");
    // Batch: every item is authorized.
    let reply = call_as(
        &env.app,
        Some(&token),
        Method::POST,
        "/v1/check/batch",
        Some(&json!({"checks": [
            {"subject": {"principalId": someone}, "action": "contoso.a/read", "resource": "/applications/a"},
            {"subject": {"principalId": someone}, "action": "contoso.a/read", "resource": "/applications/b"},
        ]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admins_can_administer_with_plain_tokens() {
    let admin = Uuid::new_v4();
    let env = env(|_, _, config| config.bootstrap_admins = vec![admin]).await;
    let reply = call_as(
        &env.app,
        Some(&env.token(admin)),
        Method::GET,
        "/v1/roleAssignments",
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["value"][0]["roleDefinitionId"], PRA);
}

// --- issue 9: tenants, actors, key documents ---

/// Claims for `oid` in tenant `tid` from issuer `iss`, carrying Global Administrator in
/// `wids` (every issuer here is trusted for `wids`).
fn admin_claims(iss: &str, oid: Uuid, tid: Uuid) -> Value {
    let mut claims = idp::claims(iss, AUDIENCE, oid, tid, 600);
    claims["wids"] = json!([GLOBAL_ADMIN]);
    claims
}

/// The attack: a token makes its own subject Global Administrator at `/`.
async fn self_promote(env: &Env, token: &str, oid: Uuid) -> Reply {
    send_as(
        &env.app,
        token,
        Method::POST,
        "/v1/roleAssignments",
        Some(assignment_body(oid, "user", GLOBAL_ADMIN, "/")),
    )
    .await
}

/// Role assignments in `tenant`, read with the admin key.
async fn assignments_in(env: &Env, tenant: Uuid) -> Vec<Value> {
    let reply = env
        .app
        .call(
            Method::GET,
            "/v1/roleAssignments",
            None,
            &[("Rolecall-Tenant", &tenant.to_string())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_issuer_without_allowed_tenants_acts_only_in_the_default_tenant() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // A partner's issuer, trusted by its exact `iss` and nothing else configured.
        let env = env_on(backend, |idp, s, _| s.issuer = idp.issuer()).await;
        let victim = Uuid::new_v4();
        let oid = Uuid::new_v4();
        let token = env.rsa.sign(&admin_claims(&env.idp.issuer(), oid, victim));
        let reply = self_promote(&env, &token, oid).await;
        assert_invalid_token(&reply, "is not allowed for issuer");
        assert!(assignments_in(&env, victim).await.is_empty(), "{backend:?}");
        // In the default tenant, the same issuer's token works.
        let home = env.rsa.sign(&idp::claims(
            &env.idp.issuer(),
            AUDIENCE,
            oid,
            DEFAULT_TENANT,
            600,
        ));
        let reply = self_check(&env.app, &home, oid).await;
        assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_issuer_with_allowed_tenants_acts_only_in_those() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let partner = Uuid::new_v4();
        let env = env_on(backend, |idp, s, _| {
            s.issuer = idp.issuer();
            s.allowed_tenants = vec![partner.to_string()];
        })
        .await;
        let oid = Uuid::new_v4();
        for tenant in [DEFAULT_TENANT, Uuid::new_v4()] {
            let token = env.rsa.sign(&admin_claims(&env.idp.issuer(), oid, tenant));
            let reply = self_promote(&env, &token, oid).await;
            assert_invalid_token(&reply, "is not allowed for issuer");
            assert!(assignments_in(&env, tenant).await.is_empty(), "{backend:?}");
        }
        let token = env.rsa.sign(&admin_claims(&env.idp.issuer(), oid, partner));
        let reply = self_promote(&env, &token, oid).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{backend:?}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_issuer_binds_tid_to_iss_and_still_honours_allowed_tenants() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let allowed = Uuid::new_v4();
        let env = env_on(backend, |_, s, _| {
            s.allowed_tenants = vec![allowed.to_string()];
        })
        .await;
        let template_iss = |tid: Uuid| format!("{}/{tid}/v2.0", env.idp.issuer());
        let oid = Uuid::new_v4();
        let other = Uuid::new_v4();
        let token = env
            .rsa
            .sign(&admin_claims(&template_iss(other), oid, other));
        assert_invalid_token(
            &self_promote(&env, &token, oid).await,
            "is not allowed for issuer",
        );
        // The `iss` of the allowed tenant does not carry a token into another tenant.
        let token = env
            .rsa
            .sign(&admin_claims(&template_iss(allowed), oid, other));
        assert_invalid_token(
            &self_promote(&env, &token, oid).await,
            "does not match the tenant in `iss`",
        );
        assert!(assignments_in(&env, other).await.is_empty(), "{backend:?}");
        let token = env
            .rsa
            .sign(&admin_claims(&template_iss(allowed), oid, allowed));
        let reply = self_check(&env.app, &token, oid).await;
        assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {reply:?}");

        // Without `allowed_tenants`, a template acts in whichever tenant its `iss` names.
        let open = env_on(backend, |_, _, _| {}).await;
        let iss = format!("{}/{other}/v2.0", open.idp.issuer());
        let token = open.rsa.sign(&idp::claims(&iss, AUDIENCE, oid, other, 600));
        let reply = self_check(&open.app, &token, oid).await;
        assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_subject_is_a_group_is_refused() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        // A group holding Global Administrator: its id as `oid` would act with that role.
        let admins = create_group(&env.app, "Admins").await;
        assign(&env.app, admins, "group", GLOBAL_ADMIN, "/").await;
        let reply = self_promote(&env, &env.token(admins), admins).await;
        assert_invalid_token(&reply, "is a group");
        // A group with no members and no assignments is a group too.
        let empty = create_group(&env.app, "Empty").await;
        let token = env.token(empty);
        assert_invalid_token(&self_check(&env.app, &token, empty).await, "is a group");
        // Once deleted, the id is nobody's: the same token is an ordinary principal.
        let reply = env.app.delete(&format!("/v1/groups/{empty}")).await;
        assert!(reply.status.is_success(), "{reply:?}");
        let reply = self_check(&env.app, &token, empty).await;
        assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_records_the_token_issuer_beside_the_actor() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let admin = Uuid::new_v4();
        let env = env_on(backend, |_, _, config| {
            config.bootstrap_admins = vec![admin]
        })
        .await;
        let user = Uuid::new_v4();
        let reply = send_as(
            &env.app,
            &env.token(admin),
            Method::POST,
            "/v1/roleAssignments",
            Some(assignment_body(user, "user", CHECKER, "/")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        create_group(&env.app, "By the admin key").await;

        let changes = env.app.get("/v1/changes").await;
        assert_eq!(changes.status, StatusCode::OK, "{changes:?}");
        let rows = changes.body["value"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let actors: Vec<(Value, Value)> = rows
            .iter()
            .map(|c| {
                let row = c.as_object().expect("a change is an object");
                assert!(row.contains_key("actorIssuer"), "{c}");
                (c["actor"].clone(), c["actorIssuer"].clone())
            })
            .collect();
        assert_eq!(
            actors,
            vec![
                (json!("bootstrap-config"), Value::Null),
                (json!(admin.to_string()), json!(env.iss())),
                (json!("admin-key"), Value::Null),
            ],
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_key_document_is_cut_off_at_the_cap_while_it_streams() {
    use crate::common::idp::{Oversized, OVERSIZED_BYTES};
    for backend in [Backend::Sqlite, Backend::Postgres] {
        for how in [Oversized::Chunked, Oversized::Declared] {
            let env = env_on(backend, |idp, s, _| {
                idp.serve_oversized_keys(Some(how));
                // Long enough that only the size cap, not the timeout, can end the fetch.
                s.jwks_timeout_ms = Some(120_000);
            })
            .await;
            let oid = Uuid::new_v4();
            let started = std::time::Instant::now();
            let reply = self_check(&env.app, &env.token(oid), oid).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{how:?}: {reply:?}"
            );
            assert_eq!(reply.problem(), "issuer-unavailable");
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{how:?}: refused only after {:?}",
                started.elapsed()
            );
            assert!(
                !reply.body.to_string().contains("document over"),
                "{reply:?}"
            );
            // The provider saw the client hang up long before the end of the document.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let answers = loop {
                let answers = env.idp.oversized_answers();
                if !answers.is_empty() || std::time::Instant::now() > deadline {
                    break answers;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(!answers.is_empty(), "{how:?}: no oversized answer ended");
            for answer in answers {
                assert!(
                    !answer.finished && answer.sent < OVERSIZED_BYTES / 4,
                    "{how:?}: {answer:?} of {OVERSIZED_BYTES} bytes"
                );
            }
            // The app still serves.
            assert_eq!(env.app.get("/v1/groups").await.status, StatusCode::OK);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_issuer_is_503_without_its_key_url_or_the_fetch_error() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |idp, _, _| idp.set_down(true)).await;
        let oid = Uuid::new_v4();
        let reply = self_check(&env.app, &env.token(oid), oid).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert_eq!(reply.problem(), "issuer-unavailable");
        assert_eq!(
            reply.body["detail"],
            rolecall::api::error::ISSUER_UNAVAILABLE,
            "{reply:?}"
        );
        let body = reply.body.to_string();
        for leak in [
            env.idp.jwks_uri(),
            env.idp.issuer(),
            "127.0.0.1".to_owned(),
            "Service Unavailable".to_owned(),
            "GET ".to_owned(),
            "status 503".to_owned(),
        ] {
            assert!(!body.contains(&leak), "`{leak}` leaked: {body}");
        }
    }
}
