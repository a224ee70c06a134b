//! Decision semantics over real HTTP, on both stores: every rule of DESIGN §2 and the
//! check, batch, effective-permission and who-can endpoints.

use crate::common::app::{Decided, Reply, TestApp};
use crate::common::spec::expect;
use reqwest::{Method, StatusCode};
use rolecall::decide::Purpose;
use serde_json::{json, Value};
use uuid::Uuid;

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

async fn role(app: &TestApp, permissions: Value) -> String {
    let r = app
        .post(
            "/v1/roleDefinitions",
            &json!({"displayName": format!("role {}", Uuid::new_v4()), "rolePermissions": permissions}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn simple_role(app: &TestApp, actions: &[&str]) -> String {
    role(app, json!([{"allowedResourceActions": actions}])).await
}

async fn assign(app: &TestApp, principal: Uuid, kind: &str, role: &str, scope: &str) -> Value {
    let r = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": principal, "principalType": kind, "roleDefinitionId": role, "directoryScopeId": scope}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn group(app: &TestApp) -> Uuid {
    let r = app.post("/v1/groups", &json!({"displayName": "g"})).await;
    r.body["id"].as_str().unwrap().parse().unwrap()
}

async fn add_member(app: &TestApp, group: Uuid, member: Uuid, kind: &str) {
    let r = app
        .post(
            &format!("/v1/groups/{group}/members"),
            &json!({"id": member, "type": kind}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

async fn decide(app: &TestApp, principal: Uuid, action: &str, resource: &str) -> Reply {
    let r = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": principal}, "action": action, "resource": resource, "explain": true}),
        )
        .await;
    expect(&r, 200, "POST", "/v1/check");
    assert_eq!(
        r.body["decision"],
        if r.body["allowed"] == true {
            "allow"
        } else {
            "deny"
        }
    );
    r
}

async fn allowed(app: &TestApp, principal: Uuid, action: &str, resource: &str) -> bool {
    decide(app, principal, action, resource).await.body["allowed"]
        .as_bool()
        .unwrap()
}

async fn scope_coverage_is_by_whole_path_segments(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = simple_role(
        app,
        &["microsoft.directory/applications/credentials/update"],
    )
    .await;
    assign(app, user, "user", &r, "/applications/ab").await;
    let action = "microsoft.directory/applications/credentials/update";
    assert!(allowed(app, user, action, "/applications/ab").await);
    assert!(allowed(app, user, action, "/applications/ab/credentials/k1").await);
    assert!(!allowed(app, user, action, "/applications/abc").await);
    assert!(!allowed(app, user, action, "/applications").await);
    assert!(!allowed(app, user, action, "/").await);
    let other = Uuid::new_v4();
    assign(app, other, "user", &r, "/").await;
    assert!(allowed(app, other, action, "/applications/abc/credentials/k9").await);
}

async fn an_administrative_unit_scope_covers_its_member_resources(app: &TestApp) {
    let user = Uuid::new_v4();
    let unit = app
        .post(
            "/v1/administrativeUnits",
            &json!({"displayName": "Finance"}),
        )
        .await;
    let unit_id = unit.body["id"].as_str().unwrap().to_owned();
    let member = format!("/applications/{}", Uuid::new_v4());
    let added = app
        .post(
            &format!("/v1/administrativeUnits/{unit_id}/members"),
            &json!({"resource": member}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    let r = simple_role(app, &["contoso.apps/update"]).await;
    assign(
        app,
        user,
        "user",
        &r,
        &format!("/administrativeUnits/{unit_id}"),
    )
    .await;
    assert!(allowed(app, user, "contoso.apps/update", &member).await);
    assert!(
        allowed(
            app,
            user,
            "contoso.apps/update",
            &format!("{member}/credentials/k1")
        )
        .await
    );
    assert!(
        !allowed(
            app,
            user,
            "contoso.apps/update",
            &format!("/applications/{}", Uuid::new_v4())
        )
        .await
    );
    let encoded = member.replace('/', "%2F");
    let removed = app
        .delete(&format!(
            "/v1/administrativeUnits/{unit_id}/members/{encoded}"
        ))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    assert!(!allowed(app, user, "contoso.apps/update", &member).await);
}

async fn actions_match_case_insensitively_with_wildcards_and_entra_keywords(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = simple_role(
        app,
        &[
            "Contoso.Expenses/Reports/Approve",
            "contoso.files/*",
            "microsoft.directory/applications/allProperties/allTasks",
            "microsoft.directory/users/allProperties/read",
        ],
    )
    .await;
    assign(app, user, "user", &r, "/").await;
    for (action, expected) in [
        ("contoso.expenses/reports/approve", true),
        ("CONTOSO.EXPENSES/REPORTS/APPROVE", true),
        ("contoso.expenses/reports/reject", false),
        ("contoso.files/folders/documents/read", true),
        ("contoso.filesystem/read", false),
        ("microsoft.directory/applications/credentials/update", true),
        ("microsoft.directory/applications/create", true),
        (
            "microsoft.directory/applications/synchronization/standard/read",
            true,
        ),
        ("microsoft.directory/servicePrincipals/create", false),
        ("microsoft.directory/users/basic/read", true),
        ("microsoft.directory/users/standard/read", true),
        ("microsoft.directory/users/basic/update", false),
    ] {
        assert_eq!(allowed(app, user, action, "/").await, expected, "{action}");
    }
}

async fn exclusions_subtract_within_their_entry_only(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = role(
        app,
        json!([{"allowedResourceActions": ["contoso.docs/*"], "excludedResourceActions": ["contoso.docs/delete"]}]),
    )
    .await;
    assign(app, user, "user", &r, "/").await;
    assert!(allowed(app, user, "contoso.docs/read", "/").await);
    let denied = decide(app, user, "contoso.docs/delete", "/").await;
    assert_eq!(denied.body["allowed"], false);
    let why = &denied.body["reasons"][0];
    assert_eq!(why["kind"], "notGranted");
    assert_eq!(why["why"]["code"], "actionExcluded");
    assert_eq!(why["why"]["excludedPattern"], "contoso.docs/delete");
    // Another role that grants the action still allows it.
    let other = simple_role(app, &["contoso.docs/delete"]).await;
    assign(app, user, "user", &other, "/").await;
    assert!(allowed(app, user, "contoso.docs/delete", "/").await);
}

async fn group_assignments_reach_transitive_members_through_cycles(app: &TestApp) {
    let (outer, middle, inner) = (group(app).await, group(app).await, group(app).await);
    let user = Uuid::new_v4();
    add_member(app, outer, middle, "group").await;
    add_member(app, middle, inner, "group").await;
    add_member(app, inner, outer, "group").await; // a cycle
    add_member(app, inner, user, "user").await;
    let r = simple_role(app, &["contoso.wiki/edit"]).await;
    let a = assign(app, outer, "group", &r, "/").await;
    let d = decide(app, user, "contoso.wiki/edit", "/wiki/page").await;
    assert_eq!(d.body["allowed"], true);
    let grant = &d.body["reasons"][0];
    assert_eq!(grant["kind"], "grant");
    assert_eq!(grant["assignmentId"], a["id"]);
    assert_eq!(grant["roleDefinitionId"], r);
    assert_eq!(grant["matchedPattern"], "contoso.wiki/edit");
    assert_eq!(grant["scope"], "/");
    assert_eq!(grant["via"], json!([inner, middle, outer]));
    // Removing the user from the group revokes it.
    let removed = app
        .delete(&format!("/v1/groups/{inner}/members/{user}"))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    assert!(!allowed(app, user, "contoso.wiki/edit", "/wiki/page").await);
    // Token groups count as memberships too.
    let via_token = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user, "groups": [inner]}, "action": "contoso.wiki/edit", "resource": "/"}),
        )
        .await;
    assert_eq!(via_token.body["allowed"], true);
}

async fn time_windows_start_and_expire_on_their_own(app: &TestApp) {
    let r = simple_role(app, &["contoso.shift/work"]).await;
    let now = chrono::Utc::now();
    let (early, late, past) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let window = |p: Uuid,
                  start: chrono::DateTime<chrono::Utc>,
                  end: chrono::DateTime<chrono::Utc>| {
        json!({"principalId": p, "principalType": "user", "roleDefinitionId": r, "directoryScopeId": "/",
               "startDateTime": start.to_rfc3339(), "endDateTime": end.to_rfc3339()})
    };
    let secs = chrono::Duration::seconds;
    for body in [
        window(early, now + secs(60), now + secs(3600)),
        window(late, now - secs(60), now + secs(60)),
        window(past, now - secs(120), now - secs(60)),
    ] {
        let reply = app.post("/v1/roleAssignments", &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    }
    let before = decide(app, early, "contoso.shift/work", "/").await;
    assert_eq!(before.body["allowed"], false);
    assert_eq!(
        before.body["reasons"][0]["why"]["code"],
        "outsideTimeWindow"
    );
    assert!(allowed(app, late, "contoso.shift/work", "/").await);
    assert!(!allowed(app, past, "contoso.shift/work", "/").await);
    app.clock.advance(secs(90));
    // No write happened in between.
    assert!(allowed(app, early, "contoso.shift/work", "/").await);
    assert!(!allowed(app, late, "contoso.shift/work", "/").await);
}

async fn a_disabled_role_grants_nothing(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = simple_role(app, &["contoso.x/do"]).await;
    assign(app, user, "user", &r, "/").await;
    assert!(allowed(app, user, "contoso.x/do", "/").await);
    let disabled = app
        .patch(
            &format!("/v1/roleDefinitions/{r}"),
            &json!({"isEnabled": false}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{disabled:?}");
    let d = decide(app, user, "contoso.x/do", "/").await;
    assert_eq!(d.body["allowed"], false);
    assert_eq!(d.body["reasons"][0]["why"]["code"], "roleDisabled");
    let enabled = app
        .patch(
            &format!("/v1/roleDefinitions/{r}"),
            &json!({"isEnabled": true}),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{enabled:?}");
    assert!(allowed(app, user, "contoso.x/do", "/").await);
}

async fn a_deny_assignment_beats_global_administrator(app: &TestApp) {
    let (user, team) = (Uuid::new_v4(), group(app).await);
    add_member(app, team, user, "user").await;
    assign(app, user, "user", GLOBAL_ADMIN, "/").await;
    let action = "microsoft.directory/applications/credentials/update";
    assert!(allowed(app, user, action, "/applications/a1").await);
    let deny = app
        .post(
            "/v1/denyAssignments",
            &json!({"displayName": "No credentials", "principalId": team, "principalType": "group",
                    "actions": ["microsoft.directory/applications/credentials/*"], "directoryScopeId": "/applications"}),
        )
        .await;
    assert_eq!(deny.status, StatusCode::CREATED);
    let d = decide(app, user, action, "/applications/a1").await;
    assert_eq!(d.body["allowed"], false);
    assert_eq!(d.body["reasons"][0]["kind"], "deny");
    assert_eq!(d.body["reasons"][0]["denyAssignmentId"], deny.body["id"]);
    // Outside the deny's scope, the grant still holds; a wids claim is denied too.
    assert!(allowed(app, user, action, "/").await);
    let wids = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": Uuid::new_v4(), "groups": [team], "wids": [GLOBAL_ADMIN]},
                    "action": action, "resource": "/applications/a1"}),
        )
        .await;
    assert_eq!(wids.body["allowed"], false);
    // Default is deny.
    let nobody = decide(app, Uuid::new_v4(), action, "/").await;
    assert_eq!(nobody.body["reasons"][0]["kind"], "noAssignments");
}

async fn tenants_never_share_decisions(app: &TestApp) {
    let (user, a, b) = (
        Uuid::new_v4(),
        Uuid::new_v4().to_string(),
        Uuid::new_v4().to_string(),
    );
    let r = app
        .call(
            Method::POST,
            "/v1/roleAssignments",
            Some(&json!({"principalId": user, "principalType": "user", "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"})),
            &[("rolecall-tenant", &a)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = json!({"subject": {"principalId": user}, "action": "microsoft.directory/users/create", "resource": "/"});
    let in_a = app
        .call(
            Method::POST,
            "/v1/check",
            Some(&body),
            &[("rolecall-tenant", &a)],
        )
        .await;
    let in_b = app
        .call(
            Method::POST,
            "/v1/check",
            Some(&body),
            &[("rolecall-tenant", &b)],
        )
        .await;
    assert_eq!(
        (in_a.body["allowed"].clone(), in_b.body["allowed"].clone()),
        (json!(true), json!(false))
    );
}

async fn consistency_tokens_give_read_your_writes_and_time_out_cleanly(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = simple_role(app, &["contoso.y/z"]).await;
    let a = assign(app, user, "user", &r, "/").await;
    let revision = a["revision"].as_str().unwrap();
    let at_least = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "contoso.y/z", "resource": "/",
                    "consistency": {"atLeast": revision}}),
        )
        .await;
    expect(&at_least, 200, "POST", "/v1/check");
    assert_eq!(at_least.body["allowed"], true);
    assert!(
        at_least.body["revision"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            >= revision.parse::<i64>().unwrap()
    );
    let full = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "contoso.y/z", "resource": "/",
                    "consistency": {"fullyConsistent": true}}),
        )
        .await;
    assert_eq!(full.body["allowed"], true);
    let future = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "contoso.y/z", "resource": "/",
                    "consistency": {"atLeast": "999999999"}}),
        )
        .await;
    expect(&future, 503, "POST", "/v1/check");
    assert_eq!(future.problem(), "consistency-timeout");
    let both = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": user}, "action": "contoso.y/z", "resource": "/",
                    "consistency": {"atLeast": "1", "fullyConsistent": true}}),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
}

