//! `GET /v1/export` and `POST /v1/import` (and the CLI's `export`, `import` and `check`):
//! a directory exported, imported into an empty store and exported again is the same
//! bytes; a dry run and a second import change nothing; a bad file changes nothing and
//! says where every problem is; `--prune` removes what the file leaves out; an import is
//! authorized as the writes it holds; a bulk import logs one row and replicas reload.

use std::process::Command;

use crate::common::app::{Reply, TestApp, ADMIN_KEY};
use crate::common::env::*;
use reqwest::{Method, StatusCode};
use rolecall::store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rolecall");
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

fn created(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

/// A directory with one of everything: a custom role, assignments (one windowed, one
/// conditional, one of a built-in), a deny, nested groups, a unit with members,
/// principals with aliases and attributes, and resources.
async fn seed(app: &TestApp) -> (String, String) {
    let role = created(
        &app.post(
            "/v1/roleDefinitions",
            &json!({
                "displayName": "Expense Approver",
                "description": "Approves reports",
                "rolePermissions": [{
                    "allowedResourceActions": ["contoso.expenses/reports/approve", "contoso.expenses/reports/read"],
                    "excludedResourceActions": ["contoso.expenses/reports/delete"]
                }],
                "assignableScopes": ["/"]
            }),
        )
        .await,
    );
    let alice = "6f2c1f64-2ad0-4a8e-9d1f-0d4b0e6f1a01";
    let app_sp = "6f2c1f64-2ad0-4a8e-9d1f-0d4b0e6f1a02";
    created(
        &app.post(
            "/v1/principals",
            &json!({"id": alice, "type": "user", "displayName": "Alice", "aliases": ["alice@contoso.com"], "attributes": {"department": "Finance", "level": 3}}),
        )
        .await,
    );
    created(
        &app.post(
            "/v1/principals",
            &json!({"id": app_sp, "type": "servicePrincipal", "displayName": "Billing"}),
        )
        .await,
    );
    let outer = created(
        &app.post("/v1/groups", &json!({"displayName": "Finance"}))
            .await,
    );
    let inner = created(
        &app.post(
            "/v1/groups",
            &json!({"displayName": "Approvers", "description": "nested"}),
        )
        .await,
    );
    for (group, member, kind) in [(&outer, inner.as_str(), "group"), (&inner, alice, "user")] {
        let r = app
            .post(
                &format!("/v1/groups/{group}/members"),
                &json!({"id": member, "type": kind}),
            )
            .await;
        assert!(r.status.is_success(), "{r:?}");
    }
    let unit = created(
        &app.post("/v1/administrativeUnits", &json!({"displayName": "EMEA"}))
            .await,
    );
    for resource in ["/applications/b", "/applications/a"] {
        let r = app
            .post(
                &format!("/v1/administrativeUnits/{unit}/members"),
                &json!({"resource": resource}),
            )
            .await;
        assert!(r.status.is_success(), "{r:?}");
    }
    created(
        &app.post(
            "/v1/roleAssignments",
            &json!({"principalId": outer, "principalType": "group", "roleDefinitionId": role, "directoryScopeId": "/applications/a"}),
        )
        .await,
    );
    created(
        &app.post(
            "/v1/roleAssignments",
            &json!({"principalId": app_sp, "principalType": "servicePrincipal", "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2036-01-01T00:00:00Z"}),
        )
        .await,
    );
    created(
        &app.post(
            "/v1/roleAssignments",
            &json!({"principalId": alice, "principalType": "user", "roleDefinitionId": role, "directoryScopeId": format!("/administrativeUnits/{unit}"),
                    "condition": "@Resource[department] StringEquals 'Finance'", "conditionVersion": "2.0"}),
        )
        .await,
    );
    created(
        &app.post(
            "/v1/denyAssignments",
            &json!({"displayName": "No approving at B", "principalId": alice, "principalType": "user", "actions": ["contoso.expenses/reports/approve"], "directoryScopeId": "/applications/b"}),
        )
        .await,
    );
    for (id, path) in [
        ("r-2", "/applications/a/reports/r-2"),
        ("r 1/x", "/applications/a/reports/r1"),
    ] {
        created(
            &app.post(
                "/v1/resources",
                &json!({"type": "report", "id": id, "path": path, "displayName": "A report", "attributes": {"department": "Finance"}}),
            )
            .await,
        );
    }
    (role, alice.to_owned())
}

async fn export(app: &TestApp, accept: &str) -> (String, Reply) {
    let response = app
        .client
        .get(format!("{}/v1/export", app.base))
        .bearer_auth(ADMIN_KEY)
        .header("accept", accept)
        .send()
        .await
        .expect("export");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let reply = Reply {
        status,
        headers,
        body: Value::Null,
    };
    (text, reply)
}

async fn import(app: &TestApp, body: &str, content_type: &str, query: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/v1/import{query}", app.base))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("import");
    TestApp::reply(response).await
}

async fn change_count(app: &TestApp) -> usize {
    let mut n = 0;
    let mut path = "/v1/changes?limit=1000".to_owned();
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        n += r.body["value"].as_array().expect("value").len();
        match r.body["nextLink"].as_str() {
            Some(next) => path = next[next.find("/v1/changes").expect("path")..].to_owned(),
            None => return n,
        }
    }
}

