//! The one SQL implementation of [`Store`], for PostgreSQL and SQLite alike, through sqlx's
//! `Any` driver.
//!
//! Every query is written once, with `$N` placeholders (sqlx-sqlite binds `$N` to argument
//! N), and uses only what the `Any` driver carries: `i64`, `bool` (bound, never read back),
//! text and their `Option`s. Ids are canonical lowercase uuid text, timestamps RFC 3339
//! text, and each row keeps its entity as JSON in `body`, which reads decode. The
//! [`Backend`] switch covers the few dialect differences: how a write transaction begins
//! (SQLite takes its write lock up front), the `NOTIFY` on commit (PostgreSQL only), and
//! how the dump's consistent read begins.
//!
//! Writes go through `write::WriteTx`: it begins the transaction, increments the revision row
//! first (taking PostgreSQL's row lock or SQLite's write lock before any read, so writers
//! are serialized and every check-then-insert is race-free), logs one `changes` row per
//! object touched, and commits or rolls back as a whole.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Once};

use async_trait::async_trait;
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, AnyPool, Row};
use uuid::Uuid;

mod rows;
mod write;

use rows::{
    builtin_stored, change_from_row, change_key, decode_cursor, fetch_keyed, from_json, get_row,
    into_page, like_contains, list_page, logged_change_from_row, page_limit, parse_change_key, Arg,
    Condition, KeyKind, Table, CHANGE_COLUMNS, DENY_ASSIGNMENTS, GROUPS, GROUP_MEMBERS,
    LOGGED_CHANGE_COLUMNS, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS, UNITS, UNIT_MEMBERS,
};
use write::WriteTx;

use super::{
    Actor, Dump, LoggedChange, Page, PageRequest, RoleAssignmentFilter, RoleDefinitionFilter,
    Store, StoreError, StoreResult, Stored, TenantDump, Written,
};
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, Catalog, Change, CloneRole, DenyAssignment,
    DenyAssignmentPatch, Group, GroupMember, NamedObjectPatch, NewDenyAssignment, NewGroupMember,
    NewNamedObject, NewRoleAssignment, NewRoleDefinition, Revision, RoleAssignment, RoleDefinition,
    RoleDefinitionPatch, Scope, TenantId,
};

/// Which database a [`SqlStore`] talks to; chosen from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// SQLite (`sqlite:`).
    Sqlite,
}

impl Backend {
    /// The backend a database URL names, or `None` for an unsupported scheme.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }

    /// `postgres` or `sqlite`, for logs and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }

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

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The channel PostgreSQL notifies on commit; the payload is the write's revision (replicas
/// treat it only as a wake-up and read `changes` themselves).
pub const NOTIFY_CHANNEL: &str = "rolecall_changes";

/// Set on every new SQLite connection: WAL lets readers run beside the one writer,
/// `busy_timeout` makes writers queue for the lock instead of failing, and foreign keys
/// are off by default in SQLite.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

static MIGRATIONS_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQL store: a connection pool, the backend it talks to and the built-in catalog
/// merged into role reads. Cheap to share behind an `Arc`.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    catalog: Arc<Catalog>,
    url: String,
}

