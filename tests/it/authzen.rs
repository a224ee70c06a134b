//! AuthZEN Authorization API 1.0 over real HTTP, on both stores: the certification
//! scenario's Basic and Batch tests (`../shared/reference/authzen/`, from the openid/authzen
//! repository's `certification/authorization-api-1_0-scenario.md`) and the Todo interop
//! scenario's published decisions (`tests/fixtures/authzen/`), each fixture set up through
//! the admin API.

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::spec::expect;
use reqwest::{Method, StatusCode};
use rolecall::config::Config;
use rolecall::model::{Mapping, Mappings};
use serde_json::{json, Value};
use uuid::Uuid;

pub(crate) async fn principal(
    app: &TestApp,
    name: &str,
    aliases: &[&str],
    attributes: Value,
) -> Uuid {
    let r = app
        .post(
            "/v1/principals",
            &json!({"type": "user", "displayName": name, "aliases": aliases, "attributes": attributes}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().parse().unwrap()
}

pub(crate) async fn role(app: &TestApp, name: &str, permissions: Value) -> String {
    let r = app
        .post(
            "/v1/roleDefinitions",
            &json!({"displayName": name, "rolePermissions": permissions}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn assign(app: &TestApp, principal: Uuid, role: &str, scope: &str) {
    let r = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": principal, "principalType": "user", "roleDefinitionId": role, "directoryScopeId": scope}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// The raw response, for byte-for-byte comparisons.
async fn raw(
    app: &TestApp,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app
        .client
        .post(format!("{}{}", app.base, path))
        .bearer_auth(ADMIN_KEY)
        .body(body.to_vec());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

async fn evaluation(app: &TestApp, body: Value) -> Reply {
    app.post("/access/v1/evaluation", &body).await
}

async fn evaluations(app: &TestApp, body: Value) -> Reply {
    app.post("/access/v1/evaluations", &body).await
}

/// The certification fixture (§C.1): alice and bob, records, read/write/delete, and the
/// eight decision rules, under the default mapping (`/record/{id}`, `record/{name}`).
pub(crate) async fn certification_fixture(app: &TestApp) {
    let alice = principal(app, "Alice", &["alice"], json!({})).await;
    let bob = principal(app, "Bob", &["bob"], json!({"role": "admin"})).await;
    let reader = role(
        app,
        "Record reader",
        json!([{"allowedResourceActions": ["record/read"]}]),
    )
    .await;
    let editor = role(
        app,
        "Record editor",
        json!([
            {"allowedResourceActions": ["record/write"], "condition": "NOT (@Resource[status] StringEquals 'archived')"},
            {"allowedResourceActions": ["record/delete"], "condition": "@Action[soft] BoolEquals true"}
        ]),
    )
    .await;
    let archivist = role(
        app,
        "Archivist",
        json!([{"allowedResourceActions": ["record/write"], "condition": "@Subject[role] StringEquals 'admin' AND @Resource[status] StringEquals 'archived'"}]),
    )
    .await;
    for who in [alice, bob] {
        assign(app, who, &reader, "/record").await;
        assign(app, who, &archivist, "/record").await;
    }
    assign(app, alice, &editor, "/record").await;
}

fn decision(r: &Reply) -> bool {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["decision"]
        .as_bool()
        .unwrap_or_else(|| panic!("no boolean decision in {:?}", r.body))
}

async fn the_certification_fixture_decisions_hold(app: &TestApp) {
    certification_fixture(app).await;
    let cases = [
        // Rules 1-4 (§C.2.2.1, §C.2.2.2).
        (
            json!({"type": "user", "id": "alice"}),
            json!({"name": "read"}),
            json!({"type": "record", "id": "record-1"}),
            true,
        ),
        (
            json!({"type": "user", "id": "alice"}),
            json!({"name": "write"}),
            json!({"type": "record", "id": "record-1"}),
            true,
        ),
        (
            json!({"type": "user", "id": "bob"}),
            json!({"name": "read"}),
            json!({"type": "record", "id": "record-1"}),
            true,
        ),
        (
            json!({"type": "user", "id": "bob"}),
            json!({"name": "write"}),
            json!({"type": "record", "id": "record-1"}),
            false,
        ),
        // Rules 5-8 (§C.2.2.4 - §C.2.2.7).
        (
            json!({"type": "user", "id": "alice"}),
            json!({"name": "write"}),
            json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}}),
            false,
        ),
        (
            json!({"type": "user", "id": "bob", "properties": {"role": "admin"}}),
            json!({"name": "write"}),
            json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}}),
            true,
        ),
        (
            json!({"type": "user", "id": "alice"}),
            json!({"name": "delete", "properties": {"soft": true}}),
            json!({"type": "record", "id": "record-1"}),
            true,
        ),
        (
            json!({"type": "user", "id": "alice"}),
            json!({"name": "delete", "properties": {"soft": false}}),
            json!({"type": "record", "id": "record-1"}),
            false,
        ),
    ];
    for (subject, action, resource, expected) in cases {
        let body = json!({"subject": subject, "action": action, "resource": resource});
        // The exact bytes: nothing but the decision (§C.2.3).
        let (status, headers, bytes) = raw(
            app,
            "/access/v1/evaluation",
            body.to_string().as_bytes(),
            Some("application/json"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!("{{\"decision\":{expected}}}"),
            "{body}"
        );
        // With context (§C.2.2.3), the same decision; asked again, the same (§C.2.6).
        let mut with_context = body.clone();
        with_context["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
        for _ in 0..3 {
            assert_eq!(
                decision(&evaluation(app, with_context.clone()).await),
                expected,
                "{with_context}"
            );
        }
    }
    // Additional properties (§C.2.2.8) and unknown fields at every level (§C.2.2.9).
    let extra = json!({
        "subject": {"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}, "x": 1},
        "action": {"name": "read", "properties": {"method": "GET"}, "y": [1]},
        "resource": {"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}},
        "foo": "bar",
        "futureField": {"nested": true}
    });
    assert!(decision(&evaluation(app, extra).await));
    // An id naming no one is a principal without assignments: a deny, not an error.
    let nobody = json!({"subject": {"type": "user", "id": "nonexistent-user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    assert!(!decision(&evaluation(app, nobody).await));
}

async fn malformed_requests_are_400_problems(app: &TestApp) {
    let ok = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let mut bad: Vec<(String, Value)> = Vec::new();
    for key in ["subject", "action", "resource"] {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(key);
        bad.push((format!("missing {key}"), b));
    }
    for (entity, field) in [
        ("subject", "type"),
        ("subject", "id"),
        ("action", "name"),
        ("resource", "type"),
        ("resource", "id"),
    ] {
        let mut b = ok.clone();
        b[entity].as_object_mut().unwrap().remove(field);
        bad.push((format!("{entity} without {field}"), b));
    }
    let mut s = ok.clone();
    s["subject"] = json!("alice");
    bad.push(("subject as a string".into(), s));
    let mut n = ok.clone();
    n["action"]["name"] = json!(123);
    bad.push(("action name as a number".into(), n));
    let mut p = ok.clone();
    p["resource"]["properties"] = json!([1]);
    bad.push(("properties as an array".into(), p));
    for path in ["/access/v1/evaluation", "/access/v1/evaluations"] {
        for (what, body) in &bad {
            let r = app.post(path, body).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path} {what}: {:?}",
                r.body
            );
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
            assert_eq!(r.problem(), "validation", "{what}");
        }
        for (what, bytes, ct) in [
            ("text/plain", ok.to_string(), Some("text/plain")),
            ("no content type", ok.to_string(), None),
            (
                "malformed JSON",
                "{\"subject\": {".to_owned(),
                Some("application/json"),
            ),
            ("empty body", String::new(), Some("application/json")),
            ("a JSON array", "[]".to_owned(), Some("application/json")),
        ] {
            let (status, headers, body) = raw(app, path, bytes.as_bytes(), ct).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {what}");
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{what}"
            );
            let problem: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                problem["type"], "https://rolecall.dev/problems/malformed-body",
                "{what}"
            );
        }
    }
}

async fn request_ids_are_echoed_or_generated(app: &TestApp) {
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let r = app
        .call(
            Method::POST,
            "/access/v1/evaluation",
            Some(&body),
            &[("x-request-id", "authzen-req-42")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-request-id"), Some("authzen-req-42"));
    let r = evaluation(app, body).await;
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

async fn batches_inherit_defaults_whole_and_keep_order(app: &TestApp) {
    certification_fixture(app).await;
    let exact = |r: &Reply, expected: Value| {
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body, json!({"evaluations": expected}));
    };
    // §C.3.2.1: structure only.
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {"resource": {"type": "record", "id": "record-2"}}]
    })).await;
    exact(&r, json!([{"decision": true}, {"decision": true}]));
    // §C.3.2.2: values and order.
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
        "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "write"}}]
    })).await;
    exact(&r, json!([{"decision": true}, {"decision": false}]));
    // §C.3.2.3: resource properties per item.
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
        "evaluations": [
            {"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}}},
            {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}
        ]
    })).await;
    exact(&r, json!([{"decision": true}, {"decision": false}]));
    // §C.3.2.4: subject properties per item.
    let r = evaluations(app, json!({
        "action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
        "evaluations": [
            {"subject": {"type": "user", "id": "alice"}},
            {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}}
        ]
    })).await;
    exact(&r, json!([{"decision": false}, {"decision": true}]));
    // §C.3.2.5: no defaults.
    let r = evaluations(app, json!({"evaluations": [
        {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}},
        {"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}}
    ]})).await;
    exact(&r, json!([{"decision": true}, {"decision": false}]));
    // §C.3.2.6: context inherited or overridden.
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "context": {"time": "2025-06-27T18:03-07:00"},
        "evaluations": [
            {"resource": {"type": "record", "id": "record-1"}},
            {"resource": {"type": "record", "id": "record-2"}, "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}
        ]
    })).await;
    assert_eq!(
        r.body["evaluations"].as_array().map(Vec::len),
        Some(2),
        "{:?}",
        r.body
    );
    // §C.3.2.7: an item's entity replaces the default whole: record-2 carries no `status:
    // active` over from the default resource.
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}},
        "evaluations": [{}, {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]
    })).await;
    exact(&r, json!([{"decision": true}, {"decision": false}]));
    // §C.3.4.1: a failed item is a deny in place, with its reason in `context`.
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "options": {"evaluations_semantic": "execute_all"},
        "evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {}, {"resource": "record-3"}, 7]
    })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let items = r.body["evaluations"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0], json!({"decision": true}));
    for failed in &items[1..] {
        assert_eq!(failed["decision"], false, "{failed}");
        assert_eq!(failed["context"]["error"]["status"], 400, "{failed}");
    }
    // §C.3.4.2 and §C.3.4.3: absent or empty `evaluations` answer like a single evaluation.
    for evaluations_value in [None, Some(json!([]))] {
        let mut body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
        if let Some(v) = evaluations_value {
            body["evaluations"] = v;
        }
        let r = evaluations(app, body).await;
        assert_eq!(r.body, json!({"decision": true}));
    }
    // Short-circuit semantics stop at the first deny / permit.
    let three = json!([
        {"action": {"name": "read"}}, {"action": {"name": "write"}}, {"action": {"name": "read"}}
    ]);
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
        "options": {"evaluations_semantic": "deny_on_first_deny"}, "evaluations": three
    })).await;
    exact(&r, json!([{"decision": true}, {"decision": false}]));
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
        "options": {"evaluations_semantic": "permit_on_first_permit"}, "evaluations": three
    })).await;
    exact(&r, json!([{"decision": true}]));
    let r = evaluations(app, json!({
        "subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
        "options": {"evaluations_semantic": "first_maybe"}, "evaluations": three
    })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn an_explanation_names_the_alias_and_the_failed_condition(app: &TestApp) {
    certification_fixture(app).await;
    let r = evaluation(
        app,
        json!({
            "subject": {"type": "user", "id": "ALICE"},
            "action": {"name": "write"},
            "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
            "context": {"rolecall_explain": true}
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["decision"], false);
    let context = &r.body["context"];
    assert_eq!(context["matchedAlias"], "alice", "{context}");
    assert_eq!(context["resource"], "/record/record-2");
    assert_eq!(context["action"], "record/write");
    let conditions: Vec<&str> = context["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["why"]["code"] == "conditionNotMet")
        .map(|r| r["why"]["condition"].as_str().unwrap())
        .collect();
    assert!(
        conditions.contains(&"NOT (@Resource[status] StringEquals 'archived')"),
        "{context}"
    );
}

async fn discovery_names_the_endpoints(app: &TestApp) {
    let r = app
        .client
        .get(format!("{}/.well-known/authzen-configuration", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let base = app.base.clone();
    assert_eq!(body["policy_decision_point"], base);
    assert_eq!(
        body["access_evaluation_endpoint"],
        format!("{base}/access/v1/evaluation")
    );
    assert_eq!(
        body["access_evaluations_endpoint"],
        format!("{base}/access/v1/evaluations")
    );
    assert!(body.get("capabilities").is_none());
    expect(
        &Reply {
            status: StatusCode::OK,
            headers: Default::default(),
            body,
        },
        200,
        "GET",
        "/.well-known/authzen-configuration",
    );
}

on_both_stores!(
    the_certification_fixture_decisions_hold,
    malformed_requests_are_400_problems,
    request_ids_are_echoed_or_generated,
    batches_inherit_defaults_whole_and_keep_order,
    an_explanation_names_the_alias_and_the_failed_condition,
    discovery_names_the_endpoints,
);

/// The Todo interop scenario (AuthZEN 1.0 "todo-1.0-id"): five users named by opaque PIDs,
/// owners by email, four roles.
mod todo {
    use super::*;

    const USERS: [(&str, &str, &str, &[&str]); 5] = [
        (
            "Rick Sanchez",
            "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "rick@the-citadel.com",
            &["admin", "evil_genius"],
        ),
        (
            "Morty Smith",
            "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "morty@the-citadel.com",
            &["editor"],
        ),
        (
            "Summer Smith",
            "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "summer@the-smiths.com",
            &["editor"],
        ),
        (
            "Beth Smith",
            "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "beth@the-smiths.com",
            &["viewer"],
        ),
        (
            "Jerry Smith",
            "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "jerry@the-smiths.com",
            &["viewer"],
        ),
    ];

    fn config(database_url: String) -> Config {
        let mut config = Config::for_tests(database_url, ADMIN_KEY);
        config.authzen_mappings = Mappings::new(vec![
            Mapping::new("todo", Some("/todos/{id}"), Some("todo.app/{name}")).unwrap(),
            Mapping::new("user", Some("/users/{id}"), Some("todo.app/{name}")).unwrap(),
        ]);
        config
    }

    async fn fixture(app: &TestApp) {
        let viewer = ["todo.app/can_read_user", "todo.app/can_read_todos"];
        let owned = json!({"allowedResourceActions": ["todo.app/can_update_todo", "todo.app/can_delete_todo"], "condition": "$SubjectIsOwner"});
        let editor_entry = json!({"allowedResourceActions": ["todo.app/can_read_user", "todo.app/can_read_todos", "todo.app/can_create_todo"]});
        let roles = [
            ("viewer", role(app, "viewer", json!([{"allowedResourceActions": viewer}])).await),
            ("editor", role(app, "editor", json!([editor_entry, owned])).await),
            ("admin", role(app, "admin", json!([editor_entry, owned, {"allowedResourceActions": ["todo.app/can_delete_todo"]}])).await),
            ("evil_genius", role(app, "evil_genius", json!([editor_entry, owned, {"allowedResourceActions": ["todo.app/can_update_todo"]}])).await),
        ];
        for (name, pid, email, held) in USERS {
            let id = principal(app, name, &[pid, email], json!({"roles": held})).await;
            for r in held {
                let (_, role_id) = roles.iter().find(|(n, _)| n == r).unwrap();
                assert_eq!(held.iter().filter(|h| *h == r).count(), 1);
                assign(app, id, role_id, "/").await;
            }
        }
    }

    async fn every_published_decision_matches(app: &TestApp) {
        fixture(app).await;
        let published: Value = serde_json::from_str(include_str!(
            "../fixtures/authzen/decisions-authorization-api-1_0-02.json"
        ))
        .unwrap();
        let singles = published["evaluation"].as_array().unwrap();
        assert_eq!(singles.len(), 40);
        for case in singles {
            let body = case["request"].to_string();
            let (status, _, bytes) = raw(
                app,
                "/access/v1/evaluation",
                body.as_bytes(),
                Some("application/json"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                format!("{{\"decision\":{}}}", case["expected"]),
                "{body}"
            );
        }
        let batches = published["evaluations"].as_array().unwrap();
        assert_eq!(batches.len(), 3);
        for case in batches {
            let body = case["request"].to_string();
            let (status, _, bytes) = raw(
                app,
                "/access/v1/evaluations",
                body.as_bytes(),
                Some("application/json"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let expected =
                serde_json::to_string(&json!({"evaluations": case["expected"]})).unwrap();
            assert_eq!(String::from_utf8(bytes).unwrap(), expected, "{body}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = crate::common::db::fresh_sqlite().await;
        let app = TestApp::spawn_with(config(db.url.clone())).await;
        every_published_decision_matches(&app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let db = crate::common::db::fresh_postgres().await;
        let app = TestApp::spawn_with(config(db.url.clone())).await;
        every_published_decision_matches(&app).await;
    }
}
