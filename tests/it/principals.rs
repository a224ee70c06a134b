//! `/v1/principals`, the principal directory, over real HTTP on both stores: CRUD, alias
//! uniqueness, `If-Match`, validation, authorization by Entra's user and service principal
//! actions, and the snapshot's alias index after each write. Every response is checked
//! against `openapi.yaml`.

use reqwest::{Method, StatusCode};
use rolecall::model::PrincipalType;
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::env::{assign, create_role, env_on, send_as};
use crate::common::spec::expect;

const ITEM: &str = "/v1/principals/{id}";
const COLLECTION: &str = "/v1/principals";

async fn create(app: &TestApp, body: Value) -> Reply {
    app.post(COLLECTION, &body).await
}

fn alice() -> Value {
    json!({
        "type": "user",
        "displayName": "Alice Smith",
        "aliases": ["Alice@Contoso.com", "asmith"],
        "attributes": {"department": "R&D", "clearance": 3, "contractor": false, "projects": ["apollo", "gemini"]},
    })
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn principals_are_created_read_listed_patched_and_deleted(app: &TestApp) {
    let created = create(app, alice()).await;
    expect(&created, 201, "POST", COLLECTION);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["type"], "user");
    assert_eq!(
        created.body["aliases"],
        json!(["Alice@Contoso.com", "asmith"])
    );
    assert_eq!(created.body["attributes"]["clearance"], 3);
    let revision = created.body["revision"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("etag"),
        Some(format!("\"{revision}\"").as_str())
    );
    assert_eq!(created.header("rolecall-revision"), Some(revision.as_str()));
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/principals/{id}").as_str())
    );

    let got = app.get(&format!("/v1/principals/{id}")).await;
    expect(&got, 200, "GET", ITEM);
    assert_eq!(got.body["displayName"], "Alice Smith");
    assert_eq!(got.header("etag"), Some(format!("\"{revision}\"").as_str()));

    // A service principal with its own object id; created again as it is, it is found.
    let sp_id = Uuid::new_v4();
    let sp = json!({"id": sp_id.to_string().to_uppercase(), "type": "servicePrincipal", "displayName": "Billing"});
    let made = create(app, sp.clone()).await;
    expect(&made, 201, "POST", COLLECTION);
    assert_eq!(made.body["id"], sp_id.to_string());
    let again = create(app, sp).await;
    expect(&again, 200, "POST", COLLECTION);
    assert_eq!(again.body["revision"], made.body["revision"]);
    let clash = create(
        app,
        json!({"id": sp_id, "type": "servicePrincipal", "displayName": "Other"}),
    )
    .await;
    expect(&clash, 409, "POST", COLLECTION);

    let all = app.get(COLLECTION).await;
    expect(&all, 200, "GET", COLLECTION);
    let mut both = vec![id.clone(), sp_id.to_string()];
    both.sort();
    assert_eq!(ids(&all), both);
    let users = app.get("/v1/principals?type=user").await;
    expect(&users, 200, "GET", COLLECTION);
    assert_eq!(ids(&users), [id.as_str()]);
    let services = app.get("/v1/principals?type=servicePrincipal").await;
    assert_eq!(ids(&services), [sp_id.to_string()]);
    let by_alias = app.get("/v1/principals?alias=ALICE%40contoso.COM").await;
    expect(&by_alias, 200, "GET", COLLECTION);
    assert_eq!(ids(&by_alias), [id.as_str()]);
    let nobody = app.get("/v1/principals?alias=alice").await;
    assert!(ids(&nobody).is_empty());
    let paged = app.get("/v1/principals?limit=1").await;
    expect(&paged, 200, "GET", COLLECTION);
    assert_eq!(ids(&paged), [both[0].clone()]);
    let next = paged.body["nextLink"].as_str().unwrap().to_owned();
    assert_eq!(ids(&app.get(&next).await), [both[1].clone()]);
    let bad_type = app.get("/v1/principals?type=group").await;
    expect(&bad_type, 400, "GET", COLLECTION);
    assert_eq!(bad_type.pointers(), ["?type"]);

    // PATCH replaces what it sets; attributes are replaced whole.
    let patched = app
        .patch(
            &format!("/v1/principals/{id}"),
            &json!({"displayName": "Alice Jones", "aliases": ["ajones"], "attributes": {"department": "Ops"}}),
        )
        .await;
    expect(&patched, 200, "PATCH", ITEM);
    assert_eq!(patched.body["displayName"], "Alice Jones");
    assert_eq!(patched.body["aliases"], json!(["ajones"]));
    assert_eq!(patched.body["attributes"], json!({"department": "Ops"}));
    assert_eq!(
        patched.body["createdDateTime"],
        created.body["createdDateTime"]
    );
    let freed = app.get("/v1/principals?alias=asmith").await;
    assert!(ids(&freed).is_empty());

    // DELETE removes the record only: an assignment naming the object id stays.
    let assigned = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": id, "principalType": "user",
                    "roleDefinitionId": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "directoryScopeId": "/"}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    let deleted = app.delete(&format!("/v1/principals/{id}")).await;
    expect(&deleted, 200, "DELETE", ITEM);
    assert!(deleted.header("rolecall-revision").is_some());
    let gone = app.get(&format!("/v1/principals/{id}")).await;
    expect(&gone, 404, "GET", ITEM);
    assert_eq!(gone.problem(), "not-found");
    let kept = app
        .get(&format!("/v1/roleAssignments?principalId={id}"))
        .await;
    assert_eq!(kept.body["value"].as_array().unwrap().len(), 1);
    let twice = app.delete(&format!("/v1/principals/{id}")).await;
    expect(&twice, 404, "DELETE", ITEM);
}