impl fmt::Debug for SqlStore {
    // The URL may hold a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects a pool to `url` (`postgres://`, `postgresql://` or `sqlite:`). An SQLite
    /// file is created when missing (its directory must exist). Does not migrate: call
    /// [`SqlStore::migrate`].
    pub async fn connect(url: &str, catalog: Arc<Catalog>) -> StoreResult<SqlStore> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Unavailable(sqlx::Error::Configuration(
                "the database url must start with postgres://, postgresql:// or sqlite:".into(),
            ))
        })?;
        let url = match backend {
            Backend::Postgres => url.to_owned(),
            Backend::Sqlite => sqlite_create_if_missing(url),
        };
        let options = match backend {
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
            Backend::Sqlite => {
                let options = if sqlite_in_memory(&url) {
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
                options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in SQLITE_PRAGMAS {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
            }
        };
        let pool = options.connect(&url).await?;
        tracing::debug!(%backend, "store connected");
        Ok(SqlStore {
            pool,
            backend,
            catalog,
            url,
        })
    }

    /// Applies the migrations embedded for this backend (idempotent; PostgreSQL takes an
    /// advisory lock, so replicas starting together migrate once), then any data fix a
    /// migration left pending for Rust (migration 0003: scope keys in canonical form; each
    /// fix is a logged write, idempotent, and safe to run from two replicas at once).
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Postgres => &MIGRATIONS_POSTGRES,
            Backend::Sqlite => &MIGRATIONS_SQLITE,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|error| StoreError::Unavailable(error.into()))?;
        write::canonical_uuid_scopes(&self.pool, self.backend).await
    }

    /// The pool, for callers that need raw access (tests, tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL the pool connects to, for the sync loop's `LISTEN` connection on
    /// PostgreSQL. It may hold a password: never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes every pooled connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self, tenant: TenantId, actor: &Actor) -> StoreResult<WriteTx> {
        WriteTx::begin(&self.pool, self.backend, tenant, actor).await
    }

    async fn conn(&self) -> StoreResult<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// A role by id: the built-in with that id, else the tenant's custom role.
    async fn find_role(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Option<Stored<RoleDefinition>>> {
        if let Some(builtin) = self.catalog.get(id) {
            return Ok(Some(builtin_stored(builtin)));
        }
        get_row(conn, ROLE_DEFINITIONS, tenant, &[("id", Arg::id(id))]).await
    }
}

