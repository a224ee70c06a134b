//! `/v1/resources`, the resource directory, over real HTTP on both stores: CRUD, paths from
//! the AuthZEN mapping rules, filters and paging, `If-Match`, the bulk upsert (one
//! revision, unchanged items logged nowhere, all or nothing), the change log, authorization
//! at the resource's path, and the snapshot after each write. Every response is checked
//! against `openapi.yaml`.

use reqwest::{Method, StatusCode};
use rolecall::config::Config;
use rolecall::model::{Mapping, Mappings};
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::db;
use crate::common::env::{assign, create_role, env_on, send_as};
use crate::common::spec::expect;

const ITEM: &str = "/v1/resources/{type}/{id}";
const COLLECTION: &str = "/v1/resources";
const BULK: &str = "/v1/resources/bulk";

/// `(type, id)` of each listed resource, in order.
fn keys(reply: &Reply) -> Vec<(String, String)> {
    reply.body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no value in {:?}", reply.body))
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn key(resource_type: &str, id: &str) -> (String, String) {
    (resource_type.to_owned(), id.to_owned())
}

fn revision(reply: &Reply) -> i64 {
    reply.body["revision"]
        .as_str()
        .unwrap_or_else(|| panic!("no revision in {:?}", reply.body))
        .parse()
        .unwrap()
}

/// This tenant's change rows after `since`.
async fn changes_since(app: &TestApp, since: i64) -> Vec<Value> {
    let reply = app.get(&format!("/v1/changes?since={since}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["value"].as_array().unwrap().clone()
}

async fn current_revision(app: &TestApp) -> i64 {
    revision(&app.get("/v1/changes?since=0&limit=1").await)
}

async fn resources_are_created_read_listed_patched_and_deleted(app: &TestApp) {
    let created = app
        .post(
            COLLECTION,
            &json!({"type": "record", "id": "Q3 report/2024", "displayName": "Q3 report",
                    "attributes": {"department": "finance", "owners": ["alice@contoso.com"], "pages": 12}}),
        )
        .await;
    expect(&created, 201, "POST", COLLECTION);
    // No mapping rule: `/{type}/{id}`, the id one percent-encoded segment.
    assert_eq!(created.body["path"], "/record/Q3%20report%2F2024");
    assert_eq!(created.body["displayName"], "Q3 report");
    let rev = created.body["revision"].as_str().unwrap().to_owned();
    assert_eq!(created.header("etag"), Some(format!("\"{rev}\"").as_str()));
    assert_eq!(created.header("rolecall-revision"), Some(rev.as_str()));
    let location = created.header("location").unwrap().to_owned();
    assert_eq!(location, "/v1/resources/record/Q3%20report%2F2024");

    let got = app.get(&location).await;
    expect(&got, 200, "GET", ITEM);
    assert_eq!(got.body["id"], "Q3 report/2024");
    assert_eq!(got.body["attributes"]["pages"], 12);
    assert_eq!(got.header("etag"), Some(format!("\"{rev}\"").as_str()));

    let duplicate = app
        .post(
            COLLECTION,
            &json!({"type": "record", "id": "Q3 report/2024"}),
        )
        .await;
    expect(&duplicate, 409, "POST", COLLECTION);
    assert_eq!(duplicate.problem(), "conflict");

    for (t, id, path) in [
        ("record", "a", "/records/a"),
        ("record", "b", "/records/a/b"),
        ("record", "c", "/recordsX/c"),
        ("todo", "a", "/records/todo-a"),
    ] {
        let made = app
            .post(COLLECTION, &json!({"type": t, "id": id, "path": path}))
            .await;
        expect(&made, 201, "POST", COLLECTION);
        assert_eq!(made.body["path"], path);
        assert!(made.body.get("displayName").is_none());
    }

    let all = app.get(COLLECTION).await;
    expect(&all, 200, "GET", COLLECTION);
    assert_eq!(
        keys(&all),
        [
            key("record", "Q3 report/2024"),
            key("record", "a"),
            key("record", "b"),
            key("record", "c"),
            key("todo", "a"),
        ]
    );
    let todos = app.get("/v1/resources?type=todo").await;
    expect(&todos, 200, "GET", COLLECTION);
    assert_eq!(keys(&todos), [key("todo", "a")]);
    // A prefix covers by whole segments: `/recordsX` is not below `/records`.
    let under = app.get("/v1/resources?pathPrefix=/records").await;
    expect(&under, 200, "GET", COLLECTION);
    assert_eq!(
        keys(&under),
        [key("record", "a"), key("record", "b"), key("todo", "a")]
    );
    let both = app
        .get("/v1/resources?pathPrefix=/records/a&type=record")
        .await;
    assert_eq!(keys(&both), [key("record", "a"), key("record", "b")]);
    let exact = app.get("/v1/resources?pathPrefix=/recordsX/c").await;
    assert_eq!(keys(&exact), [key("record", "c")]);
    let root = app.get("/v1/resources?pathPrefix=/").await;
    assert_eq!(keys(&root).len(), 5);

    // Paging: two at a time, the filters kept in the next link.
    let mut seen = Vec::new();
    let mut next = Some("/v1/resources?limit=2&type=record".to_owned());
    while let Some(link) = next {
        let page = app.get(&link).await;
        expect(&page, 200, "GET", COLLECTION);
        assert!(keys(&page).len() <= 2);
        seen.extend(keys(&page));
        next = page.body["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|(t, _)| t == "record"));
    let bad_cursor = app.get("/v1/resources?cursor=nonsense").await;
    expect(&bad_cursor, 400, "GET", COLLECTION);
    let bad_type = app.get("/v1/resources?type=a%20b").await;
    expect(&bad_type, 400, "GET", COLLECTION);
    assert_eq!(bad_type.pointers(), ["?type"]);
    let bad_prefix = app.get("/v1/resources?pathPrefix=records").await;
    expect(&bad_prefix, 400, "GET", COLLECTION);
    assert_eq!(bad_prefix.pointers(), ["?pathPrefix"]);

    // PATCH replaces what it sets; attributes whole; the path moves it.
    let patched = app
        .patch(
            &location,
            &json!({"path": "/records/q3", "attributes": {"department": "ops"}}),
        )
        .await;
    expect(&patched, 200, "PATCH", ITEM);
    assert_eq!(patched.body["path"], "/records/q3");
    assert_eq!(patched.body["attributes"], json!({"department": "ops"}));
    assert_eq!(patched.body["displayName"], "Q3 report");
    assert_eq!(
        patched.body["createdDateTime"],
        created.body["createdDateTime"]
    );
    let moved = app.get("/v1/resources?pathPrefix=/records/q3").await;
    assert_eq!(keys(&moved), [key("record", "Q3 report/2024")]);
    let empty = app.patch(&location, &json!({})).await;
    expect(&empty, 400, "PATCH", ITEM);
    let retype = app.patch(&location, &json!({"type": "todo"})).await;
    expect(&retype, 400, "PATCH", ITEM);
    let bad = app
        .patch(&location, &json!({"attributes": {"tags": ["a", 2]}}))
        .await;
    expect(&bad, 400, "PATCH", ITEM);
    assert_eq!(bad.pointers(), ["/attributes/tags/1"]);

    let deleted = app.delete(&location).await;
    expect(&deleted, 200, "DELETE", ITEM);
    assert!(deleted.header("rolecall-revision").is_some());
    let gone = app.get(&location).await;
    expect(&gone, 404, "GET", ITEM);
    assert_eq!(gone.problem(), "not-found");
    let twice = app.delete(&location).await;
    expect(&twice, 404, "DELETE", ITEM);
    let absent = app
        .patch("/v1/resources/record/nothing", &json!({"displayName": "x"}))
        .await;
    expect(&absent, 404, "PATCH", ITEM);
    let bad_type = app.get("/v1/resources/a%20b/x").await;
    expect(&bad_type, 400, "GET", ITEM);

    // Another tenant has its own resources.
    let other = Uuid::new_v4().to_string();
    let elsewhere = app
        .call(
            Method::POST,
            COLLECTION,
            Some(&json!({"type": "record", "id": "a"})),
            &[("Rolecall-Tenant", other.as_str())],
        )
        .await;
    expect(&elsewhere, 201, "POST", COLLECTION);
}

async fn bad_input_is_located_by_json_pointer(app: &TestApp) {
    let cases = [
        (json!({"type": "a b", "id": "x"}), vec!["/type"]),
        (json!({"type": "t".repeat(129), "id": "x"}), vec!["/type"]),
        (json!({"type": "t", "id": ""}), vec!["/id"]),
        (json!({"type": "t", "id": "x".repeat(257)}), vec!["/id"]),
        (json!({"type": "t", "id": "a\u{1}"}), vec!["/id"]),
        // The default path of `..` would be a dot segment: a path must be sent.
        (json!({"type": "t", "id": ".."}), vec!["/id"]),
        (
            json!({"type": "t", "id": "x", "path": "/a//b"}),
            vec!["/path"],
        ),
        (
            json!({"type": "t", "id": "x", "displayName": " "}),
            vec!["/displayName"],
        ),
        (
            json!({"type": "t", "id": "x", "attributes": {"n": null, "o": {"a": 1}}}),
            vec!["/attributes/n", "/attributes/o"],
        ),
        (
            json!({"type": "t", "id": "x", "owner": "y"}),
            vec!["/owner"],
        ),
    ];
    for (body, expected) in cases {
        let reply = app.post(COLLECTION, &body).await;
        expect(&reply, 400, "POST", COLLECTION);
        assert_eq!(reply.problem(), "validation", "{body}");
        assert_eq!(reply.pointers(), expected, "{body}");
    }
    let dots = app
        .post(
            COLLECTION,
            &json!({"type": "t", "id": "..", "path": "/t/dots"}),
        )
        .await;
    expect(&dots, 201, "POST", COLLECTION);
    assert_eq!(dots.body["id"], "..");
}

async fn a_stale_if_match_is_refused(app: &TestApp) {
    let created = app
        .post(COLLECTION, &json!({"type": "record", "id": "r1"}))
        .await;
    let path = "/v1/resources/record/r1";
    let etag = created.header("etag").unwrap().to_owned();
    let first = app
        .call(
            Method::PATCH,
            path,
            Some(&json!({"displayName": "One"})),
            &[("If-Match", etag.as_str())],
        )
        .await;
    expect(&first, 200, "PATCH", ITEM);
    let stale = app
        .call(
            Method::PATCH,
            path,
            Some(&json!({"displayName": "Two"})),
            &[("If-Match", etag.as_str())],
        )
        .await;
    expect(&stale, 412, "PATCH", ITEM);
    assert_eq!(stale.problem(), "precondition-failed");
    let stale_delete = app
        .call(Method::DELETE, path, None, &[("If-Match", etag.as_str())])
        .await;
    expect(&stale_delete, 412, "DELETE", ITEM);
    let current = first.header("etag").unwrap().to_owned();
    let deleted = app
        .call(
            Method::DELETE,
            path,
            None,
            &[("If-Match", current.as_str())],
        )
        .await;
    expect(&deleted, 200, "DELETE", ITEM);
}

fn item(id: &str, department: &str) -> Value {
    json!({"type": "record", "id": id, "attributes": {"department": department}})
}

async fn a_bulk_upsert_is_one_revision_and_all_or_nothing(app: &TestApp) {
    let before = current_revision(app).await;
    let first = app
        .post(
            BULK,
            &json!({"value": [item("a", "x"), item("b", "x"), item("c", "x")]}),
        )
        .await;
    expect(&first, 200, "POST", BULK);
    let rev = revision(&first);
    assert_eq!(rev, before + 1, "one revision for the whole upsert");
    assert_eq!(
        first.header("rolecall-revision"),
        Some(rev.to_string().as_str())
    );
    let results: Vec<&str> = first.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["created", "created", "created"]);
    assert_eq!(first.body["value"][1]["path"], "/record/b");
    let logged = changes_since(app, before).await;
    let rev_text = rev.to_string();
    assert_eq!(logged.len(), 3);
    assert!(logged.iter().all(|c| c["entityType"] == "resource"
        && c["op"] == "create"
        && c["revision"] == rev_text.as_str()));
    assert_eq!(logged[0]["entityId"], "record/a");

    // One item changes: one change row; the unchanged ones log nothing.
    let second = app
        .post(
            BULK,
            &json!({"value": [item("a", "x"), item("b", "y"), item("c", "x"), item("d/e", "x")]}),
        )
        .await;
    expect(&second, 200, "POST", BULK);
    let rev2 = revision(&second);
    assert_eq!(rev2, rev + 1);
    let results: Vec<&str> = second.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["unchanged", "updated", "unchanged", "created"]);
    let logged = changes_since(app, rev).await;
    let ops: Vec<(&str, &str)> = logged
        .iter()
        .map(|c| (c["op"].as_str().unwrap(), c["entityId"].as_str().unwrap()))
        .collect();
    assert_eq!(ops, [("update", "record/b"), ("create", "record/d%2Fe")]);
    assert_eq!(logged[0]["before"]["attributes"]["department"], "x");
    assert_eq!(logged[0]["after"]["attributes"]["department"], "y");

    // Nothing changes: nothing is written, and the revision is the items' newest.
    let third = app
        .post(BULK, &json!({"value": [item("a", "x"), item("b", "y")]}))
        .await;
    expect(&third, 200, "POST", BULK);
    assert_eq!(revision(&third), rev2);
    assert_eq!(current_revision(app).await, rev2);

    // A bulk item replaces the whole resource: no attributes means none.
    let replaced = app
        .post(
            BULK,
            &json!({"value": [{"type": "record", "id": "a", "displayName": "A"}]}),
        )
        .await;
    expect(&replaced, 200, "POST", BULK);
    assert_eq!(replaced.body["value"][0]["attributes"], json!({}));
    assert_eq!(replaced.body["value"][0]["displayName"], "A");
    let after_replace = revision(&replaced);

    // Bad items: every one located, nothing written.
    let bad = app
        .post(
            BULK,
            &json!({"value": [
                item("new-1", "x"),
                {"type": "record", "id": ""},
                item("new-2", "x"),
                {"type": "a b", "id": "x", "colour": "red"},
                {"type": "record", "id": "z", "attributes": {"n": null}},
                item("new-1", "y"),
            ]}),
        )
        .await;
    expect(&bad, 400, "POST", BULK);
    assert_eq!(bad.problem(), "validation");
    assert_eq!(
        bad.pointers(),
        [
            "/value/1/id",
            "/value/3/colour",
            "/value/4/attributes/n",
            "/value/5/id"
        ]
    );
    assert_eq!(current_revision(app).await, after_replace);
    let absent = app.get("/v1/resources/record/new-1").await;
    expect(&absent, 404, "GET", ITEM);

    let empty = app.post(BULK, &json!({"value": []})).await;
    expect(&empty, 400, "POST", BULK);
    assert_eq!(empty.pointers(), ["/value"]);
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"type": "t", "id": i.to_string()}))
        .collect();
    let over = app.post(BULK, &json!({ "value": too_many })).await;
    expect(&over, 413, "POST", BULK);
    assert_eq!(over.problem(), "payload-too-large");
    let most: Vec<Value> = (0..1000)
        .map(|i| json!({"type": "t", "id": i.to_string()}))
        .collect();
    let full = app.post(BULK, &json!({ "value": most })).await;
    expect(&full, 200, "POST", BULK);
    assert_eq!(revision(&full), after_replace + 1);
    assert_eq!(
        changes_since(app, after_replace).await.len(),
        100,
        "first page"
    );
    let listed = app.get("/v1/resources?type=t&limit=1000").await;
    assert_eq!(keys(&listed).len(), 1000);
}

