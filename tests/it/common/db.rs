//! A fresh, empty database per test, on either backend: SQLite in a file of its own
//! temporary directory, or PostgreSQL as a new database named by a uuid on the server that
//! `ROLECALL_TEST_POSTGRES_URL` names. Dropping the [`TestDb`] removes it (best effort).
#![allow(dead_code)] // each test crate uses a different part of `common`

use std::path::PathBuf;
use std::sync::Arc;

use rolecall::model::Catalog;
use rolecall::store::{Backend, SqlStore};
use sqlx::{Connection, Executor};

/// The environment variable naming the PostgreSQL server tests create databases on, e.g.
/// `postgres://postgres:postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_ENV: &str = "ROLECALL_TEST_POSTGRES_URL";

/// One test's database; removed when dropped.
pub struct TestDb {
    /// Which backend.
    pub backend: Backend,
    /// The URL to connect to (holds the test server's credentials).
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    Postgres { server_url: String, name: String },
}

/// A fresh database on `backend`.
pub async fn fresh(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => fresh_sqlite().await,
        Backend::Postgres => fresh_postgres().await,
    }
}

/// A fresh SQLite database: a file (created on connect) in a new temporary directory.
pub async fn fresh_sqlite() -> TestDb {
    let dir = std::env::temp_dir().join(format!("rolecall-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create the test database directory");
    let url = format!("sqlite://{}", dir.join("rolecall.db").display());
    TestDb {
        backend: Backend::Sqlite,
        url,
        cleanup: Cleanup::Directory(dir),
    }
}

/// A fresh PostgreSQL database `rolecall_test_<uuid>`. Panics when
/// `ROLECALL_TEST_POSTGRES_URL` is unset: PostgreSQL tests never skip silently.
pub async fn fresh_postgres() -> TestDb {
    let server_url = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_ENV} is not set; PostgreSQL tests need a server, e.g. \
             {POSTGRES_ENV}=postgres://postgres:postgres@127.0.0.1:5432/postgres"
        )
    });
    let name = format!("rolecall_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&server_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = conn.close().await;
    TestDb {
        backend: Backend::Postgres,
        url: with_database(&server_url, &name),
        cleanup: Cleanup::Postgres { server_url, name },
    }
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl TestDb {
    /// A migrated store on this database, with the shipped catalog.
    pub async fn store(&self) -> SqlStore {
        let catalog = Arc::new(Catalog::builtin().expect("the built-in catalog parses"));
        let store = SqlStore::connect(&self.url, catalog)
            .await
            .expect("store connects");
        store.migrate().await.expect("migrations apply");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { server_url, name } => {
                // Drop runs inside the test's runtime, which must not block on itself: drop
                // the database from a thread with a runtime of its own.
                let (server_url, database) = (server_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&server_url).await.ok()?;
                        let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                        conn.execute(sql.as_str()).await.ok()?;
                        conn.close().await.ok()
                    })
                })
                .join();
                if !matches!(dropped, Ok(Some(()))) {
                    eprintln!("could not drop test database {name}; drop it by hand");
                }
            }
        }
    }
}
