//! The CLI's client commands (`rolecall check`, `export`, `import`): they talk to a running
//! server over HTTP, as any other client does.
//!
//! Exit codes: 0 done (for `check`, allowed), 1 an error (the server's problem document is
//! printed), 2 a usage error (clap), 3 `check` answered deny.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// Exit code of a `check` that was answered deny.
pub const EXIT_DENIED: u8 = 3;

/// Where the server is and who is calling.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(
        long,
        env = "ROLECALL_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// The tenant to act in (`Rolecall-Tenant`); default: the caller's own (a token's
    /// `tid`) or the server's default tenant (the admin key).
    #[arg(long, env = "ROLECALL_TENANT", global = true)]
    pub tenant: Option<String>,
}

/// `rolecall check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    connection: Connection,
    /// The subject: an object id, or an alias of the principal directory.
    #[arg(long)]
    subject: String,
    /// The action, e.g. `microsoft.directory/applications/credentials/update`.
    #[arg(long)]
    action: String,
    /// The resource path, e.g. `/applications/{id}` (`/` for the whole directory).
    #[arg(long)]
    resource: String,
    /// Print the reasons: which assignment, role, pattern and scope decided.
    #[arg(long)]
    explain: bool,
    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

/// `rolecall export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    connection: Connection,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// JSON instead of YAML.
    #[arg(long)]
    json: bool,
}

/// `rolecall import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    connection: Connection,
    /// The directory file (YAML or JSON, as `rolecall export` writes it); `-` reads
    /// standard input.
    file: PathBuf,
    /// Print what would change and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete every object the file does not list.
    #[arg(long)]
    prune: bool,
    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

/// An HTTP client for one server and credential.
struct Client {
    http: reqwest::Client,
    base: String,
    credential: Option<String>,
    tenant: Option<String>,
}

impl Client {
    fn new(connection: &Connection, timeout: Duration) -> anyhow::Result<Client> {
        // A token (`ROLECALL_TOKEN`) first, else the admin key.
        let credential = std::env::var("ROLECALL_TOKEN")
            .ok()
            .or_else(|| std::env::var("ROLECALL_ADMIN_KEY").ok())
            .filter(|c| !c.trim().is_empty());
        Ok(Client {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            base: connection.server.trim_end_matches('/').to_owned(),
            credential,
            tenant: connection.tenant.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(credential);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header("rolecall-tenant", tenant);
        }
        request
    }

    /// Sends `request`; a non-2xx answer becomes an error carrying its problem document.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        Err(anyhow::anyhow!(describe_problem(status, &body)))
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let body = self.send(request).await?.bytes().await?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// A failed answer for people: the problem's title and detail, then each field error.
fn describe_problem(status: reqwest::StatusCode, body: &[u8]) -> String {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        return format!("the server answered {status}");
    };
    let mut text = format!(
        "{} ({status})",
        problem["title"].as_str().unwrap_or("request failed")
    );
    if let Some(detail) = problem["detail"].as_str() {
        text.push_str(": ");
        text.push_str(detail);
    }
    for error in problem["errors"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  {}: {}",
            error["pointer"].as_str().unwrap_or(""),
            error["detail"].as_str().unwrap_or("")
        ));
    }
    text
}

/// A spinner on a terminal (stderr), nothing otherwise.
fn spinner(message: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Says what is happening: on the spinner when there is one, else as a plain line.
fn progress(bar: Option<&ProgressBar>, message: &str) {
    match bar {
        Some(bar) => bar.set_message(message.to_owned()),
        None => eprintln!("rolecall: {message}"),
    }
}

/// `rolecall check`.
pub async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.connection, Duration::from_secs(30))?;
    let principal_id = if uuid::Uuid::parse_str(&args.subject).is_ok() {
        args.subject.clone()
    } else {
        let query = serde_urlencoded::to_string([("alias", args.subject.as_str())])?;
        let found = client
            .json(client.request(reqwest::Method::GET, &format!("/v1/principals?{query}")))
            .await?;
        found["value"][0]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no principal has the alias `{}`", args.subject))?
            .to_owned()
    };
    let body = json!({
        "subject": {"principalId": principal_id},
        "action": args.action,
        "resource": args.resource,
        "explain": args.explain,
    });
    let answer = client
        .json(
            client
                .request(reqwest::Method::POST, "/v1/check")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?),
        )
        .await?;
    let allowed = answer["allowed"].as_bool().unwrap_or(false);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        writeln!(
            out,
            "{}: {} {} at {}",
            if allowed { "allow" } else { "deny" },
            args.subject,
            args.action,
            args.resource
        )?;
        if args.explain {
            write_reasons(&mut out, &answer)?;
        }
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

