//! The admin plane tried as an attacker would: each test performs one way around deny
//! assignments or the no-escalation rule against a live server with real tokens, on both
//! stores, and asserts the refusal (and that the directory did not change).

use crate::common::app::{Reply, TestApp};
use crate::common::env::*;
use chrono::{Duration, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];
const GROUPS_ADMIN: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";
const MANAGE_ROLES: &str = "microsoft.directory/roleDefinitions/allProperties/allTasks";
const MANAGE_UNITS: &str = "microsoft.directory/administrativeUnits/allProperties/allTasks";

/// Asks, with the admin key, whether `subject` may perform `action` on `resource`.
async fn allowed(app: &TestApp, subject: Uuid, action: &str, resource: &str) -> bool {
    let reply = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": subject}, "action": action, "resource": resource}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["allowed"].as_bool().expect("allowed")
}

/// Creates a deny assignment with the admin key.
async fn deny(app: &TestApp, principal: Uuid, kind: &str, actions: &[&str], scope: &str) -> String {
    let reply = app
        .post(
            "/v1/denyAssignments",
            &deny_body(principal, kind, actions, scope),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"].as_str().expect("id").to_owned()
}

fn deny_body(principal: Uuid, kind: &str, actions: &[&str], scope: &str) -> Value {
    json!({
        "displayName": format!("fence {}", Uuid::new_v4()),
        "principalId": principal,
        "principalType": kind,
        "actions": actions,
        "directoryScopeId": scope,
    })
}

/// Adds `member` to `group` with the admin key.
async fn join(app: &TestApp, group: Uuid, member: Uuid, kind: &str) {
    let reply = app
        .post(
            &format!("/v1/groups/{group}/members"),
            &json!({"id": member, "type": kind}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

/// Creates a unit holding `members`, with the admin key.
async fn unit_with(app: &TestApp, members: &[&str]) -> Uuid {
    let reply = app
        .post(
            "/v1/administrativeUnits",
            &json!({"displayName": format!("unit {}", Uuid::new_v4())}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let unit = reply.body["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .expect("unit id");
    for member in members {
        let reply = app
            .post(
                &format!("/v1/administrativeUnits/{unit}/members"),
                &json!({"resource": member}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    }
    unit
}

/// A new principal holding a new role of `actions` at `scope`, and its token.
async fn admin_with(env: &Env, actions: &[&str], scope: &str) -> (Uuid, String) {
    let role = create_role(&env.app, &format!("role {}", Uuid::new_v4()), actions).await;
    let admin = Uuid::new_v4();
    assign(&env.app, admin, "user", &role, scope).await;
    (admin, env.token(admin))
}

fn assert_forbidden(reply: &Reply, problem: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_eq!(reply.problem(), problem, "{reply:?}");
}

fn encoded(path: &str) -> String {
    path.replace('/', "%2F")
}

// 1. Deleting a group

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_group_is_authorized_as_removing_its_members_and_assignments() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let attacker = Uuid::new_v4();
        assign(app, attacker, "user", GROUPS_ADMIN, "/").await;
        let token = env.token(attacker);
        let delete = |group: Uuid| {
            send_as(
                app,
                &token,
                Method::DELETE,
                format!("/v1/groups/{group}"),
                None,
            )
        };

        // A member denied through G deletes G to be rid of the deny.
        let reader = create_role(app, "Secrets Reader", &["contoso.apps/secrets/read"]).await;
        assign(app, attacker, "user", &reader, "/").await;
        let fenced = create_group(app, "Fenced").await;
        join(app, fenced, attacker, "user").await;
        deny(app, fenced, "group", &["contoso.apps/secrets/*"], "/").await;
        assert!(
            !allowed(
                app,
                attacker,
                "contoso.apps/secrets/read",
                "/applications/a"
            )
            .await
        );
        let reply = delete(fenced).await;
        assert_forbidden(&reply, "forbidden");
        assert!(
            !allowed(
                app,
                attacker,
                "contoso.apps/secrets/read",
                "/applications/a"
            )
            .await
        );
        assert_eq!(
            app.get(&format!("/v1/groups/{fenced}")).await.status,
            StatusCode::OK
        );

        // A group holding Global Administrator at `/` is deleted with its assignment, which
        // the Groups Administrator could not delete directly.
        let powerful = create_group(app, "Global admins").await;
        let assignment = assign(app, powerful, "group", GLOBAL_ADMIN, "/").await;
        let direct = send_as(
            app,
            &token,
            Method::DELETE,
            format!("/v1/roleAssignments/{assignment}"),
            None,
        )
        .await;
        assert_forbidden(&direct, "forbidden");
        let reply = delete(powerful).await;
        assert_forbidden(&reply, "forbidden");
        assert_eq!(reply.body["action"], MANAGE_ASSIGNMENTS);
        assert_eq!(reply.body["scope"], "/");
        assert_eq!(
            app.get(&format!("/v1/roleAssignments/{assignment}"))
                .await
                .status,
            StatusCode::OK
        );

        // A group with members and nothing else attached is still the Groups
        // Administrator's to delete.
        let plain = create_group(app, "Plain").await;
        join(app, plain, Uuid::new_v4(), "user").await;
        assert_eq!(delete(plain).await.status, StatusCode::OK);
    }
}

// 2. Administrative units

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_unit_member_or_the_unit_does_not_escape_its_deny_assignments() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let action = "microsoft.directory/applications/credentials/update";
        let editor = create_role(app, "Credential editor", &[action]).await;
        let victim = Uuid::new_v4();
        assign(app, victim, "user", &editor, "/").await;
        let unit = unit_with(app, &["/applications/app2"]).await;
        let unit_scope = format!("/administrativeUnits/{unit}");
        deny(app, victim, "user", &[action], &unit_scope).await;
        assert!(!allowed(app, victim, action, "/applications/app2").await);

        let (_, token) = admin_with(&env, &[MANAGE_UNITS], "/").await;
        let remove = send_as(
            app,
            &token,
            Method::DELETE,
            format!(
                "/v1/administrativeUnits/{unit}/members/{}",
                encoded("/applications/app2")
            ),
            None,
        )
        .await;
        assert_forbidden(&remove, "forbidden");
        assert_eq!(remove.body["action"], MANAGE_ASSIGNMENTS);
        assert_eq!(remove.body["scope"], unit_scope);
        let drop = send_as(
            app,
            &token,
            Method::DELETE,
            format!("/v1/administrativeUnits/{unit}"),
            None,
        )
        .await;
        assert_forbidden(&drop, "forbidden");
        assert!(!allowed(app, victim, action, "/applications/app2").await);

        // The denied principal itself, though it manages assignments everywhere, cannot
        // take the resource out from under its own deny.
        let (me, my_token) = admin_with(&env, &[MANAGE_UNITS, MANAGE_ASSIGNMENTS], "/").await;
        deny(app, me, "user", &[action], &unit_scope).await;
        let reply = send_as(
            app,
            &my_token,
            Method::DELETE,
            format!("/v1/administrativeUnits/{unit}"),
            None,
        )
        .await;
        assert_forbidden(&reply, "forbidden");

        // A unit without deny assignments is the unit administrator's to empty.
        let quiet = unit_with(app, &["/applications/app3"]).await;
        let reply = send_as(
            app,
            &token,
            Method::DELETE,
            format!(
                "/v1/administrativeUnits/{quiet}/members/{}",
                encoded("/applications/app3")
            ),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
}

// 3. Deleting a role with its assignments

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascading_role_delete_needs_the_right_to_delete_each_assignment() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let (_, token) = admin_with(&env, &[MANAGE_ROLES], "/").await;
        let role = create_role(app, "Doomed", &["contoso.apps/settings/read"]).await;
        let assignment = assign(app, Uuid::new_v4(), "user", &role, "/applications/x").await;
        let reply = send_as(
            app,
            &token,
            Method::DELETE,
            format!("/v1/roleDefinitions/{role}?cascade=true"),
            None,
        )
        .await;
        assert_forbidden(&reply, "forbidden");
        assert_eq!(reply.body["action"], MANAGE_ASSIGNMENTS);
        assert_eq!(reply.body["scope"], "/applications/x");
        assert_eq!(
            app.get(&format!("/v1/roleAssignments/{assignment}"))
                .await
                .status,
            StatusCode::OK
        );
        // Without assignments the role is the role administrator's to delete.
        let unused = create_role(app, "Unused", &["contoso.apps/settings/read"]).await;
        let reply = send_as(
            app,
            &token,
            Method::DELETE,
            format!("/v1/roleDefinitions/{unused}?cascade=true"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
}

// 4. Deny assignments below the target scope

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_below_the_target_scope_fences_what_an_admin_hands_out() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let update = "contoso.apps/credentials/update";
        let unit = unit_with(app, &["/applications/app6"]).await;
        let unit_scope = format!("/administrativeUnits/{unit}");
        let (admin, token) =
            admin_with(&env, &[MANAGE_ASSIGNMENTS, "contoso.apps/*"], &unit_scope).await;
        deny(app, admin, "user", &[update], "/applications/app6").await;
        let updater = create_role(app, "Credential updater", &[update]).await;
        let reader = create_role(app, "Settings reader", &["contoso.apps/settings/read"]).await;
        let puppet = Uuid::new_v4();
        let post = |role: &str| {
            send_as(
                app,
                &token,
                Method::POST,
                "/v1/roleAssignments",
                Some(assignment_body(puppet, "user", role, &unit_scope)),
            )
        };
        let reply = post(&updater).await;
        assert_forbidden(&reply, "escalation-refused");
        assert_eq!(reply.body["missing"], json!([update]));
        assert!(!allowed(app, puppet, update, "/applications/app6").await);
        assert_eq!(post(&reader).await.status, StatusCode::CREATED);

        // Role edits: a role administrator denied an action at one application cannot add
        // it to a role assigned there.
        let approve = "contoso.apps/payroll/approve";
        let (editor, token) = admin_with(&env, &[MANAGE_ROLES, "contoso.apps/*"], "/").await;
        deny(app, editor, "user", &[approve], "/applications/payroll").await;
        let clerk = create_role(app, "Payroll clerk", &["contoso.apps/payroll/read"]).await;
        assign(app, puppet, "user", &clerk, "/applications/payroll").await;
        let patch = |actions: Value| {
            send_as(
                app,
                &token,
                Method::PATCH,
                format!("/v1/roleDefinitions/{clerk}"),
                Some(json!({"rolePermissions": [{"allowedResourceActions": actions}]})),
            )
        };
        let reply = patch(json!(["contoso.apps/payroll/read", approve])).await;
        assert_forbidden(&reply, "escalation-refused");
        assert_eq!(reply.body["missing"], json!([approve]));
        let reply = patch(json!(["contoso.apps/payroll/*"])).await;
        assert_forbidden(&reply, "escalation-refused");
        assert!(!allowed(app, puppet, approve, "/applications/payroll").await);
        let reply = patch(json!([
            "contoso.apps/payroll/read",
            "contoso.apps/payroll/list"
        ]))
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
}

// 5. Deny assignments themselves

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_assignments_take_away_only_what_the_caller_could_give() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let read = "contoso.apps/settings/read";
        let (delegate, token) =
            admin_with(&env, &[MANAGE_ASSIGNMENTS, read], "/applications/app5").await;
        let global = Uuid::new_v4();
        assign(app, global, "user", GLOBAL_ADMIN, "/").await;
        let create = |principal: Uuid, actions: &[&str]| {
            send_as(
                app,
                &token,
                Method::POST,
                "/v1/denyAssignments",
                Some(deny_body(principal, "user", actions, "/applications/app5")),
            )
        };
        // Fencing a Global Administrator out of Rolecall's administration at its
        // application: administrative actions need assignment management at `/`.
        let reply = create(global, &["microsoft.directory/roleAssignments/*"]).await;
        assert_forbidden(&reply, "forbidden");
        assert_eq!(reply.body["scope"], "/");
        let reply = create(global, &["*"]).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert!(allowed(app, global, MANAGE_ASSIGNMENTS, "/applications/app5").await);
        // Taking away what it could not give.
        let reply = create(global, &["contoso.apps/settings/update"]).await;
        assert_forbidden(&reply, "escalation-refused");
        assert_eq!(
            reply.body["missing"],
            json!(["contoso.apps/settings/update"])
        );
        // What it could give, it may take away.
        assert_eq!(
            create(Uuid::new_v4(), &[read]).await.status,
            StatusCode::CREATED
        );

        // Not its own fence, directly or through a group, by deleting or editing it.
        let own = deny(app, delegate, "user", &[read], "/applications/app5").await;
        let team = create_group(app, "Team").await;
        join(app, team, delegate, "user").await;
        let teams = deny(app, team, "group", &[read], "/applications/app5").await;
        for id in [&own, &teams] {
            let reply = send_as(
                app,
                &token,
                Method::DELETE,
                format!("/v1/denyAssignments/{id}"),
                None,
            )
            .await;
            assert_forbidden(&reply, "forbidden");
            let reply = send_as(
                app,
                &token,
                Method::PATCH,
                format!("/v1/denyAssignments/{id}"),
                Some(json!({"actions": ["contoso.apps/nothing/read"]})),
            )
            .await;
            assert_forbidden(&reply, "forbidden");
        }
        assert!(!allowed(app, delegate, read, "/applications/app5").await);

        // Nor lift a deny on administration at its scope.
        let other = Uuid::new_v4();
        let fence = deny(
            app,
            other,
            "user",
            &["microsoft.directory/roleAssignments/*"],
            "/applications/app5",
        )
        .await;
        let (_, second) = admin_with(&env, &[MANAGE_ASSIGNMENTS, read], "/applications/app5").await;
        let reply = send_as(
            app,
            &second,
            Method::DELETE,
            format!("/v1/denyAssignments/{fence}"),
            None,
        )
        .await;
        assert_forbidden(&reply, "forbidden");
        assert_eq!(reply.body["scope"], "/");
        // Another delegate lifts the plain fence on the first delegate.
        let reply = send_as(
            app,
            &second,
            Method::DELETE,
            format!("/v1/denyAssignments/{own}"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
}

// 6. Time-boxed administrators

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_boxed_administrator_cannot_outlast_its_own_grant() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let read = "contoso.apps/settings/read";
        let admin_role =
            create_role(app, "App assignment admin", &[MANAGE_ASSIGNMENTS, read]).await;
        let reader = create_role(app, "Reader", &[read]).await;
        let admin = Uuid::new_v4();
        let at = |minutes: i64| {
            (Utc::now() + Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        let mut own = assignment_body(admin, "user", &admin_role, "/applications/a");
        own["endDateTime"] = json!(at(60));
        let reply = app.post("/v1/roleAssignments", &own).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        let token = env.token(admin);
        let post = |principal: Uuid, role: &str, end: Option<String>| {
            let mut body = assignment_body(principal, "user", role, "/applications/a");
            if let Some(end) = end {
                body["endDateTime"] = json!(end);
            }
            send_as(app, &token, Method::POST, "/v1/roleAssignments", Some(body))
        };
        let user = Uuid::new_v4();
        assert_forbidden(&post(user, &reader, None).await, "forbidden");
        assert_forbidden(&post(user, &reader, Some(at(120))).await, "forbidden");
        // Re-granting itself without an end, beside the expiring grant.
        assert_forbidden(&post(admin, &admin_role, None).await, "forbidden");
        let reply = post(user, &reader, Some(at(30))).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "within its term: {reply:?}"
        );
        let listed = app
            .get(&format!("/v1/roleAssignments?principalId={admin}"))
            .await;
        assert_eq!(listed.body["value"].as_array().map(Vec::len), Some(1));
    }
}

// 10. What a caller is told

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explanations_and_reads_show_only_what_the_caller_may_see() {
    for backend in BACKENDS {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let checker = Uuid::new_v4();
        assign(
            app,
            checker,
            "servicePrincipal",
            CHECKER,
            "/applications/app4",
        )
        .await;
        let token = env.token(checker);
        let read = "contoso.apps/settings/read";
        let reader = create_role(app, "Reader", &[read]).await;
        let subject = Uuid::new_v4();
        let here = assign(app, subject, "user", &reader, "/applications/app4").await;
        let elsewhere = assign(app, subject, "user", &reader, "/applications/other").await;
        let reply = send_as(
            app,
            &token,
            Method::POST,
            "/v1/check",
            Some(json!({
                "subject": {"principalId": subject},
                "action": "contoso.apps/settings/update",
                "resource": "/applications/app4",
                "explain": true,
            })),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let text = reply.body.to_string();
        assert!(text.contains(&here), "{text}");
        assert!(!text.contains(&elsewhere), "{text}");
        assert!(!text.contains("/applications/other"), "{text}");
        let reasons = reply.body["reasons"].as_array().expect("reasons");
        assert_eq!(reasons.last().map(|r| &r["kind"]), Some(&json!("withheld")));
        assert_eq!(reasons.last().map(|r| &r["count"]), Some(&json!(1)));
        // The admin key sees all.
        let full = app
            .post(
                "/v1/check",
                &json!({
                    "subject": {"principalId": subject},
                    "action": "contoso.apps/settings/update",
                    "resource": "/applications/app4",
                    "explain": true,
                }),
            )
            .await;
        assert!(full.body.to_string().contains(&elsewhere));

        // Reading one assignment the caller may not read is indistinguishable from
        // reading one that does not exist.
        let (_, reader_token) = admin_with(
            &env,
            &["microsoft.directory/roleAssignments/standard/read"],
            "/applications/app4",
        )
        .await;
        let fence = deny(app, subject, "user", &[read], "/applications/other").await;
        for (kind, id) in [
            ("roleAssignments", elsewhere.as_str()),
            ("denyAssignments", fence.as_str()),
        ] {
            let hidden = send_as(
                app,
                &reader_token,
                Method::GET,
                format!("/v1/{kind}/{id}"),
                None,
            )
            .await;
            let missing_id = Uuid::new_v4().to_string();
            let missing = send_as(
                app,
                &reader_token,
                Method::GET,
                format!("/v1/{kind}/{missing_id}"),
                None,
            )
            .await;
            assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{hidden:?}");
            assert_eq!(hidden.problem(), "not-found");
            assert!(!hidden.body.to_string().contains("/applications/other"));
            assert_eq!(
                hidden.body["detail"].as_str().map(|d| d.replace(id, "X")),
                missing.body["detail"]
                    .as_str()
                    .map(|d| d.replace(&missing_id, "X")),
            );
        }
        let visible = send_as(
            app,
            &reader_token,
            Method::GET,
            format!("/v1/roleAssignments/{here}"),
            None,
        )
        .await;
        assert_eq!(visible.status, StatusCode::OK, "{visible:?}");
    }
}
