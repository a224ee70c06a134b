//! Placeholder: replaced by the SQL implementation.

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// The channel PostgreSQL notifies on commit.
pub const NOTIFY_CHANNEL: &str = "rolecall_changes";

/// The SQL store.
pub struct SqlStore;
