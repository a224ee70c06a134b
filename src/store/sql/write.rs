//! The write path. A [`WriteTx`] is one write transaction: it takes the next revision (and
//! with it the lock that serializes writers) before anything else, logs one `changes` row
//! per object it touches, and commits or rolls back as a whole.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::rows::{
    get_row, now, stored_from_row, time_text, to_json, Arg, Filter, Key, Sql, Table,
};
use super::{Backend, NOTIFY_CHANNEL};
use crate::model::{Change, ChangeOp, EntityType, Revision, TenantId, Timestamp};
use crate::store::{
    Actor, Committed, LocalCommits, StoreError, StoreResult, Stored, Written, LOCAL_COMMIT_CHANGES,
};

mod canonical;

pub(super) use canonical::canonical_uuid_scopes;

/// One `changes` row of a bulk write: entity, entity id, op, before and after (JSON).
pub(super) type LogRow = (EntityType, String, ChangeOp, Option<String>, Option<String>);

/// The `changes` columns a logged change fills, in the order the statements bind them.
const CHANGE_COLUMNS: &str = "(revision, sequence, tenant_id, entity_type, entity_id, op, \
    before, after, actor, at, actor_issuer)";

/// The most bind arguments one multi-row statement takes (SQLite allows 32,766).
pub(super) const BULK_ARGS: usize = 30_000;

/// How many committed writes may wait for sync in [`ChangeFeed::local_commits`]'s channel;
/// beyond, a write is left for sync to read.
///
/// [`ChangeFeed::local_commits`]: crate::store::ChangeFeed::local_commits
const LOCAL_COMMITS_QUEUED: usize = 64;

/// Where a store's committed writes go (`ChangeFeed::local_commits`), shared by the store
/// and its group-commit writer: nowhere until sync takes a receiver.
#[derive(Clone, Default)]
pub(super) struct CommitSink(Arc<ArcSwapOption<mpsc::Sender<Committed>>>);

impl CommitSink {
    /// A new receiver of every later commit; the previous one, if any, ends.
    pub(super) fn subscribe(&self) -> LocalCommits {
        let (sender, receiver) = mpsc::channel(LOCAL_COMMITS_QUEUED);
        self.0.store(Some(Arc::new(sender)));
        receiver
    }

    /// The sender a write hands its changes to, when a receiver is listening.
    fn sender(&self) -> Option<Arc<mpsc::Sender<Committed>>> {
        self.0.load_full().filter(|sender| !sender.is_closed())
    }
}

/// What a write did, before it commits.
pub(super) enum Done<T> {
    /// A new object: commit, `created: true`.
    Created(T),
    /// An update or delete: commit, `created: false`.
    Changed(T),
    /// An idempotent create found the object (with its stored revision): roll back, so no
    /// revision is consumed.
    Found(T, Revision),
}

/// One write transaction: the revision is already taken (and locked) when it exists.
pub(super) struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    /// Whose objects this write may read and change: every statement is scoped to it.
    pub(super) tenant: TenantId,
    actor: Actor,
    /// This write's revision, stamped on every row it writes and change it logs.
    pub(super) revision: Revision,
    /// The time of this write: objects' timestamps and the changes' `at`.
    pub(super) now: Timestamp,
    /// The next `changes.sequence` within this revision.
    sequence: i64,
    /// Where this write's changes go once committed (`CommitSink`); dropped when it logs
    /// more than [`LOCAL_COMMIT_CHANGES`].
    sink: Option<Arc<mpsc::Sender<Committed>>>,
    /// The changes logged so far, while `sink` is set.
    logged: Vec<Change>,
}