fn kind<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["kind"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

async fn check(app: &TestApp, principal: &str, action: &str, resource: &str) -> bool {
    let r = app
        .post(
            "/v1/check",
            &json!({"subject": {"principalId": principal}, "action": action, "resource": resource}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body["allowed"].as_bool().expect("allowed")
}

async fn a_directory_round_trips_byte_for_byte(backend: Backend) {
    let source_db = crate::common::db::fresh(backend).await;
    let source = TestApp::spawn(source_db.url.clone()).await;
    let (_, alice) = seed(&source).await;
    let (yaml, reply) = export(&source, "application/yaml").await;
    assert_eq!(reply.status, StatusCode::OK, "{yaml}");
    assert_eq!(reply.header("content-type"), Some("application/yaml"));
    assert!(
        yaml.starts_with("format: rolecall.directory/v1\n"),
        "{yaml}"
    );
    assert!(!yaml.contains("DateTime: 20") || yaml.contains("startDateTime"));
    assert!(!yaml.contains("createdDateTime"), "{yaml}");
    let (again, _) = export(&source, "application/yaml").await;
    assert_eq!(yaml, again, "export is stable across runs");

    let target_db = crate::common::db::fresh(backend).await;
    let target = TestApp::spawn(target_db.url.clone()).await;
    // A dry run reports every create and writes nothing.
    let dry = import(&target, &yaml, "application/yaml", "?dryRun=true").await;
    assert_eq!(dry.status, StatusCode::OK, "{dry:?}");
    assert_eq!(dry.body["dryRun"], true);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(kind(&dry.body, "roleAssignments")["created"], 3);
    assert_eq!(kind(&dry.body, "groupMembers")["created"], 2);
    assert_eq!(kind(&dry.body, "resources")["created"], 2);
    assert_eq!(dry.body["total"], 1 + 3 + 1 + 2 + 2 + 1 + 2 + 2 + 2);
    assert_eq!(change_count(&target).await, 0);
    assert!(
        !check(
            &target,
            &alice,
            "contoso.expenses/reports/approve",
            "/applications/a"
        )
        .await
    );

    let applied = import(&target, &yaml, "application/yaml", "").await;
    assert_eq!(applied.status, StatusCode::OK, "{applied:?}");
    assert_eq!(applied.body["applied"], true);
    let revision = applied.body["revision"]
        .as_str()
        .expect("revision")
        .to_owned();
    assert_eq!(applied.header("rolecall-revision"), Some(revision.as_str()));
    // One revision: every change row of the import carries it, the summary row last.
    let changes = target.get("/v1/changes?limit=1000").await;
    let rows = changes.body["value"].as_array().expect("rows");
    assert_eq!(rows.len(), 16 + 1, "{rows:?}");
    assert!(rows.iter().all(|c| c["revision"] == revision.as_str()));
    let summary = rows.last().expect("summary");
    assert_eq!(summary["entityType"], "import");
    assert!(summary["entityId"]
        .as_str()
        .expect("digest")
        .starts_with("sha256:"));
    assert_eq!(summary["entityId"], applied.body["digest"]);
    // The imported directory decides as the source did (read-your-writes: the answer
    // came after the snapshot reached the import's revision).
    assert!(
        check(
            &target,
            &alice,
            "contoso.expenses/reports/approve",
            "/applications/a"
        )
        .await
    );
    assert!(
        !check(
            &target,
            &alice,
            "contoso.expenses/reports/approve",
            "/applications/b"
        )
        .await
    );

    let (exported, _) = export(&target, "application/yaml").await;
    assert_eq!(
        exported, yaml,
        "export -> import -> export is byte-identical"
    );

    // Importing the same file again changes nothing and logs nothing.
    let before = change_count(&target).await;
    let second = import(&target, &yaml, "application/yaml", "").await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    assert_eq!(second.body["applied"], false);
    assert_eq!(second.body["total"], 0);
    assert_eq!(second.body["revision"], revision.as_str());
    assert_eq!(change_count(&target).await, before);

    // JSON is the same file.
    let (json_text, reply) = export(&source, "application/json").await;
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let third = import(&target, &json_text, "application/json", "").await;
    assert_eq!(third.body["total"], 0, "{third:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_round_trips_on_sqlite() {
    a_directory_round_trips_byte_for_byte(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_round_trips_on_postgres() {
    a_directory_round_trips_byte_for_byte(Backend::Postgres).await;
}

async fn a_bad_file_changes_nothing_and_locates_every_problem(app: &TestApp) {
    let (role, _) = seed(app).await;
    let before = change_count(app).await;
    let file = json!({
        "format": "rolecall.directory/v1",
        "roleDefinitions": [
            {"id": Uuid::new_v4(), "displayName": "expense approver", "rolePermissions": [{"allowedResourceActions": ["contoso.expenses/reports/read"]}]}
        ],
        "roleAssignments": [
            {"id": Uuid::new_v4(), "principalId": Uuid::new_v4(), "principalType": "user", "roleDefinitionId": role, "directoryScopeId": "/ok"},
            {"id": "not-a-uuid", "principalId": Uuid::new_v4(), "principalType": "user", "roleDefinitionId": role, "directoryScopeId": "no-slash"},
            {"id": Uuid::new_v4(), "principalId": Uuid::new_v4(), "principalType": "user", "roleDefinitionId": Uuid::new_v4(), "directoryScopeId": "/"}
        ],
        "groups": [
            {"id": Uuid::new_v4(), "displayName": "G", "members": [{"id": Uuid::new_v4(), "type": "group"}]}
        ]
    });
    let r = import(app, &file.to_string(), "application/json", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(r.problem(), "validation");
    let pointers: Vec<&str> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.get("pointer").and_then(Value::as_str).expect("pointer"))
        .collect();
    assert_eq!(
        pointers,
        [
            "/roleAssignments/1/id",
            "/roleAssignments/1/directoryScopeId"
        ],
        "field errors first: {r:?}"
    );
    // Once the fields are right, the whole-directory checks locate theirs.
    let mut file = file;
    file["roleAssignments"][1]["id"] = json!(Uuid::new_v4());
    file["roleAssignments"][1]["directoryScopeId"] = json!("/fine");
    let r = import(app, &file.to_string(), "application/json", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let mut pointers: Vec<String> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().expect("pointer").to_owned())
        .collect();
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/groups/0/members",
            "/roleAssignments/2/roleDefinitionId",
            "/roleDefinitions/0/displayName"
        ],
        "{r:?}"
    );
    // A syntax error names its place too; an unknown field is refused, not ignored.
    let r = import(
        app,
        "format: rolecall.directory/v1\nroleAssignments:\n  - id: 6f2c1f64-2ad0-4a8e-9d1f-0d4b0e6f1a01\n    principalID: x\n",
        "application/yaml",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(
        r.body["errors"][0]["pointer"], "/roleAssignments/0",
        "{r:?}"
    );
    let r = import(app, "format: [", "application/yaml", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let r = import(app, "{}", "text/plain", "").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r:?}");
    let r = import(app, "{}", "application/json", "?prune=maybe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(change_count(app).await, before, "nothing was written");
}

async fn prune_removes_what_the_file_leaves_out(app: &TestApp) {
    seed(app).await;
    let (yaml, _) = export(app, "application/yaml").await;
    let mut file: Value = yaml_serde::from_str(&yaml).expect("yaml");
    let assignments = file["roleAssignments"].as_array_mut().expect("list");
    let gone = assignments.remove(0);
    file["groups"][0]["members"] = json!([]);
    let text = file.to_string();
    // Without prune nothing goes.
    let r = import(app, &text, "application/json", "").await;
    assert_eq!(r.body["total"], 0, "{r:?}");
    // A changed object is rewritten in place (its key columns and flags included).
    let mut changed = file.clone();
    changed["groups"][0]["displayName"] = json!("Renamed");
    changed["roleDefinitions"][0]["isEnabled"] = json!(false);
    let r = import(app, &changed.to_string(), "application/json", "").await;
    assert_eq!(kind(&r.body, "groups")["updated"], 1, "{r:?}");
    assert_eq!(kind(&r.body, "roleDefinitions")["updated"], 1, "{r:?}");
    let role = changed["roleDefinitions"][0]["id"].as_str().expect("id");
    let stored = app.get(&format!("/v1/roleDefinitions/{role}")).await;
    assert_eq!(stored.body["isEnabled"], false, "{stored:?}");
    assert_eq!(stored.body["version"], 2, "{stored:?}");
    let disabled = app
        .get("/v1/roleDefinitions?isEnabled=false&isBuiltIn=false")
        .await;
    assert_eq!(
        disabled.body["value"].as_array().map(Vec::len),
        Some(1),
        "{disabled:?}"
    );
    let r = import(app, &text, "application/json", "").await;
    assert_eq!(r.body["total"], 2, "changed back: {r:?}");
    let r = import(app, &text, "application/json", "?prune=true&dryRun=true").await;
    assert_eq!(kind(&r.body, "roleAssignments")["deleted"], 1, "{r:?}");
    assert_eq!(
        kind(&r.body, "roleAssignments")["delete"],
        json!([gone["id"]])
    );
    let r = import(app, &text, "application/json", "?prune=true").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["total"], 2, "{r:?}");
    let id = gone["id"].as_str().expect("id");
    assert_eq!(
        app.get(&format!("/v1/roleAssignments/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let (after, _) = export(app, "application/yaml").await;
    let after: Value = yaml_serde::from_str(&after).expect("yaml");
    assert_eq!(after, file, "the directory now is the file");
}

on_both_stores!(
    a_bad_file_changes_nothing_and_locates_every_problem,
    prune_removes_what_the_file_leaves_out
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_authorized_as_the_writes_it_holds() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = env_on(backend, |_, _, _| {}).await;
        let admin_role = create_role(
            &env.app,
            "App Assignment Admin",
            &[
                rolecall::decide::actions::MANAGE_ASSIGNMENTS,
                "contoso.apps/settings/read",
            ],
        )
        .await;
        let admin = Uuid::new_v4();
        assign(&env.app, admin, "user", &admin_role, "/applications/a").await;
        let token = env.token(admin);
        let reader = create_role(&env.app, "App Reader", &["contoso.apps/settings/read"]).await;
        let writer = create_role(
            &env.app,
            "App Writer",
            &["contoso.apps/settings/read", "contoso.apps/settings/update"],
        )
        .await;
        let before = change_count(&env.app).await;
        let file = |role: &str, scope: &str| {
            json!({
                "format": "rolecall.directory/v1",
                "roleAssignments": [{"id": Uuid::new_v4(), "principalId": Uuid::new_v4(), "principalType": "user", "roleDefinitionId": role, "directoryScopeId": scope}]
            })
        };
        let send = |body: Value| send_as(&env.app, &token, Method::POST, "/v1/import", Some(body));
        // Outside its scope: forbidden.
        let r = send(file(&reader, "/applications/b")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
        // A role it does not hold: escalation, as the single write would be.
        let r = send(file(&writer, "/applications/a")).await;
        assert_eq!(r.problem(), "escalation-refused", "{r:?}");
        // A role the file itself creates is judged as declared (it cannot manage roles at
        // all, so that is refused first).
        let sneaky = Uuid::new_v4();
        let mut with_role = file(&sneaky.to_string(), "/applications/a");
        with_role["roleDefinitions"] = json!([{"id": sneaky, "displayName": "Sneaky", "rolePermissions": [{"allowedResourceActions": ["contoso.apps/settings/update"]}]}]);
        let r = send(with_role).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
        assert_eq!(change_count(&env.app).await, before, "nothing was written");
        // What it may do, it may import.
        let r = send(file(&reader, "/applications/a")).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.body["applied"], true, "{r:?}");
        // A resource the caller may not see is refused without telling where it is.
        let r = env
            .app
            .post(
                "/v1/resources",
                &json!({"type": "report", "id": "secret", "path": "/applications/hidden/reports/secret"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        let r = send(json!({
            "format": "rolecall.directory/v1",
            "resources": [{"type": "report", "id": "secret", "path": "/applications/a/reports/secret"}]
        }))
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
        assert!(!r.body.to_string().contains("hidden"), "{r:?}");
        // Exporting needs reading everything.
        let r = call_as(&env.app, Some(&token), Method::GET, "/v1/export", None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    }
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("ROLECALL_URL", &app.base)
        .env("ROLECALL_ADMIN_KEY", ADMIN_KEY)
        .env_remove("ROLECALL_TOKEN")
        .env_remove("ROLECALL_TENANT")
        .output()
        .expect("rolecall runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exports_imports_and_checks() {
    let dir = tempdir();
    let source_db = crate::common::db::fresh(Backend::Sqlite).await;
    let source = TestApp::spawn(source_db.url.clone()).await;
    let (_, alice) = seed(&source).await;
    let first = dir.join("first.yaml");
    let out = cli(
        &source,
        &["export", "--output", first.to_str().expect("path")],
    );
    assert!(out.status.success(), "{out:?}");

    let target_db = crate::common::db::fresh(Backend::Postgres).await;
    let target = TestApp::spawn(target_db.url.clone()).await;
    let out = cli(
        &target,
        &["import", first.to_str().expect("path"), "--dry-run"],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("roleAssignments: 3 to create"), "{text}");
    assert!(
        text.contains("dry run: 16 changes planned, nothing written"),
        "{text}"
    );
    assert_eq!(change_count(&target).await, 0);
    let out = cli(&target, &["import", first.to_str().expect("path")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported: 16 changes"));
    let out = cli(&target, &["import", first.to_str().expect("path")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to change"),
        "{out:?}"
    );
    let second = dir.join("second.yaml");
    let out = cli(&target, &["export", "-o", second.to_str().expect("path")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(&first).expect("first"),
        std::fs::read(&second).expect("second"),
        "export -> import -> export is byte-identical across stores"
    );

    // check: 0 allowed, 3 denied, by id or alias, with the reasons on request.
    let args = |subject: &'static str, resource: &'static str| {
        vec![
            "check",
            "--subject",
            subject,
            "--action",
            "contoso.expenses/reports/approve",
            "--resource",
            resource,
        ]
    };
    let out = cli(&target, &args("alice@contoso.com", "/applications/a"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("allow: "));
    let out = cli(&target, &args("alice@contoso.com", "/applications/b"));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let mut explained = args("alice@contoso.com", "/applications/a");
    explained.push("--explain");
    let out = cli(&target, &explained);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  - grant"), "{text}");
    assert!(text.contains("Expense Approver"), "{text}");
    let _ = alice;
    let out = cli(&target, &args("nobody@contoso.com", "/"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no principal has the alias"));
    // A bad file: exit 1 with every located problem on stderr.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "format: rolecall.directory/v1\ngroups:\n  - id: x\n    displayName: ''\n",
    )
    .expect("write");
    let out = cli(&target, &["import", bad.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/groups/0/id"), "{err}");
    assert!(err.contains("/groups/0/displayName"), "{err}");
    // Usage errors are 2.
    let out = cli(&target, &["check", "--subject", "x"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-import-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A bulk import (over the detailed-log limit, and bigger than `max_body_bytes`) logs one
/// `import` row, and another replica on the same database follows it by reloading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_logs_one_row_and_replicas_reload_on_postgres() {
    a_bulk_import_logs_one_row_and_replicas_reload(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_logs_one_row_and_replicas_reload_on_sqlite() {
    a_bulk_import_logs_one_row_and_replicas_reload(Backend::Sqlite).await;
}

/// A directory file making each of `users` a global reader of its own application.
fn readers_file(users: &[Uuid]) -> String {
    json!({
        "format": "rolecall.directory/v1",
        "roleAssignments": users.iter().map(|user| json!({
            "id": Uuid::new_v4(), "principalId": user, "principalType": "user",
            "roleDefinitionId": GLOBAL_READER, "directoryScopeId": format!("/applications/{user}")
        })).collect::<Vec<_>>()
    })
    .to_string()
}

/// `user`'s check on its own application through `app`, at `revision` or later.
async fn reads_app_at(app: &TestApp, user: Uuid, revision: &str) -> Reply {
    app.post(
        "/v1/check",
        &json!({"subject": {"principalId": user}, "action": "microsoft.directory/users/basic/read",
                "resource": format!("/applications/{user}"), "consistency": {"atLeast": revision}}),
    )
    .await
}

async fn a_bulk_import_logs_one_row_and_replicas_reload(backend: Backend) {
    let db = crate::common::db::fresh(backend).await;
    let first = TestApp::spawn(db.url.clone()).await;
    let second = TestApp::spawn(db.url.clone()).await;
    let n = rolecall::store::DETAILED_CHANGES_LIMIT + 1;
    let users: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let file = readers_file(&users);
    assert!(
        file.len() > 1 << 20,
        "bigger than max_body_bytes: {}",
        file.len()
    );
    let r = import(&first, &file, "application/json", "").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(kind(&r.body, "roleAssignments")["created"], n);
    let revision = r.body["revision"].as_str().expect("revision").to_owned();
    let changes = first.get("/v1/changes?limit=10").await;
    let rows = changes.body["value"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "one summary row: {rows:?}");
    assert_eq!(rows[0]["entityType"], "import");
    assert_eq!(rows[0]["after"]["detailed"], false);
    let last = users[n - 1];
    for app in [&first, &second] {
        let r = reads_app_at(app, last, &revision).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.body["allowed"], true, "{r:?}");
    }
}

/// A detailed import logs each object, more than a write hands straight to its replica's
/// sync (`LOCAL_COMMIT_CHANGES`): the importing replica reads it from the change log
/// instead, and still reads its own write at once.
async fn a_detailed_import_too_large_to_hand_over_is_read_back(backend: Backend) {
    let db = crate::common::db::fresh(backend).await;
    let first = TestApp::spawn(db.url.clone()).await;
    let second = TestApp::spawn(db.url.clone()).await;
    let n = rolecall::store::LOCAL_COMMIT_CHANGES + 1;
    assert!(n <= rolecall::store::DETAILED_CHANGES_LIMIT);
    let users: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let file = readers_file(&users);
    let r = import(&first, &file, "application/json", "").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(kind(&r.body, "roleAssignments")["created"], n);
    let revision = r.body["revision"].as_str().expect("revision").to_owned();
    assert_eq!(
        change_count(&first).await,
        n + 1,
        "every object and the summary"
    );
    for user in [users[0], users[n - 1]] {
        assert!(
            check(
                &first,
                &user.to_string(),
                "microsoft.directory/users/basic/read",
                &format!("/applications/{user}")
            )
            .await,
            "the importing replica reads its own write"
        );
        let r = reads_app_at(&second, user, &revision).await;
        assert_eq!(r.body["allowed"], true, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detailed_import_too_large_to_hand_over_is_read_back_on_postgres() {
    a_detailed_import_too_large_to_hand_over_is_read_back(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detailed_import_too_large_to_hand_over_is_read_back_on_sqlite() {
    a_detailed_import_too_large_to_hand_over_is_read_back(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_file_over_max_import_bytes_is_a_413_and_imports_nothing() {
    let env = env_on(Backend::Sqlite, |_, _, config| {
        config.max_import_bytes = 64 * 1024;
        // Any other body stays under the smaller general limit.
        config.max_body_bytes = 16 * 1024;
    })
    .await;
    let app = &env.app;
    let before = change_count(app).await;
    // Above the general limit but within the import limit: read, then refused as YAML.
    let file = format!("groups:\n{}", "  - not a group\n".repeat(2_000));
    assert!(file.len() > 16 * 1024 && file.len() < 64 * 1024);
    let read = import(app, &file, "application/yaml", "").await;
    assert_eq!(read.status, StatusCode::BAD_REQUEST, "{}", read.body);
    // Over the import limit.
    let file = format!("groups:\n{}", "  - not a group\n".repeat(5_000));
    let refused = import(app, &file, "application/yaml", "").await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.body
    );
    assert_eq!(refused.problem(), "payload-too-large");
    assert_eq!(
        refused.body["detail"],
        "a directory file is at most 65536 bytes (`max_import_bytes`)"
    );
    assert_eq!(change_count(app).await, before, "nothing was imported");
}