async fn a_duplicate_alias_in_another_case_is_a_conflict(app: &TestApp) {
    expect(&create(app, alice()).await, 201, "POST", COLLECTION);
    let impostor = create(
        app,
        json!({"type": "servicePrincipal", "displayName": "Impostor", "aliases": ["ALICE@contoso.COM"]}),
    )
    .await;
    expect(&impostor, 409, "POST", COLLECTION);
    assert_eq!(impostor.problem(), "conflict");
    let detail = impostor.body["detail"].as_str().unwrap();
    assert!(detail.contains("`ALICE@contoso.COM`"), "{detail}");

    let bob = create(app, json!({"type": "user", "displayName": "Bob"})).await;
    let bob_id = bob.body["id"].as_str().unwrap();
    let taken = app
        .patch(
            &format!("/v1/principals/{bob_id}"),
            &json!({"aliases": ["bob", "asmith"]}),
        )
        .await;
    expect(&taken, 409, "PATCH", ITEM);
    assert!(taken.body["detail"].as_str().unwrap().contains("`asmith`"));
    let unchanged = app.get(&format!("/v1/principals/{bob_id}")).await;
    assert_eq!(unchanged.body["aliases"], json!([]));

    // Another tenant has its own aliases.
    let other = Uuid::new_v4().to_string();
    let elsewhere = app
        .call(
            Method::POST,
            COLLECTION,
            Some(&alice()),
            &[("Rolecall-Tenant", other.as_str())],
        )
        .await;
    expect(&elsewhere, 201, "POST", COLLECTION);
}

async fn a_stale_if_match_is_refused(app: &TestApp) {
    let created = create(app, alice()).await;
    let id = created.body["id"].as_str().unwrap();
    let path = format!("/v1/principals/{id}");
    let etag = created.header("etag").unwrap().to_owned();
    let first = app
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"displayName": "Alice 2"})),
            &[("If-Match", etag.as_str())],
        )
        .await;
    expect(&first, 200, "PATCH", ITEM);
    let stale = app
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"displayName": "Alice 3"})),
            &[("If-Match", etag.as_str())],
        )
        .await;
    expect(&stale, 412, "PATCH", ITEM);
    assert_eq!(stale.problem(), "precondition-failed");
    let stale_delete = app
        .call(Method::DELETE, &path, None, &[("If-Match", etag.as_str())])
        .await;
    expect(&stale_delete, 412, "DELETE", ITEM);
    let current = first.header("etag").unwrap().to_owned();
    let deleted = app
        .call(
            Method::DELETE,
            &path,
            None,
            &[("If-Match", current.as_str())],
        )
        .await;
    expect(&deleted, 200, "DELETE", ITEM);
}

