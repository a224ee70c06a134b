//! The admin API over real HTTP on loopback, against a real PostgreSQL and a real SQLite,
//! each test on its own fresh database. Every response is also checked against
//! `openapi.yaml`.

use crate::common::app::TestApp;
use crate::common::spec::expect;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const APP_DEVELOPER: &str = "cf1c38e5-3621-4004-a7cb-879624dced7c";

fn custom_role(name: &str, actions: &[&str]) -> Value {
    json!({
        "displayName": name,
        "description": "test role",
        "rolePermissions": [{"allowedResourceActions": actions}],
    })
}

async fn create_role(app: &TestApp, name: &str, actions: &[&str]) -> Value {
    let r = app
        .post("/v1/roleDefinitions", &custom_role(name, actions))
        .await;
    expect(&r, 201, "POST", "/v1/roleDefinitions");
    r.body
}

fn assignment(principal: Uuid, role: &str, scope: &str) -> Value {
    json!({
        "principalId": principal,
        "principalType": "servicePrincipal",
        "roleDefinitionId": role,
        "directoryScopeId": scope,
    })
}

async fn readme_tour_clone_trim_assign_and_list(app: &TestApp) {
    // Find a built-in to start from.
    let found = app
        .get("/v1/roleDefinitions?displayName=application%20administrator")
        .await;
    expect(&found, 200, "GET", "/v1/roleDefinitions");
    let names: Vec<&str> = found.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Cloud Application Administrator",
            "Application Administrator"
        ]
    );
    assert_eq!(found.body["value"][1]["id"], APP_ADMIN);
    assert_eq!(found.body["value"][1]["isBuiltIn"], true);

    // Clone it, then trim it to one permission.
    let clone = app
        .post(
            &format!("/v1/roleDefinitions/{APP_ADMIN}/clone"),
            &json!({"displayName": "Application credential manager"}),
        )
        .await;
    expect(&clone, 201, "POST", "/v1/roleDefinitions/{id}/clone");
    assert_eq!(clone.body["isBuiltIn"], false);
    assert_eq!(clone.body["version"], 1);
    let id = clone.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        clone.header("location"),
        Some(format!("/v1/roleDefinitions/{id}").as_str())
    );
    let trimmed = app
        .patch(
            &format!("/v1/roleDefinitions/{id}"),
            &json!({"rolePermissions": [{"allowedResourceActions": [
                "microsoft.directory/applications/credentials/update"
            ]}]}),
        )
        .await;
    expect(&trimmed, 200, "PATCH", "/v1/roleDefinitions/{id}");
    assert_eq!(trimmed.body["version"], 2);
    assert_eq!(
        trimmed.body["rolePermissions"][0]["allowedResourceActions"],
        json!(["microsoft.directory/applications/credentials/update"])
    );

    // Assign it to a service principal on one application, then list the role's assignments.
    let sp = Uuid::new_v4();
    let app_id = Uuid::new_v4();
    let scope = format!("/applications/{app_id}");
    let assigned = app
        .post("/v1/roleAssignments", &assignment(sp, &id, &scope))
        .await;
    expect(&assigned, 201, "POST", "/v1/roleAssignments");
    let listed = app
        .get(&format!("/v1/roleDefinitions/{id}/assignments"))
        .await;
    expect(&listed, 200, "GET", "/v1/roleDefinitions/{id}/assignments");
    let value = listed.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["principalId"], sp.to_string());
    assert_eq!(value[0]["directoryScopeId"], scope);
    assert_eq!(listed.body["nextLink"], Value::Null);
}

