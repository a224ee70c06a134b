//! The change feed: revisions, the change log (the audit trail and what replicas follow),
//! the consistent dump a snapshot is built from, and wake-ups when another process writes.

use std::ops::Deref;

use async_trait::async_trait;
use futures::stream::BoxStream;

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::{Dump, DumpBatch, Page, PageRequest, StoreResult, TenantDump};
#[cfg(doc)]
use super::{DumpRow, StoreError};
use crate::model::{Change, EntityType, Revision, TenantId, Timestamp};

/// One row of the change log as the audit trail lists it: the [`Change`] (also what sync
/// replays) plus the issuer of the actor, which only the audit trail needs. Derefs to the
/// change, so its fields read as before.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedChange {
    /// The change.
    pub change: Change,
    /// The token issuer that vouched for `change.actor`; `None` for the admin key,
    /// bootstrap, and rows written before the column existed.
    pub actor_issuer: Option<String>,
}

impl Deref for LoggedChange {
    type Target = Change;

    fn deref(&self) -> &Change {
        &self.change
    }
}

/// What one read of the change log returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesRead {
    /// The changes, whole revisions in order.
    pub changes: Vec<Change>,
    /// They are every change committed after the revision asked for when the read ran
    /// (false when the limit left some out).
    pub complete: bool,
}

/// Wake-ups from the database: each item means "something may have been committed; read
/// [`ChangeFeed::changes_after`] again", with the revision the notification names when it
/// names one. A lost or duplicated item only delays or repeats a read. The revision is
/// never trusted as data: it only lets a replica skip the read for a revision it already
/// holds (its own writes), so a forged one can at most cancel its own wake-up.
pub type Wakeups = BoxStream<'static, Option<Revision>>;

/// One write this process committed, with every change it logged, handed to this process's
/// sync so read-your-writes need not wait for a read of the change log (see
/// [`ChangeFeed::local_commits`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The write's revision.
    pub revision: Revision,
    /// Every change the write logged, in sequence order.
    pub changes: Vec<Change>,
}

/// This process's committed writes, in about commit order (see
/// [`ChangeFeed::local_commits`]).
pub type LocalCommits = mpsc::Receiver<Committed>;

/// The most changes one write hands to [`ChangeFeed::local_commits`] (a group commit logs
/// at most 256); a larger write (a detailed import) is read from the change log instead.
/// With at most 64 writes waiting in the channel and 64 held by sync, the hand-off holds at
/// most 128,000 changes, even while sync is busy reloading.
pub const LOCAL_COMMIT_CHANGES: usize = 1_000;

/// Which changes an audit query selects (every field that is set must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only changes with a revision greater than this.
    pub since: Revision,
    /// Only changes made by this actor (a principal id, `admin-key` or `bootstrap`).
    pub actor: Option<String>,
    /// Only changes to this kind of object.
    pub entity_type: Option<EntityType>,
    /// Only changes to the object with this id (as the change log names it).
    pub entity_id: Option<String>,
    /// Only changes made at or after this instant.
    pub from: Option<Timestamp>,
    /// Only changes made before this instant.
    pub until: Option<Timestamp>,
}

/// How many batches of a streamed dump may wait for their reader: enough to keep the
/// reader busy while the store reads on, few enough to hold little.
pub const DUMP_BATCHES_IN_FLIGHT: usize = 4;

/// Revisions and the change log, for the audit trail and for sync.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The newest committed revision.
    async fn current_revision(&self) -> StoreResult<Revision>;

    /// This tenant's changes with revision > `since`, ordered by (revision, sequence), each
    /// with its actor's issuer.
    async fn list_changes(
        &self,
        tenant: TenantId,
        since: Revision,
        page: &PageRequest,
    ) -> StoreResult<Page<LoggedChange>> {
        let filter = ChangeFilter {
            since,
            ..ChangeFilter::default()
        };
        self.audit(tenant, &filter, page).await
    }

    /// This tenant's changes that `filter` selects, ordered by (revision, sequence), each
    /// with its actor's issuer: the audit log's query.
    async fn audit(
        &self,
        tenant: TenantId,
        filter: &ChangeFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<LoggedChange>>;

    /// Every tenant's objects, read in one consistent snapshot and sent to `rows` in
    /// batches as they are read (each tenant's [`DumpRow::Tenant`] first); returns the
    /// revision the rows are consistent at. A reader that builds from the rows while they
    /// are read never holds the whole dump. Fails with [`StoreError::Corrupt`] if `rows`
    /// is closed before the end (its reader gave up).
    ///
    /// With `ordered`, each table's rows come by tenant then key, so equal directories
    /// give equal dumps; without, in whatever order the database reads them fastest (a
    /// sequential scan: at 1M assignments on PostgreSQL 1.5 s instead of 5.4 s through
    /// the primary key), for a reader such as the snapshot builder that needs no order.
    async fn dump_rows(
        &self,
        rows: mpsc::Sender<DumpBatch>,
        ordered: bool,
    ) -> StoreResult<Revision>;

    /// Every tenant's objects, read in one consistent snapshot and collected whole, each
    /// list in key order.
    async fn dump(&self) -> StoreResult<Dump> {
        let (sender, mut receiver) = mpsc::channel::<DumpBatch>(DUMP_BATCHES_IN_FLIGHT);
        let mut tenants: BTreeMap<TenantId, TenantDump> = BTreeMap::new();
        let collect = async {
            while let Some(batch) = receiver.recv().await {
                for (tenant, row) in batch {
                    tenants
                        .entry(tenant)
                        .or_insert_with(|| TenantDump::empty(tenant))
                        .push(row);
                }
            }
        };
        let (read, ()) = tokio::join!(self.dump_rows(sender, true), collect);
        Ok(Dump {
            revision: read?,
            tenants: tenants.into_values().collect(),
        })
    }

    /// Up to `limit` changes of every tenant with revision > `after`, in order. Only whole
    /// revisions are returned (a revision's changes are never split across calls).
    async fn changes_after(&self, after: Revision, limit: u32) -> StoreResult<Vec<Change>> {
        Ok(self.changes_after_read(after, limit).await?.changes)
    }

    /// As [`ChangeFeed::changes_after`], also saying whether the read reached the end of
    /// the log: sync then need not read again until something new is committed.
    async fn changes_after_read(&self, after: Revision, limit: u32) -> StoreResult<ChangesRead>;

    /// Wake-ups when any process commits, or `None` where the backend cannot send them
    /// (SQLite: polling alone finds other processes' writes). On PostgreSQL the stream
    /// holds one `LISTEN` connection of its own: it wakes once listening, on every
    /// `NOTIFY`, and again after each reconnect (notifications may have been lost
    /// meanwhile), retrying a lost connection every second for as long as it is held.
    fn subscribe(&self) -> Option<Wakeups>;

    /// From now on, each write this store commits with at most [`LOCAL_COMMIT_CHANGES`]
    /// changes, sent as it commits (a full receiver misses it). `None` where the store
    /// cannot. Only the latest receiver gets them: taking another ends the previous one.
    ///
    /// A replica that holds revision r - 1 may apply the write of revision r as sent
    /// instead of reading it: revisions commit in order and each is one write, so nothing
    /// else lies between. Anything else (a gap, a missed write) is for the change log.
    fn local_commits(&self) -> Option<LocalCommits> {
        None
    }
}
