//! The only writer of the engine snapshot.
//!
//! At start-up it loads every tenant's directory at one revision, then follows `changes`
//! after it, in order. One loop wakes on a local write (a kick), on PostgreSQL's
//! `NOTIFY rolecall_changes` (another replica wrote), or on a poll tick that covers lost
//! notifications and reconnects. Notification payloads are never trusted: waking only
//! makes the loop read `changes` after the revision it has applied. A wake-up that can
//! change nothing reads nothing: a notification naming a revision the snapshot already
//! holds (this replica's own write; a forged one can only cancel itself), or a kick from a
//! request whose revision is applied (a group commit's callers each kick once). A read
//! that reached the end of the log does not read again until the next wake-up.
//!
//! This process's own writes need no read at all: the store hands each committed write's
//! changes to the loop ([`ChangeFeed::local_commits`]), which applies it when it is the
//! revision after the snapshot's. Revisions commit in order, one write each, so nothing
//! else can lie between; a write that does not follow (another replica's came first, or
//! the hand-off was missed) waits for the read its waiters or the notification cause.
//!
//! [`ChangeFeed::local_commits`]: crate::store::ChangeFeed::local_commits
//!
//! Sync also decodes each change's JSON `before`/`after` bodies into the engine's typed
//! [`Delta`]s, so the engine never parses; a change that does not decode, like one the
//! engine cannot apply, makes it reload a full snapshot.
//!
//! It also keeps the replica's health for `/readyz` and the staleness bound: whether the
//! snapshot is loaded, when the last successful sync began (so how stale the snapshot may
//! be), and whether the last attempt reached the store. Reading it costs two atomic loads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::engine::{Delta, Edit, Snapshot, SnapshotBuilder, Versions};
use crate::model::{Catalog, Change, ChangeOp, EntityType, Revision};
use crate::store::{
    Committed, DumpBatch, LocalCommits, Store, StoreError, Wakeups, DUMP_BATCHES_IN_FLIGHT,
};

/// How many changes one catch-up step reads at most.
const BATCH: u32 = 5_000;

/// How many of this process's committed writes sync holds while one before them is
/// missing (for the few milliseconds until a read brings another replica's write); beyond,
/// it drops them and reads the change log.
const HELD_COMMITS: usize = 64;

/// The read side every request uses: the current snapshot and a way to wait for a revision.
pub struct Published {
    /// Swapped whole, never mutated: a check never waits on sync.
    current: ArcSwap<Snapshot>,
    /// The revision of `current`, for waiters.
    applied: watch::Sender<Revision>,
    /// Wakes the sync loop (a local write, or a NOTIFY from another replica).
    kick: Notify,
    /// The highest revision a request has waited for: a kick for a revision already
    /// applied (many waiters of one group commit kick once each) reads nothing.
    wanted: AtomicI64,
    /// The highest revision a wake-up from the database named since the last check
    /// (`i64::MAX` when one named none): a read is due while the snapshot does not hold
    /// it. Cleared by the check.
    heard: AtomicI64,
    /// The instant `synced_at` counts from.
    origin: Instant,
    /// When the last successful sync began, in milliseconds after `origin`, plus one; 0
    /// until the snapshot is loaded. The snapshot holds every change committed before it.
    synced_at: AtomicU64,
    /// Whether the last sync attempt reached the store.
    reachable: AtomicBool,
    /// Full reloads while following (for metrics).
    reloads: AtomicU64,
    /// Failed sync attempts (for metrics).
    errors: AtomicU64,
}

/// How often sync reloaded in full and failed, since start (what `/metrics` exports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncCounts {
    /// Full snapshot reloads while following the change log (a bulk import, or a change
    /// that could not be applied); the first load is not one.
    pub reloads: u64,
    /// Failed attempts: the first load's, and catch-ups'.
    pub errors: u64,
}

/// How current this replica's snapshot is: what `/readyz` reports and what the staleness
/// bound judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// The snapshot has been loaded from the store (until then it is empty, and nothing is
    /// answered from it).
    pub loaded: bool,
    /// The snapshot's revision.
    pub revision: Revision,
    /// Time since the last successful sync began; `None` before the first load.
    pub staleness: Option<Duration>,
    /// The last sync attempt (a load, or a read of the change log) reached the store.
    pub store_reachable: bool,
}