async fn after_a_write_the_snapshot_holds_the_resource(app: &TestApp) {
    let tenant = app.state.config().default_tenant;
    let created = app
        .post(
            COLLECTION,
            &json!({"type": "record", "id": "r/1", "attributes": {"owners": ["alice"]}}),
        )
        .await;
    expect(&created, 201, "POST", COLLECTION);
    // Read-your-writes: the answer came after the snapshot reached the write.
    let snapshot = app.state.decider().snapshot();
    let held = snapshot.resource(tenant, "record", "r/1").unwrap();
    assert_eq!(held.path.as_str(), "/record/r%2F1");
    assert_eq!(held.attributes["owners"], json!(["alice"]));

    app.patch(
        "/v1/resources/record/r%2F1",
        &json!({"path": "/records/one"}),
    )
    .await;
    let snapshot = app.state.decider().snapshot();
    assert_eq!(
        snapshot
            .resource(tenant, "record", "r/1")
            .unwrap()
            .path
            .as_str(),
        "/records/one"
    );
    app.post(BULK, &json!({"value": [item("r/2", "x")]})).await;
    let snapshot = app.state.decider().snapshot();
    assert!(snapshot.resource(tenant, "record", "r/2").is_some());
    app.delete("/v1/resources/record/r%2F1").await;
    let snapshot = app.state.decider().snapshot();
    assert!(snapshot.resource(tenant, "record", "r/1").is_none());
    assert!(snapshot.resource(tenant, "record", "r/2").is_some());

    // A snapshot built from the store's dump holds them too.
    let dump = app.state.store().dump().await.unwrap();
    let mine = dump.tenants.iter().find(|t| t.tenant == tenant).unwrap();
    let ids: Vec<&str> = mine.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r/2"]);
}