async fn bad_input_is_located_by_json_pointer(app: &TestApp) {
    let cases = [
        (
            json!({"type": "user", "displayName": "x", "attributes": {"manager": {"id": 1}, "n": null, "deep": [["a"]]}}),
            vec!["/attributes/deep/0", "/attributes/manager", "/attributes/n"],
        ),
        (
            json!({"type": "user", "displayName": "x", "aliases": ["ok", "a".repeat(257)]}),
            vec!["/aliases/1"],
        ),
        (
            json!({"type": "user", "displayName": "x", "aliases": ["7C9E6679-7425-40DE-944B-E07FC1F90AE7"]}),
            vec!["/aliases/0"],
        ),
        (json!({"type": "group", "displayName": "x"}), vec!["/type"]),
        (json!({"type": "robot", "displayName": "x"}), vec!["/type"]),
        (
            json!({"type": "user", "displayName": "x", "aliases": ["Same", "same"]}),
            vec!["/aliases/1"],
        ),
        (
            json!({"type": "user", "displayName": "x", "attributes": "flat"}),
            vec!["/attributes"],
        ),
    ];
    for (body, expected) in cases {
        let reply = create(app, body.clone()).await;
        expect(&reply, 400, "POST", COLLECTION);
        assert_eq!(reply.problem(), "validation", "{body}");
        assert_eq!(reply.pointers(), expected, "{body}");
    }
    let created = create(app, alice()).await;
    let id = created.body["id"].as_str().unwrap();
    let path = format!("/v1/principals/{id}");
    let empty = app.patch(&path, &json!({})).await;
    expect(&empty, 400, "PATCH", ITEM);
    let retype = app.patch(&path, &json!({"type": "servicePrincipal"})).await;
    expect(&retype, 400, "PATCH", ITEM);
    let bad = app
        .patch(&path, &json!({"attributes": {"tags": ["a", 2]}}))
        .await;
    expect(&bad, 400, "PATCH", ITEM);
    assert_eq!(bad.pointers(), ["/attributes/tags/1"]);
    let not_an_id = app.get("/v1/principals/alice").await;
    expect(&not_an_id, 400, "GET", ITEM);
}

async fn after_a_write_the_snapshot_resolves_the_alias(app: &TestApp) {
    let tenant = app.state.config().default_tenant;
    let created = create(app, alice()).await;
    let id = Uuid::parse_str(created.body["id"].as_str().unwrap()).unwrap();
    // Read-your-writes: the answer came after the snapshot reached the write.
    let snapshot = app.state.decider().snapshot();
    assert_eq!(
        snapshot.resolve_principal(tenant, "alice@CONTOSO.com"),
        Some((id, Some("Alice@Contoso.com")))
    );
    let info = snapshot.principal(tenant, &id).unwrap();
    assert_eq!(info.principal_type, PrincipalType::User);
    assert_eq!(info.attributes["department"], "R&D");

    app.patch(
        &format!("/v1/principals/{id}"),
        &json!({"aliases": ["alice.smith"]}),
    )
    .await;
    let snapshot = app.state.decider().snapshot();
    assert_eq!(
        snapshot.resolve_principal(tenant, "alice@contoso.com"),
        None
    );
    assert_eq!(
        snapshot.resolve_principal(tenant, "ALICE.SMITH"),
        Some((id, Some("alice.smith")))
    );
    app.delete(&format!("/v1/principals/{id}")).await;
    let snapshot = app.state.decider().snapshot();
    assert_eq!(snapshot.resolve_principal(tenant, "alice.smith"), None);
    assert!(snapshot.principal(tenant, &id).is_none());
    // An object id always names itself, stored or not.
    assert_eq!(
        snapshot.resolve_principal(tenant, &id.to_string().to_uppercase()),
        Some((id, None))
    );
}

on_both_stores!(
    principals_are_created_read_listed_patched_and_deleted,
    a_duplicate_alias_in_another_case_is_a_conflict,
    a_stale_if_match_is_refused,
    bad_input_is_located_by_json_pointer,
    after_a_write_the_snapshot_resolves_the_alias,
);