impl WriteTx {
    pub(super) async fn begin(
        pool: &AnyPool,
        backend: Backend,
        tenant: TenantId,
        actor: &Actor,
    ) -> StoreResult<WriteTx> {
        let mut tx = pool.begin_with(backend.begin_write()).await?;
        let now = now();
        // INVARIANT: the revision's increment is in the first statement of every write. On
        // PostgreSQL it takes the row lock that serializes writers until commit (so
        // revisions commit in order); on SQLite the write lock is already held. Every later
        // read sees every earlier write.
        let value: i64 = match backend {
            // One round trip: the increment, the tenant's row on its first write, and the
            // `NOTIFY` (PostgreSQL delivers it on commit, in commit order, and drops it if
            // the transaction rolls back; the payload is the revision).
            Backend::Postgres => sqlx::query(
                "WITH r AS (UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value), \
                 t AS (INSERT INTO tenants (tenant_id, created_revision, created_at) \
                 SELECT $1, value, $2 FROM r ON CONFLICT (tenant_id) DO NOTHING) \
                 SELECT r.value FROM r, LATERAL (SELECT pg_notify($3, r.value::text)) AS n",
            )
            .bind(tenant.to_string())
            .bind(time_text(now))
            .bind(NOTIFY_CHANNEL)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?,
            Backend::Sqlite => {
                let value: i64 = sqlx::query(
                    "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value",
                )
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                sqlx::query(
                    "INSERT INTO tenants (tenant_id, created_revision, created_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO NOTHING",
                )
                .bind(tenant.to_string())
                .bind(value)
                .bind(time_text(now))
                .execute(&mut *tx)
                .await?;
                value
            }
        };
        Ok(WriteTx {
            tx,
            backend,
            tenant,
            actor: actor.clone(),
            revision: Revision(value),
            now,
            sequence: 0,
            sink: None,
            logged: Vec::new(),
        })
    }

    /// Hands this write's changes to `sink`'s receiver once committed.
    pub(super) fn handing_off_to(mut self, sink: &CommitSink) -> WriteTx {
        self.sink = sink.sender();
        self
    }

    /// Keeps the change about to be logged at `self.sequence` for the hand-off, when there
    /// is one.
    fn record(
        &mut self,
        entity: EntityType,
        entity_id: &str,
        op: ChangeOp,
        before: Option<&str>,
        after: Option<&str>,
    ) {
        if self.sink.is_none() {
            return;
        }
        let parse = |body: Option<&str>| {
            body.map(serde_json::from_str::<serde_json::Value>)
                .transpose()
        };
        match (parse(before), parse(after)) {
            (Ok(before), Ok(after)) if self.logged.len() < LOCAL_COMMIT_CHANGES => {
                self.logged.push(Change {
                    revision: self.revision,
                    sequence: self.sequence,
                    tenant_id: self.tenant,
                    entity_type: entity,
                    entity_id: entity_id.to_owned(),
                    op,
                    before,
                    after,
                    actor: self.actor.id().to_owned(),
                    at: self.now,
                })
            }
            // Too many to hold (sync reads them instead), or not JSON (never: this process
            // serialized them).
            _ => {
                self.sink = None;
                self.logged = Vec::new();
            }
        }
    }

    /// PostgreSQL or SQLite.
    pub(super) fn backend(&self) -> Backend {
        self.backend
    }

    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Commits what `result` wrote, or rolls back (on errors and on `Found`).
    pub(super) async fn finish<T>(self, result: StoreResult<Done<T>>) -> StoreResult<Written<T>> {
        match result {
            Ok(Done::Created(value)) => Ok(Written {
                value,
                revision: self.commit().await?,
                created: true,
            }),
            Ok(Done::Changed(value)) => Ok(Written {
                value,
                revision: self.commit().await?,
                created: false,
            }),
            Ok(Done::Found(value, revision)) => {
                self.rollback().await;
                Ok(Written {
                    value,
                    revision,
                    created: false,
                })
            }
            Err(error) => {
                self.rollback().await;
                Err(error)
            }
        }
    }

    pub(super) async fn commit(self) -> StoreResult<Revision> {
        let WriteTx {
            tx,
            revision,
            sink,
            logged,
            ..
        } = self;
        // PostgreSQL's `NOTIFY` went with the revision's increment (`begin`).
        tx.commit().await?;
        if let Some(sink) = sink.filter(|_| !logged.is_empty()) {
            // A full queue (sync is reloading) drops it: sync reads it instead.
            let _ = sink.try_send(Committed {
                revision,
                changes: logged,
            });
        }
        Ok(revision)
    }

    pub(super) async fn rollback(self) {
        // Rolled back explicitly so SQLite's write lock is released now, not when the
        // connection is next used.
        if let Err(error) = self.tx.rollback().await {
            tracing::warn!(%error, "rollback failed");
        }
    }