on_both_stores!(
    resources_are_created_read_listed_patched_and_deleted,
    bad_input_is_located_by_json_pointer,
    a_stale_if_match_is_refused,
    a_bulk_upsert_is_one_revision_and_all_or_nothing,
    after_a_write_the_snapshot_holds_the_resource,
);

/// Without `path`, a resource sits where the `[[authzen.mappings]]` rule for its type puts
/// it (the first rule matching the type, or `*`), else at `/{type}/{id}`.
async fn the_default_path_comes_from_the_mapping_rule_for_the_type(backend: Backend) {
    let db = db::fresh(backend).await;
    let mut config = Config::for_tests(db.url.clone(), ADMIN_KEY);
    config.authzen_mappings = Mappings::new(vec![
        Mapping::new("todo", Some("/todos/{id}"), Some("todo.app/{name}")).unwrap(),
        Mapping::new("*", Some("/objects/{type}/{id}"), None).unwrap(),
    ]);
    let app = TestApp::spawn_with(config).await;
    let todo = app
        .post(COLLECTION, &json!({"type": "todo", "id": "7240d0db"}))
        .await;
    expect(&todo, 201, "POST", COLLECTION);
    assert_eq!(todo.body["path"], "/todos/7240d0db");
    let other = app
        .post(
            COLLECTION,
            &json!({"type": "note", "id": "beth@the-smiths.com"}),
        )
        .await;
    expect(&other, 201, "POST", COLLECTION);
    assert_eq!(other.body["path"], "/objects/note/beth%40the-smiths.com");
    let bulk = app
        .post(
            BULK,
            &json!({"value": [{"type": "todo", "id": "x y"}, {"type": "todo", "id": "z", "path": "/lists/1/z"}]}),
        )
        .await;
    expect(&bulk, 200, "POST", BULK);
    assert_eq!(bulk.body["value"][0]["path"], "/todos/x%20y");
    assert_eq!(bulk.body["value"][1]["path"], "/lists/1/z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_path_comes_from_the_mapping_rule_for_the_type_on_sqlite() {
    the_default_path_comes_from_the_mapping_rule_for_the_type(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_path_comes_from_the_mapping_rule_for_the_type_on_postgres() {
    the_default_path_comes_from_the_mapping_rule_for_the_type(Backend::Postgres).await;
}

/// An administrator holding the resource actions at `/records` manages exactly the
/// resources under it: elsewhere it is refused (403), or told nothing (404) of resources it
/// may not read.
async fn a_scoped_admin_manages_only_resources_under_its_scope(backend: Backend) {
    let env = env_on(backend, |_, _, _| {}).await;
    let app = &env.app;
    let outside = app
        .post(
            COLLECTION,
            &json!({"type": "record", "id": "secret", "path": "/finance/secret"}),
        )
        .await;
    expect(&outside, 201, "POST", COLLECTION);

    let nobody = env.token(Uuid::new_v4());
    let refused = send_as(app, &nobody, Method::GET, COLLECTION, None).await;
    expect(&refused, 403, "GET", COLLECTION);
    assert_eq!(refused.body["action"], "rolecall/resources/standard/read");
    assert_eq!(refused.body["scope"], "/");
    let hidden = send_as(
        app,
        &nobody,
        Method::GET,
        "/v1/resources/record/secret",
        None,
    )
    .await;
    expect(&hidden, 404, "GET", ITEM);

    let admin = Uuid::new_v4();
    let role = create_role(
        app,
        "Records administrator",
        &[
            "rolecall/resources/standard/read",
            "rolecall/resources/create",
            "rolecall/resources/basic/update",
            "rolecall/resources/delete",
        ],
    )
    .await;
    assign(app, admin, "user", &role, "/records").await;
    let token = env.token(admin);

    let made = send_as(
        app,
        &token,
        Method::POST,
        COLLECTION,
        Some(json!({"type": "record", "id": "r1", "path": "/records/r1"})),
    )
    .await;
    expect(&made, 201, "POST", COLLECTION);
    let refused = send_as(
        app,
        &token,
        Method::POST,
        COLLECTION,
        Some(json!({"type": "record", "id": "r2"})),
    )
    .await;
    expect(&refused, 403, "POST", COLLECTION);
    assert_eq!(refused.body["action"], "rolecall/resources/create");
    assert_eq!(refused.body["scope"], "/record/r2");

    let all = send_as(app, &token, Method::GET, COLLECTION, None).await;
    expect(&all, 403, "GET", COLLECTION);
    let mine = send_as(
        app,
        &token,
        Method::GET,
        "/v1/resources?pathPrefix=/records",
        None,
    )
    .await;
    expect(&mine, 200, "GET", COLLECTION);
    assert_eq!(keys(&mine), [key("record", "r1")]);
    for method in [Method::GET, Method::DELETE] {
        let hidden = send_as(
            app,
            &token,
            method.clone(),
            "/v1/resources/record/secret",
            None,
        )
        .await;
        expect(&hidden, 404, method.as_str(), ITEM);
    }
    let hidden = send_as(
        app,
        &token,
        Method::PATCH,
        "/v1/resources/record/secret",
        Some(json!({"displayName": "mine now"})),
    )
    .await;
    expect(&hidden, 404, "PATCH", ITEM);

    // Moving needs update at both paths.
    let moved_out = send_as(
        app,
        &token,
        Method::PATCH,
        "/v1/resources/record/r1",
        Some(json!({"path": "/finance/r1"})),
    )
    .await;
    expect(&moved_out, 403, "PATCH", ITEM);
    assert_eq!(moved_out.body["action"], "rolecall/resources/basic/update");
    assert_eq!(moved_out.body["scope"], "/finance/r1");
    let moved_in = send_as(
        app,
        &token,
        Method::PATCH,
        "/v1/resources/record/r1",
        Some(json!({"path": "/records/archive/r1"})),
    )
    .await;
    expect(&moved_in, 200, "PATCH", ITEM);

    // A bulk upsert is refused whole when one item lies outside.
    let before = current_revision(app).await;
    let refused = send_as(
        app,
        &token,
        Method::POST,
        BULK,
        Some(json!({"value": [
            {"type": "record", "id": "r3", "path": "/records/r3"},
            {"type": "record", "id": "r4", "path": "/finance/r4"},
        ]})),
    )
    .await;
    expect(&refused, 403, "POST", BULK);
    assert_eq!(refused.body["scope"], "/finance/r4");
    let taking = send_as(
        app,
        &token,
        Method::POST,
        BULK,
        Some(json!({"value": [{"type": "record", "id": "secret", "path": "/records/secret"}]})),
    )
    .await;
    expect(&taking, 403, "POST", BULK);
    assert_eq!(current_revision(app).await, before);
    let fine = send_as(
        app,
        &token,
        Method::POST,
        BULK,
        Some(json!({"value": [
            {"type": "record", "id": "r3", "path": "/records/r3"},
            {"type": "record", "id": "r1", "path": "/records/archive/r1", "displayName": "One"},
        ]})),
    )
    .await;
    expect(&fine, 200, "POST", BULK);

    let deleted = send_as(app, &token, Method::DELETE, "/v1/resources/record/r1", None).await;
    expect(&deleted, 200, "DELETE", ITEM);

    // Entra's Global Administrator holds every resource action out of the box.
    let global = env.token_with(
        Uuid::new_v4(),
        json!({"wids": [crate::common::env::GLOBAL_ADMIN]}),
    );
    let listed = send_as(app, &global, Method::GET, COLLECTION, None).await;
    expect(&listed, 200, "GET", COLLECTION);
    assert_eq!(keys(&listed).len(), 2);
    let changes = app.get("/v1/changes?since=0").await;
    let actors: Vec<&str> = changes.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["entityType"] == "resource")
        .map(|c| c["actor"].as_str().unwrap())
        .collect();
    assert!(actors.contains(&admin.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_admin_manages_only_resources_under_its_scope_on_sqlite() {
    a_scoped_admin_manages_only_resources_under_its_scope(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_admin_manages_only_resources_under_its_scope_on_postgres() {
    a_scoped_admin_manages_only_resources_under_its_scope(Backend::Postgres).await;
}