/// A token holder needs Entra's action for the principal's kind, at the principal's path
/// (`/` to create or list); one that may act only on the other kind is told nothing.
async fn principal_operations_need_their_entra_actions(backend: Backend) {
    let env = env_on(backend, |_, _, _| {}).await;
    let app = &env.app;
    let user = create(app, alice()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sp = create(
        app,
        json!({"type": "servicePrincipal", "displayName": "Billing"}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let nobody = env.token(Uuid::new_v4());
    let refused = send_as(app, &nobody, Method::GET, COLLECTION, None).await;
    expect(&refused, 403, "GET", COLLECTION);
    assert_eq!(
        refused.body["action"],
        "microsoft.directory/users/standard/read"
    );
    assert_eq!(refused.body["scope"], "/");
    let refused = send_as(
        app,
        &nobody,
        Method::GET,
        format!("/v1/principals/{user}"),
        None,
    )
    .await;
    expect(&refused, 403, "GET", ITEM);
    assert_eq!(refused.body["scope"], format!("/users/{user}"));
    let refused = send_as(app, &nobody, Method::POST, COLLECTION, Some(alice())).await;
    expect(&refused, 403, "POST", COLLECTION);
    assert_eq!(refused.body["action"], "microsoft.directory/users/create");
    let refused = send_as(
        app,
        &nobody,
        Method::PATCH,
        format!("/v1/principals/{user}"),
        Some(json!({"displayName": "x"})),
    )
    .await;
    expect(&refused, 403, "PATCH", ITEM);
    assert_eq!(
        refused.body["action"],
        "microsoft.directory/users/basic/update"
    );
    let refused = send_as(
        app,
        &nobody,
        Method::DELETE,
        format!("/v1/principals/{user}"),
        None,
    )
    .await;
    expect(&refused, 403, "DELETE", ITEM);
    assert_eq!(refused.body["action"], "microsoft.directory/users/delete");

    // A user manager: every user action, nothing on service principals.
    let manager = Uuid::new_v4();
    let role = create_role(
        app,
        "Directory user manager",
        &[
            "microsoft.directory/users/standard/read",
            "microsoft.directory/users/create",
            "microsoft.directory/users/basic/update",
            "microsoft.directory/users/delete",
        ],
    )
    .await;
    assign(app, manager, "user", &role, "/").await;
    let token = env.token(manager);
    let users = send_as(app, &token, Method::GET, "/v1/principals?type=user", None).await;
    expect(&users, 200, "GET", COLLECTION);
    assert_eq!(ids(&users), [user.as_str()]);
    let both = send_as(app, &token, Method::GET, COLLECTION, None).await;
    expect(&both, 403, "GET", COLLECTION);
    assert_eq!(
        both.body["action"],
        "microsoft.directory/servicePrincipals/standard/read"
    );
    let read = send_as(
        app,
        &token,
        Method::GET,
        format!("/v1/principals/{user}"),
        None,
    )
    .await;
    expect(&read, 200, "GET", ITEM);
    let hidden = send_as(
        app,
        &token,
        Method::GET,
        format!("/v1/principals/{sp}"),
        None,
    )
    .await;
    expect(&hidden, 404, "GET", ITEM);
    let hidden = send_as(
        app,
        &token,
        Method::DELETE,
        format!("/v1/principals/{sp}"),
        None,
    )
    .await;
    expect(&hidden, 404, "DELETE", ITEM);
    let made = send_as(
        app,
        &token,
        Method::POST,
        COLLECTION,
        Some(json!({"type": "user", "displayName": "Carol"})),
    )
    .await;
    expect(&made, 201, "POST", COLLECTION);
    let refused = send_as(
        app,
        &token,
        Method::POST,
        COLLECTION,
        Some(json!({"type": "servicePrincipal", "displayName": "Robot"})),
    )
    .await;
    expect(&refused, 403, "POST", COLLECTION);
    assert_eq!(
        refused.body["action"],
        "microsoft.directory/servicePrincipals/create"
    );
    let patched = send_as(
        app,
        &token,
        Method::PATCH,
        format!("/v1/principals/{user}"),
        Some(json!({"aliases": ["alice"]})),
    )
    .await;
    expect(&patched, 200, "PATCH", ITEM);
    let deleted = send_as(
        app,
        &token,
        Method::DELETE,
        format!("/v1/principals/{user}"),
        None,
    )
    .await;
    expect(&deleted, 200, "DELETE", ITEM);

    // Entra's Global Administrator holds every one of them out of the box.
    let global = env.token_with(
        Uuid::new_v4(),
        json!({"wids": [crate::common::env::GLOBAL_ADMIN]}),
    );
    let listed = send_as(app, &global, Method::GET, COLLECTION, None).await;
    expect(&listed, 200, "GET", COLLECTION);
    let removed = send_as(
        app,
        &global,
        Method::DELETE,
        format!("/v1/principals/{sp}"),
        None,
    )
    .await;
    expect(&removed, 200, "DELETE", ITEM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principal_operations_need_their_entra_actions_on_sqlite() {
    principal_operations_need_their_entra_actions(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principal_operations_need_their_entra_actions_on_postgres() {
    principal_operations_need_their_entra_actions(Backend::Postgres).await;
}
