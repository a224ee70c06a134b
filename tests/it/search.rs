//! AuthZEN 1.0 search over real HTTP, on both stores: the certification scenario's Search
//! tests (§C.4: the fixture's requirements S1-S6, core and properties, structure,
//! pagination, empty results and errors), and the interop search demo's rules ("view own;
//! view own department; manager views all; edit own; manager edits own department; delete
//! own"), every fixture set up through the admin API, with conditions.

use std::collections::BTreeSet;

use crate::authzen::{assign, certification_fixture, principal, role};
use crate::common::app::{Reply, TestApp};
use crate::common::spec::expect;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn resource(app: &TestApp, kind: &str, id: &str, attributes: Value) {
    let r = app
        .post(
            "/v1/resources",
            &json!({"type": kind, "id": id, "attributes": attributes}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn search(app: &TestApp, what: &str, body: Value) -> Reply {
    let r = app.post(&format!("/access/v1/search/{what}"), &body).await;
    if r.status == StatusCode::OK {
        expect(&r, 200, "POST", &format!("/access/v1/search/{what}"));
    }
    r
}

/// The `id`s (or, for actions, `name`s) of a successful search, checking each result's
/// shape (§C.4.2.1, §C.4.3.1, §C.4.4.1).
fn found(r: &Reply, kind: Option<&str>) -> BTreeSet<String> {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let results = r.body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array in {:?}", r.body));
    results
        .iter()
        .map(|item| match kind {
            Some(kind) => {
                assert_eq!(item["type"], kind, "{item}");
                item["id"].as_str().expect("an id").to_owned()
            }
            None => item["name"].as_str().expect("a name").to_owned(),
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The certification fixture with its two records in the resource directory.
async fn search_fixture(app: &TestApp) {
    certification_fixture(app).await;
    resource(app, "record", "record-1", json!({"status": "active"})).await;
    resource(app, "record", "record-2", json!({"status": "archived"})).await;
}

async fn the_certification_search_requirements_hold(app: &TestApp) {
    search_fixture(app).await;
    let context = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});

    // S1 (§C.4.2.1-3): with context, and with a subject id that must be ignored.
    let s1 = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let users = found(&search(app, "subject", s1.clone()).await, Some("user"));
    assert_eq!(users, set(&["alice", "bob"]));
    let mut with_context = s1.clone();
    with_context["context"] = context.clone();
    assert_eq!(
        found(&search(app, "subject", with_context).await, Some("user")),
        users
    );
    let mut with_id = s1.clone();
    with_id["subject"]["id"] = json!("alice");
    assert_eq!(
        found(&search(app, "subject", with_id).await, Some("user")),
        users
    );
    // Only alice may write record-1 (rule 4: bob may not).
    let write = json!({"subject": {"type": "user"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}});
    assert_eq!(
        found(&search(app, "subject", write).await, Some("user")),
        set(&["alice"])
    );

    // S2 (§C.4.3.1-3): record-2 is archived, which alice may still read.
    let s2 = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}});
    let records = found(&search(app, "resource", s2.clone()).await, Some("record"));
    assert_eq!(records, set(&["record-1", "record-2"]));
    let mut with_context = s2.clone();
    with_context["context"] = context.clone();
    assert_eq!(
        found(&search(app, "resource", with_context).await, Some("record")),
        records
    );
    let mut with_id = s2.clone();
    with_id["resource"]["id"] = json!("record-1");
    assert_eq!(
        found(&search(app, "resource", with_id).await, Some("record")),
        records
    );
    // Alice writes what is not archived; the stored status decides.
    let alice_writes = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"}, "resource": {"type": "record"}});
    assert_eq!(
        found(&search(app, "resource", alice_writes).await, Some("record")),
        set(&["record-1"])
    );

    // S3 (§C.4.4.1-2): `delete` needs `soft`, which an action search cannot send.
    let s3 = json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}});
    let actions = found(&search(app, "action", s3.clone()).await, None);
    assert_eq!(actions, set(&["read", "write"]));
    let mut with_context = s3.clone();
    with_context["context"] = context;
    assert_eq!(
        found(&search(app, "action", with_context).await, None),
        actions
    );

    // S4 (§C.4.2.4): only the admin writes an archived record.
    let s4 = json!({"subject": {"type": "user"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}});
    assert_eq!(
        found(&search(app, "subject", s4).await, Some("user")),
        set(&["bob"])
    );
    // S5 (§C.4.3.4).
    let s5 = json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "action": {"name": "write"}, "resource": {"type": "record"}});
    assert_eq!(
        found(&search(app, "resource", s5).await, Some("record")),
        set(&["record-2"])
    );
    // S6 (§C.4.4.3).
    let s6 = json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}});
    assert_eq!(
        found(&search(app, "action", s6).await, None),
        set(&["read", "write"])
    );
    // Request properties override stored attributes: as if record-1 were archived.
    let as_archived = json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1", "properties": {"status": "archived"}}});
    assert_eq!(
        found(&search(app, "action", as_archived).await, None),
        set(&["read"])
    );

    // Empty results (§C.4.6): unknown ids and types, on every endpoint.
    for (what, body) in [
        (
            "action",
            json!({"subject": {"type": "user", "id": "nonexistent-user"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            "subject",
            json!({"subject": {"type": "spaceship"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            "resource",
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "spaceship"}}),
        ),
        (
            "resource",
            json!({"subject": {"type": "user", "id": "nobody"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
        ),
        (
            "subject",
            json!({"subject": {"type": "user"}, "action": {"name": "fly"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            "action",
            json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "spaceship", "id": "x"}}),
        ),
    ] {
        let r = search(app, what, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{body}");
        assert_eq!(r.body["results"], json!([]), "{body}");
    }

    // Missing fields and sub-fields (§C.4.7) are 400 problems.
    for (what, body) in [
        (
            "subject",
            json!({"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            "resource",
            json!({"action": {"name": "read"}, "resource": {"type": "record"}}),
        ),
        (
            "action",
            json!({"subject": {"type": "user", "id": "alice"}}),
        ),
        (
            "subject",
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
        ),
        (
            "resource",
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
        ),
        (
            "action",
            json!({"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            "subject",
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 0}}),
        ),
        (
            "subject",
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "page": {"token": "not-a-token"}}),
        ),
    ] {
        let r = search(app, what, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{what} {body}: {:?}",
            r.body
        );
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
}

/// Walks every page of `body`'s search with `limit`, returning the results in order and
/// checking the page objects (§C.4.5).
async fn every_page(app: &TestApp, what: &str, body: &Value, limit: u64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut request = body.clone();
    request["page"] = json!({"limit": limit});
    loop {
        let r = search(app, what, request.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let results = r.body["results"].as_array().unwrap().clone();
        assert!(results.len() as u64 <= limit);
        assert_eq!(r.body["page"]["count"], results.len());
        all.extend(results);
        let token = r.body["page"]["next_token"].as_str().expect("a next_token");
        if token.is_empty() {
            return all;
        }
        request["page"] = json!({"limit": limit, "token": token});
    }
}

async fn pages_walk_every_result_once(app: &TestApp) {
    let reader = role(
        app,
        "Reader",
        json!([{"allowedResourceActions": ["record/read", "record/list", "record/share"]}]),
    )
    .await;
    let mut names = Vec::new();
    for i in 0..7 {
        let name = format!("user-{i}");
        let id = principal(app, &name, &[&name], json!({})).await;
        assign(app, id, &reader, "/record").await;
        names.push(name);
        resource(app, "record", &format!("r{i}"), json!({})).await;
    }
    let someone = principal(app, "Somebody", &[], json!({})).await;
    assign(app, someone, &reader, "/").await;

    let subjects = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "r1"}});
    let whole = found(
        &search(app, "subject", subjects.clone()).await,
        Some("user"),
    );
    assert_eq!(whole.len(), 8, "{whole:?}");
    assert!(
        whole.contains(&someone.to_string()),
        "no alias: the object id"
    );
    for limit in [1, 3, 8, 100] {
        let paged = every_page(app, "subject", &subjects, limit).await;
        let ids: BTreeSet<String> = paged
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), paged.len(), "no repeats at limit {limit}");
        assert_eq!(ids, whole, "limit {limit}");
    }

    let resources = json!({"subject": {"type": "user", "id": "user-3"}, "action": {"name": "read"}, "resource": {"type": "record"}});
    let paged = every_page(app, "resource", &resources, 2).await;
    let ids: Vec<&str> = paged.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r0", "r1", "r2", "r3", "r4", "r5", "r6"]);

    let actions = json!({"subject": {"type": "user", "id": "user-3"}, "resource": {"type": "record", "id": "r1"}});
    let paged = every_page(app, "action", &actions, 2).await;
    let names: Vec<&str> = paged.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["list", "read", "share"]);

    // A token continues only its own query.
    let mut first = subjects.clone();
    first["page"] = json!({"limit": 1});
    let r = search(app, "subject", first).await;
    let token = r.body["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    let mut other = json!({"subject": {"type": "user"}, "action": {"name": "list"}, "resource": {"type": "record", "id": "r1"}});
    other["page"] = json!({"token": token});
    let r = search(app, "subject", other).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let mut resource_token = resources.clone();
    resource_token["page"] = json!({"token": token});
    let r = search(app, "resource", resource_token).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
}

/// The interop search demo: users with `role` and `department`, records with `department`
/// and `owner`, one role holding the six rules, granted to everyone through a group.
async fn the_interop_search_rules_hold(app: &TestApp) {
    let people = [
        ("alice", "employee", "sales"),
        ("bob", "manager", "sales"),
        ("carol", "employee", "engineering"),
        ("dave", "manager", "engineering"),
        ("erin", "employee", "support"),
    ];
    let records = [
        ("r1", "alice", "sales"),
        ("r2", "carol", "engineering"),
        ("r3", "bob", "sales"),
        ("r4", "dave", "engineering"),
        ("r5", "carol", "sales"),
        ("r6", "erin", "support"),
    ];
    let rules = role(
        app,
        "Records",
        json!([
            {"allowedResourceActions": ["record/view"], "condition": "$SubjectIsOwner"},
            {"allowedResourceActions": ["record/view"], "condition": "@Resource[department] StringEquals @Subject[department]"},
            {"allowedResourceActions": ["record/view"], "condition": "@Subject[role] StringEquals 'manager'"},
            {"allowedResourceActions": ["record/edit"], "condition": "$SubjectIsOwner"},
            {"allowedResourceActions": ["record/edit"], "condition": "@Subject[role] StringEquals 'manager' AND @Resource[department] StringEquals @Subject[department]"},
            {"allowedResourceActions": ["record/delete"], "condition": "$SubjectIsOwner"}
        ]),
    )
    .await;
    let group = app
        .post("/v1/groups", &json!({"displayName": "Staff"}))
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let mut ids = std::collections::BTreeMap::new();
    for (name, role_name, department) in people {
        let id = principal(
            app,
            name,
            &[name],
            json!({"role": role_name, "department": department}),
        )
        .await;
        ids.insert(name, id);
        let r = app
            .post(
                &format!("/v1/groups/{group_id}/members"),
                &json!({"id": id, "type": "user"}),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let r = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": group_id, "principalType": "group", "roleDefinitionId": rules, "directoryScopeId": "/record"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    for (id, owner, department) in records {
        resource(
            app,
            "record",
            id,
            json!({"owner": owner, "department": department}),
        )
        .await;
    }

    // The rules, written out.
    let may = |user: &str, action: &str, record: &str| {
        let (_, role_name, department) = people.iter().find(|p| p.0 == user).unwrap();
        let (_, owner, record_department) = records.iter().find(|r| r.0 == record).unwrap();
        let own = owner == &user;
        let same = department == record_department;
        let manager = *role_name == "manager";
        match action {
            "view" => own || same || manager,
            "edit" => own || (manager && same),
            "delete" => own,
            _ => false,
        }
    };
    let actions = ["view", "edit", "delete"];
    for action in actions {
        for (record, _, _) in records {
            let expected: BTreeSet<String> = people
                .iter()
                .filter(|p| may(p.0, action, record))
                .map(|p| p.0.to_owned())
                .collect();
            let body = json!({"subject": {"type": "user"}, "action": {"name": action}, "resource": {"type": "record", "id": record}});
            assert_eq!(
                found(&search(app, "subject", body).await, Some("user")),
                expected,
                "who may {action} {record}"
            );
        }
        for (user, _, _) in people {
            let expected: BTreeSet<String> = records
                .iter()
                .filter(|r| may(user, action, r.0))
                .map(|r| r.0.to_owned())
                .collect();
            let body = json!({"subject": {"type": "user", "id": user}, "action": {"name": action}, "resource": {"type": "record"}});
            assert_eq!(
                found(&search(app, "resource", body).await, Some("record")),
                expected,
                "what {user} may {action}"
            );
        }
    }
    for (user, _, _) in people {
        for (record, _, _) in records {
            let expected: BTreeSet<String> = actions
                .iter()
                .filter(|a| may(user, a, record))
                .map(|a| (*a).to_owned())
                .collect();
            let body = json!({"subject": {"type": "user", "id": user}, "resource": {"type": "record", "id": record}});
            assert_eq!(
                found(&search(app, "action", body).await, None),
                expected,
                "what {user} may do to {record}"
            );
            // Each answer agrees with an evaluation of the same question.
            for action in actions {
                let r = app
                    .post(
                        "/access/v1/evaluation",
                        &json!({"subject": {"type": "user", "id": user}, "action": {"name": action}, "resource": {"type": "record", "id": record}}),
                    )
                    .await;
                assert_eq!(
                    r.body["decision"],
                    may(user, action, record),
                    "{user} {action} {record}"
                );
            }
        }
    }

    // Changing a stored attribute changes the answers: erin moves to sales.
    let r = app
        .patch(
            &format!("/v1/principals/{}", ids["erin"]),
            &json!({"attributes": {"role": "employee", "department": "sales"}}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let body = json!({"subject": {"type": "user", "id": "erin"}, "action": {"name": "view"}, "resource": {"type": "record"}});
    assert_eq!(
        found(&search(app, "resource", body).await, Some("record")),
        set(&["r1", "r3", "r5", "r6"])
    );
}

/// A resource stored at its own path is decided and found there, not at the mapping's
/// default path.
async fn a_stored_path_places_the_resource(app: &TestApp) {
    let sales = principal(app, "Sam", &["sam"], json!({})).await;
    let reader = role(
        app,
        "Reader",
        json!([{"allowedResourceActions": ["record/read"]}]),
    )
    .await;
    assign(app, sales, &reader, "/departments/sales").await;
    let r = app
        .post(
            "/v1/resources",
            &json!({"type": "record", "id": "q3", "path": "/departments/sales/q3"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    resource(app, "record", "elsewhere", json!({})).await;
    let evaluate = |id: &str| json!({"subject": {"type": "user", "id": "sam"}, "action": {"name": "read"}, "resource": {"type": "record", "id": id}});
    let r = app.post("/access/v1/evaluation", &evaluate("q3")).await;
    assert_eq!(r.body["decision"], true, "{:?}", r.body);
    let r = app
        .post("/access/v1/evaluation", &evaluate("elsewhere"))
        .await;
    assert_eq!(r.body["decision"], false, "{:?}", r.body);
    let body = json!({"subject": {"type": "user", "id": "sam"}, "action": {"name": "read"}, "resource": {"type": "record"}});
    assert_eq!(
        found(&search(app, "resource", body).await, Some("record")),
        set(&["q3"])
    );
    let body = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "q3"}});
    assert_eq!(
        found(&search(app, "subject", body).await, Some("user")),
        set(&["sam"])
    );
}

async fn discovery_lists_the_search_endpoints(app: &TestApp) {
    let body: Value = app
        .client
        .get(format!("{}/.well-known/authzen-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for what in ["subject", "resource", "action"] {
        assert_eq!(
            body[format!("search_{what}_endpoint")],
            format!("{}/access/v1/search/{what}", app.base)
        );
    }
}

/// Searching answers only what the caller may ask: about oneself always; about others,
/// only where it holds `rolecall/decisions/check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_answer_only_what_the_caller_may_ask() {
    use crate::common::env::env;
    let env = env(|_, _, _| {}).await;
    let app = &env.app;
    search_fixture(app).await;
    let alice = find_alias(app, "alice").await;
    let carol = principal(app, "Carol", &["carol"], json!({})).await;
    let checker = role(
        app,
        "Checker",
        json!([{"allowedResourceActions": ["rolecall/decisions/check"]}]),
    )
    .await;
    assign(app, carol, &checker, "/record/record-1").await;

    let as_alice = env.token(alice);
    // About herself, anything.
    let mine = post(app, &as_alice, "action", json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}})).await;
    assert_eq!(found(&mine, None), set(&["read", "write"]));
    let mine = post(app, &as_alice, "resource", json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}})).await;
    assert_eq!(found(&mine, Some("record")), set(&["record-1", "record-2"]));
    // About others, nothing: a 403, or no results where they are filtered.
    let who = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let r = post(app, &as_alice, "subject", who.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let bobs = json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "read"}, "resource": {"type": "record"}});
    let r = post(app, &as_alice, "resource", bobs.clone()).await;
    assert_eq!(found(&r, Some("record")), set(&[]));
    let r = post(app, &as_alice, "action", json!({"subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // Carol may ask about anyone at record-1 only.
    let as_carol = env.token(carol);
    let r = post(app, &as_carol, "subject", who).await;
    assert_eq!(found(&r, Some("user")), set(&["alice", "bob"]));
    let r = post(app, &as_carol, "subject", json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-2"}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = post(app, &as_carol, "resource", bobs).await;
    assert_eq!(found(&r, Some("record")), set(&["record-1"]));
}

async fn post(app: &TestApp, token: &str, what: &str, body: Value) -> Reply {
    crate::common::env::send_as(
        app,
        token,
        reqwest::Method::POST,
        format!("/access/v1/search/{what}"),
        Some(body),
    )
    .await
}

/// The object id holding `alias`, from an explained evaluation.
async fn find_alias(app: &TestApp, alias: &str) -> uuid::Uuid {
    let r = app
        .post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "user", "id": alias}, "action": {"name": "read"}, "resource": {"type": "record", "id": "x"}, "context": {"rolecall_explain": true}}),
        )
        .await;
    r.body["context"]["principalId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no principal for {alias}: {:?}", r.body))
}