async fn built_in_roles_are_listed_filtered_and_read_only(app: &TestApp) {
    let all = app
        .get("/v1/roleDefinitions?isBuiltIn=true&limit=1000")
        .await;
    expect(&all, 200, "GET", "/v1/roleDefinitions");
    let roles = all.body["value"].as_array().unwrap();
    assert!(roles.len() >= 12, "{} built-ins", roles.len());
    assert!(roles.iter().all(|r| r["isBuiltIn"] == true));
    let custom = app.get("/v1/roleDefinitions?isBuiltIn=false").await;
    assert_eq!(custom.body["value"], json!([]));

    let global = app
        .get("/v1/roleDefinitions/62e90394-69f5-4237-9190-012177145e10")
        .await;
    expect(&global, 200, "GET", "/v1/roleDefinitions/{id}");
    assert_eq!(global.body["displayName"], "Global Administrator");
    assert_eq!(
        global.body["templateId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );

    let patch = app
        .patch(
            "/v1/roleDefinitions/62e90394-69f5-4237-9190-012177145e10",
            &json!({"isEnabled": false}),
        )
        .await;
    expect(&patch, 409, "PATCH", "/v1/roleDefinitions/{id}");
    assert_eq!(patch.problem(), "builtin-role-immutable");
    let delete = app
        .delete("/v1/roleDefinitions/62e90394-69f5-4237-9190-012177145e10")
        .await;
    expect(&delete, 409, "DELETE", "/v1/roleDefinitions/{id}");
    assert_eq!(delete.problem(), "builtin-role-immutable");
}

async fn custom_roles_round_trip_with_etags_and_versions(app: &TestApp) {
    let created = create_role(
        app,
        "Expense approver",
        &["contoso.expenses/reports/approve"],
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["templateId"], id);
    assert_eq!(created["isEnabled"], true);
    let got = app.get(&format!("/v1/roleDefinitions/{id}")).await;
    expect(&got, 200, "GET", "/v1/roleDefinitions/{id}");
    let etag = got.header("etag").unwrap().to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", created["revision"].as_str().unwrap())
    );

    // A stale ETag is refused; the current one is accepted.
    let stale = app
        .call(
            Method::PATCH,
            &format!("/v1/roleDefinitions/{id}"),
            Some(&json!({"isEnabled": false})),
            &[("if-match", "\"999999\"")],
        )
        .await;
    expect(&stale, 412, "PATCH", "/v1/roleDefinitions/{id}");
    assert_eq!(stale.problem(), "precondition-failed");
    let ok = app
        .call(
            Method::PATCH,
            &format!("/v1/roleDefinitions/{id}"),
            Some(&json!({"isEnabled": false, "description": "off for now"})),
            &[("if-match", &etag)],
        )
        .await;
    expect(&ok, 200, "PATCH", "/v1/roleDefinitions/{id}");
    assert_eq!(ok.body["isEnabled"], false);
    assert_eq!(ok.body["version"], 2);
    assert_eq!(ok.header("rolecall-revision"), ok.body["revision"].as_str());
    assert_ne!(ok.header("etag"), Some(etag.as_str()));

    let disabled = app.get("/v1/roleDefinitions?isEnabled=false").await;
    assert_eq!(disabled.body["value"].as_array().unwrap().len(), 1);

    // Deleting with the old ETag fails; without If-Match it succeeds.
    let stale = app
        .call(
            Method::DELETE,
            &format!("/v1/roleDefinitions/{id}"),
            None,
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let deleted = app.delete(&format!("/v1/roleDefinitions/{id}")).await;
    expect(&deleted, 200, "DELETE", "/v1/roleDefinitions/{id}");
    assert!(deleted.body["revision"].is_string());
    let gone = app.get(&format!("/v1/roleDefinitions/{id}")).await;
    expect(&gone, 404, "GET", "/v1/roleDefinitions/{id}");
    assert_eq!(gone.problem(), "not-found");
}

async fn display_names_are_unique_per_tenant_ignoring_case(app: &TestApp) {
    create_role(app, "Reviewer", &["contoso.docs/review"]).await;
    let again = app
        .post(
            "/v1/roleDefinitions",
            &custom_role("  reviewer ", &["contoso.docs/read"]),
        )
        .await;
    expect(&again, 409, "POST", "/v1/roleDefinitions");
    assert_eq!(again.problem(), "conflict");
    let builtin_name = app
        .post(
            "/v1/roleDefinitions",
            &custom_role("global administrator", &["contoso.docs/read"]),
        )
        .await;
    assert_eq!(builtin_name.status, StatusCode::CONFLICT);
    // Another tenant may use the name.
    let other = app
        .call(
            Method::POST,
            "/v1/roleDefinitions",
            Some(&custom_role("Reviewer", &["contoso.docs/review"])),
            &[("rolecall-tenant", &Uuid::new_v4().to_string())],
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
}

async fn bad_bodies_get_problem_documents_naming_each_field(app: &TestApp) {
    let r = app
        .post(
            "/v1/roleDefinitions",
            &json!({
                "displayName": "",
                "rolePermissions": [{"allowedResourceActions": ["ok.ns/read", "not an action"], "condition": "x"}],
                "assignableScopes": ["/a/../b"]
            }),
        )
        .await;
    expect(&r, 400, "POST", "/v1/roleDefinitions");
    assert_eq!(r.problem(), "validation");
    let pointers: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        [
            "/displayName",
            "/rolePermissions/0/condition",
            "/rolePermissions/0/allowedResourceActions/1",
            "/assignableScopes/0"
        ]
    );

    // Server-owned fields cannot be set (no mass assignment).
    for field in ["id", "isBuiltIn", "version", "createdDateTime"] {
        let mut body = custom_role("Sneaky", &["contoso.docs/read"]);
        body[field] = json!(true);
        let r = app.post("/v1/roleDefinitions", &body).await;
        expect(&r, 400, "POST", "/v1/roleDefinitions");
        assert_eq!(r.problem(), "validation");
        assert!(
            r.body["detail"].as_str().unwrap().contains(field),
            "{:?}",
            r.body
        );
    }

    // A wrongly typed field names its pointer.
    let r = app
        .post("/v1/groups", &json!({"displayName": "g", "description": 5}))
        .await;
    assert_eq!(r.problem(), "validation");
    assert_eq!(r.body["errors"][0]["pointer"], "/description");

    // Malformed JSON, wrong media type, oversized body.
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(format!("{}/v1/groups", app.base))
            .bearer_auth(crate::common::app::ADMIN_KEY)
            .header("content-type", content_type)
            .body(body)
    };
    let r = TestApp::reply(
        raw("{\"displayName\": ", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&r, 400, "POST", "/v1/groups");
    assert_eq!(r.problem(), "malformed-body");
    let r = TestApp::reply(
        raw("displayName=x", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&r, 415, "POST", "/v1/groups");
    assert_eq!(r.problem(), "unsupported-media-type");
    let huge = json!({"displayName": "x", "description": "y".repeat(1 << 20)});
    let r = app.post("/v1/groups", &huge).await;
    expect(&r, 413, "POST", "/v1/groups");
    assert_eq!(r.problem(), "payload-too-large");
    // Nothing above was stored.
    let groups = app.get("/v1/groups").await;
    assert_eq!(groups.body["value"], json!([]));
}

async fn requests_without_the_admin_key_are_unauthorized(app: &TestApp) {
    let none = TestApp::reply(
        app.client
            .get(format!("{}/v1/roleDefinitions", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&none, 401, "GET", "/v1/roleDefinitions");
    assert_eq!(none.problem(), "unauthorized");
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let wrong = TestApp::reply(
        app.client
            .post(format!("{}/v1/groups", app.base))
            .bearer_auth("test-admin-key-0123456780")
            .json(&json!({"displayName": "g"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    let basic = TestApp::reply(
        app.client
            .get(format!("{}/v1/groups", app.base))
            .basic_auth("admin", Some(crate::common::app::ADMIN_KEY))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/groups").await.body["value"], json!([]));
}

async fn tenants_never_see_each_others_objects(app: &TestApp) {
    let a = Uuid::new_v4().to_string();
    let b = Uuid::new_v4().to_string();
    let in_a = |method, path: &str, body: Option<Value>| {
        let a = a.clone();
        let path = path.to_owned();
        async move {
            app.call(method, &path, body.as_ref(), &[("rolecall-tenant", &a)])
                .await
        }
    };
    let group = in_a(
        Method::POST,
        "/v1/groups",
        Some(json!({"displayName": "A's group"})),
    )
    .await;
    assert_eq!(group.status, StatusCode::CREATED);
    let id = group.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        in_a(Method::GET, &format!("/v1/groups/{id}"), None)
            .await
            .status,
        StatusCode::OK
    );
    let from_b = app
        .call(
            Method::GET,
            &format!("/v1/groups/{id}"),
            None,
            &[("rolecall-tenant", &b)],
        )
        .await;
    assert_eq!(from_b.status, StatusCode::NOT_FOUND);
    let delete_from_b = app
        .call(
            Method::DELETE,
            &format!("/v1/groups/{id}"),
            None,
            &[("rolecall-tenant", &b)],
        )
        .await;
    assert_eq!(delete_from_b.status, StatusCode::NOT_FOUND);
    let list_b = app
        .call(Method::GET, "/v1/groups", None, &[("rolecall-tenant", &b)])
        .await;
    assert_eq!(list_b.body["value"], json!([]));
    let list_default = app.get("/v1/groups").await;
    assert_eq!(list_default.body["value"], json!([]));
    let changes_b = app
        .call(Method::GET, "/v1/changes", None, &[("rolecall-tenant", &b)])
        .await;
    assert_eq!(changes_b.body["value"], json!([]));
    let bad = app
        .call(
            Method::GET,
            "/v1/groups",
            None,
            &[("rolecall-tenant", "acme")],
        )
        .await;
    expect(&bad, 400, "GET", "/v1/groups");
    assert_eq!(bad.problem(), "validation");
}

async fn assignments_are_idempotent_validated_and_filtered(app: &TestApp) {
    let role = create_role(
        app,
        "App reader",
        &["microsoft.directory/applications/basic/read"],
    )
    .await;
    let role_id = role["id"].as_str().unwrap();
    let sp = Uuid::new_v4();
    let scope = format!("/applications/{}", Uuid::new_v4());
    let first = app
        .post("/v1/roleAssignments", &assignment(sp, role_id, &scope))
        .await;
    expect(&first, 201, "POST", "/v1/roleAssignments");
    let again = app
        .post("/v1/roleAssignments", &assignment(sp, role_id, &scope))
        .await;
    expect(&again, 200, "POST", "/v1/roleAssignments");
    assert_eq!(again.body["id"], first.body["id"]);
    let id = first.body["id"].as_str().unwrap();

    let got = app.get(&format!("/v1/roleAssignments/{id}")).await;
    expect(&got, 200, "GET", "/v1/roleAssignments/{id}");
    assert_eq!(got.body["principalType"], "servicePrincipal");

    // A built-in can be assigned too, with a time window.
    let windowed = app
        .post(
            "/v1/roleAssignments",
            &json!({
                "principalId": sp, "principalType": "servicePrincipal",
                "roleDefinitionId": APP_DEVELOPER, "directoryScopeId": "/",
                "startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-02-01T00:00:00Z"
            }),
        )
        .await;
    expect(&windowed, 201, "POST", "/v1/roleAssignments");
    assert_eq!(windowed.body["endDateTime"], "2030-02-01T00:00:00Z");

    let by_principal = app
        .get(&format!("/v1/roleAssignments?principalId={sp}"))
        .await;
    expect(&by_principal, 200, "GET", "/v1/roleAssignments");
    assert_eq!(by_principal.body["value"].as_array().unwrap().len(), 2);
    let by_scope = app
        .get(&format!(
            "/v1/roleAssignments?principalId={sp}&directoryScopeId={scope}"
        ))
        .await;
    assert_eq!(by_scope.body["value"].as_array().unwrap().len(), 1);
    let by_role = app
        .get(&format!(
            "/v1/roleAssignments?roleDefinitionId={APP_DEVELOPER}"
        ))
        .await;
    assert_eq!(by_role.body["value"][0]["id"], windowed.body["id"]);
    let other = app
        .get(&format!(
            "/v1/roleAssignments?principalId={}",
            Uuid::new_v4()
        ))
        .await;
    assert_eq!(other.body["value"], json!([]));
    let typo = app
        .get(&format!("/v1/roleAssignments?principalID={sp}"))
        .await;
    expect(&typo, 400, "GET", "/v1/roleAssignments");

    // Unknown role, unassignable scope, inverted window.
    let unknown = app
        .post(
            "/v1/roleAssignments",
            &assignment(sp, &Uuid::new_v4().to_string(), "/"),
        )
        .await;
    expect(&unknown, 422, "POST", "/v1/roleAssignments");
    assert_eq!(unknown.body["errors"][0]["pointer"], "/roleDefinitionId");
    let narrow = app
        .post(
            "/v1/roleDefinitions",
            &json!({"displayName": "Narrow", "rolePermissions": [{"allowedResourceActions": ["a.b/c"]}],
                    "assignableScopes": ["/applications/ab"]}),
        )
        .await;
    let narrow_id = narrow.body["id"].as_str().unwrap();
    let outside = app
        .post(
            "/v1/roleAssignments",
            &assignment(sp, narrow_id, "/applications/abc"),
        )
        .await;
    expect(&outside, 422, "POST", "/v1/roleAssignments");
    assert_eq!(outside.problem(), "unprocessable");
    assert_eq!(outside.body["errors"][0]["pointer"], "/directoryScopeId");
    let inside = app
        .post(
            "/v1/roleAssignments",
            &assignment(sp, narrow_id, "/applications/ab/credentials/k1"),
        )
        .await;
    assert_eq!(inside.status, StatusCode::CREATED);
    let inverted = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": sp, "principalType": "user", "roleDefinitionId": role_id,
                    "directoryScopeId": "/", "startDateTime": "2030-01-02T00:00:00Z",
                    "endDateTime": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(inverted.status, StatusCode::BAD_REQUEST);
    assert_eq!(inverted.body["errors"][0]["pointer"], "/endDateTime");

    let deleted = app.delete(&format!("/v1/roleAssignments/{id}")).await;
    expect(&deleted, 200, "DELETE", "/v1/roleAssignments/{id}");
    let gone = app.delete(&format!("/v1/roleAssignments/{id}")).await;
    expect(&gone, 404, "DELETE", "/v1/roleAssignments/{id}");
}

/// An Azure ABAC condition.
const CONDITION: &str =
    "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'";

async fn assignments_carry_a_condition_and_its_version(app: &TestApp) {
    let role = create_role(app, "Credential updater", &[UPDATE_CREDENTIALS]).await;
    let role_id = role["id"].as_str().unwrap();
    let sp = Uuid::new_v4();
    let scope = format!("/applications/{}", Uuid::new_v4());
    let since = app.get("/v1/changes").await.body["revision"]
        .as_str()
        .unwrap()
        .to_owned();
    let conditioned = |condition: Value, version: Value| {
        let mut body = assignment(sp, role_id, &scope);
        body["condition"] = condition;
        body["conditionVersion"] = version;
        body
    };

    let created = app
        .post(
            "/v1/roleAssignments",
            &conditioned(CONDITION.into(), "2.0".into()),
        )
        .await;
    expect(&created, 201, "POST", "/v1/roleAssignments");
    assert_eq!(created.body["condition"], CONDITION);
    assert_eq!(created.body["conditionVersion"], "2.0");
    let id = created.body["id"].as_str().unwrap();
    let got = app.get(&format!("/v1/roleAssignments/{id}")).await;
    expect(&got, 200, "GET", "/v1/roleAssignments/{id}");
    assert_eq!(got.body["condition"], CONDITION);
    assert_eq!(got.body["conditionVersion"], "2.0");
    let listed = app
        .get(&format!("/v1/roleAssignments?principalId={sp}"))
        .await;
    expect(&listed, 200, "GET", "/v1/roleAssignments");
    assert_eq!(listed.body["value"][0]["condition"], CONDITION);
    let logged = app.get(&format!("/v1/changes?since={since}")).await;
    assert_eq!(logged.body["value"][0]["after"]["condition"], CONDITION);
    assert_eq!(logged.body["value"][0]["after"]["conditionVersion"], "2.0");

    // The same again is the same assignment; without the condition it is a conflict.
    let again = app
        .post(
            "/v1/roleAssignments",
            &conditioned(CONDITION.into(), "2.0".into()),
        )
        .await;
    expect(&again, 200, "POST", "/v1/roleAssignments");
    assert_eq!(again.body["id"], id);
    let unconditioned = app
        .post("/v1/roleAssignments", &assignment(sp, role_id, &scope))
        .await;
    expect(&unconditioned, 409, "POST", "/v1/roleAssignments");
    assert_eq!(unconditioned.problem(), "conflict");

    // Fail closed: until conditions are evaluated, a conditioned assignment grants nothing.
    assert!(!allowed(app, sp, UPDATE_CREDENTIALS, &scope).await);

    // An unconditional assignment answers both fields as null.
    let other = Uuid::new_v4();
    let plain = app
        .post("/v1/roleAssignments", &assignment(other, role_id, &scope))
        .await;
    expect(&plain, 201, "POST", "/v1/roleAssignments");
    assert_eq!(plain.body.get("condition"), Some(&Value::Null));
    assert_eq!(plain.body.get("conditionVersion"), Some(&Value::Null));
    assert!(allowed(app, other, UPDATE_CREDENTIALS, &scope).await);

    // Refusals, each at its field.
    let refused = [
        (
            conditioned(CONDITION.into(), Value::Null),
            "/conditionVersion",
            "`conditionVersion` must be \"2.0\" when `condition` is given",
        ),
        (
            conditioned(CONDITION.into(), "1.0".into()),
            "/conditionVersion",
            "only version \"2.0\" is supported",
        ),
        (
            conditioned(Value::Null, "2.0".into()),
            "/conditionVersion",
            "only with a `condition`",
        ),
        (
            conditioned("  ".into(), "2.0".into()),
            "/condition",
            "not blank",
        ),
        (
            conditioned(
                format!("{CONDITION}{}", " ".repeat(4096)).into(),
                "2.0".into(),
            ),
            "/condition",
            "at most 4096 bytes",
        ),
        (
            conditioned("@Resource[x:y] StringEquals".into(), "2.0".into()),
            "/condition",
            "`condition` is not valid: at position ",
        ),
    ];
    for (body, pointer, detail) in refused {
        let r = app.post("/v1/roleAssignments", &body).await;
        expect(&r, 400, "POST", "/v1/roleAssignments");
        assert_eq!(r.problem(), "validation");
        assert_eq!(r.body["errors"][0]["pointer"], pointer, "{:?}", r.body);
        let said = r.body["errors"][0]["detail"].as_str().unwrap();
        assert!(said.contains(detail), "{said}");
    }
}

async fn parallel_creates_of_one_assignment_yield_exactly_one(app: &TestApp) {
    let role = create_role(app, "Racer", &["contoso.race/run"]).await;
    let body = assignment(Uuid::new_v4(), role["id"].as_str().unwrap(), "/");
    let replies =
        futures::future::join_all((0..20).map(|_| app.post("/v1/roleAssignments", &body))).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let found = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!((created, found), (1, 19), "{replies:#?}");
    assert!(replies
        .iter()
        .all(|r| r.body["id"] == replies[0].body["id"]));
    let listed = app
        .get(&format!(
            "/v1/roleDefinitions/{}/assignments",
            role["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
}

async fn deleting_a_role_with_assignments_needs_cascade(app: &TestApp) {
    let role = create_role(app, "Doomed", &["contoso.x/y"]).await;
    let id = role["id"].as_str().unwrap();
    let a = app
        .post("/v1/roleAssignments", &assignment(Uuid::new_v4(), id, "/"))
        .await;
    let refused = app.delete(&format!("/v1/roleDefinitions/{id}")).await;
    expect(&refused, 409, "DELETE", "/v1/roleDefinitions/{id}");
    assert_eq!(refused.problem(), "conflict");
    let bad = app
        .delete(&format!("/v1/roleDefinitions/{id}?cascade=yes"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let cascaded = app
        .delete(&format!("/v1/roleDefinitions/{id}?cascade=true"))
        .await;
    expect(&cascaded, 200, "DELETE", "/v1/roleDefinitions/{id}");
    let gone = app
        .get(&format!(
            "/v1/roleAssignments/{}",
            a.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn deny_assignments_round_trip(app: &TestApp) {
    let principal = Uuid::new_v4();
    let created = app
        .post(
            "/v1/denyAssignments",
            &json!({"displayName": "No secrets", "principalId": principal, "principalType": "user",
                    "actions": ["microsoft.directory/applications/credentials/*"],
                    "excludedActions": ["microsoft.directory/applications/credentials/read"],
                    "directoryScopeId": "/applications"}),
        )
        .await;
    expect(&created, 201, "POST", "/v1/denyAssignments");
    let id = created.body["id"].as_str().unwrap();
    let got = app.get(&format!("/v1/denyAssignments/{id}")).await;
    expect(&got, 200, "GET", "/v1/denyAssignments/{id}");
    assert_eq!(
        got.body["excludedActions"],
        json!(["microsoft.directory/applications/credentials/read"])
    );
    let patched = app
        .patch(
            &format!("/v1/denyAssignments/{id}"),
            &json!({"actions": ["a.b/*"]}),
        )
        .await;
    expect(&patched, 200, "PATCH", "/v1/denyAssignments/{id}");
    assert_eq!(patched.body["actions"], json!(["a.b/*"]));
    let empty = app
        .patch(
            &format!("/v1/denyAssignments/{id}"),
            &json!({"actions": []}),
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let listed = app
        .get(&format!("/v1/denyAssignments?principalId={principal}"))
        .await;
    expect(&listed, 200, "GET", "/v1/denyAssignments");
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
    let deleted = app.delete(&format!("/v1/denyAssignments/{id}")).await;
    expect(&deleted, 200, "DELETE", "/v1/denyAssignments/{id}");
    assert_eq!(
        app.get(&format!("/v1/denyAssignments/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn groups_nest_with_cycles_and_delete_cleanly(app: &TestApp) {
    let outer = app
        .post(
            "/v1/groups",
            &json!({"displayName": "Outer", "description": "d"}),
        )
        .await;
    expect(&outer, 201, "POST", "/v1/groups");
    let inner = app
        .post("/v1/groups", &json!({"displayName": "Inner"}))
        .await;
    let (outer_id, inner_id) = (
        outer.body["id"].as_str().unwrap(),
        inner.body["id"].as_str().unwrap(),
    );
    let user = Uuid::new_v4();

    let add = app
        .post(
            &format!("/v1/groups/{outer_id}/members"),
            &json!({"id": inner_id, "type": "group"}),
        )
        .await;
    expect(&add, 201, "POST", "/v1/groups/{id}/members");
    let cycle = app
        .post(
            &format!("/v1/groups/{inner_id}/members"),
            &json!({"id": outer_id, "type": "group"}),
        )
        .await;
    assert_eq!(
        cycle.status,
        StatusCode::CREATED,
        "cycles are allowed: {:?}",
        cycle.body
    );
    let add_user = app
        .post(
            &format!("/v1/groups/{inner_id}/members"),
            &json!({"id": user, "type": "user"}),
        )
        .await;
    assert_eq!(add_user.status, StatusCode::CREATED);
    let again = app
        .post(
            &format!("/v1/groups/{inner_id}/members"),
            &json!({"id": user, "type": "user"}),
        )
        .await;
    expect(&again, 200, "POST", "/v1/groups/{id}/members");
    let missing_group = app
        .post(
            &format!("/v1/groups/{inner_id}/members"),
            &json!({"id": Uuid::new_v4(), "type": "group"}),
        )
        .await;
    expect(&missing_group, 422, "POST", "/v1/groups/{id}/members");
    let bad_type = app
        .post(
            &format!("/v1/groups/{inner_id}/members"),
            &json!({"id": user, "type": "robot"}),
        )
        .await;
    assert_eq!(bad_type.status, StatusCode::BAD_REQUEST);

    let members = app.get(&format!("/v1/groups/{inner_id}/members")).await;
    expect(&members, 200, "GET", "/v1/groups/{id}/members");
    assert_eq!(members.body["value"].as_array().unwrap().len(), 2);

    let renamed = app
        .patch(
            &format!("/v1/groups/{inner_id}"),
            &json!({"displayName": "Inner team"}),
        )
        .await;
    expect(&renamed, 200, "PATCH", "/v1/groups/{id}");
    assert_eq!(renamed.body["displayName"], "Inner team");

    let removed = app
        .delete(&format!("/v1/groups/{inner_id}/members/{user}"))
        .await;
    expect(
        &removed,
        200,
        "DELETE",
        "/v1/groups/{id}/members/{memberId}",
    );
    let removed_again = app
        .delete(&format!("/v1/groups/{inner_id}/members/{user}"))
        .await;
    assert_eq!(removed_again.status, StatusCode::NOT_FOUND);

    // Deleting a group takes its edges and its assignments with it.
    let role = create_role(app, "Group role", &["contoso.x/y"]).await;
    let a = app
        .post(
            "/v1/roleAssignments",
            &json!({"principalId": inner_id, "principalType": "group",
                    "roleDefinitionId": role["id"], "directoryScopeId": "/"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let deleted = app.delete(&format!("/v1/groups/{inner_id}")).await;
    expect(&deleted, 200, "DELETE", "/v1/groups/{id}");
    let outer_members = app.get(&format!("/v1/groups/{outer_id}/members")).await;
    assert_eq!(outer_members.body["value"], json!([]));
    assert_eq!(
        app.get(&format!(
            "/v1/roleAssignments/{}",
            a.body["id"].as_str().unwrap()
        ))
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let gone = app.get(&format!("/v1/groups/{inner_id}")).await;
    expect(&gone, 404, "GET", "/v1/groups/{id}");
    let list = app.get("/v1/groups").await;
    expect(&list, 200, "GET", "/v1/groups");
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
}

async fn administrative_units_hold_resources(app: &TestApp) {
    let unit = app
        .post(
            "/v1/administrativeUnits",
            &json!({"displayName": "Finance apps"}),
        )
        .await;
    expect(&unit, 201, "POST", "/v1/administrativeUnits");
    let id = unit.body["id"].as_str().unwrap();
    let resource = format!("/applications/{}", Uuid::new_v4());
    let added = app
        .post(
            &format!("/v1/administrativeUnits/{id}/members"),
            &json!({"resource": resource}),
        )
        .await;
    expect(&added, 201, "POST", "/v1/administrativeUnits/{id}/members");
    let again = app
        .post(
            &format!("/v1/administrativeUnits/{id}/members"),
            &json!({"resource": resource}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let root = app
        .post(
            &format!("/v1/administrativeUnits/{id}/members"),
            &json!({"resource": "/"}),
        )
        .await;
    assert_eq!(root.status, StatusCode::BAD_REQUEST);
    let listed = app
        .get(&format!("/v1/administrativeUnits/{id}/members"))
        .await;
    expect(&listed, 200, "GET", "/v1/administrativeUnits/{id}/members");
    assert_eq!(listed.body["value"][0]["resource"], resource);
    let got = app.get(&format!("/v1/administrativeUnits/{id}")).await;
    expect(&got, 200, "GET", "/v1/administrativeUnits/{id}");
    let patched = app
        .patch(
            &format!("/v1/administrativeUnits/{id}"),
            &json!({"description": "all finance"}),
        )
        .await;
    expect(&patched, 200, "PATCH", "/v1/administrativeUnits/{id}");
    assert_eq!(patched.body["description"], "all finance");
    let list = app.get("/v1/administrativeUnits").await;
    expect(&list, 200, "GET", "/v1/administrativeUnits");

    // An assignment can be scoped to the unit.
    let scoped = app
        .post(
            "/v1/roleAssignments",
            &assignment(
                Uuid::new_v4(),
                APP_ADMIN,
                &format!("/administrativeUnits/{id}"),
            ),
        )
        .await;
    assert_eq!(scoped.status, StatusCode::CREATED);

    let encoded = resource.replace('/', "%2F");
    let removed = app
        .delete(&format!("/v1/administrativeUnits/{id}/members/{encoded}"))
        .await;
    expect(
        &removed,
        200,
        "DELETE",
        "/v1/administrativeUnits/{id}/members/{memberId}",
    );
    assert_eq!(
        app.get(&format!("/v1/administrativeUnits/{id}/members"))
            .await
            .body["value"],
        json!([])
    );
    let deleted = app.delete(&format!("/v1/administrativeUnits/{id}")).await;
    expect(&deleted, 200, "DELETE", "/v1/administrativeUnits/{id}");
    assert_eq!(
        app.get(&format!("/v1/administrativeUnits/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn every_write_shows_up_in_changes_with_before_and_after(app: &TestApp) {
    let start = app.get("/v1/changes").await;
    expect(&start, 200, "GET", "/v1/changes");
    let since = start.body["revision"].as_str().unwrap().to_owned();

    let created = app
        .post("/v1/groups", &json!({"displayName": "Audited"}))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let patched = app
        .patch(
            &format!("/v1/groups/{id}"),
            &json!({"displayName": "Audited 2"}),
        )
        .await;
    let deleted = app.delete(&format!("/v1/groups/{id}")).await;
    let revisions: Vec<i64> = [&created, &patched, &deleted]
        .iter()
        .map(|r| {
            assert_eq!(r.header("rolecall-revision"), r.body["revision"].as_str());
            r.body["revision"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert!(
        revisions.windows(2).all(|w| w[1] == w[0] + 1),
        "{revisions:?}"
    );

    let changes = app.get(&format!("/v1/changes?since={since}")).await;
    expect(&changes, 200, "GET", "/v1/changes");
    let rows = changes.body["value"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let ops: Vec<&str> = rows.iter().map(|c| c["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["create", "update", "delete"]);
    assert!(rows
        .iter()
        .all(|c| c["entityType"] == "group" && c["entityId"] == id && c["actor"] == "admin-key"));
    assert_eq!(rows[0]["before"], Value::Null);
    assert_eq!(rows[0]["after"]["displayName"], "Audited");
    assert_eq!(rows[1]["before"]["displayName"], "Audited");
    assert_eq!(rows[1]["after"]["displayName"], "Audited 2");
    assert_eq!(rows[2]["before"]["displayName"], "Audited 2");
    assert_eq!(rows[2]["after"], Value::Null);
    assert_eq!(
        changes.body["revision"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap(),
        revisions[2]
    );
    let later = app
        .get(&format!("/v1/changes?since={}", revisions[2]))
        .await;
    assert_eq!(later.body["value"], json!([]));
    let bad = app.get("/v1/changes?since=yesterday").await;
    expect(&bad, 400, "GET", "/v1/changes");
}

async fn pagination_walks_every_page_in_a_stable_order(app: &TestApp) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = app
            .post("/v1/groups", &json!({"displayName": format!("g{i}")}))
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut next = Some("/v1/groups?limit=2".to_owned());
    let mut pages = 0;
    while let Some(link) = next {
        let page = app.get(&link).await;
        expect(&page, 200, "GET", "/v1/groups");
        pages += 1;
        seen.extend(
            page.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["id"].as_str().unwrap().to_owned()),
        );
        next = page.body["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(
                link.starts_with("/v1/groups?") && link.contains("limit=2"),
                "{link}"
            );
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    // Built-ins and custom roles page together.
    let all = app.get("/v1/roleDefinitions?limit=1000").await;
    let total = all.body["value"].as_array().unwrap().len();
    let mut walked = 0;
    let mut next = Some("/v1/roleDefinitions?limit=3".to_owned());
    while let Some(link) = next {
        let page = app.get(&link).await;
        walked += page.body["value"].as_array().unwrap().len();
        next = page.body["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(walked, total);

    for bad in ["0", "1001", "ten", "-1"] {
        let r = app.get(&format!("/v1/groups?limit={bad}")).await;
        expect(&r, 400, "GET", "/v1/groups");
        assert_eq!(r.problem(), "validation");
    }
    let r = app.get("/v1/groups?cursor=%21%21not-a-cursor").await;
    expect(&r, 400, "GET", "/v1/groups");
    assert_eq!(r.body["errors"][0]["pointer"], "?cursor");
}

async fn operations_endpoints_answer(app: &TestApp) {
    let live = TestApp::reply(
        app.client
            .get(format!("{}/livez", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&live, 200, "GET", "/livez");
    let ready = TestApp::reply(
        app.client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&ready, 200, "GET", "/readyz");
    let spec = app
        .client
        .get(format!("{}/openapi.yaml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    let text = spec.text().await.unwrap();
    assert_eq!(
        text,
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
    );
    let request_id = live.header("x-request-id").unwrap();
    assert!(!request_id.is_empty());

    let nowhere = app.get("/v1/nowhere").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.problem(), "not-found");
    let wrong_method = app
        .call(Method::PUT, "/v1/groups", Some(&json!({})), &[])
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.problem(), "method-not-allowed");
    let bad_id = app.get("/v1/groups/not-a-uuid").await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_id.problem(), "validation");
}

on_both_stores!(
    readme_tour_clone_trim_assign_and_list,
    built_in_roles_are_listed_filtered_and_read_only,
    custom_roles_round_trip_with_etags_and_versions,
    display_names_are_unique_per_tenant_ignoring_case,
    bad_bodies_get_problem_documents_naming_each_field,
    requests_without_the_admin_key_are_unauthorized,
    tenants_never_see_each_others_objects,
    assignments_are_idempotent_validated_and_filtered,
    assignments_carry_a_condition_and_its_version,
    parallel_creates_of_one_assignment_yield_exactly_one,
    deleting_a_role_with_assignments_needs_cascade,
    deny_assignments_round_trip,
    groups_nest_with_cycles_and_delete_cleanly,
    administrative_units_hold_resources,
    every_write_shows_up_in_changes_with_before_and_after,
    pagination_walks_every_page_in_a_stable_order,
    operations_endpoints_answer,
    uuid_segments_compare_in_any_case_through_units_before_and_after_a_restart,
);

/// `POST /v1/check` with the admin key: may `principal` do `action` on `resource`?
async fn allowed(app: &TestApp, principal: Uuid, action: &str, resource: &str) -> bool {
    let r = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": principal}, "action": action, "resource": resource}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["allowed"].as_bool().unwrap()
}

/// Whether `granted` and `denied` may update credentials on each of `resources`.
async fn decisions(
    app: &TestApp,
    granted: Uuid,
    denied: Uuid,
    resources: &[String],
) -> Vec<(bool, bool)> {
    let mut out = Vec::new();
    for resource in resources {
        out.push((
            allowed(app, granted, UPDATE_CREDENTIALS, resource).await,
            allowed(app, denied, UPDATE_CREDENTIALS, resource).await,
        ));
    }
    out
}

const UPDATE_CREDENTIALS: &str = "microsoft.directory/applications/credentials/update";

async fn uuid_segments_compare_in_any_case_through_units_before_and_after_a_restart(app: &TestApp) {
    let unit = app
        .post("/v1/administrativeUnits", &json!({"displayName": "Apps"}))
        .await;
    expect(&unit, 201, "POST", "/v1/administrativeUnits");
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let unit_upper = unit.to_uppercase();
    let members = format!("/v1/administrativeUnits/{unit_upper}/members");
    // One member added in uppercase, one in lowercase.
    let (upper_app, lower_app) = (Uuid::new_v4(), Uuid::new_v4());
    let upper_path = format!("/applications/{}", upper_app.to_string().to_uppercase());
    let added = app.post(&members, &json!({"resource": upper_path})).await;
    expect(&added, 201, "POST", "/v1/administrativeUnits/{id}/members");
    assert_eq!(added.body["resource"], format!("/applications/{upper_app}"));
    let added = app
        .post(
            &members,
            &json!({"resource": format!("/applications/{lower_app}")}),
        )
        .await;
    expect(&added, 201, "POST", "/v1/administrativeUnits/{id}/members");

    // A grant through the unit (named in uppercase), and a deny through it.
    let (granted, denied) = (Uuid::new_v4(), Uuid::new_v4());
    let scoped = app
        .post(
            "/v1/roleAssignments",
            &assignment(
                granted,
                APP_ADMIN,
                &format!("/administrativeUnits/{unit_upper}"),
            ),
        )
        .await;
    expect(&scoped, 201, "POST", "/v1/roleAssignments");
    assert_eq!(
        scoped.body["directoryScopeId"],
        format!("/administrativeUnits/{unit}")
    );
    let everywhere = app
        .post("/v1/roleAssignments", &assignment(denied, APP_ADMIN, "/"))
        .await;
    expect(&everywhere, 201, "POST", "/v1/roleAssignments");
    let deny = app
        .post(
            "/v1/denyAssignments",
            &json!({"displayName": "Not these apps", "principalId": denied,
                    "principalType": "servicePrincipal",
                    "actions": ["microsoft.directory/applications/credentials/*"],
                    "directoryScopeId": format!("/administrativeUnits/{unit_upper}")}),
        )
        .await;
    expect(&deny, 201, "POST", "/v1/denyAssignments");

    // Each member asked about in both spellings, and a resource outside the unit.
    let outside = format!("/applications/{}", Uuid::new_v4());
    let mut resources = Vec::new();
    for id in [upper_app, lower_app] {
        resources.push(format!("/applications/{id}"));
        resources.push(format!(
            "/applications/{}/credentials/k1",
            id.to_string().to_uppercase()
        ));
    }
    let expected: Vec<(bool, bool)> = resources
        .iter()
        .map(|_| (true, false))
        .chain([(false, true)])
        .collect();
    resources.push(outside);
    assert_eq!(
        decisions(app, granted, denied, &resources).await,
        expected,
        "{resources:?}"
    );

    // The store agrees: a filter in either case finds the assignment, and adding a member
    // in the other case finds the one already there.
    let filtered = app
        .get(&format!(
            "/v1/roleAssignments?directoryScopeId=/administrativeUnits/{unit_upper}"
        ))
        .await;
    expect(&filtered, 200, "GET", "/v1/roleAssignments");
    assert_eq!(filtered.body["value"].as_array().unwrap().len(), 1);
    let again = app
        .post(
            &members,
            &json!({"resource": format!("/applications/{upper_app}")}),
        )
        .await;
    expect(&again, 200, "POST", "/v1/administrativeUnits/{id}/members");

    // A restart rebuilds the snapshot from the store: the same decisions.
    let restarted = TestApp::spawn(app.database_url.clone()).await;
    assert_eq!(
        decisions(&restarted, granted, denied, &resources).await,
        expected,
        "{resources:?}"
    );
    let again = restarted
        .post(
            &members,
            &json!({"resource": format!("/applications/{}", lower_app.to_string().to_uppercase())}),
        )
        .await;
    expect(&again, 200, "POST", "/v1/administrativeUnits/{id}/members");
    let listed = restarted.get(&members).await;
    expect(&listed, 200, "GET", "/v1/administrativeUnits/{id}/members");
    let mut listed: Vec<&str> = listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["resource"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut want = vec![
        format!("/applications/{upper_app}"),
        format!("/applications/{lower_app}"),
    ];
    want.sort_unstable();
    assert_eq!(listed, want);
}

/// A database written before scopes were canonical, upgraded: the pre-0003 schema, rows as
/// the old code wrote them (scope key columns and bodies spelled as the client sent them),
/// then the current store migrates it on the app's first start.
mod a_database_written_before_canonical_scopes_is_canonicalized_on_upgrade {
    use std::path::Path;
    use std::sync::Arc;

    use rolecall::model::Catalog;
    use rolecall::store::{Backend, SqlStore};
    use serde_json::{json, Value};
    use sqlx::AnyPool;
    use uuid::Uuid;

    use super::{allowed, expect, APP_ADMIN, UPDATE_CREDENTIALS};
    use crate::common::app::TestApp;
    use crate::common::db::{fresh, TestDb};

    const TENANT: &str = "00000000-0000-0000-0000-000000000001";
    const EARLY: &str = "2024-01-01T00:00:00.000000Z";
    const LATE: &str = "2024-06-01T00:00:00.000000Z";
    const ACTOR: &str = "migration-0003-canonical-uuid-scopes";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        upgrade(fresh(Backend::Sqlite).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        upgrade(fresh(Backend::Postgres).await).await;
    }

    /// Applies the migrations before 0003, as the previous release did.
    async fn old_schema(db: &TestDb) -> SqlStore {
        let catalog = Arc::new(Catalog::builtin().unwrap());
        let store = SqlStore::connect(&db.url, catalog).await.unwrap();
        let dir = match db.backend {
            Backend::Postgres => "migrations/postgres",
            Backend::Sqlite => "migrations/sqlite",
        };
        let mut old = sqlx::migrate::Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .await
            .unwrap();
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version < 3)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        old.run(store.pool()).await.unwrap();
        store
    }

    async fn row(pool: &AnyPool, table: &str, keys: &[(&str, String)], body: Value) {
        let mut columns: Vec<&str> = vec!["tenant_id"];
        columns.extend(keys.iter().map(|(c, _)| *c));
        let n = columns.len();
        let placeholders: Vec<String> = (1..=n + 1).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}, revision, body) VALUES ({}, 7, ${})",
            columns.join(", "),
            placeholders[..n].join(", "),
            n + 1
        );
        let mut query = sqlx::query(&sql).bind(TENANT);
        for (_, value) in keys {
            query = query.bind(value.clone());
        }
        query.bind(body.to_string()).execute(pool).await.unwrap();
    }

    fn assignment(
        id: Uuid,
        principal: Uuid,
        scope: &str,
        created: &str,
    ) -> (Vec<(&'static str, String)>, Value) {
        let keys = vec![
            ("id", id.to_string()),
            ("principal_id", principal.to_string()),
            ("role_definition_id", APP_ADMIN.to_owned()),
            ("directory_scope_id", scope.to_owned()),
        ];
        // As the previous release serialized a `RoleAssignment`.
        let body = json!({
            "id": id, "principalId": principal, "principalType": "servicePrincipal",
            "roleDefinitionId": APP_ADMIN, "directoryScopeId": scope,
            "startDateTime": null, "endDateTime": null, "createdDateTime": created,
        });
        (keys, body)
    }

    fn member(unit: Uuid, resource: &str, created: &str) -> (Vec<(&'static str, String)>, Value) {
        let keys = vec![
            ("unit_id", unit.to_string()),
            ("resource", resource.to_owned()),
        ];
        let body =
            json!({"administrativeUnitId": unit, "resource": resource, "createdDateTime": created});
        (keys, body)
    }

    fn up(id: Uuid) -> String {
        id.to_string().to_uppercase()
    }

    async fn ids_of(app: &TestApp, principal: Uuid) -> Vec<(String, String)> {
        let r = app
            .get(&format!("/v1/roleAssignments?principalId={principal}"))
            .await;
        expect(&r, 200, "GET", "/v1/roleAssignments");
        r.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["directoryScopeId"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn upgrade(db: TestDb) {
        let store = old_schema(&db).await;
        let pool = store.pool();
        sqlx::query("UPDATE revision SET value = 20 WHERE id = 1")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO tenants (tenant_id, created_revision, created_at) VALUES ($1, 1, $2)",
        )
        .bind(TENANT)
        .bind(EARLY)
        .execute(pool)
        .await
        .unwrap();
        let (unit, a, b, c) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        row(
            pool,
            "administrative_units",
            &[("id", unit.to_string())],
            json!({
                "id": unit, "displayName": "Apps", "description": "",
                "createdDateTime": EARLY, "lastModifiedDateTime": EARLY,
            }),
        )
        .await;
        // Members: one resource in two spellings, one only in uppercase (with a non-uuid
        // segment whose case is its own), one already canonical.
        for (resource, created) in [
            (format!("/applications/{}", up(a)), LATE),
            (format!("/applications/{a}"), EARLY),
            (format!("/applications/{}/Keys/K1", up(b)), EARLY),
            (format!("/applications/{c}"), EARLY),
        ] {
            let (keys, body) = member(unit, &resource, created);
            row(pool, "administrative_unit_members", &keys, body).await;
        }
        // Assignments: one at the unit named in uppercase; Q's pair differs in case (the
        // canonical one stays, though younger); R's pair is spelled two other ways (the
        // older stays, rewritten).
        let (p, q, r, s) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let ids: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
        // Only the first letter uppercased: neither the canonical nor the uppercase spelling
        // (a v4 uuid with fewer than two letters among its 30 random digits is not drawn).
        let lower = a.to_string();
        let first_letter = lower
            .find(|c: char| c.is_ascii_alphabetic())
            .expect("a uuid with a letter");
        let mixed = format!(
            "/applications/{}{}{}",
            &lower[..first_letter],
            lower[first_letter..=first_letter].to_ascii_uppercase(),
            &lower[first_letter + 1..]
        );
        for (id, principal, scope, created) in [
            (
                ids[0],
                p,
                format!("/administrativeUnits/{}", up(unit)),
                EARLY,
            ),
            (ids[1], q, format!("/applications/{a}"), LATE),
            (ids[2], q, format!("/applications/{}", up(a)), EARLY),
            (ids[3], r, format!("/applications/{}", up(a)), EARLY),
            (ids[4], r, mixed.clone(), LATE),
            (ids[5], s, "/".to_owned(), EARLY),
        ] {
            let (keys, body) = assignment(id, principal, &scope, created);
            row(pool, "role_assignments", &keys, body).await;
        }
        let deny = Uuid::new_v4();
        row(
            pool,
            "deny_assignments",
            &[("id", deny.to_string()), ("principal_id", s.to_string())],
            json!({
                "id": deny, "displayName": "Not these apps", "description": "",
                "principalId": s, "principalType": "servicePrincipal",
                "actions": ["microsoft.directory/applications/credentials/*"],
                "excludedActions": [],
                "directoryScopeId": format!("/administrativeUnits/{}", up(unit)),
                "createdDateTime": EARLY, "lastModifiedDateTime": EARLY,
            }),
        )
        .await;
        store.close().await;

        // The first start migrates, and the pass runs.
        let app = TestApp::spawn(db.url.clone()).await;
        let members = format!("/v1/administrativeUnits/{unit}/members");
        let listed = app.get(&members).await;
        expect(&listed, 200, "GET", "/v1/administrativeUnits/{id}/members");
        let listed: Vec<(String, String)> = listed.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["resource"].as_str().unwrap().to_owned(),
                    m["createdDateTime"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut want = vec![
            (format!("/applications/{a}"), EARLY),
            (format!("/applications/{b}/Keys/K1"), EARLY),
            (format!("/applications/{c}"), EARLY),
        ];
        want.sort();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(r, t)| (r, t.replace(".000000Z", "Z")))
            .collect();
        let listed: Vec<(String, String)> = listed
            .into_iter()
            .map(|(r, t)| (r, t.replace(".000000Z", "Z")))
            .collect();
        assert_eq!(listed, want);
        let unit_scope = format!("/administrativeUnits/{unit}");
        let app_scope = format!("/applications/{a}");
        assert_eq!(
            ids_of(&app, p).await,
            [(ids[0].to_string(), unit_scope.clone())]
        );
        assert_eq!(
            ids_of(&app, q).await,
            [(ids[1].to_string(), app_scope.clone())]
        );
        assert_eq!(
            ids_of(&app, r).await,
            [(ids[3].to_string(), app_scope.clone())]
        );
        // The key columns were rewritten: a filter by scope and an idempotent add find them.
        let filtered = app
            .get(&format!(
                "/v1/roleAssignments?directoryScopeId={unit_scope}"
            ))
            .await;
        expect(&filtered, 200, "GET", "/v1/roleAssignments");
        assert_eq!(filtered.body["value"][0]["id"], ids[0].to_string());
        let again = app
            .post(
                &members,
                &json!({"resource": format!("/applications/{}", up(a))}),
            )
            .await;
        expect(&again, 200, "POST", "/v1/administrativeUnits/{id}/members");

        // Every rewrite and merge is in the change log, removed rows as they were stored.
        let changes = app.get("/v1/changes?since=20").await;
        expect(&changes, 200, "GET", "/v1/changes");
        let rows = changes.body["value"].as_array().unwrap().clone();
        assert!(rows.iter().all(|c| c["actor"] == ACTOR), "{rows:#?}");
        let mut seen: Vec<(String, String, String)> = rows
            .iter()
            .map(|c| {
                (
                    c["entityType"].as_str().unwrap().to_owned(),
                    c["op"].as_str().unwrap().to_owned(),
                    c["entityId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        let mut expected: Vec<(String, String, String)> = [
            ("roleAssignment", "update", ids[0].to_string()),
            ("roleAssignment", "delete", ids[2].to_string()),
            ("roleAssignment", "update", ids[3].to_string()),
            ("roleAssignment", "delete", ids[4].to_string()),
            (
                "administrativeUnitMember",
                "delete",
                format!("{unit}/applications/{}", up(a)),
            ),
            (
                "administrativeUnitMember",
                "delete",
                format!("{unit}/applications/{a}"),
            ),
            (
                "administrativeUnitMember",
                "create",
                format!("{unit}/applications/{a}"),
            ),
            (
                "administrativeUnitMember",
                "delete",
                format!("{unit}/applications/{}/Keys/K1", up(b)),
            ),
            (
                "administrativeUnitMember",
                "create",
                format!("{unit}/applications/{b}/Keys/K1"),
            ),
        ]
        .into_iter()
        .map(|(t, o, i)| (t.to_owned(), o.to_owned(), i))
        .collect();
        expected.sort();
        assert_eq!(seen, expected);
        let removed = rows
            .iter()
            .find(|c| c["entityId"] == ids[4].to_string())
            .unwrap();
        assert_eq!(removed["before"]["directoryScopeId"], mixed);

        // Decisions through the unit, in either spelling; non-uuid segments keep their case.
        let keys = |id: String| format!("/applications/{id}/Keys/K1");
        let resources = [
            format!("/applications/{}", up(a)),
            format!("/applications/{c}"),
            keys(up(b)),
            keys(b.to_string()).replace("/Keys/", "/keys/"),
            format!("/applications/{}", Uuid::new_v4()),
        ];
        let expected = [
            (true, false),
            (true, false),
            (true, false),
            (false, true),
            (false, true),
        ];
        for target in [&app, &TestApp::spawn(db.url.clone()).await] {
            let mut got = Vec::new();
            for resource in &resources {
                got.push((
                    allowed(target, p, UPDATE_CREDENTIALS, resource).await,
                    allowed(target, s, UPDATE_CREDENTIALS, resource).await,
                ));
            }
            assert_eq!(got, expected, "{resources:?}");
        }
        // The pass ran once: the restart logged nothing more.
        let after = app.get("/v1/changes?since=20").await;
        assert_eq!(after.body["value"].as_array().unwrap().len(), rows.len());
    }
}
