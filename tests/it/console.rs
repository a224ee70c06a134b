//! The web console in a real browser (headless Chromium through `chromedriver`): the
//! administrator's journey on both stores, a user without rights, a forged form post, and
//! a session crossing replicas. Screenshots of each step land in
//! `target/console-screenshots/`, with the page weights and render times measured.

mod fake_oidc;
mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use rolecall::store::Backend;
use serde_json::json;
use uuid::Uuid;

use crate::common::app::{TestApp, ADMIN_KEY};
use crate::common::env::env_on;
use webdriver::Browser;

const CREDENTIALS_UPDATE: &str = "microsoft.directory/applications/credentials/update";
const BASIC_UPDATE: &str = "microsoft.directory/applications/basic/update";

fn shots(run: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/console-screenshots")
        .join(run)
}

/// Polls the page (bounded) until `css`'s text satisfies `ok`: for what the page's own
/// script updates after a fetch.
async fn wait_for_text(b: &Browser, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        last = b.find(css).await.text().await;
        if ok(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{css}` never showed the expected text; last: {last:?}");
}

/// Page weight and time to first render of the page now shown, from the browser's own
/// Navigation and Paint Timing.
async fn measure(b: &Browser, page: &str) -> String {
    let m = b
        .script(
            "const nav = performance.getEntriesByType('navigation')[0];\
             const fcp = performance.getEntriesByType('paint')\
               .find(p => p.name === 'first-contentful-paint');\
             return {html: nav.decodedBodySize, fcp: fcp ? fcp.startTime : null,\
                     ready: nav.domContentLoadedEventEnd};",
            json!([]),
        )
        .await;
    format!(
        "{page}: html {} bytes, first contentful paint {:.0} ms, DOMContentLoaded {:.0} ms",
        m["html"],
        m["fcp"].as_f64().unwrap_or(f64::NAN),
        m["ready"].as_f64().unwrap_or(f64::NAN)
    )
}

/// Runs check access for the service principal from the console's form; the decision.
async fn check(b: &Browser, base: &str, scope: &str) -> String {
    b.goto(&format!("{base}/console/check")).await;
    b.find("#f-subject").await.fill("billing-sync").await;
    b.find("#f-action").await.fill(CREDENTIALS_UPDATE).await;
    b.find("#f-resource").await.fill(scope).await;
    b.find("#check-submit").await.click_to_load().await;
    b.find("#decision").await.text().await
}

async fn journey(backend: Backend, run: &str) {
    let env = env_on(backend, |_, _, config| config.dev = true).await;
    let app = &env.app;
    let application = Uuid::new_v4();
    let scope = format!("/applications/{application}");
    let sp = app
        .post(
            "/v1/principals",
            &json!({"type": "servicePrincipal", "displayName": "Billing sync",
                    "aliases": ["billing-sync"]}),
        )
        .await;
    assert_eq!(sp.status, StatusCode::CREATED, "{sp:?}");
    let sp_id = sp.body["id"].as_str().unwrap().to_owned();
    let b = Browser::start(shots(run)).await;
    let mut measured = Vec::new();

    // Sign in (dev).
    b.goto(&format!("{}/console", app.base)).await;
    assert_eq!(b.title().await, "Sign in · Rolecall console");
    b.screenshot("01-sign-in").await;
    b.find("#dev-signin").await.click_to_load().await;
    assert_eq!(
        b.title().await,
        "Roles · Rolecall console",
        "{} at {}",
        b.main_text().await,
        b.url().await
    );
    measured.push(measure(&b, "roles").await);

    // Find "Application Administrator".
    b.find("#f-q").await.fill("Application Administrator").await;
    b.find("#role-search").await.click_to_load().await;
    b.screenshot("02-roles-search").await;
    b.link("Application Administrator")
        .await
        .click_to_load()
        .await;
    assert_eq!(
        b.title().await,
        "Application Administrator · Rolecall console"
    );
    assert!(b.main_text().await.contains(CREDENTIALS_UPDATE));
    measured.push(measure(&b, "role detail").await);
    b.screenshot("03-role-detail").await;

    // Clone it and trim it to two permissions; a bad exclusion is flagged as it is typed.
    b.find("#clone").await.click_to_load().await;
    assert_eq!(b.title().await, "New custom role · Rolecall console");
    measured.push(measure(&b, "new role (clone)").await);
    b.find("#f-displayName")
        .await
        .fill("Application credential manager")
        .await;
    b.find("#f-excluded").await.fill("not a pattern").await;
    let flagged = wait_for_text(&b, "#err-excluded", |t| !t.is_empty()).await;
    assert!(flagged.contains("not a pattern"), "{flagged}");
    b.find("#f-excluded").await.fill("").await;
    wait_for_text(&b, "#err-excluded", str::is_empty).await;
    b.find("#untick-all").await.click().await;
    for action in [CREDENTIALS_UPDATE, BASIC_UPDATE] {
        b.find("#perm-search").await.fill(action).await;
        b.find(&format!("#perm-list input[value=\"{action}\"]"))
            .await
            .click()
            .await;
    }
    assert_eq!(b.find("#perm-count").await.text().await, "2 ticked");
    b.screenshot("04-clone-trimmed").await;
    b.find("#review").await.click_to_load().await;
    let review = b.main_text().await;
    assert!(review.contains("Permissions (2)"), "{review}");
    b.screenshot("05-review").await;
    b.find("#create").await.click_to_load().await;
    assert_eq!(
        b.title().await,
        "Application credential manager · Rolecall console"
    );
    let url = b.url().await;
    let role_id = url.rsplit('/').next().unwrap().to_owned();
    let stored = app.get(&format!("/v1/roleDefinitions/{role_id}")).await;
    assert_eq!(
        stored.body["rolePermissions"][0]["allowedResourceActions"],
        json!([BASIC_UPDATE, CREDENTIALS_UPDATE]),
        "{stored:?}"
    );

    // Assign it to the service principal at one application's scope.
    b.find("#assign").await.click_to_load().await;
    b.find("#f-principal").await.fill("billing-sync").await;
    b.find("#f-principalType option[value=\"servicePrincipal\"]")
        .await
        .click()
        .await;
    b.find("#f-scope").await.fill(&scope).await;
    b.screenshot("06-assign").await;
    b.find("#assign-submit").await.click_to_load().await;

    // The role's assignments.
    assert_eq!(
        b.title().await,
        "Application credential manager · Rolecall console"
    );
    let listed = b.find("#assignment-list").await.text().await;
    assert!(
        listed.contains(&sp_id) && listed.contains(&scope),
        "{listed}"
    );
    b.screenshot("07-role-assignments").await;

    // Check access: allowed, with its chain.
    assert_eq!(check(&b, &app.base, &scope).await, "Allowed");
    let chain = b.find("ol.chain.grant").await.text().await;
    for part in [
        "assignment",
        "Application credential manager",
        CREDENTIALS_UPDATE,
        scope.as_str(),
    ] {
        assert!(chain.contains(part), "{part} in {chain}");
    }
    measured.push(measure(&b, "check access (allow)").await);
    b.screenshot("08-check-allow").await;

    // Remove the assignment: denied.
    b.goto(&format!("{}/console/roles/{role_id}", app.base))
        .await;
    b.find("#assignment-list button.danger")
        .await
        .click_to_load()
        .await;
    assert_eq!(b.count("#no-assignments").await, 1);
    b.screenshot("09-assignment-removed").await;
    assert_eq!(check(&b, &app.base, &scope).await, "Denied");
    b.screenshot("10-check-deny").await;
    let left = app
        .get(&format!("/v1/roleAssignments?roleDefinitionId={role_id}"))
        .await;
    assert_eq!(left.body["value"], json!([]), "{left:?}");

    // The rest of the pages answer, and carry the strict CSP.
    for (path, name) in [
        ("/console/assignments", "assignments"),
        ("/console/groups", "groups"),
        ("/console/units", "units"),
        ("/console/principals", "principals"),
        ("/console/changes", "changes"),
    ] {
        b.goto(&format!("{}{path}", app.base)).await;
        assert!(
            !b.title().await.starts_with("Sign in"),
            "{path} kept the session"
        );
        measured.push(measure(&b, name).await);
    }
    b.screenshot("11-change-log").await;
    b.quit().await;
    std::fs::write(
        shots(run).join("measurements.txt"),
        measured.join("\n") + "\n",
    )
    .expect("measurements saved");
    println!("{}", measured.join("\n"));
}

#[tokio::test]
async fn the_console_journey_clones_a_role_assigns_it_checks_it_and_removes_it_on_sqlite() {
    journey(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn the_console_journey_clones_a_role_assigns_it_checks_it_and_removes_it_on_postgres() {
    journey(Backend::Postgres, "postgres").await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The value of a `Set-Cookie` named `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// Signs in through the dev button without a browser; returns the session cookie.
async fn dev_session(client: &reqwest::Client, base: &str) -> String {
    let page = client
        .get(format!("{base}/console/signin"))
        .send()
        .await
        .unwrap();
    let token = set_cookie(&page, "rolecall_console_signin").expect("sign-in cookie");
    let signed = client
        .post(format!("{base}/console/signin/dev"))
        .header("cookie", format!("rolecall_console_signin={token}"))
        .form(&[("signin", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    set_cookie(&signed, "rolecall_console").expect("session cookie")
}

#[tokio::test]
async fn a_user_without_rights_sees_no_admin_actions_and_a_forged_post_is_refused() {
    let env = env_on(Backend::Sqlite, |_, _, config| config.dev = true).await;
    let app = &env.app;
    let nobody = env.token(Uuid::new_v4());
    let b = Browser::start(shots("no-rights")).await;
    b.goto(&format!("{}/console/signin", app.base)).await;
    b.find("#f-token").await.fill(&nobody).await;
    b.find("#token-signin").await.click_to_load().await;
    assert_eq!(b.title().await, "Roles · Rolecall console");
    let text = b.main_text().await;
    assert!(
        text.contains("forbidden") || text.contains("may not") || text.contains("lacks"),
        "{text}"
    );
    assert_eq!(b.count(".admin-action").await, 0, "no admin actions shown");
    b.screenshot("01-roles-forbidden").await;
    for path in [
        "/console/roles/9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", // Application Administrator
        "/console/assignments",
    ] {
        b.goto(&format!("{}{path}", app.base)).await;
        assert_eq!(b.count(".admin-action").await, 0, "none on {path}");
        assert_eq!(
            b.count("form[method=post]:not(.signout)").await,
            0,
            "{path}"
        );
    }
    b.screenshot("02-assignments-forbidden").await;
    b.quit().await;

    // A forged post: the administrator's own session cookie, but no CSRF token (or a
    // wrong one), as another site's form would send it. Refused, and nothing is created.
    let client = no_redirects();
    let session = dev_session(&client, &app.base).await;
    let forms = [
        vec![("displayName", "Forged"), ("perm", CREDENTIALS_UPDATE)],
        vec![
            ("displayName", "Forged"),
            ("perm", CREDENTIALS_UPDATE),
            ("csrf", "guessed-token-000000"),
        ],
    ];
    for form in forms {
        let forged = client
            .post(format!("{}/console/roles", app.base))
            .header("cookie", format!("rolecall_console={session}"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let csp = forged
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    }
    // Without any session: sent to sign in, nothing done.
    let anonymous = client
        .post(format!("{}/console/roles", app.base))
        .form(&[("displayName", "Forged"), ("perm", CREDENTIALS_UPDATE)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    let custom = app.get("/v1/roleDefinitions?isBuiltIn=false").await;
    assert_eq!(custom.body["value"], json!([]), "{custom:?}");
}

#[tokio::test]
async fn a_session_sealed_by_one_replica_opens_on_another_sharing_the_key() {
    let db = crate::common::db::fresh(Backend::Sqlite).await;
    let replica = |key: &str| {
        let mut config = rolecall::config::Config::for_tests(db.url.clone(), ADMIN_KEY);
        config.dev = true;
        config.console_session_key = Some(rolecall::config::Secret::new(key));
        TestApp::spawn_with(config)
    };
    let shared = "a-console-session-key-shared-by-replicas";
    let a = replica(shared).await;
    let b = replica(shared).await;
    let other = replica("another-console-session-key-entirely").await;
    let client = no_redirects();
    let session = dev_session(&client, &a.base).await;
    let on = |base: String| {
        let (client, session) = (client.clone(), session.clone());
        async move {
            client
                .get(format!("{base}/console/roles"))
                .header("cookie", format!("rolecall_console={session}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(on(a.base.clone()).await, StatusCode::OK);
    assert_eq!(
        on(b.base.clone()).await,
        StatusCode::OK,
        "the other replica"
    );
    assert_eq!(
        on(other.base.clone()).await,
        StatusCode::SEE_OTHER,
        "a replica with another key sends to sign in"
    );
}

#[tokio::test]
async fn openid_connect_sign_in_with_pkce_opens_a_session_and_a_forged_state_is_refused() {
    let fake = fake_oidc::FakeOidc::start().await;
    let issuer = fake.issuer.clone();
    let env = env_on(Backend::Sqlite, move |_, _, config| {
        config.console_oidc = Some(rolecall::config::ConsoleOidc {
            issuer,
            client_id: "rolecall-console".to_owned(),
            scope: "openid".to_owned(),
        });
    })
    .await;
    let app = &env.app;
    let oid = Uuid::new_v4();
    *fake.shared.token.lock().unwrap() = env.token(oid);

    let b = Browser::start(shots("oidc")).await;
    b.goto(&format!("{}/console/signin", app.base)).await;
    b.screenshot("01-sign-in").await;
    b.find("#oidc-signin").await.click().await;
    // The issuer consents at once; the callback's page moves on to the console itself.
    let mut title = String::new();
    for _ in 0..50 {
        title = b.title().await;
        if title == "Roles · Rolecall console" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(title, "Roles · Rolecall console", "{}", b.main_text().await);
    let who = b.find(".who").await.text().await;
    assert!(who.contains(&oid.to_string()), "{who}");
    b.screenshot("02-signed-in").await;
    b.quit().await;
    assert_eq!(*fake.shared.refused.lock().unwrap(), 0);

    // A callback whose state is not the one this browser was sent with: refused.
    let client = no_redirects();
    let started = client
        .get(format!("{}/console/signin/oidc", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("code_challenge_method=S256"),
        "{location}"
    );
    let pending = set_cookie(&started, "rolecall_console_oidc").unwrap();
    let forged = client
        .get(format!(
            "{}/console/signin/callback?code=stolen&state=not-the-state",
            app.base
        ))
        .header("cookie", format!("rolecall_console_oidc={pending}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&forged, "rolecall_console").is_none());
}

/// The CSRF token in a console page's forms.
fn csrf_of(html: &str) -> String {
    let needle = "name=\"csrf\" value=\"";
    let start = html.find(needle).expect("a form with a CSRF token") + needle.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn group_and_unit_members_are_added_and_removed_from_the_console() {
    let env = env_on(Backend::Sqlite, |_, _, config| config.dev = true).await;
    let app = &env.app;
    let client = no_redirects();
    let session = dev_session(&client, &app.base).await;
    let cookie = format!("rolecall_console={session}");
    let group = crate::common::env::create_group(app, "Billing operators").await;
    let unit = app
        .post(
            "/v1/administrativeUnits",
            &json!({"displayName": "Billing"}),
        )
        .await;
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let member = Uuid::new_v4().to_string();
    let resource = format!("/applications/{}", Uuid::new_v4());
    for (page, add, check, remove_value) in [
        (
            format!("/console/groups/{group}"),
            vec![
                ("member", member.clone()),
                ("memberType", "user".to_owned()),
            ],
            format!("/v1/groups/{group}/members"),
            member.clone(),
        ),
        (
            format!("/console/units/{unit}"),
            vec![("resource", resource.clone())],
            format!("/v1/administrativeUnits/{unit}/members"),
            resource.clone(),
        ),
    ] {
        let html = client
            .get(format!("{}{page}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&html);
        let mut form = add.clone();
        form.push(("csrf", csrf.clone()));
        let added = client
            .post(format!("{}{page}/members", app.base))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), StatusCode::SEE_OTHER, "{page}");
        let listed = app.get(&check).await;
        assert_eq!(
            listed.body["value"].as_array().unwrap().len(),
            1,
            "{listed:?}"
        );
        let removed = client
            .post(format!("{}{page}/members/remove", app.base))
            .header("cookie", &cookie)
            .form(&[("member", remove_value.as_str()), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::SEE_OTHER, "{page}");
        let listed = app.get(&check).await;
        assert_eq!(listed.body["value"], json!([]), "{listed:?}");
    }
}
