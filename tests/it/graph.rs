//! The Microsoft Graph-compatible paths (`/v1.0/roleManagement/directory/...`), driven with
//! the request bodies and queries of Microsoft Graph's own documentation examples
//! (microsoftgraph/microsoft-graph-docs-contrib, `api-reference/v1.0/api/`:
//! `rbacapplication-post-roledefinitions.md`, `unifiedroledefinition-update.md`,
//! `rbacapplication-post-roleassignments.md`, `rbacapplication-list-roleassignments.md`),
//! asserting the documented response shapes, plus authorization, escalation, the OData
//! subset and its refusals, paging and the `/v1` change log. On both stores.

use crate::common::app::{Reply, TestApp};
use crate::common::env::{
    assign, assignment_body, call_as, create_group, create_role, env_on, self_check, send_as,
    MANAGE_ASSIGNMENTS,
};
use crate::common::spec::{assert_response_matches, spec};
use reqwest::{Method, StatusCode};
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

const DEFINITIONS: &str = "/v1.0/roleManagement/directory/roleDefinitions";
const DEFINITION: &str = "/v1.0/roleManagement/directory/roleDefinitions/{id}";
const ASSIGNMENTS: &str = "/v1.0/roleManagement/directory/roleAssignments";
const ASSIGNMENT: &str = "/v1.0/roleManagement/directory/roleAssignments/{id}";
const ELIGIBILITIES: &str = "/v1.0/roleManagement/directory/roleEligibilitySchedules";
const ELIGIBILITY: &str = "/v1.0/roleManagement/directory/roleEligibilitySchedules/{id}";
const REQUESTS: &str = "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests";
const REQUEST: &str = "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests/{id}";
const CANCEL: &str = "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests/{id}/cancel";

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";

/// Asserts Graph's error envelope: status, `application/json`, the code, and an
/// `innerError` whose `request-id` is the response's `x-request-id`; and, given an
/// operation, that openapi.yaml documents the body.
#[track_caller]
fn graph_error(reply: &Reply, status: u16, code: &str, operation: Option<(&str, &str)>) {
    assert_eq!(reply.status.as_u16(), status, "{reply:#?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:#?}"
    );
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{reply:#?}");
    assert!(error["message"].is_string(), "{reply:#?}");
    assert_eq!(
        error["innerError"]["request-id"].as_str(),
        reply.header("x-request-id"),
        "{reply:#?}"
    );
    let date = error["innerError"]["date"].as_str().unwrap_or_default();
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S").is_ok(),
        "{date}"
    );
    if let Some((method, template)) = operation {
        assert_response_matches(method, template, status, &reply.body);
    }
}

/// The path and query of an absolute `@odata.nextLink` on `app`.
fn local(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("`{link}` is not on {}", app.base))
        .to_owned()
}