/// A mapping whose action depends on the resource's id: every resource of the type is a
/// candidate, each checked with its own action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_depends_on_the_id_is_mapped_per_resource() {
    use rolecall::model::{Mapping, Mappings};
    let db = crate::common::db::fresh_sqlite().await;
    let mut config =
        rolecall::config::Config::for_tests(db.url.clone(), crate::common::app::ADMIN_KEY);
    config.authzen_mappings = Mappings::new(vec![Mapping::new(
        "doc",
        Some("/docs/{id}"),
        Some("docs.{id}/items/{name}"),
    )
    .unwrap()]);
    let app = TestApp::spawn_with(config).await;
    let reader = role(
        &app,
        "Reader of a and c",
        json!([{"allowedResourceActions": ["docs.a/items/read", "docs.c/items/read"]}]),
    )
    .await;
    let who = principal(&app, "Dana", &["dana"], json!({})).await;
    assign(&app, who, &reader, "/").await;
    for id in ["a", "b", "c"] {
        resource(&app, "doc", id, json!({})).await;
    }
    let body = json!({"subject": {"type": "user", "id": "dana"}, "action": {"name": "read"}, "resource": {"type": "doc"}});
    assert_eq!(
        found(&search(&app, "resource", body).await, Some("doc")),
        set(&["a", "c"])
    );
    let body =
        json!({"subject": {"type": "user", "id": "dana"}, "resource": {"type": "doc", "id": "c"}});
    assert_eq!(
        found(&search(&app, "action", body).await, None),
        set(&["read"])
    );
}

on_both_stores!(
    the_certification_search_requirements_hold,
    pages_walk_every_result_once,
    the_interop_search_rules_hold,
    a_stored_path_places_the_resource,
    discovery_lists_the_search_endpoints,
);
