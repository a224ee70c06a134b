//! [`ChangeFeed`] in SQL: the `revision` row, the `changes` log, the dump's consistent read
//! of every table, and PostgreSQL's `LISTEN` for wake-ups.

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, Row};

use super::rows::time_text;
use super::rows::{
    change_from_row, change_key, decode_cursor, from_json, into_page, logged_change_from_row,
    page_limit, parse_change_key, parse_tenant, Arg, KeyKind, Sql, Table, CHANGE_COLUMNS,
    DENY_ASSIGNMENTS, GROUPS, GROUP_MEMBERS, LOGGED_CHANGE_COLUMNS, PRINCIPALS, RESOURCES,
    ROLE_ASSIGNMENTS, ROLE_DEFINITIONS, UNITS, UNIT_MEMBERS,
};
use super::{SqlStore, NOTIFY_CHANNEL};
use crate::model::{Revision, TenantId};
use crate::store::{
    Backend, ChangeFeed, ChangeFilter, ChangesRead, DumpBatch, DumpRow, LocalCommits, LoggedChange,
    Page, PageRequest, StoreError, StoreResult, Wakeups,
};
use tokio::sync::mpsc;

/// How long a lost `LISTEN` connection waits before it reconnects.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

#[async_trait]
impl ChangeFeed for SqlStore {
    #[tracing::instrument(skip_all)]
    async fn current_revision(&self) -> StoreResult<Revision> {
        let value: i64 = sqlx::query("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(Revision(value))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn audit(
        &self,
        tenant: TenantId,
        filter: &ChangeFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<LoggedChange>> {
        // Start after the later of (since, every sequence) and the cursor's (revision, sequence).
        let mut start = (filter.since.0, i64::MAX);
        if let Some(cursor) = &page.cursor {
            let key = decode_cursor(cursor, KeyKind::Change)?;
            if let Some(after) = parse_change_key(&key) {
                start = start.max(after);
            }
        }
        let limit = page_limit(page);
        let mut sql = Sql::new("SELECT ");
        sql.push(LOGGED_CHANGE_COLUMNS)
            .push(" FROM changes WHERE tenant_id = ")
            .push_bind(Arg::tenant(tenant))
            .push(" AND (revision, sequence) > (")
            .push_bind(Arg::Int(start.0))
            .push(", ")
            .push_bind(Arg::Int(start.1))
            .push(")");
        if let Some(actor) = &filter.actor {
            sql.push(" AND actor = ")
                .push_bind(Arg::Text(actor.clone()));
        }
        if let Some(kind) = filter.entity_type {
            sql.push(" AND entity_type = ")
                .push_bind(Arg::Text(kind.as_str().to_owned()));
        }
        if let Some(id) = &filter.entity_id {
            sql.push(" AND entity_id = ")
                .push_bind(Arg::Text(id.clone()));
        }
        // `at` is fixed-precision RFC 3339 text in UTC: its text order is time order.
        if let Some(from) = filter.from {
            sql.push(" AND at >= ")
                .push_bind(Arg::Text(time_text(from)));
        }
        if let Some(until) = filter.until {
            sql.push(" AND at < ")
                .push_bind(Arg::Text(time_text(until)));
        }
        sql.push(" ORDER BY revision, sequence LIMIT ")
            .push_bind(Arg::count(limit + 1));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let changes = rows
            .iter()
            .map(|row| logged_change_from_row(row).map(|c| (change_key(c.revision, c.sequence), c)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(changes, limit))
    }

    #[tracing::instrument(skip_all)]
    async fn dump_rows(
        &self,
        rows: mpsc::Sender<DumpBatch>,
        ordered: bool,
    ) -> StoreResult<Revision> {
        let mut tx = self
            .pool
            .begin_with(self.url.backend().begin_snapshot())
            .await?;
        if self.url.backend() == Backend::Postgres {
            // The dump reads whole tables: `statement_timeout` bounds the statements of
            // requests, not this.
            sqlx::query("SET LOCAL statement_timeout = 0")
                .execute(&mut *tx)
                .await?;
        }
        // The snapshot starts with this first read; every statement below shares it.
        let revision: i64 = sqlx::query("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut out = Batcher::new(rows);
        let tenants = sqlx::query("SELECT tenant_id FROM tenants ORDER BY tenant_id")
            .fetch_all(&mut *tx)
            .await?;
        for row in tenants {
            let tenant: String = row.try_get(0)?;
            out.push(parse_tenant(&tenant)?, DumpRow::Tenant).await?;
        }
        let conn: &mut AnyConnection = &mut tx;
        dump_table(
            conn,
            &mut out,
            ROLE_DEFINITIONS,
            ordered.then_some("id"),
            DumpRow::RoleDefinition,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            ROLE_ASSIGNMENTS,
            ordered.then_some("id"),
            DumpRow::RoleAssignment,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            DENY_ASSIGNMENTS,
            ordered.then_some("id"),
            DumpRow::DenyAssignment,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            GROUPS,
            ordered.then_some("id"),
            DumpRow::Group,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            GROUP_MEMBERS,
            ordered.then_some("group_id, member_id"),
            DumpRow::GroupMember,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            UNITS,
            ordered.then_some("id"),
            DumpRow::AdministrativeUnit,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            UNIT_MEMBERS,
            ordered.then_some("unit_id, resource"),
            DumpRow::AdministrativeUnitMember,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            PRINCIPALS,
            ordered.then_some("id"),
            DumpRow::Principal,
        )
        .await?;
        dump_table(
            conn,
            &mut out,
            RESOURCES,
            ordered.then_some("resource_type, id"),
            DumpRow::Resource,
        )
        .await?;
        out.flush().await?;
        tx.rollback().await?;
        Ok(Revision(revision))
    }

    #[tracing::instrument(skip_all)]
    async fn changes_after_read(&self, after: Revision, limit: u32) -> StoreResult<ChangesRead> {
        // INVARIANT: a revision's rows commit together, and revisions commit in order (the
        // revision row lock), so whatever is visible is a prefix of whole revisions.
        let limit = limit.max(1) as usize;
        let mut sql = Sql::new("SELECT ");
        sql.push(CHANGE_COLUMNS)
            .push(" FROM changes WHERE revision > ")
            .push_bind(Arg::Int(after.0))
            .push(" ORDER BY revision, sequence LIMIT ")
            .push_bind(Arg::count(limit + 1));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut changes = rows
            .iter()
            .map(change_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if changes.len() <= limit {
            return Ok(ChangesRead {
                changes,
                complete: true,
            });
        }
        // The limit cut into the revision of the first row left out: drop its partial rows.
        let cut = changes[limit].revision;
        changes.truncate(limit);
        changes.retain(|change| change.revision != cut);
        if !changes.is_empty() {
            return Ok(ChangesRead {
                changes,
                complete: false,
            });
        }
        // The first revision alone is larger than the limit: return it whole.
        let mut sql = Sql::new("SELECT ");
        sql.push(CHANGE_COLUMNS)
            .push(" FROM changes WHERE revision = ")
            .push_bind(Arg::Int(cut.0))
            .push(" ORDER BY sequence");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(ChangesRead {
            changes: rows
                .iter()
                .map(change_from_row)
                .collect::<StoreResult<_>>()?,
            complete: false,
        })
    }

    fn subscribe(&self) -> Option<Wakeups> {
        match self.url.backend() {
            Backend::Postgres => Some(listen(
                self.url.as_str().to_owned(),
                self.settings.connect_timeout,
            )),
            Backend::Sqlite => None,
        }
    }

    fn local_commits(&self) -> Option<LocalCommits> {
        Some(self.commits.subscribe())
    }
}

/// `LISTEN rolecall_changes` on a connection of its own: a wake-up once listening, on each
/// notification (with the revision its payload names), and after each reconnect
/// (notifications may have been lost meanwhile). Each connection attempt may take
/// `connect_timeout`.
fn listen(url: String, connect_timeout: Duration) -> Wakeups {
    futures::stream::unfold((url, None), move |(url, mut listener)| async move {
        let wakeup = next_wakeup(&url, connect_timeout, &mut listener).await;
        Some((wakeup, (url, listener)))
    })
    .boxed()
}

/// Waits for the next reason to read `changes`, (re)connecting `listener` as needed: the
/// notified revision, or `None` when it is unknown (a reconnect, or a payload that is not
/// a revision).
async fn next_wakeup(
    url: &str,
    connect_timeout: Duration,
    listener: &mut Option<PgListener>,
) -> Option<Revision> {
    loop {
        match listener {
            Some(connected) => match connected.try_recv().await {
                Ok(Some(notification)) => {
                    return notification.payload().parse().ok().map(Revision);
                }
                // Reconnected: notifications may have been lost.
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection failed");
                    *listener = None;
                }
            },
            None => match tokio::time::timeout(connect_timeout, listen_once(url)).await {
                Ok(Ok(connected)) => {
                    tracing::debug!("listening for changes");
                    *listener = Some(connected);
                    return None;
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot LISTEN for changes"),
                Err(_) => tracing::warn!(?connect_timeout, "cannot LISTEN for changes: timed out"),
            },
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}

/// Connects and runs `LISTEN`.
async fn listen_once(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

/// Rows of a streamed dump, sent on in batches of [`DUMP_BATCH_ROWS`].
struct Batcher {
    rows: mpsc::Sender<DumpBatch>,
    batch: DumpBatch,
}

/// Rows per batch of a streamed dump: large enough that the channel costs nothing per row.
const DUMP_BATCH_ROWS: usize = 4096;

impl Batcher {
    fn new(rows: mpsc::Sender<DumpBatch>) -> Self {
        Batcher {
            rows,
            batch: Vec::with_capacity(DUMP_BATCH_ROWS),
        }
    }

    async fn push(&mut self, tenant: TenantId, row: DumpRow) -> StoreResult<()> {
        self.batch.push((tenant, row));
        if self.batch.len() >= DUMP_BATCH_ROWS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> StoreResult<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(DUMP_BATCH_ROWS));
        self.rows.send(batch).await.map_err(|_| {
            StoreError::Corrupt("the dump's reader stopped before the dump ended".to_owned())
        })
    }
}

/// Streams every row of `table` (all tenants), ordered by tenant then `order` when given,
/// as `wrap` makes it a [`DumpRow`].
async fn dump_table<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    out: &mut Batcher,
    table: Table<T>,
    order: Option<&'static str>,
    wrap: fn(T) -> DumpRow,
) -> StoreResult<()> {
    let mut sql = Sql::new("SELECT tenant_id, body FROM ");
    sql.push(table.name);
    if let Some(order) = order {
        sql.push(" ORDER BY tenant_id, ").push(order);
    }
    let mut rows = sql.query().fetch(&mut *conn);
    // Rows come mostly grouped by tenant: parse each run's tenant id once.
    let mut last: Option<(String, TenantId)> = None;
    while let Some(row) = rows.try_next().await? {
        let tenant: &str = row.try_get(0)?;
        let id = match &last {
            Some((text, id)) if text == tenant => *id,
            _ => {
                let id = parse_tenant(tenant)?;
                last = Some((tenant.to_owned(), id));
                id
            }
        };
        let body: &str = row.try_get(1)?;
        out.push(id, wrap(from_json(table.name, body)?)).await?;
    }
    Ok(())
}