impl Health {
    /// Why this replica should not answer from its snapshot, or `None` when it may: not
    /// loaded yet, or older than `max_staleness` (when one is set).
    pub fn not_ready(&self, max_staleness: Option<Duration>) -> Option<String> {
        let Some(staleness) = self.staleness.filter(|_| self.loaded) else {
            return Some(
                "this replica has not loaded its decision snapshot yet (the store is \
                 unreachable); retry later"
                    .to_owned(),
            );
        };
        match max_staleness {
            Some(max) if staleness > max => Some(format!(
                "this replica's decision snapshot was last synced {:.1} s ago, beyond the \
                 {:.1} s allowed (the store is unreachable); retry later",
                staleness.as_secs_f64(),
                max.as_secs_f64()
            )),
            _ => None,
        }
    }
}

/// The snapshot did not reach the wanted revision in time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the snapshot is at revision {reached}, not yet at {wanted}")]
pub struct NotYet {
    /// The revision asked for.
    pub wanted: Revision,
    /// The revision reached when time ran out.
    pub reached: Revision,
}

impl Published {
    /// An empty snapshot that is not loaded: nothing is answered from it until
    /// [`Follower::start`] loads the store's.
    pub fn unloaded(catalog: &Catalog) -> Published {
        let snapshot = Snapshot::empty(catalog);
        let revision = snapshot.revision();
        Published {
            current: ArcSwap::from_pointee(snapshot),
            applied: watch::Sender::new(revision),
            kick: Notify::new(),
            wanted: AtomicI64::new(revision.0),
            heard: AtomicI64::new(i64::MIN),
            origin: Instant::now(),
            synced_at: AtomicU64::new(0),
            reachable: AtomicBool::new(false),
            reloads: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// The snapshot's health, now.
    pub fn health(&self) -> Health {
        let synced_at = self.synced_at.load(Ordering::Acquire);
        let staleness = synced_at.checked_sub(1).map(|ms| {
            let at = self.origin + Duration::from_millis(ms);
            Instant::now().saturating_duration_since(at)
        });
        Health {
            loaded: synced_at > 0,
            revision: self.snapshot().revision(),
            staleness,
            store_reachable: self.reachable.load(Ordering::Acquire),
        }
    }

    /// A sync that began at `began` succeeded: the snapshot holds everything committed
    /// before then.
    fn synced(&self, began: Instant) {
        let ms = began.saturating_duration_since(self.origin).as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1;
        // Never move backwards (a slow attempt finishing after a quicker one).
        self.synced_at.fetch_max(ms, Ordering::AcqRel);
        self.reachable.store(true, Ordering::Release);
    }

    /// How often sync reloaded in full and failed.
    pub fn sync_counts(&self) -> SyncCounts {
        SyncCounts {
            reloads: self.reloads.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// A sync attempt failed; `outage` says whether the store could not be reached.
    fn failed(&self, outage: bool) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if outage {
            self.reachable.store(false, Ordering::Release);
        }
    }

    /// The current snapshot; holding it keeps it alive while newer ones are swapped in.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Returns a snapshot at `revision` or later, waiting at most `timeout` for sync to
    /// reach it.
    pub async fn at_least(
        &self,
        revision: Revision,
        timeout: Duration,
    ) -> Result<Arc<Snapshot>, NotYet> {
        let snapshot = self.snapshot();
        if snapshot.revision() >= revision {
            return Ok(snapshot);
        }
        let mut applied = self.applied.subscribe();
        self.wanted.fetch_max(revision.0, Ordering::AcqRel);
        self.kick.notify_one();
        let reached = tokio::time::timeout(timeout, applied.wait_for(|r| *r >= revision)).await;
        match reached {
            Ok(Ok(_)) => Ok(self.snapshot()),
            _ => Err(NotYet {
                wanted: revision,
                reached: self.snapshot().revision(),
            }),
        }
    }

    /// Whether a kick calls for a read: a wake-up from the database naming a revision
    /// this snapshot does not hold (or none), or a request waiting for a revision it does
    /// not hold. Clears the first.
    fn needs_read(&self) -> bool {
        let held = self.snapshot().revision().0;
        // Both, so the wake-up is cleared whatever the waiters want.
        let heard = self.heard.swap(i64::MIN, Ordering::AcqRel) > held;
        heard || self.wanted.load(Ordering::Acquire) > held
    }

    /// A wake-up from the database: a read is due unless it names a revision this
    /// snapshot already holds (this replica's own writes, applied before their NOTIFY
    /// arrives).
    fn notified(&self, revision: Option<Revision>) {
        if revision.is_some_and(|r| r <= self.snapshot().revision()) {
            return;
        }
        self.heard
            .fetch_max(revision.map_or(i64::MAX, |r| r.0), Ordering::AcqRel);
        self.kick.notify_one();
    }

    /// Publishes a snapshot loaded in full while following, and counts the reload.
    fn reload(&self, snapshot: Snapshot) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.publish(snapshot);
    }

    fn publish(&self, snapshot: Snapshot) {
        let revision = snapshot.revision();
        self.current.store(Arc::new(snapshot));
        self.applied.send_replace(revision);
    }
}

/// The running sync: the snapshot it publishes and its background tasks (aborted on drop).
pub struct Follower {
    /// Shared with every request.
    pub published: Arc<Published>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Follower {
    /// Loads the snapshot into `directory`, then starts following the change log, woken by
    /// the store's wake-ups where it sends them (PostgreSQL).
    #[tracing::instrument(skip_all)]
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        directory: Arc<Published>,
        poll_interval: Duration,
    ) -> Result<Follower, StoreError> {
        let started = Instant::now();
        // Before the load: a write committed meanwhile is either in the dump or handed
        // over (or both, and then dropped as held).
        let commits = store.local_commits();
        let snapshot = match load(store.as_ref(), &catalog).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                directory.failed(error.is_outage());
                return Err(error);
            }
        };
        tracing::info!(
            revision = %snapshot.revision(),
            millis = started.elapsed().as_millis() as u64,
            "snapshot loaded"
        );
        directory.publish(snapshot);
        directory.synced(started);
        let mut tasks = vec![tokio::spawn(follow(
            store.clone(),
            catalog,
            directory.clone(),
            poll_interval,
            commits,
        ))];
        if let Some(wakeups) = store.subscribe() {
            tasks.push(tokio::spawn(listen(wakeups, directory.clone())));
        }
        Ok(Follower {
            published: directory,
            tasks,
        })
    }
}

