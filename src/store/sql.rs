//! The one SQL implementation of [`Store`], for PostgreSQL and SQLite alike, through sqlx's
//! `Any` driver: this module connects and migrates; each aggregate's store lives in its own
//! file (`roles`, `assignments`, `directory`, `principals`, `feed`), over the shared rows and
//! write path.
//!
//! Every query is written once, with `$N` placeholders (sqlx-sqlite binds `$N` to argument
//! N), and uses only what the `Any` driver carries: `i64`, `bool` (bound, never read back),
//! text and their `Option`s. Ids are canonical lowercase uuid text, timestamps RFC 3339
//! text, and each row keeps its entity as JSON in `body`, which reads decode. The
//! [`Backend`] switch covers the few dialect differences: how a write transaction begins
//! (SQLite takes its write lock up front), the `NOTIFY` on commit and the `LISTEN` for
//! wake-ups (PostgreSQL only), and how the dump's consistent read begins.
//!
//! Writes go through `write::WriteTx`: it begins the transaction, increments the revision row
//! first (taking PostgreSQL's row lock or SQLite's write lock before any read, so writers
//! are serialized and every check-then-insert is race-free), logs one `changes` row per
//! object touched, and commits or rolls back as a whole. Role assignment creation is
//! group-committed (`group_commit`): concurrent creates share one such transaction.

use std::fmt;
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool};
use uuid::Uuid;

mod assignments;
mod directory;
mod feed;
mod group_commit;
mod import;
mod pim;
mod principals;
mod resources;
mod roles;
mod rows;
mod write;

use rows::{get_row, list_page, Arg, Filter, KeyKind, Table};
use write::WriteTx;

use super::{
    Actor, Backend, DatabaseUrl, Page, PageRequest, Store, StoreError, StoreResult, Stored,
};
use crate::model::{Catalog, TenantId};

/// How long a pooled connection may sit idle and still be handed out without a ping.
const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// A PostgreSQL pool of up to `max` connections whose waits are bounded by `settings`, with
/// `statement_timeout` set on each connection when given.
fn postgres_pool(
    settings: &PoolSettings,
    max: u32,
    statement_timeout: Option<Duration>,
) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(settings.acquire_timeout)
        // sqlx pings a connection when it is released and, by default, again when it is
        // acquired: one more round trip in front of every transaction (issue 16). A
        // connection back in the pool for less than `PING_AFTER_IDLE` passed its release
        // ping that recently and is handed out as it is (HikariCP's `aliveBypassWindowMs`
        // does the same); one idle for longer is pinged first, and dropped if that fails.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        });
    let Some(timeout) = statement_timeout else {
        return options;
    };
    let set = format!("SET statement_timeout = {}", timeout.as_millis());
    options.after_connect(move |conn, _meta| {
        let set = set.clone();
        Box::pin(async move {
            sqlx::query(&set).execute(&mut *conn).await?;
            Ok(())
        })
    })
}

impl Backend {
    /// How a write transaction begins. SQLite's `IMMEDIATE` takes the write lock at once
    /// (waiting up to `busy_timeout`), so no transaction ever has to upgrade a read lock;
    /// PostgreSQL takes the revision row lock with the first statement instead.
    fn begin_write(self) -> &'static str {
        match self {
            Backend::Postgres => "BEGIN",
            Backend::Sqlite => "BEGIN IMMEDIATE",
        }
    }

    /// How the dump's read transaction begins: one snapshot for every statement in it.
    /// SQLite (WAL) holds the snapshot of the first read until the transaction ends.
    fn begin_snapshot(self) -> &'static str {
        match self {
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Backend::Sqlite => "BEGIN",
        }
    }
}

/// The channel PostgreSQL notifies on commit; the payload is the write's revision (replicas
/// treat it only as a wake-up and read `changes` themselves).
const NOTIFY_CHANNEL: &str = "rolecall_changes";

/// Set on every new SQLite connection: WAL lets readers run beside the one writer,
/// `busy_timeout` makes writers queue for the lock instead of failing, and foreign keys
/// are off by default in SQLite.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

