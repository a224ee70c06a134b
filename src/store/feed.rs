//! The change feed: revisions, the change log (the audit trail and what replicas follow),
//! and the consistent dump a snapshot is built from.

use std::ops::Deref;

use async_trait::async_trait;

use super::{Dump, Page, PageRequest, StoreResult};
use crate::model::{Change, Revision, TenantId};

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
    ) -> StoreResult<Page<LoggedChange>>;

    /// Every tenant's objects, read in one consistent snapshot.
    async fn dump(&self) -> StoreResult<Dump>;

    /// Up to `limit` changes of every tenant with revision > `after`, in order. Only whole
    /// revisions are returned (a revision's changes are never split across calls).
    async fn changes_after(&self, after: Revision, limit: u32) -> StoreResult<Vec<Change>>;
}
