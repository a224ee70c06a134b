//! The README's quick start, run for real: the `rolecall` binary in dev mode, tokens from
//! `rolecall dev-token`, and `rolecall bootstrap` (also as the lock-out recovery).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rolecall");
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// `rolecall serve --dev` on a free port; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_dev(data_dir: &Path, database_url: Option<&str>) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut child = command
        .env_remove("ROLECALL_ADMIN_KEY")
        .env_remove("ROLECALL_DATABASE_URL")
        .env_remove("ROLECALL_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rolecall serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let base = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve exited before listening: {seen:?}"))
            .expect("a line");
        if let Some(url) = line.strip_prefix("rolecall: listening on ") {
            break url.trim().to_owned();
        }
        seen.push(line);
    };
    assert!(
        seen.iter().any(|l| l.contains("DEV MODE")),
        "dev mode says so loudly: {seen:?}"
    );
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base }
}

fn dev_token(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("dev-token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("dev-token runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_works_with_dev_tokens_and_bootstrap() {
    let dir = std::env::temp_dir().join(format!("rolecall-cli-{}", Uuid::new_v4()));
    let admin = Uuid::new_v4();
    let bootstrapped = Uuid::new_v4();
    // Bootstrap before the first start (it creates and migrates the database).
    let out = Command::new(BIN)
        .args([
            "bootstrap",
            "--admin",
            &bootstrapped.to_string(),
            "--data-dir",
        ])
        .arg(&dir)
        .env_remove("ROLECALL_DATABASE_URL")
        .env_remove("ROLECALL_CONFIG")
        .output()
        .expect("bootstrap runs");
    assert!(out.status.success(), "{out:?}");

    let server = serve_dev(&dir, None);
    let client = reqwest::Client::new();
    let token = dev_token(&dir, &["--oid", &admin.to_string(), "--wids", GLOBAL_ADMIN]);
    let reply = client
        .post(format!("{}/v1/roleDefinitions", server.base))
        .bearer_auth(&token)
        .json(&json!({
            "displayName": "Expense approver",
            "rolePermissions": [{"allowedResourceActions": ["contoso.expenses/reports/approve"]}],
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::CREATED);
    let role: serde_json::Value = reply.json().await.expect("json");

    let user = Uuid::new_v4();
    let reply = client
        .post(format!("{}/v1/roleAssignments", server.base))
        .bearer_auth(&token)
        .json(&json!({
            "principalId": user, "principalType": "user",
            "roleDefinitionId": role["id"], "directoryScopeId": "/expenses",
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::CREATED);

    // The user asks about itself with its own token.
    let user_token = dev_token(&dir, &["--oid", &user.to_string()]);
    let reply = client
        .post(format!("{}/v1/check", server.base))
        .bearer_auth(&user_token)
        .json(&json!({
            "subject": {"token": user_token},
            "action": "contoso.expenses/reports/approve",
            "resource": "/expenses/42",
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::OK);
    let decision: serde_json::Value = reply.json().await.expect("json");
    assert_eq!(decision["allowed"], true, "{decision}");

    // Without rights, a valid token is refused with 403; the bootstrapped admin is not.
    let reply = client
        .get(format!("{}/v1/roleAssignments", server.base))
        .bearer_auth(&user_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
    let reply = client
        .get(format!("{}/v1/roleAssignments", server.base))
        .bearer_auth(dev_token(&dir, &["--oid", &bootstrapped.to_string()]))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::OK);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rolecall bootstrap --admin <admin>` (plus `extra`) against the data directory's SQLite
/// file, or against `database_url`.
fn bootstrap(data_dir: &Path, database_url: Option<&str>, admin: Uuid, extra: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(["bootstrap", "--admin", &admin.to_string(), "--data-dir"])
        .arg(data_dir)
        .args(extra);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    command
        .env_remove("ROLECALL_DATABASE_URL")
        .env_remove("ROLECALL_CONFIG")
        .env_remove("ROLECALL_ADMIN_KEY")
        .output()
        .expect("bootstrap runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One call with a bearer token; the status and the JSON body (`Null` when none).
async fn send(
    server: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await.expect("sent");
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// Assigns Global Reader at `/` to a fresh user with `token`; the status.
async fn assign_at_root(server: &Server, token: &str) -> StatusCode {
    let body = json!({
        "principalId": Uuid::new_v4(), "principalType": "user",
        "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/",
    });
    send(
        server,
        Method::POST,
        "/v1/roleAssignments",
        token,
        Some(body),
    )
    .await
    .0
}

/// Waits (the server follows the database on its own) until `token` may assign at `/`.
async fn eventually_assigns_at_root(server: &Server, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = assign_at_root(server, token).await;
        if status == StatusCode::CREATED {
            return;
        }
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            Instant::now() < deadline,
            "still locked out after the recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(server: &Server, token: &str, path: &str, body: Value) -> String {
    let (status, body) = send(server, Method::POST, path, token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
    body["id"].as_str().expect("an id").to_owned()
}

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

/// Locks two admins out with a token of a third, while the server runs, and recovers them
/// with the CLI: one denied directly, one through a group.
async fn locked_out_admins_are_recovered(database_url: Option<&str>) {
    let dir = std::env::temp_dir().join(format!("rolecall-cli-{}", Uuid::new_v4()));
    let (admin, grouped) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(bootstrap(&dir, database_url, admin, &[]).status.success());
    assert!(bootstrap(&dir, database_url, grouped, &[]).status.success());
    let server = serve_dev(&dir, database_url);
    let token = dev_token(&dir, &["--oid", &admin.to_string()]);
    let grouped_token = dev_token(&dir, &["--oid", &grouped.to_string()]);
    let global = dev_token(
        &dir,
        &["--oid", &Uuid::new_v4().to_string(), "--wids", GLOBAL_ADMIN],
    );
    assert_eq!(assign_at_root(&server, &token).await, StatusCode::CREATED);

    // The lock-out: a deny on assignment management, and the role removed. A deny that
    // touches no admin action stays through the recovery.
    let fence = json!({
        "displayName": "No more assigning", "principalId": admin, "principalType": "user",
        "actions": ["microsoft.directory/roleAssignments/*"], "directoryScopeId": "/",
    });
    let fence = create(&server, &global, "/v1/denyAssignments", fence).await;
    let unrelated = json!({
        "displayName": "No expenses", "principalId": admin, "principalType": "user",
        "actions": ["contoso.expenses/*"], "directoryScopeId": "/expenses",
    });
    let unrelated = create(&server, &global, "/v1/denyAssignments", unrelated).await;
    let (_, held) = send(
        &server,
        Method::GET,
        &format!("/v1/roleAssignments?principalId={admin}"),
        &global,
        None,
    )
    .await;
    for assignment in held["value"].as_array().expect("a list") {
        let path = format!("/v1/roleAssignments/{}", assignment["id"].as_str().unwrap());
        let (status, _) = send(&server, Method::DELETE, &path, &global, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The other admin is fenced through a group it belongs to.
    let group = create(
        &server,
        &global,
        "/v1/groups",
        json!({"displayName": "Admins"}),
    )
    .await;
    let members = format!("/v1/groups/{group}/members");
    let member = json!({"id": grouped, "type": "user"});
    create(&server, &global, &members, member).await;
    let group_fence = json!({
        "displayName": "Admins may not assign", "principalId": group, "principalType": "group",
        "actions": ["microsoft.directory/roleAssignments/allProperties/allTasks"],
        "directoryScopeId": "/",
    });
    let group_fence = create(&server, &global, "/v1/denyAssignments", group_fence).await;
    assert_eq!(assign_at_root(&server, &token).await, StatusCode::FORBIDDEN);
    assert_eq!(
        assign_at_root(&server, &grouped_token).await,
        StatusCode::FORBIDDEN
    );

    // Recovery of the directly denied admin, without the admin key, while the server runs.
    let out = bootstrap(&dir, database_url, admin, &[]);
    assert!(out.status.success(), "{out:?}");
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!("removed deny assignment {fence}")),
        "{printed}"
    );
    assert!(!printed.contains(&unrelated), "{printed}");
    eventually_assigns_at_root(&server, &token).await;
    let (_, left) = send(
        &server,
        Method::GET,
        &format!("/v1/denyAssignments?principalId={admin}"),
        &token,
        None,
    )
    .await;
    let left: Vec<&str> = left["value"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [unrelated.as_str()]);
    let (_, changes) = send(&server, Method::GET, "/v1/changes", &token, None).await;
    let by_cli: Vec<(&str, &str, &str)> = changes["value"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|c| c["actor"] == "bootstrap-cli")
        .map(|c| {
            (
                c["entityType"].as_str().unwrap(),
                c["op"].as_str().unwrap(),
                c["entityId"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        by_cli.contains(&("denyAssignment", "delete", fence.as_str())),
        "{by_cli:?}"
    );
    assert!(by_cli
        .iter()
        .any(|c| c.0 == "roleAssignment" && c.1 == "create"));

    // A group deny binds every member: kept and named unless asked, and the command fails
    // while the admin is still fenced.
    let out = bootstrap(&dir, database_url, grouped, &[]);
    assert!(!out.status.success(), "{out:?}");
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!("kept deny assignment {group_fence}")),
        "{printed}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still may not"),
        "{out:?}"
    );
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("/v1/denyAssignments/{group_fence}"),
        &global,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let out = bootstrap(&dir, database_url, grouped, &["--remove-group-denies"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains(&format!("removed deny assignment {group_fence}")),
        "{out:?}"
    );
    eventually_assigns_at_root(&server, &grouped_token).await;

    // An admin whose Privileged Role Administrator assignment is not in force is locked out
    // too; the unique (principal, role, scope) must not keep the recovery from replacing it.
    let waiting = Uuid::new_v4();
    let later = json!({
        "principalId": waiting, "principalType": "user",
        "roleDefinitionId": "e8611ab8-c189-46e8-94e1-60213ab1f814", "directoryScopeId": "/",
        "startDateTime": "2099-01-01T00:00:00Z",
    });
    let later = create(&server, &global, "/v1/roleAssignments", later).await;
    let waiting_token = dev_token(&dir, &["--oid", &waiting.to_string()]);
    assert_eq!(
        assign_at_root(&server, &waiting_token).await,
        StatusCode::FORBIDDEN
    );
    let out = bootstrap(&dir, database_url, waiting, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains(&format!("removed role assignment {later}")),
        "{out:?}"
    );
    eventually_assigns_at_root(&server, &waiting_token).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

mod a_locked_out_admin_is_recovered_by_bootstrap_without_the_admin_key {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::locked_out_admins_are_recovered(None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let db = crate::common::db::fresh_postgres().await;
        super::locked_out_admins_are_recovered(Some(&db.url)).await;
    }
}