/// The `/v1` change log rows of one object, oldest first.
async fn changes_of(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let reply = app.get(&format!("/v1/changes?entityId={id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap().to_owned(),
                c["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn graph_documentation_examples_create_update_get_list_and_delete_a_role_definition(
    app: &TestApp,
) {
    // "Create roleDefinitions", v1.0, verbatim.
    let reply = app
        .post(
            DEFINITIONS,
            &json!({
              "description": "Update basic properties of application registrations",
              "displayName": "Application Registration Support Administrator",
              "rolePermissions":
                [
                    {
                        "allowedResourceActions":
                        [
                            "microsoft.directory/applications/basic/read"
                        ]
                    }
                ],
                "isEnabled" : true
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    assert_response_matches("POST", DEFINITIONS, 201, &reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let body = &reply.body;
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#roleManagement/directory/roleDefinitions/$entity"));
    assert_eq!(
        body["description"],
        "Update basic properties of application registrations"
    );
    assert_eq!(
        body["displayName"],
        "Application Registration Support Administrator"
    );
    assert_eq!(body["isBuiltIn"], false);
    assert_eq!(body["isEnabled"], true);
    assert_eq!(body["templateId"], id);
    assert_eq!(body["version"], "1");
    assert_eq!(body["resourceScopes"], json!(["/"]));
    assert_eq!(
        body["rolePermissions"],
        json!([{
            "allowedResourceActions": ["microsoft.directory/applications/basic/read"],
            "excludedResourceActions": [],
            "condition": null
        }])
    );
    assert_eq!(
        reply.header("location"),
        Some(format!("{DEFINITIONS}/{id}").as_str())
    );

    // The beta example sends `"isEnabled": "true"`, a string, which Graph reads too.
    let beta = app
        .post(
            DEFINITIONS,
            &json!({
              "description": "Update basic properties of application registrations",
              "displayName": "Application Registration Support Administrator (beta)",
              "rolePermissions": [{"allowedResourceActions": ["microsoft.directory/applications/basic/read"]}],
              "isEnabled" : "true"
            }),
        )
        .await;
    assert_eq!(beta.status, StatusCode::CREATED, "{beta:#?}");
    assert_eq!(beta.body["isEnabled"], true);

    // "Update unifiedRoleDefinition", v1.0, verbatim: 204 and no body.
    let one = format!("{DEFINITIONS}/{id}");
    let reply = app
        .patch(
            &one,
            &json!({
              "description": "Update basic properties of application registrations",
              "displayName": "Application Registration Support Administrator",
              "rolePermissions":
                [
                    {
                        "allowedResourceActions":
                        [
                            "microsoft.directory/applications/basic/read"
                        ]
                    }
                ]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:#?}");
    assert_eq!(reply.body, Value::Null);
    assert!(reply.header("etag").is_some());

    // "Get unifiedRoleDefinition".
    let reply = app.get(&one).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    assert_response_matches("GET", DEFINITION, 200, &reply.body);
    assert_eq!(reply.body["version"], "2");
    assert!(reply.header("etag").is_some());

    // "List roleDefinitions" with the documented filters.
    let reply = app
        .get(&format!(
            "{DEFINITIONS}?$filter=displayName eq 'Application Registration Support Administrator'"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    assert_response_matches("GET", DEFINITIONS, 200, &reply.body);
    let value = reply.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "exact, not the `(beta)` one: {value:#?}");
    assert_eq!(value[0]["id"], id);
    let reply = app
        .get(&format!(
            "{DEFINITIONS}?$filter=isBuiltIn eq true&$select=id,displayName"
        ))
        .await;
    assert_response_matches("GET", DEFINITIONS, 200, &reply.body);
    assert!(reply.body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("#roleManagement/directory/roleDefinitions(id,displayName)"));
    let value = reply.body["value"].as_array().unwrap();
    assert!(value.iter().any(|r| r["id"] == GLOBAL_ADMINISTRATOR));
    for role in value {
        let keys: Vec<&String> = role.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["displayName", "id"], "{role}");
    }

    // "Delete unifiedRoleDefinition": 204, then Graph's 404.
    let reply = app.delete(&one).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:#?}");
    let reply = app.get(&one).await;
    graph_error(
        &reply,
        404,
        "Request_ResourceNotFound",
        Some(("GET", DEFINITION)),
    );

    // Every write is in the `/v1` change log, as the admin key's.
    assert_eq!(
        changes_of(app, &id).await,
        [
            ("create".to_owned(), "admin-key".to_owned()),
            ("update".to_owned(), "admin-key".to_owned()),
            ("delete".to_owned(), "admin-key".to_owned()),
        ]
    );
}

async fn graph_documentation_examples_create_list_get_and_delete_role_assignments(app: &TestApp) {
    // "Create unifiedRoleAssignment" example 3 (application scope), verbatim.
    let example = json!({
        "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
        "principalId": "6b937a9d-c731-465b-a844-2d5b5368c161",
        "roleDefinitionId": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "directoryScopeId": "/661e1310-bd76-4795-89a7-8f3c8f855bfc"
    });
    let reply = app.post(ASSIGNMENTS, &example).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    assert_response_matches("POST", ASSIGNMENTS, 201, &reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    assert!(reply.body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#roleManagement/directory/roleAssignments/$entity"));
    for field in ["principalId", "roleDefinitionId", "directoryScopeId"] {
        assert_eq!(reply.body[field], example[field], "{field}");
    }
    // Idempotent, as `/v1`: the same assignment again is a 200 with the same id.
    let again = app.post(ASSIGNMENTS, &example).await;
    assert_eq!(again.status, StatusCode::OK, "{again:#?}");
    assert_eq!(again.body["id"], id);

    // Example 1 names a role template this directory does not have: Graph's envelope.
    let reply = app
        .post(
            ASSIGNMENTS,
            &json!({
                "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
                "roleDefinitionId": "c2cf284d-6c41-4e6b-afac-4b80928c9034",
                "principalId": "f8ca5a85-489a-49a0-b555-0a6d81e56f0d",
                "directoryScopeId": "/"
            }),
        )
        .await;
    graph_error(
        &reply,
        422,
        "Request_BadRequest",
        Some(("POST", ASSIGNMENTS)),
    );
    // The same body with a role the directory holds: Global Administrator at `/`.
    let reply = app
        .post(
            ASSIGNMENTS,
            &json!({
                "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
                "roleDefinitionId": GLOBAL_ADMINISTRATOR,
                "principalId": "f8ca5a85-489a-49a0-b555-0a6d81e56f0d",
                "directoryScopeId": "/"
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    let admin_assignment = reply.body["id"].as_str().unwrap().to_owned();

    // A principal the directory knows, and a group: Graph's body has no principal type.
    let joey = Uuid::new_v4();
    let reply = app
        .post(
            "/v1/principals",
            &json!({"id": joey, "type": "user", "displayName": "Joey Cruz"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    let admins = create_group(app, "Break-glass admins").await;
    for principal in [joey, admins] {
        let reply = app
            .post(
                ASSIGNMENTS,
                &json!({"roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": principal, "directoryScopeId": "/"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    }
    let v1 = app
        .get(&format!("/v1/roleAssignments?principalId={admins}"))
        .await;
    assert_eq!(v1.body["value"][0]["principalType"], "group", "{v1:#?}");

    // "List unifiedRoleAssignments" example 1, verbatim query.
    let reply = app
        .get(&format!(
            "{ASSIGNMENTS}?$filter=roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10'&$expand=principal"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    assert_response_matches("GET", ASSIGNMENTS, 200, &reply.body);
    assert!(reply.body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("#roleManagement/directory/roleAssignments(principal())"));
    let value = reply.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 3, "{value:#?}");
    let principal_of = |id: String| {
        value
            .iter()
            .find(|a| a["principalId"] == id)
            .map(|a| a["principal"].clone())
            .unwrap()
    };
    assert_eq!(
        principal_of(joey.to_string()),
        json!({"@odata.type": "#microsoft.graph.user", "id": joey, "displayName": "Joey Cruz"})
    );
    assert_eq!(
        principal_of(admins.to_string()),
        json!({"@odata.type": "#microsoft.graph.group", "id": admins, "displayName": "Break-glass admins"})
    );
    assert_eq!(
        principal_of("f8ca5a85-489a-49a0-b555-0a6d81e56f0d".to_owned()),
        json!({"@odata.type": "#microsoft.graph.user", "id": "f8ca5a85-489a-49a0-b555-0a6d81e56f0d"})
    );

    // Example 2, verbatim, spaces around `=` included.
    let reply = app
        .get(&format!(
            "{ASSIGNMENTS}?$filter = principalId eq '6b937a9d-c731-465b-a844-2d5b5368c161'"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    assert_response_matches("GET", ASSIGNMENTS, 200, &reply.body);
    let value = reply.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1);
    assert_eq!(
        value[0],
        json!({
            "id": id,
            "principalId": "6b937a9d-c731-465b-a844-2d5b5368c161",
            "roleDefinitionId": APPLICATION_ADMINISTRATOR,
            "directoryScopeId": "/661e1310-bd76-4795-89a7-8f3c8f855bfc",
            "appScopeId": null,
            "condition": null
        })
    );

    // "Get unifiedRoleAssignment", with the role expanded.
    let one = format!("{ASSIGNMENTS}/{id}");
    let reply = app.get(&format!("{one}?$expand=roleDefinition")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    assert_response_matches("GET", ASSIGNMENT, 200, &reply.body);
    assert_eq!(
        reply.body["roleDefinition"]["displayName"],
        "Application Administrator"
    );
    assert_eq!(reply.body["roleDefinition"]["isBuiltIn"], true);

    // "Delete unifiedRoleAssignment": 204, then 404.
    let reply = app.delete(&one).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:#?}");
    graph_error(
        &app.get(&one).await,
        404,
        "Request_ResourceNotFound",
        Some(("GET", ASSIGNMENT)),
    );
    graph_error(
        &app.delete(&one).await,
        404,
        "Request_ResourceNotFound",
        Some(("DELETE", ASSIGNMENT)),
    );
    assert_eq!(
        changes_of(app, &id).await,
        [
            ("create".to_owned(), "admin-key".to_owned()),
            ("delete".to_owned(), "admin-key".to_owned()),
        ]
    );
    assert_eq!(changes_of(app, &admin_assignment).await.len(), 1);
}

async fn the_odata_subset_is_served_and_everything_else_refused_with_graphs_codes(app: &TestApp) {
    let reply = app
        .post(
            DEFINITIONS,
            &json!({"displayName": "O'Brien Reader", "rolePermissions": [{"allowedResourceActions": ["contoso.records/items/read"]}], "isEnabled": false}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    let obrien = reply.body["id"].as_str().unwrap().to_owned();
    let principal = Uuid::new_v4();
    assign(app, principal, "user", &obrien, "/records/r1").await;
    assign(app, principal, "user", GLOBAL_ADMINISTRATOR, "/").await;

    let ids = |reply: &Reply| -> Vec<String> {
        assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
        reply.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // '' is a quote; `and` joins; booleans; parentheses.
    let served = [
        format!("{DEFINITIONS}?$filter=displayName eq 'O''Brien Reader'"),
        format!("{DEFINITIONS}?$filter=displayName eq 'o''brien reader' and isBuiltIn eq false"),
        format!("{DEFINITIONS}?$filter=(isBuiltIn eq false) and (isEnabled eq false)"),
    ];
    for path in &served {
        assert_eq!(ids(&app.get(path).await), [obrien.as_str()], "{path}");
    }
    // A bare guid and a quoted one; a scope; `$top`.
    let assignments = |filter: &str| format!("{ASSIGNMENTS}?$filter={filter}");
    let both = ids(&app
        .get(&assignments(&format!("principalId eq {principal}")))
        .await);
    assert_eq!(both.len(), 2);
    let one = ids(&app
        .get(&assignments(&format!(
            "principalId eq '{principal}' and directoryScopeId eq '/records/r1'"
        )))
        .await);
    assert_eq!(one.len(), 1);
    let one = ids(&app
        .get(&assignments(&format!(
            "principalId eq '{principal}' and roleDefinitionId eq {GLOBAL_ADMINISTRATOR}"
        )))
        .await);
    assert_eq!(one.len(), 1);
    let reply = app
        .get(&format!(
            "{ASSIGNMENTS}?$filter=principalId eq '{principal}'&$select=roleDefinitionId&$top=1"
        ))
        .await;
    assert_response_matches("GET", ASSIGNMENTS, 200, &reply.body);
    assert_eq!(
        reply.body["value"][0].as_object().unwrap().len(),
        1,
        "{reply:#?}"
    );
    assert!(reply.body["@odata.nextLink"].is_string());

    // Refusals, each with Graph's code and a documented body.
    let refused = [
        (
            DEFINITIONS,
            "$orderby=displayName",
            "Request_UnsupportedQuery",
        ),
        (DEFINITIONS, "$count=true", "Request_UnsupportedQuery"),
        (
            DEFINITIONS,
            "$search=\"displayName:x\"",
            "Request_UnsupportedQuery",
        ),
        (
            DEFINITIONS,
            "$filter=displayName ne 'x'",
            "Request_UnsupportedQuery",
        ),
        (
            DEFINITIONS,
            "$filter=isBuiltIn eq true or isEnabled eq true",
            "Request_UnsupportedQuery",
        ),
        (
            DEFINITIONS,
            "$filter=startswith(displayName,'App')",
            "Request_UnsupportedQuery",
        ),
        (
            DEFINITIONS,
            "$filter=templateId eq 'x'",
            "Request_UnsupportedQuery",
        ),
        (
            DEFINITIONS,
            "$expand=inheritsPermissionsFrom",
            "Request_UnsupportedQuery",
        ),
        (DEFINITIONS, "limit=5", "Request_UnsupportedQuery"),
        (
            DEFINITIONS,
            "$filter=displayName eq 'unclosed",
            "BadRequest",
        ),
        (DEFINITIONS, "$filter=isBuiltIn eq 'true'", "BadRequest"),
        (DEFINITIONS, "$filter=colour eq 'red'", "BadRequest"),
        (DEFINITIONS, "$select=id,colour", "BadRequest"),
        (DEFINITIONS, "$top=0", "BadRequest"),
        (DEFINITIONS, "$top=1000", "BadRequest"),
        (DEFINITIONS, "$top=5&$top=6", "BadRequest"),
        (DEFINITIONS, "$skiptoken=not-a-cursor", "Request_BadRequest"),
        (
            ASSIGNMENTS,
            "$expand=directoryScope",
            "Request_UnsupportedQuery",
        ),
        (
            ASSIGNMENTS,
            "$expand=principal($select=id)",
            "Request_UnsupportedQuery",
        ),
        (
            ASSIGNMENTS,
            "$filter=appScopeId eq '/'",
            "Request_UnsupportedQuery",
        ),
        (
            ASSIGNMENTS,
            "$filter=principalId in ('a','b')",
            "Request_UnsupportedQuery",
        ),
        (
            ASSIGNMENTS,
            "$filter=principalId eq 'not-a-guid'",
            "BadRequest",
        ),
        (
            ASSIGNMENTS,
            "$filter=directoryScopeId eq 'no-slash'",
            "BadRequest",
        ),
        (ASSIGNMENTS, "$filter=isBuiltIn eq true", "BadRequest"),
    ];
    for (path, query, code) in refused {
        let reply = app.get(&format!("{path}?{query}")).await;
        graph_error(&reply, 400, code, Some(("GET", path)));
    }
    let reply = app
        .get(&format!("{DEFINITIONS}/{obrien}?$filter=isBuiltIn eq true"))
        .await;
    graph_error(
        &reply,
        400,
        "Request_UnsupportedQuery",
        Some(("GET", DEFINITION)),
    );
}

async fn paging_follows_odata_next_link_to_the_last_page(app: &TestApp) {
    let principal = Uuid::new_v4();
    let mut created = Vec::new();
    for i in 0..5 {
        let role = create_role(app, &format!("Pager {i}"), &["contoso.pages/items/read"]).await;
        created.push(assign(app, principal, "user", &role, "/").await);
    }
    created.sort();
    let mut path = format!("{ASSIGNMENTS}?$filter=principalId eq '{principal}'&$top=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:#?}");
        assert_response_matches("GET", ASSIGNMENTS, 200, &reply.body);
        pages += 1;
        let value = reply.body["value"].as_array().unwrap();
        assert!(value.len() <= 2);
        seen.extend(value.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match reply.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.contains("%24filter=") && next.contains("%24top=2"),
                    "{next}"
                );
                path = local(app, next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(seen, created);

    // Role definitions page the same way, built-ins included.
    let mut path = format!("{DEFINITIONS}?$top=4");
    let mut roles = 0;
    loop {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
        roles += reply.body["value"].as_array().unwrap().len();
        match reply.body["@odata.nextLink"].as_str() {
            Some(next) => path = local(app, next),
            None => break,
        }
    }
    let all = app.get("/v1/roleDefinitions?limit=1000").await;
    assert_eq!(roles, all.body["value"].as_array().unwrap().len());
}

async fn graph_paths_answer_graphs_envelope_and_v1_keeps_problem_documents(app: &TestApp) {
    // A route under `/v1.0/` that does not exist, and a method a route does not take.
    let reply = app
        .get("/v1.0/roleManagement/directory/roleEligibilityScheduleInstances")
        .await;
    graph_error(&reply, 404, "Request_ResourceNotFound", None);
    let reply = app
        .call(Method::PUT, DEFINITIONS, Some(&json!({})), &[])
        .await;
    graph_error(&reply, 405, "Request_BadRequest", None);
    let reply = app
        .call(
            Method::PATCH,
            &format!("{ASSIGNMENTS}/{}", Uuid::new_v4()),
            Some(&json!({})),
            &[],
        )
        .await;
    graph_error(&reply, 405, "Request_BadRequest", None);
    // `/v1` is untouched.
    assert_eq!(app.get("/v1/nothing").await.problem(), "not-found");

    // Bodies: not JSON, the wrong media type, an unknown field, a read-only one.
    let reply = app
        .call(
            Method::POST,
            DEFINITIONS,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    graph_error(
        &reply,
        400,
        "Request_BadRequest",
        Some(("POST", DEFINITIONS)),
    );
    let reply = app
        .client
        .post(format!("{}{DEFINITIONS}", app.base))
        .bearer_auth(crate::common::app::ADMIN_KEY)
        .header("content-type", "text/plain")
        .body("displayName=x")
        .send()
        .await
        .unwrap();
    let reply = TestApp::reply(reply).await;
    graph_error(&reply, 415, "invalidRequest", Some(("POST", DEFINITIONS)));
    // Refused before routing reaches a handler (the body limit), still Graph's envelope.
    let big = "x".repeat(app.state.config().max_body_bytes + 1);
    let reply = app
        .post(
            DEFINITIONS,
            &json!({"displayName": big, "rolePermissions": []}),
        )
        .await;
    graph_error(&reply, 413, "invalidRequest", Some(("POST", DEFINITIONS)));
    for body in [
        json!({"displayName": "X", "rolePermissions": [{"allowedResourceActions": ["a.b/c/read"]}], "colour": "red"}),
        json!({"displayName": "X", "rolePermissions": [{"allowedResourceActions": ["a.b/c/read"]}], "templateId": Uuid::new_v4()}),
        json!({"displayName": "X", "rolePermissions": [{"allowedResourceActions": ["a.b/c/read"]}], "isBuiltIn": true}),
        json!({"displayName": "X", "rolePermissions": []}),
    ] {
        let reply = app.post(DEFINITIONS, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {reply:#?}");
        assert_response_matches("POST", DEFINITIONS, 400, &reply.body);
    }
    let reply = app
        .post(
            ASSIGNMENTS,
            &json!({"roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": Uuid::new_v4(), "appScopeId": "/"}),
        )
        .await;
    graph_error(&reply, 400, "BadRequest", Some(("POST", ASSIGNMENTS)));

    // Built-in roles are read-only; a taken name conflicts; If-Match is honoured.
    let reply = app
        .patch(
            &format!("{DEFINITIONS}/{GLOBAL_ADMINISTRATOR}"),
            &json!({"description": "mine now"}),
        )
        .await;
    graph_error(&reply, 409, "notAllowed", Some(("PATCH", DEFINITION)));
    let reply = app
        .post(
            DEFINITIONS,
            &json!({"displayName": "Global Administrator", "rolePermissions": [{"allowedResourceActions": ["a.b/c/read"]}]}),
        )
        .await;
    graph_error(
        &reply,
        409,
        "Request_MultipleObjectsWithSameKeyValue",
        Some(("POST", DEFINITIONS)),
    );
    let role = create_role(app, "Versioned", &["a.b/c/read"]).await;
    let reply = app
        .call(
            Method::PATCH,
            &format!("{DEFINITIONS}/{role}"),
            Some(&json!({"description": "stale"})),
            &[("if-match", "\"999\"")],
        )
        .await;
    graph_error(&reply, 412, "resourceModified", Some(("PATCH", DEFINITION)));
}

on_both_stores!(
    graph_documentation_examples_create_update_get_list_and_delete_a_role_definition,
    graph_documentation_examples_create_list_get_and_delete_role_assignments,
    the_odata_subset_is_served_and_everything_else_refused_with_graphs_codes,
    paging_follows_odata_next_link_to_the_last_page,
    graph_paths_answer_graphs_envelope_and_v1_keeps_problem_documents,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_rights_gets_graphs_403_and_escalation_is_refused_as_on_v1() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;

        // No credentials: Graph's 401, the RFC 6750 challenge kept.
        let reply = call_as(app, None, Method::GET, DEFINITIONS, None).await;
        graph_error(
            &reply,
            401,
            "InvalidAuthenticationToken",
            Some(("GET", DEFINITIONS)),
        );
        assert!(reply.header("www-authenticate").is_some());

        // A valid token holding nothing.
        let nobody = env.token(Uuid::new_v4());
        for (method, path, template) in [
            (Method::GET, DEFINITIONS.to_owned(), DEFINITIONS),
            (
                Method::GET,
                format!("{DEFINITIONS}/{GLOBAL_ADMINISTRATOR}"),
                DEFINITION,
            ),
            (Method::GET, ASSIGNMENTS.to_owned(), ASSIGNMENTS),
        ] {
            let reply = send_as(app, &nobody, method.clone(), &path, None).await;
            graph_error(
                &reply,
                403,
                "Authorization_RequestDenied",
                Some((method.as_str(), template)),
            );
        }
        let reply = send_as(
            app,
            &nobody,
            Method::POST,
            DEFINITIONS,
            Some(json!({"displayName": "Mine", "rolePermissions": [{"allowedResourceActions": ["a.b/c/read"]}]})),
        )
        .await;
        graph_error(
            &reply,
            403,
            "Authorization_RequestDenied",
            Some(("POST", DEFINITIONS)),
        );

        // An administrator of one application's assignments hands out only what it holds,
        // on both paths alike.
        let admin_role = create_role(
            app,
            "App Assignment Admin",
            &[MANAGE_ASSIGNMENTS, "contoso.apps/settings/read"],
        )
        .await;
        let reader = create_role(app, "App Reader", &["contoso.apps/settings/read"]).await;
        let writer = create_role(
            app,
            "App Writer",
            &["contoso.apps/settings/read", "contoso.apps/settings/update"],
        )
        .await;
        let admin = Uuid::new_v4();
        assign(app, admin, "user", &admin_role, "/applications/a").await;
        let token = env.token(admin);
        let user = Uuid::new_v4();
        let graph_body = |role: &str, scope: &str| {
            json!({
                "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
                "roleDefinitionId": role,
                "principalId": user,
                "directoryScopeId": scope
            })
        };
        let reply = send_as(
            app,
            &token,
            Method::POST,
            ASSIGNMENTS,
            Some(graph_body(&reader, "/applications/a")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
        let created = reply.body["id"].as_str().unwrap().to_owned();
        let changes = changes_of(app, &created).await;
        assert_eq!(changes, [("create".to_owned(), admin.to_string())]);

        let reply = send_as(
            app,
            &token,
            Method::POST,
            ASSIGNMENTS,
            Some(graph_body(&writer, "/applications/a")),
        )
        .await;
        graph_error(
            &reply,
            403,
            "Authorization_RequestDenied",
            Some(("POST", ASSIGNMENTS)),
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("would grant permissions"), "{message}");
        let v1 = send_as(
            app,
            &token,
            Method::POST,
            "/v1/roleAssignments",
            Some(assignment_body(user, "user", &writer, "/applications/a")),
        )
        .await;
        assert_eq!(v1.problem(), "escalation-refused");
        for role in [GLOBAL_ADMINISTRATOR, reader.as_str()] {
            let reply = send_as(
                app,
                &token,
                Method::POST,
                ASSIGNMENTS,
                Some(graph_body(role, "/")),
            )
            .await;
            graph_error(&reply, 403, "Authorization_RequestDenied", None);
        }
        // A role administrator who does not hold a permission cannot add it to a role,
        // on both paths alike.
        let role_admin = create_role(
            app,
            "Role Admin",
            &["microsoft.directory/roleDefinitions/allProperties/allTasks"],
        )
        .await;
        let editor = Uuid::new_v4();
        assign(app, editor, "user", &role_admin, "/").await;
        let editor = env.token(editor);
        let wider = json!({"rolePermissions": [{"allowedResourceActions": ["contoso.apps/settings/read", "contoso.apps/settings/delete"]}]});
        let reply = send_as(
            app,
            &editor,
            Method::PATCH,
            format!("{DEFINITIONS}/{reader}"),
            Some(wider.clone()),
        )
        .await;
        graph_error(
            &reply,
            403,
            "Authorization_RequestDenied",
            Some(("PATCH", DEFINITION)),
        );
        let v1 = send_as(
            app,
            &editor,
            Method::PATCH,
            format!("/v1/roleDefinitions/{reader}"),
            Some(wider),
        )
        .await;
        assert_eq!(v1.problem(), "escalation-refused");
        let reply = send_as(
            app,
            &editor,
            Method::PATCH,
            format!("{DEFINITIONS}/{reader}"),
            Some(json!({"description": "Reads application settings"})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:#?}");

        // Reading there is allowed; elsewhere it is not, and another scope's assignment is
        // not found rather than forbidden, as on `/v1`.
        let reply = send_as(
            app,
            &token,
            Method::GET,
            format!("{ASSIGNMENTS}?$filter=directoryScopeId eq '/applications/a'"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
        let elsewhere = assign(app, user, "user", &reader, "/applications/b").await;
        let reply = send_as(
            app,
            &token,
            Method::GET,
            format!("{ASSIGNMENTS}/{elsewhere}"),
            None,
        )
        .await;
        graph_error(&reply, 404, "Request_ResourceNotFound", None);
        let reply = send_as(
            app,
            &token,
            Method::DELETE,
            format!("{ASSIGNMENTS}/{elsewhere}"),
            None,
        )
        .await;
        graph_error(&reply, 403, "Authorization_RequestDenied", None);
        let reply = send_as(
            app,
            &token,
            Method::DELETE,
            format!("{ASSIGNMENTS}/{created}"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:#?}");
    }
}

/// PIM through Graph's paths: the body of Graph's documentation example
/// (`rbacapplication-post-roleassignmentschedulerequests.md`, "Request a user to activate
/// their eligible role"), with this directory's ids and a current start, activates; the
/// principal lists its own eligibility and requests with `$filter`; `selfDeactivate` ends
/// it; a pending request is canceled (204); a refusal is Graph's envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_pim_paths_activate_list_deactivate_and_cancel() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        let app = &env.app;
        let role = create_role(app, "Expense Approver", &["contoso.expenses/reports/read"]).await;
        let user = Uuid::new_v4();
        let token = env.token(user);
        let eligible = app
            .post(
                "/v1/roleEligibilitySchedules",
                &json!({"principalId": user, "principalType": "user", "roleDefinitionId": role,
                        "directoryScopeId": "/", "justification": "on call this week"}),
            )
            .await;
        assert_eq!(eligible.status, StatusCode::CREATED, "{eligible:#?}");
        let allowed = |reply: Reply| reply.body["allowed"] == true;
        assert!(!allowed(self_check(app, &token, user).await));

        // Graph's example body, verbatim but for ids and the start.
        let example = json!({
            "action": "selfActivate",
            "principalId": user,
            "roleDefinitionId": role,
            "directoryScopeId": "/",
            "justification": "I need access to the Attribute Administrator role to manage attributes to be assigned to restricted AUs",
            "scheduleInfo": {
                "startDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "expiration": {"type": "AfterDuration", "duration": "PT5H"}
            },
            "ticketInfo": {"ticketNumber": "CONTOSO:Normal-67890", "ticketSystem": "MS Project"}
        });
        let reply = send_as(app, &token, Method::POST, REQUESTS, Some(example.clone())).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
        assert_response_matches("POST", REQUESTS, 201, &reply.body);
        assert!(reply.body["@odata.context"].as_str().unwrap().ends_with(
            "/v1.0/$metadata#roleManagement/directory/roleAssignmentScheduleRequests/$entity"
        ));
        assert_eq!(reply.body["status"], "Provisioned");
        assert_eq!(reply.body["action"], "selfActivate");
        assert_eq!(
            reply.body["ticketInfo"]["ticketNumber"],
            "CONTOSO:Normal-67890"
        );
        let request_id = reply.body["id"].as_str().unwrap().to_owned();
        assert_eq!(
            reply.header("location"),
            Some(format!("{REQUESTS}/{request_id}").as_str())
        );
        assert!(allowed(self_check(app, &token, user).await));

        // The principal reads its own, filtered to itself.
        let filter = format!("$filter=principalId%20eq%20'{user}'");
        let mine = send_as(
            app,
            &token,
            Method::GET,
            format!("{ELIGIBILITIES}?{filter}"),
            None,
        )
        .await;
        assert_eq!(mine.status, StatusCode::OK, "{mine:#?}");
        assert_response_matches("GET", ELIGIBILITIES, 200, &mine.body);
        assert_eq!(mine.body["value"][0]["roleDefinitionId"], json!(role));
        let one = send_as(
            app,
            &token,
            Method::GET,
            format!(
                "{ELIGIBILITIES}/{}?$select=id,principalId",
                mine.body["value"][0]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
        assert_eq!(one.status, StatusCode::OK, "{one:#?}");
        assert_response_matches("GET", ELIGIBILITY, 200, &one.body);
        assert_eq!(one.body["principalId"], json!(user));
        assert!(one.body.get("roleDefinitionId").is_none(), "{one:#?}");
        let listed = send_as(
            app,
            &token,
            Method::GET,
            format!("{REQUESTS}?{filter}&$top=1"),
            None,
        )
        .await;
        assert_eq!(listed.status, StatusCode::OK, "{listed:#?}");
        assert_response_matches("GET", REQUESTS, 200, &listed.body);
        assert_eq!(listed.body["value"][0]["id"], json!(request_id));
        let got = send_as(
            app,
            &token,
            Method::GET,
            format!("{REQUESTS}/{request_id}"),
            None,
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        assert_response_matches("GET", REQUEST, 200, &got.body);
        // Someone else's requests, unfiltered: refused without rights.
        let nobody = env.token(Uuid::new_v4());
        let reply = send_as(app, &nobody, Method::GET, REQUESTS, None).await;
        graph_error(
            &reply,
            403,
            "Authorization_RequestDenied",
            Some(("GET", REQUESTS)),
        );
        // `$expand` is not served here.
        let reply = send_as(
            app,
            &token,
            Method::GET,
            format!("{REQUESTS}?$expand=principal"),
            None,
        )
        .await;
        graph_error(
            &reply,
            400,
            "Request_UnsupportedQuery",
            Some(("GET", REQUESTS)),
        );

        // Activating again while active: Graph's PIM code, the status kept.
        let reply = send_as(app, &token, Method::POST, REQUESTS, Some(example.clone())).await;
        graph_error(
            &reply,
            422,
            "RoleAssignmentRequestPolicyValidationFailed",
            Some(("POST", REQUESTS)),
        );

        let deactivate = json!({"action": "selfDeactivate", "principalId": user,
                                "roleDefinitionId": role, "directoryScopeId": "/"});
        let reply = send_as(app, &token, Method::POST, REQUESTS, Some(deactivate)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
        assert!(!allowed(self_check(app, &token, user).await));

        // With approval required, the request waits; its requester cancels it.
        let policy = app
            .call(
                Method::PUT,
                &format!("/v1/roleManagementPolicies/{role}"),
                Some(&json!({"isApprovalRequired": true})),
                &[],
            )
            .await;
        assert_eq!(policy.status, StatusCode::OK, "{policy:#?}");
        let reply = send_as(app, &token, Method::POST, REQUESTS, Some(example)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
        assert_eq!(reply.body["status"], "PendingApproval");
        let pending = reply.body["id"].as_str().unwrap().to_owned();
        let cancel = format!("{REQUESTS}/{pending}/cancel");
        let reply = send_as(app, &nobody, Method::POST, &cancel, None).await;
        graph_error(
            &reply,
            404,
            "Request_ResourceNotFound",
            Some(("POST", CANCEL)),
        );
        let reply = send_as(app, &token, Method::POST, &cancel, None).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:#?}");
        let got = send_as(
            app,
            &token,
            Method::GET,
            format!("{REQUESTS}/{pending}"),
            None,
        )
        .await;
        assert_eq!(got.body["status"], "Canceled", "{got:#?}");
        assert!(!allowed(self_check(app, &token, user).await));
    }
}

#[test]
fn every_graph_operation_documents_graphs_errors_and_has_an_authorization_row() {
    let description = spec()["info"]["description"].as_str().unwrap();
    let (_, authorization) = description.split_once("## Authorization").unwrap();
    let rows: Vec<&str> = authorization
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| `"))
        .collect();
    let mut problems = Vec::new();
    let mut operations = 0;
    for (path, item) in spec()["paths"].as_object().unwrap() {
        if !path.starts_with("/v1.0/") {
            continue;
        }
        for (method, _) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            operations += 1;
            let upper = method.to_ascii_uppercase();
            let name = format!("{upper} {path}");
            for status in [400, 401, 403, 500, 503] {
                let body = json!({"error": {"code": "x", "message": "y", "innerError": {"request-id": "r", "date": "2026-01-01T00:00:00"}}});
                let codes = [
                    "BadRequest",
                    "InvalidAuthenticationToken",
                    "Authorization_RequestDenied",
                    "generalException",
                    "serviceNotAvailable",
                ];
                let mut body = body;
                body["error"]["code"] = json!(
                    codes[[400, 401, 403, 500, 503]
                        .iter()
                        .position(|s| *s == status)
                        .unwrap()]
                );
                if let Err(e) = crate::common::spec::check_response(&upper, path, status, &body) {
                    problems.push(format!("{name} {status}: {e}"));
                }
            }
            if !rows.iter().any(|row| {
                let ops = row.split(" | ").next().unwrap_or_default();
                ops.contains(&format!(" {path}`")) && ops.contains(upper.as_str())
            }) {
                problems.push(format!("{name}: no row in the Authorization table"));
            }
        }
    }
    assert_eq!(operations, 15);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
