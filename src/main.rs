//! The `rolecall` command: parses the CLI and wires things up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use rolecall::config::{Config, Overrides};
use rolecall::model::Catalog;
use rolecall::store::{Backend, SqlStore};
use rolecall::App;

/// Rolecall: a policy decision point for Entra-style roles.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// Mint a token from the dev issuer's key (the key `serve --dev` trusts).
    DevToken(DevTokenArgs),
    /// Make a principal Privileged Role Administrator at `/` and lift the deny assignments
    /// on it that fence the admin API: sets up a fresh deployment, or recovers a locked-out
    /// one, without the admin key.
    Bootstrap(BootstrapArgs),
    /// Exit 0 when the server answers `/readyz` with 200, else 1: a container
    /// `HEALTHCHECK` for images with no shell or curl.
    Healthcheck(HealthcheckArgs),
    /// Ask a running server for a decision: exit 0 allowed, 3 denied, 1 on an error.
    Check(rolecall::client::CheckArgs),
    /// Write a tenant's whole directory as a file (YAML, or JSON with `--json`): custom
    /// roles, assignments, deny assignments, groups and units with their members,
    /// principals and resources, ids kept, in a stable order.
    Export(rolecall::client::ExportArgs),
    /// Apply a directory file declaratively, in one transaction and one revision:
    /// `--dry-run` prints the changes and makes none, `--prune` also deletes what the file
    /// does not list. Importing the same file again changes nothing.
    Import(rolecall::client::ImportArgs),
}

#[derive(Args)]
struct HealthcheckArgs {
    /// The server's listen address; an unspecified IP (`0.0.0.0`, `[::]`) is asked on
    /// loopback.
    #[arg(long, env = "ROLECALL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Ask this URL instead (e.g. `http://127.0.0.1:8080/readyz`).
    #[arg(long)]
    url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(Args)]
struct DevTokenArgs {
    /// Data directory holding `dev-signing-key` (created when absent).
    #[arg(long, env = "ROLECALL_DATA_DIR", default_value = "./.rolecall")]
    data_dir: PathBuf,
    /// The principal (`oid`).
    #[arg(long)]
    oid: uuid::Uuid,
    /// The tenant (`tid`); default: none, so the server's default tenant applies.
    #[arg(long)]
    tid: Option<uuid::Uuid>,
    /// Group ids for the `groups` claim (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<uuid::Uuid>,
    /// Role template ids for the `wids` claim (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    wids: Vec<uuid::Uuid>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

#[derive(Args)]
struct BootstrapArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The principal (`oid`) to make Privileged Role Administrator at `/`.
    #[arg(long)]
    admin: uuid::Uuid,
    /// The tenant; default: the configured default tenant.
    #[arg(long, env = "ROLECALL_DEFAULT_TENANT")]
    tenant: Option<String>,
    /// Also delete deny assignments on the admin's groups that fence the admin API. They
    /// bind every member of those groups, so by default they are only reported.
    #[arg(long)]
    remove_group_denies: bool,
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// TOML config file.
    #[arg(long, env = "ROLECALL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite file, dev admin key).
    #[arg(long, env = "ROLECALL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://...` or `sqlite://...`; default: SQLite in the data directory.
    #[arg(long, env = "ROLECALL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Log lines on stderr: `json`, `pretty` (text), or `auto` (text on a terminal, else
    /// JSON) [default: auto].
    #[arg(long, env = "ROLECALL_LOG_FORMAT", value_parser = ["auto", "json", "pretty"])]
    log_format: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "ROLECALL_LISTEN")]
    listen: Option<String>,
    /// Serve /metrics on this address instead of the main one (`[metrics] listen`).
    #[arg(long, env = "ROLECALL_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Tenant for admin-key calls without a Rolecall-Tenant header.
    #[arg(long, env = "ROLECALL_DEFAULT_TENANT")]
    default_tenant: Option<String>,
    /// Development mode: generate an admin key on first start and print it.
    #[arg(long)]
    dev: bool,
}

