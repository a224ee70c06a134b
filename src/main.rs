//! The `rolecall` command: parses the CLI and wires things up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use rolecall::config::{Config, Overrides};
use rolecall::model::Catalog;
use rolecall::store::SqlStore;
use rolecall::App;
use tracing_subscriber::EnvFilter;

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
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "ROLECALL_LISTEN")]
    listen: Option<String>,
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
        admin_key: std::env::var("ROLECALL_ADMIN_KEY").ok(),
        log: std::env::var("ROLECALL_LOG").ok(),
        ..Overrides::default()
    }
}

fn init_tracing(filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(common) => migrate(common).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rolecall: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(Overrides {
        listen: args.listen,
        default_tenant: args.default_tenant,
        dev: args.dev,
        ..overrides(args.common)
    })?;
    init_tracing(&config.log);
    // Print the key only when dev mode made (or reused) it; a supplied key stays unprinted.
    let dev_key = config
        .dev_key_file
        .clone()
        .map(|file| (file, config.admin_key.expose().to_owned()));
    let app = App::build(config).await?;
    let addr = app.local_addr()?;
    if let Some((file, key)) = dev_key {
        println!("rolecall: dev mode; admin key: {key}");
        println!(
            "rolecall: (stored in {}; send it as `Authorization: Bearer <key>`)",
            file.display()
        );
    }
    println!("rolecall: listening on http://{addr}");
    tracing::info!(%addr, "listening");
    app.run(rolecall::shutdown_signal()).await
}

async fn migrate(common: CommonArgs) -> anyhow::Result<()> {
    let mut o = overrides(common);
    // Migrating needs no admin key; give the validator a placeholder it accepts.
    o.admin_key
        .get_or_insert_with(|| "migrate-needs-no-admin-key".to_owned());
    let config = Config::load(o)?;
    init_tracing(&config.log);
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let store = SqlStore::connect(&config.database_url, Arc::new(Catalog::builtin()?)).await?;
    store.migrate().await?;
    println!("rolecall: migrations applied");
    Ok(())
}