    /// Appends one `changes` row for this write.
    async fn log<T: Serialize>(
        &mut self,
        entity: EntityType,
        entity_id: String,
        op: ChangeOp,
        before: Option<&T>,
        after: Option<&T>,
    ) -> StoreResult<()> {
        let before = before.map(to_json).transpose()?;
        let after = after.map(to_json).transpose()?;
        self.record(entity, &entity_id, op, before.as_deref(), after.as_deref());
        sqlx::query(
            "INSERT INTO changes (revision, sequence, tenant_id, entity_type, entity_id, op, before, after, actor, at, actor_issuer) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(self.revision.0)
        .bind(self.sequence)
        .bind(self.tenant.to_string())
        .bind(entity.as_str())
        .bind(entity_id)
        .bind(op.as_str())
        .bind(before)
        .bind(after)
        .bind(self.actor.id().to_owned())
        .bind(time_text(self.now))
        .bind(self.actor.issuer().map(str::to_owned))
        .execute(&mut *self.tx)
        .await?;
        self.sequence += 1;
        Ok(())
    }

    /// Binds the columns every change of this write ends with: `actor, at, actor_issuer`.
    fn push_author(&self, sql: &mut Sql) {
        sql.push_bind(Arg::Text(self.actor.id().to_owned()))
            .push(", ")
            .push_bind(Arg::Text(time_text(self.now)))
            .push(", ")
            .push_bind(Arg::OptText(self.actor.issuer().map(str::to_owned)));
    }

    /// Appends `changes` rows for this write in multi-row statements (a bulk import's):
    /// each is (entity, entity id, op, before, after), bodies already JSON.
    pub(super) async fn log_many(&mut self, rows: Vec<LogRow>) -> StoreResult<()> {
        /// Bind arguments per row; statements stay under SQLite's 32,766 and PostgreSQL's
        /// 65,535.
        const ARGS: usize = 11;
        for chunk in rows.chunks(BULK_ARGS / ARGS) {
            let mut sql = Sql::new("INSERT INTO changes ");
            sql.push(CHANGE_COLUMNS).push(" VALUES ");
            for (i, (entity, entity_id, op, before, after)) in chunk.iter().enumerate() {
                self.record(*entity, entity_id, *op, before.as_deref(), after.as_deref());
                sql.push(if i == 0 { "(" } else { ", (" })
                    .push_bind(Arg::Int(self.revision.0))
                    .push(", ")
                    .push_bind(Arg::Int(self.sequence))
                    .push(", ")
                    .push_bind(Arg::tenant(self.tenant))
                    .push(", ")
                    .push_bind(Arg::Text(entity.as_str().to_owned()))
                    .push(", ")
                    .push_bind(Arg::Text(entity_id.clone()))
                    .push(", ")
                    .push_bind(Arg::Text(op.as_str().to_owned()))
                    .push(", ")
                    .push_bind(Arg::OptText(before.clone()))
                    .push(", ")
                    .push_bind(Arg::OptText(after.clone()))
                    .push(", ");
                self.push_author(&mut sql);
                sql.push(")");
                self.sequence += 1;
            }
            sql.query().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Logs the creation of `object`, a row of `table`.
    pub(super) async fn log_created<T: Serialize>(
        &mut self,
        table: Table<T>,
        entity_id: String,
        object: &T,
    ) -> StoreResult<()> {
        self.log(
            table.entity,
            entity_id,
            ChangeOp::Create,
            None,
            Some(object),
        )
        .await
    }

    /// Logs the change of a row of `table` from `before` to `after`.
    pub(super) async fn log_updated<T: Serialize>(
        &mut self,
        table: Table<T>,
        entity_id: String,
        before: &T,
        after: &T,
    ) -> StoreResult<()> {
        self.log(
            table.entity,
            entity_id,
            ChangeOp::Update,
            Some(before),
            Some(after),
        )
        .await
    }

    /// One row of `table` in this tenant by its key columns.
    pub(super) async fn get<T: DeserializeOwned>(
        &mut self,
        table: Table<T>,
        keys: &[Key],
    ) -> StoreResult<Option<Stored<T>>> {
        let tenant = self.tenant;
        get_row(self.conn(), table, tenant, keys).await
    }

    /// The row with id `id`, or `NotFound`; then the `If-Match` check against its revision.
    pub(super) async fn get_for_write<T: DeserializeOwned>(
        &mut self,
        table: Table<T>,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<T> {
        let stored = self
            .get(table, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| table.not_found(id))?;
        check_if_match(if_match, stored.revision)?;
        Ok(stored.value)
    }

    /// Inserts a row: the tenant, `columns` (keys and filter columns), this revision and
    /// the body.
    pub(super) async fn insert<T: Serialize>(
        &mut self,
        table: Table<T>,
        columns: &[Key],
        body: &T,
    ) -> StoreResult<()> {
        self.insert_many(table, &[(columns.to_vec(), body)]).await
    }

    /// Inserts many rows of `table` in multi-row statements: each is its `columns` (the
    /// same names in the same order for every row) and its body.
    pub(super) async fn insert_many<T: Serialize>(
        &mut self,
        table: Table<T>,
        rows: &[(Vec<Key>, &T)],
    ) -> StoreResult<()> {
        let Some((first, _)) = rows.first() else {
            return Ok(());
        };
        // The tenant, the columns, the revision and the body.
        let per_row = first.len() + 3;
        for chunk in rows.chunks(BULK_ARGS / per_row) {
            let sql = self.insert_values(table, chunk)?;
            sql.query().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// As [`WriteTx::insert_many`], skipping every row whose `unique` columns (a unique
    /// constraint of `table`, after `tenant_id`) are already taken: one statement per chunk
    /// instead of a lookup first. Returns the ids of the rows inserted. Each row's first
    /// column must be its `id`.
    pub(super) async fn insert_many_absent<T: Serialize>(
        &mut self,
        table: Table<T>,
        rows: &[(Vec<Key>, &T)],
        unique: &[&'static str],
    ) -> StoreResult<Vec<String>> {
        let Some((first, _)) = rows.first() else {
            return Ok(Vec::new());
        };
        let per_row = first.len() + 3;
        let mut inserted = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(BULK_ARGS / per_row) {
            let mut sql = self.insert_values(table, chunk)?;
            sql.push(" ON CONFLICT (tenant_id");
            for column in unique {
                sql.push(", ").push(column);
            }
            sql.push(") DO NOTHING RETURNING id");
            for row in sql.query().fetch_all(&mut *self.tx).await? {
                inserted.push(row.try_get::<String, _>(0)?);
            }
        }
        Ok(inserted)
    }

    /// Whether [`WriteTx::insert_many_absent_logged`] can log in the insert's statement:
    /// PostgreSQL can (an `INSERT` in `WITH`); SQLite cannot.
    pub(super) fn logs_with_insert(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// [`WriteTx::insert_many_absent`], each row it inserts logged in the same statement as
    /// created (`entity`, the row's id, its body as `after`): one round trip less per write
    /// than inserting, then logging (issue 16). Only where [`WriteTx::logs_with_insert`].
    pub(super) async fn insert_many_absent_logged<T: Serialize>(
        &mut self,
        table: Table<T>,
        rows: &[(Vec<Key>, &T)],
        unique: &[&'static str],
        entity: EntityType,
    ) -> StoreResult<Vec<String>> {
        debug_assert!(self.logs_with_insert());
        let Some((first, _)) = rows.first() else {
            return Ok(Vec::new());
        };
        // Each row's own arguments and the statement's eight.
        let per_row = first.len() + 3;
        let mut inserted = Vec::with_capacity(rows.len());
        for chunk in rows.chunks((BULK_ARGS - 8) / per_row) {
            let mut sql = Sql::new("WITH ins AS (");
            self.push_insert_values(&mut sql, table, chunk)?;
            sql.push(" ON CONFLICT (tenant_id");
            for column in unique {
                sql.push(", ").push(column);
            }
            // Sequences follow `ins`' order; the rows come back in sequence order, so the
            // hand-off records exactly what was logged, as it was numbered.
            sql.push(") DO NOTHING RETURNING id, body), logged AS (INSERT INTO changes ")
                .push(CHANGE_COLUMNS)
                .push(" SELECT ")
                .push_bind(Arg::Int(self.revision.0))
                .push(", ")
                .push_bind(Arg::Int(self.sequence))
                .push(" + row_number() OVER () - 1, ")
                .push_bind(Arg::tenant(self.tenant))
                .push(", ")
                .push_bind(Arg::Text(entity.as_str().to_owned()))
                .push(", id, ")
                .push_bind(Arg::Text(ChangeOp::Create.as_str().to_owned()))
                .push(", NULL, body, ");
            self.push_author(&mut sql);
            sql.push(
                " FROM ins RETURNING sequence, entity_id, after) \
                 SELECT sequence, entity_id, after FROM logged ORDER BY sequence",
            );
            for row in sql.query().fetch_all(&mut *self.tx).await? {
                let sequence: i64 = row.try_get(0)?;
                let id: String = row.try_get(1)?;
                let after: Option<String> = row.try_get(2)?;
                if sequence != self.sequence {
                    return Err(StoreError::Corrupt(format!(
                        "change {sequence} of revision {} was logged where {} was due",
                        self.revision.0, self.sequence
                    )));
                }
                self.record(entity, &id, ChangeOp::Create, None, after.as_deref());
                self.sequence += 1;
                inserted.push(id);
            }
        }
        Ok(inserted)
    }

    /// `INSERT INTO table (tenant_id, columns…, revision, body) VALUES …` for `rows`.
    fn insert_values<T: Serialize>(
        &self,
        table: Table<T>,
        rows: &[(Vec<Key>, &T)],
    ) -> StoreResult<Sql> {
        let mut sql = Sql::new("");
        self.push_insert_values(&mut sql, table, rows)?;
        Ok(sql)
    }

    /// Writes [`WriteTx::insert_values`]' statement into `sql`.
    fn push_insert_values<T: Serialize>(
        &self,
        sql: &mut Sql,
        table: Table<T>,
        rows: &[(Vec<Key>, &T)],
    ) -> StoreResult<()> {
        sql.push("INSERT INTO ");
        sql.push(table.name).push(" (tenant_id");
        if let Some((first, _)) = rows.first() {
            for (column, _) in first {
                sql.push(", ").push(column);
            }
        }
        sql.push(", revision, body) VALUES ");
        for (i, (columns, body)) in rows.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .push_bind(Arg::tenant(self.tenant));
            for (_, arg) in columns {
                sql.push(", ").push_bind(arg.clone());
            }
            sql.push(", ")
                .push_bind(Arg::Int(self.revision.0))
                .push(", ")
                .push_bind(Arg::Text(to_json(body)?))
                .push(")");
        }
        Ok(())
    }

    /// Rewrites the row with id `id`: `columns`, this revision and the body.
    pub(super) async fn update<T: Serialize>(
        &mut self,
        table: Table<T>,
        id: Uuid,
        columns: &[Key],
        body: &T,
    ) -> StoreResult<()> {
        let mut sql = Sql::new("UPDATE ");
        sql.push(table.name).push(" SET ");
        for (column, arg) in columns {
            sql.push(column)
                .push(" = ")
                .push_bind(arg.clone())
                .push(", ");
        }
        sql.push("revision = ")
            .push_bind(Arg::Int(self.revision.0))
            .push(", body = ")
            .push_bind(Arg::Text(to_json(body)?))
            .push(" WHERE tenant_id = ")
            .push_bind(Arg::tenant(self.tenant))
            .push(" AND id = ")
            .push_bind(Arg::id(id));
        sql.query().execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Deletes one row and logs its `delete` change with `before`: the object as it stood
    /// (or its stored JSON, spelled as it was).
    pub(super) async fn delete_logged<T>(
        &mut self,
        table: Table<T>,
        keys: &[Key],
        entity_id: String,
        before: &impl Serialize,
    ) -> StoreResult<()> {
        let mut sql = Sql::new("DELETE FROM ");
        sql.push(table.name)
            .push(" WHERE tenant_id = ")
            .push_bind(Arg::tenant(self.tenant))
            .push_keys(keys);
        sql.query().execute(&mut *self.tx).await?;
        self.log(
            table.entity,
            entity_id,
            ChangeOp::Delete,
            Some(before),
            None,
        )
        .await
    }

    /// Deletes the row with id `id` and logs it, with `before` as it stood.
    pub(super) async fn delete_by_id<T: Serialize>(
        &mut self,
        table: Table<T>,
        id: Uuid,
        before: &T,
    ) -> StoreResult<()> {
        self.delete_logged(table, &[("id", Arg::id(id))], id.to_string(), before)
            .await
    }

    /// Deletes the row with id `id`, after the `If-Match` check, and logs it.
    pub(super) async fn delete_checked<T: Serialize + DeserializeOwned>(
        &mut self,
        table: Table<T>,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<T>> {
        let before = self.get_for_write(table, id, if_match).await?;
        self.delete_by_id(table, id, &before).await?;
        Ok(Done::Changed(before))
    }

    /// Every row of `table` in this tenant that passes `filter`, ordered by `order`.
    pub(super) async fn select_where<T: DeserializeOwned>(
        &mut self,
        table: Table<T>,
        filter: Filter,
        order: &'static str,
    ) -> StoreResult<Vec<T>> {
        let mut sql = Sql::select_stored(table, None, self.tenant);
        sql.push_filter(&filter).push(" ORDER BY ").push(order);
        let rows = sql.query().fetch_all(&mut *self.tx).await?;
        rows.iter()
            .map(|row| stored_from_row(table, row, 0).map(|s| s.value))
            .collect()
    }
}

pub(super) fn check_if_match(if_match: Option<Revision>, current: Revision) -> StoreResult<()> {
    match if_match {
        Some(expected) if expected != current => Err(StoreError::PreconditionFailed {
            current: current.to_string(),
        }),
        _ => Ok(()),
    }
}
