//! Persistence, split by aggregate: [`RoleStore`] (role definitions), [`AssignmentStore`]
//! (role and deny assignments), [`DirectoryStore`] (groups and administrative units, one
//! generic [`ContainerStore`] each, the principal directory, a [`PrincipalStore`], and the
//! resource directory, a [`ResourceStore`]) and
//! [`ChangeFeed`] (revisions, the change log, the dump and wake-ups). [`Store`] is all of
//! them, implemented once in SQL for PostgreSQL and SQLite.
//!
//! Every write runs in one transaction that first increments the single revision row
//! (locked until commit, so revisions commit in order), then changes the tables and
//! appends one `changes` row per object touched. PostgreSQL also sends
//! `NOTIFY rolecall_changes` on commit. SQL lives only in this module.

mod assignments;
mod directory;
mod feed;
mod import;
mod pim;
mod principals;
mod resources;
mod roles;
mod sql;
mod url;

use async_trait::async_trait;
use uuid::Uuid;

pub use crate::model::{Dump, DumpBatch, DumpRow, TenantDump};
use crate::model::{Refusal, Revision, ValidationErrors};

pub use assignments::{AssignmentStore, RoleAssignmentFilter};
pub use directory::{Container, ContainerStore, DirectoryStore};
pub use feed::{
    ChangeFeed, ChangeFilter, ChangesRead, Committed, LocalCommits, LoggedChange, Wakeups,
    DUMP_BATCHES_IN_FLIGHT, LOCAL_COMMIT_CHANGES,
};
pub use import::{ImportRecord, ImportStore, DETAILED_CHANGES_LIMIT};
pub use pim::{PimStore, Review, ScheduleRequestFilter};
pub use principals::{PrincipalFilter, PrincipalStore};
pub use resources::{ResourceFilter, ResourceStore, Upsert, UpsertOutcome, Upserted};
pub use roles::{RoleDefinitionFilter, RoleStore};
pub use sql::{PoolSettings, SqlStore};
pub use url::{Backend, DatabaseUrl, UnsupportedDatabaseUrl};

/// What the store can fail with; each variant is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object in this tenant.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// The object kind, e.g. `roleDefinition`.
        kind: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// The write would break a uniqueness or reference rule.
    #[error("{0}")]
    Conflict(String),
    /// Built-in roles are read-only.
    #[error("built-in role `{0}` cannot be changed or deleted; clone it instead")]
    BuiltinImmutable(Uuid),
    /// `If-Match` named another version than the stored one.
    #[error("the object changed since it was read (current etag {current})")]
    PreconditionFailed {
        /// The current ETag value, so the client can re-read.
        current: String,
    },
    /// Well-formed input that the directory's current state cannot accept.
    #[error("{0}")]
    Unprocessable(ValidationErrors),
    /// A PIM request, review or activation the directory's state refuses (see
    /// [`Refusal::reason`]).
    #[error(transparent)]
    Refused(Refusal),
    /// A page cursor this store did not hand out (or for another listing).
    #[error("not a cursor returned by this listing; start again without `cursor`")]
    InvalidCursor,
    /// The database could not be reached or failed.
    #[error("store unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Stored data did not decode (a bug or a manual edit).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the database could not be reached, or is shutting down or starting: an
    /// outage worth waiting out, as opposed to a refusal that retrying cannot change (bad
    /// credentials, a missing database, a migration that does not match).
    pub fn is_outage(&self) -> bool {
        match self {
            StoreError::Unavailable(error) => sqlx_outage(error),
            _ => false,
        }
    }
}

fn sqlx_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes 08 (connection exception), 53 (insufficient resources: too many
        // connections) and 57P (the server is shutting down, restarting or starting).
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
        }),
        sqlx::Error::Migrate(error) => match error.as_ref() {
            sqlx::migrate::MigrateError::Execute(error)
            | sqlx::migrate::MigrateError::ExecuteMigration(error, _) => sqlx_outage(error),
            _ => false,
        },
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Unavailable(error)
    }
}

/// Store result.
pub type StoreResult<T> = Result<T, StoreError>;

/// Who performed a write, recorded in `changes.actor` and `changes.actor_issuer`.
///
/// A principal id alone does not say who vouched for it: two trusted issuers may both
/// present the same `oid`. So a token caller is recorded with the issuer (`iss`) that
/// signed its token, kept apart from the id so the audit trail can filter on either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The principal id, or a fixed name (`admin-key`, `bootstrap-config`, `bootstrap-cli`).
    id: String,
    /// The token issuer that vouched for `id`; `None` for the admin key and bootstrap.
    issuer: Option<String>,
}

impl Actor {
    /// An actor that no token issuer vouched for: the admin key, bootstrap, tools.
    pub fn new(id: impl Into<String>) -> Actor {
        Actor {
            id: id.into(),
            issuer: None,
        }
    }

    /// A token holder: its principal id and the issuer (`iss`, as the token states it).
    pub fn with_issuer(id: impl Into<String>, issuer: impl Into<String>) -> Actor {
        Actor {
            id: id.into(),
            issuer: Some(issuer.into()),
        }
    }

    /// The principal id or fixed name, stored in `changes.actor`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The issuer that vouched for the actor, stored in `changes.actor_issuer`.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

/// A page request: up to `limit` items after the opaque `cursor` (a previous page's `next`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=1000, checked by the API.
    pub limit: u32,
    /// The last key of the previous page, as the store encoded it.
    pub cursor: Option<String>,
}

/// One page of a stable, keyed ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// At most `limit` items.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// An object with the revision of its last write (its ETag).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The object.
    pub value: T,
    /// The revision that last wrote it; built-ins carry revision 0.
    pub revision: Revision,
}

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// The object as it now stands (for deletes, as it stood).
    pub value: T,
    /// The write's revision; for an idempotent create that found the object, the revision
    /// that created it (nothing was written).
    pub revision: Revision,
    /// False when an idempotent create found the object already there.
    pub created: bool,
}

/// The directory's persistence: every aggregate's store in one. Implementations keep
/// every write atomic and ordered by revision, and never let one tenant read or change
/// another's objects.
#[async_trait]
pub trait Store:
    RoleStore + AssignmentStore + DirectoryStore + ChangeFeed + ImportStore + PimStore + 'static
{
    /// `postgres` or `sqlite`, for logs and `/readyz`.
    fn backend(&self) -> Backend;

    /// Round-trips to the database (readiness).
    async fn ping(&self) -> StoreResult<()>;
}