/// How a PostgreSQL pool treats an unreachable or stuck database: every wait is bounded, so
/// an outage answers `503 store-unavailable` within a known time instead of hanging.
/// SQLite, a local file, keeps sqlx's defaults (its writers queue on `busy_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// How long a store call waits for a pooled connection, reconnecting included (sqlx
    /// retries a refused connection until then). A database that is down fails each call
    /// after this long: the bound on a write's `503` during an outage.
    pub acquire_timeout: Duration,
    /// How long one connection attempt outside the pool may take: the `LISTEN` connection
    /// sync follows. (sqlx has no per-attempt bound inside the pool; there, connecting
    /// counts against `acquire_timeout`.)
    pub connect_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every pooled connection: a statement the server
    /// runs longer (a lock wait included) is cancelled. Lifted for the dump and migrations,
    /// which read whole tables.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            acquire_timeout: Duration::from_millis(1500),
            connect_timeout: Duration::from_millis(1000),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

static MIGRATIONS_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQL store: a connection pool, the database it talks to and the built-in catalog
/// merged into role reads. Cheap to share behind an `Arc`.
pub struct SqlStore {
    pool: AnyPool,
    /// The backend, and the URL the `LISTEN` connection of [`ChangeFeed::subscribe`] uses.
    ///
    /// [`ChangeFeed::subscribe`]: super::ChangeFeed::subscribe
    url: DatabaseUrl,
    catalog: Arc<Catalog>,
    /// The bounds the pool was built with (the `LISTEN` connection and migrations reuse
    /// them).
    settings: PoolSettings,
    /// The queue of the task that group-commits role assignment creation, started on first
    /// use (`group_commit`).
    writer: OnceLock<group_commit::Queue>,
    /// Where committed writes go for this process's sync ([`ChangeFeed::local_commits`]).
    ///
    /// [`ChangeFeed::local_commits`]: super::ChangeFeed::local_commits
    commits: write::CommitSink,
}

impl fmt::Debug for SqlStore {
    // The URL may hold a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.url.backend())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects a pool to the database `url` names: [`SqlStore::open`] for a URL that is not
    /// parsed yet (tests, tools).
    pub async fn connect(url: &str, catalog: Arc<Catalog>) -> StoreResult<SqlStore> {
        let url = DatabaseUrl::parse(url).map_err(|_| {
            StoreError::Unavailable(sqlx::Error::Configuration(
                "the database url must start with postgres://, postgresql:// or sqlite:".into(),
            ))
        })?;
        SqlStore::open(&url, catalog).await
    }

    /// Connects a pool to `url` with the default [`PoolSettings`]. An SQLite file is created
    /// when missing (its directory must exist). Does not migrate: call
    /// [`SqlStore::migrate`].
    pub async fn open(url: &DatabaseUrl, catalog: Arc<Catalog>) -> StoreResult<SqlStore> {
        let store = SqlStore::open_with(url, catalog, PoolSettings::default()).await?;
        if store.backend() == Backend::Postgres {
            // Connect now, so a tool learns at once that the database is unreachable.
            drop(store.pool.acquire().await?);
        }
        Ok(store)
    }