async fn bad_check_requests_name_each_field(app: &TestApp) {
    let r = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": "nope", "groups": ["x"]}, "action": "contoso.*", "resource": "apps"}),
        )
        .await;
    expect(&r, 400, "POST", "/v1/check");
    assert_eq!(
        r.pointers(),
        [
            "/subject/principalId",
            "/subject/groups/0",
            "/action",
            "/resource"
        ]
    );
    let missing = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": Uuid::new_v4()}}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

/// Each batch result's `allowed`, in order.
fn batch_allowed(batch: &Reply) -> Vec<bool> {
    batch.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["allowed"].as_bool().unwrap())
        .collect()
}

async fn a_batch_answers_in_order_at_one_revision(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = simple_role(app, &["contoso.b/read"]).await;
    assign(app, user, "user", &r, "/docs").await;
    let item = |action: &str, resource: &str| json!({"subject": {"principalId": user}, "action": action, "resource": resource});
    let batch = app
        .post(
            "/v1/check/batch",
            &json!({"checks": [item("contoso.b/read", "/docs/1"), item("contoso.b/write", "/docs/1"), item("contoso.b/read", "/")]}),
        )
        .await;
    expect(&batch, 200, "POST", "/v1/check/batch");
    let allowed = batch_allowed(&batch);
    assert_eq!(allowed, [true, false, false]);
    assert!(batch.body["revision"].is_string());
    // A full batch is decided on every core: still one answer per item, in order.
    let full: Vec<Value> = (0..1000)
        .map(|i| match i % 3 {
            0 => item("contoso.b/read", &format!("/docs/{i}")),
            1 => item("contoso.b/write", "/docs/1"),
            _ => item("contoso.b/read", "/"),
        })
        .collect();
    let full = app.post("/v1/check/batch", &json!({"checks": full})).await;
    expect(&full, 200, "POST", "/v1/check/batch");
    let allowed = batch_allowed(&full);
    assert_eq!(allowed, (0..1000).map(|i| i % 3 == 0).collect::<Vec<_>>());
    // ... and its errors come in item order, each under its item's pointer.
    let mut bad: Vec<Value> = (0..300).map(|_| item("contoso.b/read", "/")).collect();
    bad[250] = item("bad", "/");
    bad[5] = item("contoso.b/read", "no-slash");
    bad[140] = json!({"subject": {"principalId": "nope"}, "action": "bad", "resource": "/"});
    let refused = app.post("/v1/check/batch", &json!({"checks": bad})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.pointers(),
        [
            "/checks/5/resource",
            "/checks/140/subject/principalId",
            "/checks/140/action",
            "/checks/250/action"
        ]
    );
    let too_many: Vec<Value> = (0..1001).map(|_| item("contoso.b/read", "/")).collect();
    let refused = app
        .post("/v1/check/batch", &json!({"checks": too_many}))
        .await;
    expect(&refused, 413, "POST", "/v1/check/batch");
    assert!(refused.body["detail"].as_str().unwrap().contains("1000"));
    let bad = app
        .post(
            "/v1/check/batch",
            &json!({"checks": [item("contoso.b/read", "/"), item("bad", "/")]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["pointer"], "/checks/1/action");
}

async fn effective_permissions_list_where_each_came_from(app: &TestApp) {
    let (user, team) = (Uuid::new_v4(), group(app).await);
    add_member(app, team, user, "user").await;
    let r = role(app, json!([{"allowedResourceActions": ["contoso.p/*"], "excludedResourceActions": ["contoso.p/delete"]}])).await;
    let a = assign(app, team, "group", &r, "/projects").await;
    let got = app
        .get(&format!(
            "/v1/principals/{user}/permissions?scope=/projects/p1"
        ))
        .await;
    expect(&got, 200, "GET", "/v1/principals/{id}/permissions");
    let p = &got.body["permissions"][0];
    assert_eq!(p["assignmentId"], a["id"]);
    assert_eq!(p["allowedResourceActions"], json!(["contoso.p/*"]));
    assert_eq!(p["excludedResourceActions"], json!(["contoso.p/delete"]));
    assert_eq!(p["via"], json!([team]));
    let elsewhere = app
        .get(&format!("/v1/principals/{user}/permissions?scope=/other"))
        .await;
    assert_eq!(elsewhere.body["permissions"], json!([]));
}

async fn who_can_lists_direct_and_group_principals_across_pages(app: &TestApp) {
    let team = group(app).await;
    let members: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for m in &members {
        add_member(app, team, *m, "user").await;
    }
    let direct = Uuid::new_v4();
    let r = simple_role(app, &["contoso.w/read"]).await;
    assign(app, team, "group", &r, "/").await;
    assign(app, direct, "servicePrincipal", &r, "/w").await;
    let mut seen = Vec::new();
    let mut next = Some("/v1/access?resource=/w/1&action=contoso.w/read&limit=2".to_owned());
    while let Some(link) = next {
        let page = app.get(&link).await;
        expect(&page, 200, "GET", "/v1/access");
        assert!(page.body["value"].as_array().unwrap().len() <= 2);
        seen.extend(
            page.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["principalId"].as_str().unwrap().to_owned()),
        );
        next = page.body["nextLink"].as_str().map(str::to_owned);
    }
    let mut expected: Vec<String> = members
        .iter()
        .chain([&direct, &team])
        .map(|u| u.to_string())
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    let missing = app.get("/v1/access?resource=/w/1").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

async fn checks_need_the_admin_key(app: &TestApp) {
    let r = TestApp::reply(
        app.client
            .post(format!("{}/v1/check", app.base))
            .json(&json!({"subject": {"principalId": Uuid::new_v4()}, "action": "a.b/c", "resource": "/"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&r, 401, "POST", "/v1/check");
}

async fn every_decision_is_reported_to_the_hook_with_its_request(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = simple_role(app, &["contoso.hook/read"]).await;
    assign(app, user, "user", &r, "/").await;
    let before = app.decisions.all().len();
    let reply = app
        .call(
            Method::POST,
            "/v1/check",
            Some(&json!({"subject": {"principalId": user}, "action": "contoso.hook/read", "resource": "/books/b1"})),
            &[("x-request-id", "hook-test-1")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = app
        .call(
            Method::POST,
            "/v1/check/batch",
            Some(&json!({"checks": [
                {"subject": {"principalId": user}, "action": "contoso.hook/read", "resource": "/"},
                {"subject": {"principalId": user}, "action": "contoso.hook/write", "resource": "/"},
            ]})),
            &[("x-request-id", "hook-test-2")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let revision = reply.body["revision"]
        .as_str()
        .expect("revision")
        .to_owned();
    let reported: Vec<Decided> = app.decisions.all().split_off(before);
    let expect = |request_id: &str, action: &str, resource: &str, allowed: bool| Decided {
        request_id: request_id.to_owned(),
        caller: "admin-key".to_owned(),
        subject: user,
        action: action.to_owned(),
        resource: resource.to_owned(),
        purpose: Purpose::Check,
        allowed,
        revision: revision.clone(),
    };
    assert_eq!(
        reported,
        vec![
            expect("hook-test-1", "contoso.hook/read", "/books/b1", true),
            expect("hook-test-2", "contoso.hook/read", "/", true),
            expect("hook-test-2", "contoso.hook/write", "/", false),
        ]
    );
}

async fn conditions_read_request_attributes_and_say_why_they_failed(app: &TestApp) {
    let user = Uuid::new_v4();
    let r = role(
        app,
        json!([
            {"allowedResourceActions": ["contoso.docs/docs/read"]},
            {"allowedResourceActions": ["contoso.docs/docs/update"], "condition": "@Resource[status] StringEquals 'draft' AND @Subject[clearance] NumericGreaterThanEquals 2"}
        ]),
    )
    .await;
    assign(app, user, "user", &r, "/docs").await;
    let ask = |resource_attributes: Value, subject_attributes: Value| {
        json!({
            "subject": {"principalId": user},
            "action": "contoso.docs/docs/update",
            "resource": "/docs/d1",
            "explain": true,
            "resourceAttributes": resource_attributes,
            "subjectAttributes": subject_attributes
        })
    };
    let granted = app
        .post(
            "/v1/check",
            &ask(json!({"status": "draft"}), json!({"clearance": 3})),
        )
        .await;
    expect(&granted, 200, "POST", "/v1/check");
    assert_eq!(granted.body["allowed"], true, "{:?}", granted.body);
    for (resource, subject) in [
        (json!({"status": "published"}), json!({"clearance": 3})),
        (json!({"status": "draft"}), json!({"clearance": 1})),
        (json!({}), json!({})),
        (json!({"status": ["draft"]}), json!({"clearance": "3"})),
    ] {
        let refused = app
            .post("/v1/check", &ask(resource.clone(), subject.clone()))
            .await;
        expect(&refused, 200, "POST", "/v1/check");
        assert_eq!(refused.body["allowed"], false, "{resource} {subject}");
        let why = &refused.body["reasons"][0]["why"];
        assert_eq!(why["code"], "conditionNotMet", "{:?}", refused.body);
        assert_eq!(
            why["condition"],
            "@Resource[status] StringEquals 'draft' AND @Subject[clearance] NumericGreaterThanEquals 2"
        );
    }
    // The unconditional entry needs no attributes.
    assert!(allowed(app, user, "contoso.docs/docs/read", "/docs/d1").await);

    // Who can and effective permissions say the grant is conditional.
    let who = app
        .get("/v1/access?resource=/docs/d1&action=contoso.docs/docs/update")
        .await;
    expect(&who, 200, "GET", "/v1/access");
    assert_eq!(who.body["value"][0]["principalId"], json!(user));
    assert_eq!(
        who.body["value"][0]["conditions"],
        json!(["@Resource[status] StringEquals 'draft' AND @Subject[clearance] NumericGreaterThanEquals 2"])
    );
    let effective = app
        .get(&format!("/v1/principals/{user}/permissions?scope=/docs/d1"))
        .await;
    expect(&effective, 200, "GET", "/v1/principals/{id}/permissions");
    let conditions: Vec<&Value> = effective.body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["condition"])
        .collect();
    assert_eq!(conditions.len(), 2);
    assert!(conditions.contains(&&Value::Null));

    // A condition that does not parse is refused when written, with its position.
    let bad = app
        .post(
            "/v1/roleDefinitions",
            &json!({"displayName": "bad", "rolePermissions": [
                {"allowedResourceActions": ["contoso.docs/docs/read"], "condition": "@Resource[status] StringEquals"}
            ]}),
        )
        .await;
    expect(&bad, 400, "POST", "/v1/roleDefinitions");
    assert_eq!(
        bad.body["errors"][0]["pointer"],
        "/rolePermissions/0/condition"
    );
    let detail = bad.body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("at position"), "{detail}");
    // An assignment's condition, too.
    let bad = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": user, "principalType": "user", "roleDefinitionId": r,
                "directoryScopeId": "/other", "condition": "@Resource[x] Resembles 'y'", "conditionVersion": "2.0"}),
        )
        .await;
    expect(&bad, 400, "POST", "/v1/roleAssignments");
    assert_eq!(bad.body["errors"][0]["pointer"], "/condition");
}

on_both_stores!(
    conditions_read_request_attributes_and_say_why_they_failed,
    scope_coverage_is_by_whole_path_segments,
    an_administrative_unit_scope_covers_its_member_resources,
    actions_match_case_insensitively_with_wildcards_and_entra_keywords,
    exclusions_subtract_within_their_entry_only,
    group_assignments_reach_transitive_members_through_cycles,
    time_windows_start_and_expire_on_their_own,
    a_disabled_role_grants_nothing,
    a_deny_assignment_beats_global_administrator,
    tenants_never_share_decisions,
    consistency_tokens_give_read_your_writes_and_time_out_cleanly,
    bad_check_requests_name_each_field,
    a_batch_answers_in_order_at_one_revision,
    effective_permissions_list_where_each_came_from,
    who_can_lists_direct_and_group_principals_across_pages,
    checks_need_the_admin_key,
    every_decision_is_reported_to_the_hook_with_its_request,
);