/// The explanation as an indented tree: each reason, then its fields.
fn write_reasons(out: &mut impl std::io::Write, answer: &Value) -> std::io::Result<()> {
    let reasons = answer["reasons"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if reasons.is_empty() {
        return writeln!(out, "  (no reasons given)");
    }
    for reason in reasons {
        writeln!(out, "  - {}", reason["kind"].as_str().unwrap_or("reason"))?;
        if let Value::Object(fields) = reason {
            let rest: serde_json::Map<String, Value> = fields
                .iter()
                .filter(|(key, _)| key.as_str() != "kind")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            write_tree(out, &Value::Object(rest), 2)?;
        }
    }
    Ok(())
}

fn write_tree(out: &mut impl std::io::Write, value: &Value, depth: usize) -> std::io::Result<()> {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::Object(_) | Value::Array(_) => {
                        writeln!(out, "{indent}{key}:")?;
                        write_tree(out, value, depth + 1)?;
                    }
                    scalar => writeln!(out, "{indent}{key}: {}", scalar_text(scalar))?,
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        writeln!(out, "{indent}-")?;
                        write_tree(out, item, depth + 1)?;
                    }
                    scalar => writeln!(out, "{indent}- {}", scalar_text(scalar))?,
                }
            }
        }
        scalar => writeln!(out, "{indent}{}", scalar_text(scalar))?,
    }
    Ok(())
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `rolecall export`.
pub async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.connection, Duration::from_secs(3600))?;
    let accept = if args.json {
        "application/json"
    } else {
        "application/yaml"
    };
    let bar = spinner("exporting");
    let mut response = client
        .send(
            client
                .request(reqwest::Method::GET, "/v1/export")
                .header("accept", accept),
        )
        .await?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if let Some(bar) = &bar {
            bar.set_message(format!("exporting: {} received", bytes_text(body.len())));
        }
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, &body)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            progress(
                bar.as_ref(),
                &format!("exported {} to {}", bytes_text(body.len()), path.display()),
            );
        }
        None => std::io::stdout().lock().write_all(&body)?,
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(ExitCode::SUCCESS)
}

/// `rolecall import`.
pub async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.connection, Duration::from_secs(3600))?;
    let body = if args.file.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut body)?;
        body
    } else {
        std::fs::read(&args.file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?
    };
    let is_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let bar = spinner("importing");
    progress(
        bar.as_ref(),
        &format!(
            "{} {} of {}",
            if args.dry_run {
                "planning the import of"
            } else {
                "importing"
            },
            bytes_text(body.len()),
            args.file.display()
        ),
    );
    let query = format!("?dryRun={}&prune={}", args.dry_run, args.prune);
    let answer = client
        .json(
            client
                .request(reqwest::Method::POST, &format!("/v1/import{query}"))
                .header(
                    "content-type",
                    if is_json {
                        "application/json"
                    } else {
                        "application/yaml"
                    },
                )
                .body(body),
        )
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let answer = answer?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        write_report(&mut out, &answer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The import's answer for people: per kind, what is (or would be) created, changed and
/// removed, with the keys the server listed.
fn write_report(out: &mut impl std::io::Write, answer: &Value) -> std::io::Result<()> {
    let dry_run = answer["dryRun"].as_bool().unwrap_or(false);
    let total = answer["total"].as_u64().unwrap_or(0);
    for kind in answer["kinds"].as_array().into_iter().flatten() {
        let count = |name: &str| kind[name].as_u64().unwrap_or(0);
        if count("created") + count("updated") + count("deleted") == 0 {
            continue;
        }
        writeln!(
            out,
            "{}: {} to create, {} to update, {} to delete ({} unchanged)",
            kind["kind"].as_str().unwrap_or("?"),
            count("created"),
            count("updated"),
            count("deleted"),
            count("unchanged")
        )?;
        for (list, sign) in [("create", '+'), ("update", '~'), ("delete", '-')] {
            let keys = kind[list].as_array().map(Vec::as_slice).unwrap_or(&[]);
            for key in keys {
                writeln!(out, "  {sign} {}", key.as_str().unwrap_or(""))?;
            }
            let listed = keys.len() as u64;
            let all = count(match list {
                "create" => "created",
                "update" => "updated",
                _ => "deleted",
            });
            if all > listed {
                writeln!(out, "  {sign} ... and {} more", all - listed)?;
            }
        }
    }
    let revision = answer["revision"].as_str().unwrap_or("?");
    let digest = answer["digest"].as_str().unwrap_or("?");
    if dry_run {
        writeln!(
            out,
            "dry run: {total} changes planned, nothing written ({digest})"
        )
    } else if answer["applied"].as_bool().unwrap_or(false) {
        writeln!(
            out,
            "imported: {total} changes at revision {revision} ({digest})"
        )
    } else {
        writeln!(
            out,
            "nothing to change: the directory already matches ({digest})"
        )
    }
}

fn bytes_text(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