fn sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// `mode=rwc` makes SQLite create the file when missing; an explicit `mode` is kept.
fn sqlite_create_if_missing(url: &str) -> String {
    let has_mode = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("mode=")));
    if has_mode || sqlite_in_memory(url) {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

fn empty_tenant_dump(tenant: TenantId) -> TenantDump {
    TenantDump {
        tenant,
        role_definitions: Vec::new(),
        role_assignments: Vec::new(),
        deny_assignments: Vec::new(),
        groups: Vec::new(),
        group_members: Vec::new(),
        administrative_units: Vec::new(),
        administrative_unit_members: Vec::new(),
    }
}

fn parse_tenant(raw: &str) -> StoreResult<TenantId> {
    Uuid::parse_str(raw)
        .map(TenantId)
        .map_err(|_| StoreError::Corrupt(format!("a row has tenant id `{raw}`")))
}

/// Streams every row of `table` (all tenants), ordered by tenant then `order`, into the
/// dump entry of each row's tenant.
async fn dump_table<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    tenants: &mut BTreeMap<String, TenantDump>,
    table: Table,
    order: &str,
    pick: fn(&mut TenantDump) -> &mut Vec<T>,
) -> StoreResult<()> {
    let sql = format!(
        "SELECT tenant_id, body FROM {} ORDER BY tenant_id, {order}",
        table.name
    );
    let mut rows = sqlx::query(&sql).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let tenant: String = row.try_get(0)?;
        let body: String = row.try_get(1)?;
        let value = from_json(table.name, &body)?;
        let entry = match tenants.get_mut(&tenant) {
            Some(entry) => entry,
            None => {
                let id = parse_tenant(&tenant)?;
                tenants
                    .entry(tenant)
                    .or_insert_with(|| empty_tenant_dump(id))
            }
        };
        pick(entry).push(value);
    }
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn current_revision(&self) -> StoreResult<Revision> {
        let value: i64 = sqlx::query("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(Revision(value))
    }

    // --- role definitions ---

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_role_definitions(
        &self,
        tenant: TenantId,
        filter: &RoleDefinitionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleDefinition>>> {
        let after = page
            .cursor
            .as_deref()
            .map(|cursor| decode_cursor(cursor, KeyKind::Uuid))
            .transpose()?;
        let limit = page_limit(page);
        let needle = filter.display_name.as_deref().map(str::to_lowercase);
        // Built-ins: filtered and cut in memory, in the same (id text) order.
        let mut rows: Vec<(String, Stored<RoleDefinition>)> = Vec::new();
        if filter.is_built_in != Some(false) && filter.is_enabled != Some(false) {
            rows.extend(
                self.catalog
                    .roles()
                    .iter()
                    .map(|role| (role.id.to_string(), role))
                    .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
                    .filter(|(_, role)| {
                        needle
                            .as_deref()
                            .is_none_or(|needle| role.display_name.to_lowercase().contains(needle))
                    })
                    .take(limit + 1)
                    .map(|(key, role)| (key, builtin_stored(role))),
            );
        }
        if filter.is_built_in != Some(true) {
            let mut conditions: Vec<Condition> = Vec::new();
            if let Some(needle) = &filter.display_name {
                conditions.push((
                    "display_name_key LIKE {} ESCAPE '\\'",
                    Arg::Text(like_contains(needle)),
                ));
            }
            if let Some(is_enabled) = filter.is_enabled {
                conditions.push(("is_enabled = {}", Arg::Bool(is_enabled)));
            }
            let mut conn = self.conn().await?;
            let custom = fetch_keyed(
                &mut conn,
                ROLE_DEFINITIONS,
                "id",
                tenant,
                conditions,
                after,
                limit + 1,
            )
            .await?;
            rows.extend(custom);
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.truncate(limit + 1);
        Ok(into_page(rows, limit))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_role_definition(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleDefinition>> {
        let mut conn = self.conn().await?;
        self.find_role(&mut conn, tenant, id)
            .await?
            .ok_or_else(|| ROLE_DEFINITIONS.not_found(id))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleDefinition,
    ) -> StoreResult<Written<RoleDefinition>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_role(&self.catalog, new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn clone_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        source: Uuid,
        clone: CloneRole,
    ) -> StoreResult<Written<RoleDefinition>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let source = match self.catalog.get(source) {
                Some(builtin) => builtin.clone(),
                None => {
                    w.get::<RoleDefinition>(ROLE_DEFINITIONS, &[("id", Arg::id(source))])
                        .await?
                        .ok_or_else(|| ROLE_DEFINITIONS.not_found(source))?
                        .value
                }
            };
            let new = NewRoleDefinition {
                display_name: clone.display_name,
                description: clone.description.unwrap_or(source.description),
                is_enabled: true,
                role_permissions: source.role_permissions,
                assignable_scopes: source.assignable_scopes,
            };
            w.create_role(&self.catalog, new).await
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: RoleDefinitionPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>> {
        if self.catalog.get(id).is_some() {
            return Err(StoreError::BuiltinImmutable(id));
        }
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_role(&self.catalog, id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        cascade: bool,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>> {
        if self.catalog.get(id).is_some() {
            return Err(StoreError::BuiltinImmutable(id));
        }
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_role(id, cascade, if_match).await;
        w.finish(result).await
    }

    // --- role assignments ---

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_role_assignments(
        &self,
        tenant: TenantId,
        filter: &RoleAssignmentFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleAssignment>>> {
        let mut conditions: Vec<Condition> = Vec::new();
        if let Some(principal) = filter.principal_id {
            conditions.push(("principal_id = {}", Arg::id(principal)));
        }
        if let Some(role) = filter.role_definition_id {
            conditions.push(("role_definition_id = {}", Arg::id(role)));
        }
        if let Some(scope) = &filter.directory_scope_id {
            conditions.push(("directory_scope_id = {}", Arg::Text(scope.to_string())));
        }
        let mut conn = self.conn().await?;
        list_page(
            &mut conn,
            ROLE_ASSIGNMENTS,
            ("id", KeyKind::Uuid),
            tenant,
            conditions,
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_role_assignment(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleAssignment>> {
        let mut conn = self.conn().await?;
        get_row(&mut conn, ROLE_ASSIGNMENTS, tenant, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| ROLE_ASSIGNMENTS.not_found(id))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_role_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleAssignment,
    ) -> StoreResult<Written<RoleAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let role = self
                .find_role(w.conn(), tenant, new.role_definition_id)
                .await?;
            w.create_assignment(role, new).await
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_role_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_assignment(id, if_match).await;
        w.finish(result).await
    }

    // --- deny assignments ---

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_deny_assignments(
        &self,
        tenant: TenantId,
        principal_id: Option<Uuid>,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<DenyAssignment>>> {
        let conditions: Vec<Condition> = principal_id
            .map(|principal| ("principal_id = {}", Arg::id(principal)))
            .into_iter()
            .collect();
        let mut conn = self.conn().await?;
        list_page(
            &mut conn,
            DENY_ASSIGNMENTS,
            ("id", KeyKind::Uuid),
            tenant,
            conditions,
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_deny_assignment(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<DenyAssignment>> {
        let mut conn = self.conn().await?;
        get_row(&mut conn, DENY_ASSIGNMENTS, tenant, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| DENY_ASSIGNMENTS.not_found(id))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewDenyAssignment,
    ) -> StoreResult<Written<DenyAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_deny(new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: DenyAssignmentPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<DenyAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_deny(id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<DenyAssignment>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_deny(id, if_match).await;
        w.finish(result).await
    }

    // --- groups ---

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_groups(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<Group>>> {
        let mut conn = self.conn().await?;
        list_page(
            &mut conn,
            GROUPS,
            ("id", KeyKind::Uuid),
            tenant,
            Vec::new(),
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_group(&self, tenant: TenantId, id: Uuid) -> StoreResult<Stored<Group>> {
        let mut conn = self.conn().await?;
        get_row(&mut conn, GROUPS, tenant, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| GROUPS.not_found(id))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_group(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewNamedObject,
    ) -> StoreResult<Written<Group>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_named(GROUPS, new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_group(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Group>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_named(GROUPS, id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_group(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Group>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_group(id, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_group_members(
        &self,
        tenant: TenantId,
        group: Uuid,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<GroupMember>>> {
        let mut conn = self.conn().await?;
        if get_row::<Group>(&mut conn, GROUPS, tenant, &[("id", Arg::id(group))])
            .await?
            .is_none()
        {
            return Err(GROUPS.not_found(group));
        }
        let conditions = vec![("group_id = {}", Arg::id(group))];
        list_page(
            &mut conn,
            GROUP_MEMBERS,
            ("member_id", KeyKind::Uuid),
            tenant,
            conditions,
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn add_group_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        group: Uuid,
        member: NewGroupMember,
    ) -> StoreResult<Written<GroupMember>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.add_group_member(group, member).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn remove_group_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        group: Uuid,
        member: Uuid,
    ) -> StoreResult<Written<GroupMember>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.remove_group_member(group, member).await;
        w.finish(result).await
    }

    // --- administrative units ---

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_administrative_units(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<AdministrativeUnit>>> {
        let mut conn = self.conn().await?;
        list_page(
            &mut conn,
            UNITS,
            ("id", KeyKind::Uuid),
            tenant,
            Vec::new(),
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_administrative_unit(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<AdministrativeUnit>> {
        let mut conn = self.conn().await?;
        get_row(&mut conn, UNITS, tenant, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| UNITS.not_found(id))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_administrative_unit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewNamedObject,
    ) -> StoreResult<Written<AdministrativeUnit>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_named(UNITS, new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_administrative_unit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<AdministrativeUnit>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_named(UNITS, id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_administrative_unit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<AdministrativeUnit>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_unit(id, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_administrative_unit_members(
        &self,
        tenant: TenantId,
        unit: Uuid,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<AdministrativeUnitMember>>> {
        let mut conn = self.conn().await?;
        if get_row::<AdministrativeUnit>(&mut conn, UNITS, tenant, &[("id", Arg::id(unit))])
            .await?
            .is_none()
        {
            return Err(UNITS.not_found(unit));
        }
        let conditions = vec![("unit_id = {}", Arg::id(unit))];
        list_page(
            &mut conn,
            UNIT_MEMBERS,
            ("resource", KeyKind::Scope),
            tenant,
            conditions,
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn add_administrative_unit_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        unit: Uuid,
        resource: Scope,
    ) -> StoreResult<Written<AdministrativeUnitMember>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.add_unit_member(unit, resource).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn remove_administrative_unit_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        unit: Uuid,
        resource: &Scope,
    ) -> StoreResult<Written<AdministrativeUnitMember>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.remove_unit_member(unit, resource).await;
        w.finish(result).await
    }

    // --- change log ---

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_changes(
        &self,
        tenant: TenantId,
        since: Revision,
        page: &PageRequest,
    ) -> StoreResult<Page<LoggedChange>> {
        // Start after the later of (since, every sequence) and the cursor's (revision, sequence).
        let mut start = (since.0, i64::MAX);
        if let Some(cursor) = &page.cursor {
            let key = decode_cursor(cursor, KeyKind::Change)?;
            if let Some(after) = parse_change_key(&key) {
                start = start.max(after);
            }
        }
        let limit = page_limit(page);
        let sql = format!(
            "SELECT {LOGGED_CHANGE_COLUMNS} FROM changes \
             WHERE tenant_id = $1 AND (revision, sequence) > ($2, $3) \
             ORDER BY revision, sequence LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(start.0)
            .bind(start.1)
            .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let changes = rows
            .iter()
            .map(|row| logged_change_from_row(row).map(|c| (change_key(c.revision, c.sequence), c)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(changes, limit))
    }

    // --- sync feed ---

    #[tracing::instrument(skip_all)]
    async fn dump(&self) -> StoreResult<Dump> {
        let mut tx = self.pool.begin_with(self.backend.begin_snapshot()).await?;
        // The snapshot starts with this first read; every statement below shares it.
        let revision: i64 = sqlx::query("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut tenants: BTreeMap<String, TenantDump> = BTreeMap::new();
        let rows = sqlx::query("SELECT tenant_id FROM tenants ORDER BY tenant_id")
            .fetch_all(&mut *tx)
            .await?;
        for row in rows {
            let tenant: String = row.try_get(0)?;
            let id = parse_tenant(&tenant)?;
            tenants.insert(tenant, empty_tenant_dump(id));
        }
        let conn: &mut AnyConnection = &mut tx;
        dump_table(conn, &mut tenants, ROLE_DEFINITIONS, "id", |t| {
            &mut t.role_definitions
        })
        .await?;
        dump_table(conn, &mut tenants, ROLE_ASSIGNMENTS, "id", |t| {
            &mut t.role_assignments
        })
        .await?;
        dump_table(conn, &mut tenants, DENY_ASSIGNMENTS, "id", |t| {
            &mut t.deny_assignments
        })
        .await?;
        dump_table(conn, &mut tenants, GROUPS, "id", |t| &mut t.groups).await?;
        dump_table(
            conn,
            &mut tenants,
            GROUP_MEMBERS,
            "group_id, member_id",
            |t| &mut t.group_members,
        )
        .await?;
        dump_table(conn, &mut tenants, UNITS, "id", |t| {
            &mut t.administrative_units
        })
        .await?;
        dump_table(conn, &mut tenants, UNIT_MEMBERS, "unit_id, resource", |t| {
            &mut t.administrative_unit_members
        })
        .await?;
        tx.rollback().await?;
        Ok(Dump {
            revision: Revision(revision),
            tenants: tenants.into_values().collect(),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn changes_after(&self, after: Revision, limit: u32) -> StoreResult<Vec<Change>> {
        // INVARIANT: a revision's rows commit together, and revisions commit in order (the
        // revision row lock), so whatever is visible is a prefix of whole revisions.
        let limit = limit.max(1) as usize;
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE revision > $1 ORDER BY revision, sequence LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after.0)
            .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let mut changes = rows
            .iter()
            .map(change_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if changes.len() <= limit {
            return Ok(changes);
        }
        // The limit cut into the revision of the first row left out: drop its partial rows.
        let cut = changes[limit].revision;
        changes.truncate(limit);
        changes.retain(|change| change.revision != cut);
        if !changes.is_empty() {
            return Ok(changes);
        }
        // The first revision alone is larger than the limit: return it whole.
        let sql =
            format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE revision = $1 ORDER BY sequence");
        let rows = sqlx::query(&sql).bind(cut.0).fetch_all(&self.pool).await?;
        rows.iter().map(change_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        assert_eq!(
            sqlite_create_if_missing("sqlite://data/r.db"),
            "sqlite://data/r.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://r.db?cache=shared"),
            "sqlite://r.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://r.db?mode=ro"),
            "sqlite://r.db?mode=ro"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite::memory:"),
            "sqlite::memory:"
        );
    }

    #[test]
    fn the_backend_comes_from_the_url_scheme() {
        assert_eq!(
            Backend::from_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("sqlite://r.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("mysql://u@h/db"), None);
    }

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
            .create_group(tenant, &Actor::new("t"), new)
            .await
            .unwrap();
        let got = store.get_group(tenant, written.value.id).await.unwrap();
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