fn overrides(common: CommonArgs) -> Overrides {
    Overrides {
        config: common.config,
        data_dir: common.data_dir,
        database_url: common.database_url,
        log_format: common.log_format,
        admin_key: std::env::var("ROLECALL_ADMIN_KEY").ok(),
        log: std::env::var("ROLECALL_LOG").ok(),
        ..Overrides::default()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Serve(args) => done(serve(args).await),
        Command::Migrate(common) => done(migrate(common).await),
        Command::DevToken(args) => done(dev_token(args)),
        Command::Bootstrap(args) => done(bootstrap(args).await),
        Command::Healthcheck(args) => done(healthcheck(args).await),
        Command::Check(args) => rolecall::client::check(args).await,
        Command::Export(args) => rolecall::client::export(args).await,
        Command::Import(args) => rolecall::client::import(args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rolecall: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(Overrides {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        default_tenant: args.default_tenant,
        dev: args.dev,
        ..overrides(args.common)
    })?;
    let _telemetry =
        rolecall::telemetry::init(&config.log, config.log_format, config.otel.as_ref())?;
    // Print the key only when dev mode made (or reused) it; a supplied key stays unprinted.
    let dev_key = config.dev_key_file.clone().and_then(|file| {
        config
            .admin_key
            .as_ref()
            .map(|key| (file, key.expose().to_owned()))
    });
    let dev = config.dev;
    let data_dir = config.data_dir.clone();
    let app = App::build(config).await?;
    let addr = app.local_addr()?;
    if dev {
        let banner = "*".repeat(78);
        println!("{banner}");
        println!("rolecall: DEV MODE. Not for production: it trusts a local signing key");
        println!(
            "rolecall: ({}) as issuer `{}`, and a generated admin key.",
            data_dir.join(rolecall::auth::dev::DEV_KEY_FILE).display(),
            rolecall::auth::dev::DEV_ISSUER
        );
        println!(
            "rolecall: mint a token: rolecall dev-token --data-dir {} --oid <uuid>",
            data_dir.display()
        );
        println!("{banner}");
        tracing::warn!("dev mode: trusting the local dev issuer; do not use in production");
    }
    if let Some((file, key)) = dev_key {
        println!("rolecall: dev admin key (break-glass): {key}");
        println!(
            "rolecall: (stored in {}; send it as `Authorization: Bearer <key>`)",
            file.display()
        );
    }
    println!("rolecall: listening on http://{addr}");
    tracing::info!(%addr, "listening");
    app.run(rolecall::shutdown_signal()).await
}

async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let url = match args.url {
        Some(url) => url,
        None => {
            let mut addr: std::net::SocketAddr = args.listen.parse().map_err(|_| {
                anyhow::anyhow!(
                    "`{}` is not a socket address like 127.0.0.1:8080",
                    args.listen
                )
            })?;
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{addr}/readyz")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(args.timeout))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

fn dev_token(args: DevTokenArgs) -> anyhow::Result<()> {
    let key = rolecall::auth::dev::DevKey::load_or_create(&args.data_dir)?;
    let token = key.mint(&rolecall::auth::dev::DevClaims {
        oid: args.oid,
        tid: args.tid,
        groups: args.groups,
        wids: args.wids,
        ttl: std::time::Duration::from_secs(args.ttl),
    })?;
    println!("{token}");
    Ok(())
}

/// Loads the config for a command that only touches the database, connects, and migrates.
async fn open_store(mut o: Overrides) -> anyhow::Result<(Config, SqlStore)> {
    // Such commands need no credential; give the validator a placeholder it accepts.
    o.admin_key
        .get_or_insert_with(|| "store-commands-need-no-admin-key".to_owned());
    let config = Config::load(o)?;
    // Only `serve` exports traces.
    let _telemetry = rolecall::telemetry::init(&config.log, config.log_format, None)?;
    if config.database_url.backend() == Backend::Sqlite {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let store = SqlStore::open(&config.database_url, Arc::new(Catalog::builtin()?)).await?;
    store.migrate().await?;
    Ok((config, store))
}

async fn bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let mut o = overrides(args.common);
    o.default_tenant = args.tenant;
    let (config, store) = open_store(o).await?;
    let (admin, tenant) = (args.admin, config.default_tenant);
    let recovery = rolecall::recover_admin(
        &store,
        tenant,
        admin,
        "bootstrap-cli",
        args.remove_group_denies,
    )
    .await?;
    for old in &recovery.replaced {
        println!(
            "rolecall: removed role assignment {} (Privileged Role Administrator at /, not in force now)",
            old.id
        );
    }
    if recovery.assigned {
        println!("rolecall: {admin} is now Privileged Role Administrator at / in tenant {tenant}");
    } else {
        println!(
            "rolecall: {admin} already holds Privileged Role Administrator at / in tenant {tenant}"
        );
    }
    for deny in &recovery.removed {
        println!("rolecall: removed deny assignment {}", describe(deny));
    }
    for group in &recovery.group_denies {
        let via: Vec<String> = group.via.iter().map(ToString::to_string).collect();
        if group.removed {
            println!(
                "rolecall: removed deny assignment {} (reaches {admin} through group {})",
                describe(&group.deny),
                via.join(" > ")
            );
        } else {
            println!(
                "rolecall: warning: kept deny assignment {}: it reaches {admin} through group {} \
                 and binds every member of that group (--remove-group-denies deletes it)",
                describe(&group.deny),
                via.join(" > ")
            );
        }
    }
    if !recovery.still_denied.is_empty() {
        anyhow::bail!(
            "{admin} still may not {} at /; see the warnings above",
            recovery.still_denied.join(", ")
        );
    }
    println!("rolecall: {admin} can administer tenant {tenant}");
    Ok(())
}

/// One line about a deny assignment: id, name, principal, actions and scope.
fn describe(deny: &rolecall::model::DenyAssignment) -> String {
    let actions: Vec<&str> = deny.actions.iter().map(|a| a.as_str()).collect();
    format!(
        "{} `{}` on {} ({} at {})",
        deny.id,
        deny.display_name,
        deny.principal_id,
        actions.join(", "),
        deny.directory_scope_id
    )
}

async fn migrate(common: CommonArgs) -> anyhow::Result<()> {
    open_store(overrides(common)).await?;
    println!("rolecall: migrations applied");
    Ok(())
}
