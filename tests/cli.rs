//! The README's quick start, run for real: the `rolecall` binary in dev mode, tokens from
//! `rolecall dev-token`, and `rolecall bootstrap`.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;
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

fn serve_dev(data_dir: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
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

    let server = serve_dev(&dir);
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