/// Reads a dump and builds a snapshot from it. The build (3 to 4 seconds per million
/// assignments) runs on the blocking pool, so it never stalls the requests sharing the
/// async workers, at start or on a reload while serving.
async fn load(store: &dyn Store, catalog: &Arc<Catalog>) -> Result<Snapshot, StoreError> {
    // The rows are indexed on a blocking thread while the store reads on, so the read and
    // the build overlap (two cores' worth at start-up) and the whole dump is never held:
    // each batch is dropped once indexed.
    let (sender, mut receiver) = mpsc::channel::<DumpBatch>(DUMP_BATCHES_IN_FLIGHT);
    let builder = {
        let catalog = Arc::clone(catalog);
        tokio::task::spawn_blocking(move || {
            let mut builder = SnapshotBuilder::new(&catalog);
            let mut rows = 0usize;
            while let Some(batch) = receiver.blocking_recv() {
                rows += batch.len();
                for (tenant, row) in batch {
                    builder.add(tenant, row);
                }
            }
            (builder, rows)
        })
    };
    let started = Instant::now();
    // Dropping the sender (read done or failed) ends the builder's loop.
    let read = store.dump_rows(sender, false).await;
    let read_in = started.elapsed();
    let (builder, rows) = match builder.await {
        Ok(built) => built,
        // A blocking task is only cancelled when the runtime shuts down, and then nothing
        // waits for this answer; a panic in the build goes on as a panic here, as it did
        // when the build ran inline.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    let revision = read?;
    let snapshot = builder.finish(revision);
    tracing::info!(
        rows,
        read_millis = read_in.as_millis() as u64,
        total_millis = started.elapsed().as_millis() as u64,
        "dump read and indexed"
    );
    Ok(snapshot)
}

/// The loop: wake, apply this process's own commits, catch up when that is not enough,
/// repeat.
async fn follow(
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    directory: Arc<Published>,
    poll: Duration,
    mut commits: Option<LocalCommits>,
) {
    let mut held: BTreeMap<Revision, Vec<Change>> = BTreeMap::new();
    let mut next_poll = Instant::now() + poll;
    loop {
        let polled = tokio::select! {
            committed = next_commit(&mut commits) => {
                match committed {
                    Some(committed) => hold(&mut held, committed),
                    // The store handed commits to a newer receiver.
                    None => commits = None,
                }
                false
            }
            _ = directory.kick.notified() => false,
            _ = tokio::time::sleep_until(next_poll) => true,
        };
        // Commits are handed over before their callers are answered, so a waiter's kick
        // finds its write here.
        while let Some(receiver) = commits.as_mut() {
            match receiver.try_recv() {
                Ok(committed) => hold(&mut held, committed),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => commits = None,
            }
        }
        apply_held(&directory, &mut held);
        if !polled && !directory.needs_read() {
            continue;
        }
        let began = Instant::now();
        next_poll = began + poll;
        match catch_up(store.as_ref(), &catalog, &directory).await {
            Ok(()) => directory.synced(began),
            Err(error) => {
                directory.failed(error.is_outage());
                tracing::warn!(%error, "sync could not catch up; retrying on the next tick");
            }
        }
    }
}

/// The next commit handed over, or never when there is no receiver.
async fn next_commit(commits: &mut Option<LocalCommits>) -> Option<Committed> {
    match commits {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Keeps a commit handed over until the snapshot reaches the revision before it.
fn hold(held: &mut BTreeMap<Revision, Vec<Change>>, committed: Committed) {
    if held.len() >= HELD_COMMITS {
        // One before them never came (the queue was full): the change log has them all.
        held.clear();
    }
    held.insert(committed.revision, committed.changes);
}

/// Applies the held commits that follow the snapshot, in order, and drops those it
/// already holds. One that does not apply (a bulk import's summary) is left for the read
/// that reloads.
fn apply_held(directory: &Published, held: &mut BTreeMap<Revision, Vec<Change>>) {
    loop {
        let current = directory.snapshot();
        let next = Revision(current.revision().0.saturating_add(1));
        *held = held.split_off(&next);
        let Some(changes) = held.remove(&next) else {
            return;
        };
        match advance(&current, &changes) {
            Ok(snapshot) => directory.publish(snapshot),
            Err(error) => {
                tracing::debug!(%error, revision = %next, "reading a local commit instead");
                directory.heard.fetch_max(next.0, Ordering::AcqRel);
                return;
            }
        }
    }
}

/// Applies every change after the current snapshot's revision; reloads in full when a
/// change cannot be applied.
#[tracing::instrument(skip_all)]
async fn catch_up(
    store: &dyn Store,
    catalog: &Arc<Catalog>,
    directory: &Published,
) -> Result<(), StoreError> {
    loop {
        let current = directory.snapshot();
        let read = store.changes_after_read(current.revision(), BATCH).await?;
        let (changes, complete) = (read.changes, read.complete);
        if changes.is_empty() {
            return Ok(());
        }
        match advance(&current, &changes) {
            Ok(next) => {
                directory.publish(next);
                // The read held every change committed when it ran: what commits later
                // kicks the loop again.
                if complete {
                    return Ok(());
                }
            }
            Err(error)
                if error
                    .downcast_ref::<DecodeError>()
                    .is_some_and(|e| matches!(e, DecodeError::BulkImport { .. })) =>
            {
                tracing::info!(%error, "reloading after a bulk import");
                directory.reload(load(store, catalog).await?);
            }
            Err(error) => {
                tracing::error!(%error, "change could not be applied; reloading the snapshot");
                directory.reload(load(store, catalog).await?);
            }
        }
    }
}

/// `current` with `changes` decoded and applied; an error (a change that does not decode,
/// or one out of order) says why the caller must reload instead.
fn advance(
    current: &Snapshot,
    changes: &[Change],
) -> Result<Snapshot, Box<dyn std::error::Error + Send + Sync>> {
    let deltas = changes
        .iter()
        .filter(|change| change.entity_type.affects_decisions() && !is_detailed_import(change))
        .map(decode)
        .collect::<Result<Vec<Delta>, _>>()?;
    // Through the last revision read, even when its changes (PIM's) decide nothing.
    let through = changes.last().map(|change| change.revision);
    Ok(current.apply_through(&deltas, through)?)
}

/// An import's summary row whose revision also logs each object it changed: those rows
/// carry the import, so the summary itself changes nothing.
fn is_detailed_import(change: &Change) -> bool {
    change.entity_type == EntityType::Import
        && change
            .after
            .as_ref()
            .and_then(|after| after.get("detailed"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
}

/// A logged change whose bodies do not give the engine what it needs. Sync then reloads a
/// full snapshot rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The change is of an object no decision reads (see
    /// [`EntityType::affects_decisions`]); sync skips those before decoding.
    #[error("change {revision}.{sequence} changes no decision")]
    NoDecisionEffect {
        /// Its revision.
        revision: Revision,
        /// Its position within the revision.
        sequence: i64,
    },
    /// A change lacks the `before` or `after` object its operation needs.
    #[error("change {revision}.{sequence} ({entity} {op}) has no `{field}` object")]
    MissingObject {
        /// The change's revision.
        revision: Revision,
        /// Its position within the revision.
        sequence: i64,
        /// What kind of object.
        entity: &'static str,
        /// What happened.
        op: &'static str,
        /// `before` or `after`.
        field: &'static str,
    },
    /// A bulk import logged only its summary: its objects are read by reloading.
    #[error("revision {revision} is a bulk import; reloading the snapshot")]
    BulkImport {
        /// The import's revision.
        revision: Revision,
    },
    /// A change's object does not decode as its entity type.
    #[error("change {revision}.{sequence} ({entity}) does not decode: {message}")]
    Undecodable {
        /// The change's revision.
        revision: Revision,
        /// Its position within the revision.
        sequence: i64,
        /// What kind of object.
        entity: &'static str,
        /// The decoder's message.
        message: String,
    },
}

/// Decodes one logged change into the engine's typed form: `before` for an update or a
/// delete, `after` for a create or an update, each as its entity type.
pub fn decode(change: &Change) -> Result<Delta, DecodeError> {
    let edit = match change.entity_type {
        EntityType::RoleDefinition => Edit::RoleDefinition(versions(change)?),
        EntityType::RoleAssignment => Edit::RoleAssignment(versions(change)?),
        EntityType::DenyAssignment => Edit::DenyAssignment(versions(change)?),
        EntityType::Group => Edit::Group(versions(change)?),
        EntityType::GroupMember => Edit::GroupMember(versions(change)?),
        EntityType::AdministrativeUnit => Edit::AdministrativeUnit(versions(change)?),
        EntityType::AdministrativeUnitMember => Edit::AdministrativeUnitMember(versions(change)?),
        EntityType::Principal => Edit::Principal(versions(change)?),
        EntityType::Resource => Edit::Resource(versions(change)?),
        EntityType::Import => {
            return Err(DecodeError::BulkImport {
                revision: change.revision,
            })
        }
        EntityType::RoleEligibilitySchedule
        | EntityType::RoleAssignmentScheduleRequest
        | EntityType::RoleManagementPolicy => {
            return Err(DecodeError::NoDecisionEffect {
                revision: change.revision,
                sequence: change.sequence,
            })
        }
    };
    Ok(Delta {
        revision: change.revision,
        sequence: change.sequence,
        tenant: change.tenant_id,
        edit,
    })
}

fn versions<T: DeserializeOwned>(change: &Change) -> Result<Versions<T>, DecodeError> {
    Ok(match change.op {
        ChangeOp::Create => Versions::Created(object(change, "after", &change.after)?),
        ChangeOp::Update => Versions::Updated {
            before: object(change, "before", &change.before)?,
            after: object(change, "after", &change.after)?,
        },
        ChangeOp::Delete => Versions::Deleted(object(change, "before", &change.before)?),
    })
}

/// Decodes `value`, the change's `field` (`before` or `after`).
fn object<T: DeserializeOwned>(
    change: &Change,
    field: &'static str,
    value: &Option<serde_json::Value>,
) -> Result<T, DecodeError> {
    let value = value.as_ref().ok_or(DecodeError::MissingObject {
        revision: change.revision,
        sequence: change.sequence,
        entity: change.entity_type.as_str(),
        op: change.op.as_str(),
        field,
    })?;
    T::deserialize(value).map_err(|e| DecodeError::Undecodable {
        revision: change.revision,
        sequence: change.sequence,
        entity: change.entity_type.as_str(),
        message: e.to_string(),
    })
}

/// Hands each of the store's wake-ups (another replica wrote, or notifications may have
/// been lost) to [`Published::notified`], which kicks the loop unless the snapshot already
/// holds the revision it names.
async fn listen(mut wakeups: Wakeups, directory: Arc<Published>) {
    while let Some(revision) = futures::StreamExt::next(&mut wakeups).await {
        directory.notified(revision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published() -> Published {
        #[allow(clippy::expect_used)]
        let catalog = Catalog::builtin().expect("the built-in catalog parses");
        Published::unloaded(&catalog)
    }

    #[test]
    fn a_notification_of_a_held_revision_reads_nothing_and_any_other_reads_once() {
        let p = published();
        // The snapshot is at revision 0: a notification of it is this replica's own.
        p.notified(Some(Revision(0)));
        assert!(!p.needs_read(), "a revision already held");
        p.notified(Some(Revision(1)));
        assert!(p.needs_read(), "a revision not held yet");
        assert!(!p.needs_read(), "the read it caused clears it");
        p.notified(None);
        assert!(
            p.needs_read(),
            "a wake-up without a revision (a reconnect) always reads"
        );
        assert!(!p.needs_read());
    }

    #[tokio::test]
    async fn a_waiter_kicks_a_read_until_its_revision_is_applied() {
        let p = published();
        assert!(!p.needs_read(), "nobody waits");
        let waited = p.at_least(Revision(3), Duration::from_millis(1)).await;
        assert!(waited.is_err(), "nothing applies revision 3 here");
        assert!(p.needs_read(), "revision 3 is wanted and not held");
        assert!(p.needs_read(), "and stays wanted until applied");
    }
}