    /// A store on `url` bounded by `settings`. A PostgreSQL pool connects on first use, so a
    /// server can start, and say it is not ready, while the database is down; SQLite opens
    /// its file now (creating it when missing), so a bad path fails here, at once.
    pub async fn open_with(
        url: &DatabaseUrl,
        catalog: Arc<Catalog>,
        settings: PoolSettings,
    ) -> StoreResult<SqlStore> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = url.backend();
        let pool = match backend {
            Backend::Postgres => postgres_pool(&settings, 16, Some(settings.statement_timeout))
                .connect_lazy(url.as_str())?,
            Backend::Sqlite => {
                let options = if url.is_in_memory() {
                    // An in-memory database lives and dies with its connection, and each
                    // connection would have its own: keep exactly one, forever.
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    AnyPoolOptions::new().max_connections(8)
                };
                // A local file's connection cannot drop away while idle; sqlx's ping before
                // each acquire would only be a round trip to the connection's thread.
                let options = options.test_before_acquire(false);
                options
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url.as_str())
                    .await?
            }
        };
        tracing::debug!(%backend, "store pool ready");
        Ok(SqlStore {
            pool,
            url: url.clone(),
            catalog,
            settings,
            writer: OnceLock::new(),
            commits: write::CommitSink::default(),
        })
    }

    /// Applies the migrations embedded for this backend (idempotent; PostgreSQL takes an
    /// advisory lock, so replicas starting together migrate once), then any data fix a
    /// migration left pending for Rust (migration 0003: scope keys in canonical form; each
    /// fix is a logged write, idempotent, and safe to run from two replicas at once).
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend() {
            Backend::Postgres => &MIGRATIONS_POSTGRES,
            Backend::Sqlite => &MIGRATIONS_SQLITE,
        };
        if self.backend() == Backend::Sqlite {
            // SQLite has no statement timeout to lift (and an in-memory database lives on
            // the pool's one connection).
            migrator
                .run(&self.pool)
                .await
                .map_err(|error| StoreError::Unavailable(error.into()))?;
            return write::canonical_uuid_scopes(&self.pool, self.backend()).await;
        }
        // A pool of its own without `statement_timeout`: a migration or the data fix may
        // read a whole table.
        let pool = postgres_pool(&self.settings, 2, None).connect_lazy(self.url.as_str())?;
        let migrated = async {
            migrator
                .run(&pool)
                .await
                .map_err(|error| StoreError::Unavailable(error.into()))?;
            write::canonical_uuid_scopes(&pool, self.backend()).await
        }
        .await;
        pool.close().await;
        migrated
    }

    /// The bounds this store's pool was built with.
    pub fn settings(&self) -> PoolSettings {
        self.settings
    }

    /// The pool, for callers that need raw access (tests, tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database this store talks to. Its URL may hold a password: never log it.
    pub fn database_url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Closes every pooled connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self, tenant: TenantId, actor: &Actor) -> StoreResult<WriteTx> {
        Ok(WriteTx::begin(&self.pool, self.backend(), tenant, actor)
            .await?
            .handing_off_to(&self.commits))
    }

    async fn conn(&self) -> StoreResult<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// One row of `table` by id, or `NotFound`.
    async fn get_by_id<T: DeserializeOwned>(
        &self,
        table: Table<T>,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<T>> {
        let mut conn = self.conn().await?;
        get_row(&mut conn, table, tenant, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| table.not_found(id))
    }

    /// One page of `table`'s rows that pass every filter, ordered by id.
    async fn list_by_id<T: DeserializeOwned>(
        &self,
        table: Table<T>,
        tenant: TenantId,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<T>>> {
        let mut conn = self.conn().await?;
        list_page(
            &mut conn,
            table,
            ("id", KeyKind::Uuid),
            tenant,
            filters,
            page,
        )
        .await
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.url.backend()
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewNamedObject, Revision};
    use crate::store::{ChangeFeed, DirectoryStore};

    #[tokio::test]
    async fn an_in_memory_sqlite_store_keeps_its_one_database() {
        let catalog = Arc::new(Catalog::builtin().unwrap());
        let store = SqlStore::connect("sqlite::memory:", catalog).await.unwrap();
        store.migrate().await.unwrap();
        let tenant = TenantId(Uuid::new_v4());
        let new = NewNamedObject {
            display_name: "g".to_owned(),
            description: String::new(),
        };
        let written = store
            .groups()
            .create(tenant, &Actor::new("t"), new)
            .await
            .unwrap();
        let got = store.groups().get(tenant, written.value.id).await.unwrap();
        assert_eq!(got.value, written.value);
        assert_eq!(store.current_revision().await.unwrap(), Revision(1));
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_without_echoing_the_url() {
        let catalog = Arc::new(Catalog::builtin().unwrap());
        let error = SqlStore::connect("mysql://user:secret@host/db", catalog)
            .await
            .unwrap_err();
        assert!(!format!("{error:?}").contains("secret"));
    }
}
