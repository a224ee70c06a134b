//! Which database to use: a URL parsed into the backend it names and the form the store
//! connects with.

use std::fmt;
use std::path::Path;

/// Which database a store talks to; chosen from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// SQLite (`sqlite:`).
    Sqlite,
}

impl Backend {
    /// `postgres` or `sqlite`, for logs and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URL whose scheme names no supported backend. It never holds the URL, which may hold a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a postgres://, postgresql:// or sqlite: url")]
pub struct UnsupportedDatabaseUrl;

/// A database URL with the backend it names. An SQLite URL is kept in the form the store
/// connects with: `mode=rwc` added, so a missing file is created, unless it names a mode
/// or an in-memory database. Its `Debug` never prints the URL, which may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// The URL to connect to.
    url: String,
}

impl DatabaseUrl {
    /// Parses `postgres://…`, `postgresql://…` or `sqlite:…`.
    pub fn parse(url: &str) -> Result<DatabaseUrl, UnsupportedDatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl {
                backend: Backend::Postgres,
                url: url.to_owned(),
            })
        } else if url.starts_with("sqlite:") {
            Ok(DatabaseUrl {
                backend: Backend::Sqlite,
                url: sqlite_create_if_missing(url),
            })
        } else {
            Err(UnsupportedDatabaseUrl)
        }
    }

    /// The SQLite database file at `path`, created when missing (its directory must exist).
    pub fn sqlite_file(path: &Path) -> DatabaseUrl {
        DatabaseUrl {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}?mode=rwc", path.display()),
        }
    }

    /// The backend the scheme names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to connect to. It may hold a password: never log it.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// True for an SQLite database that lives in its connection's memory.
    pub fn is_in_memory(&self) -> bool {
        self.backend == Backend::Sqlite && sqlite_in_memory(&self.url)
    }
}

impl fmt::Debug for DatabaseUrl {
    // The URL may hold a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = UnsupportedDatabaseUrl;

    fn from_str(url: &str) -> Result<DatabaseUrl, UnsupportedDatabaseUrl> {
        DatabaseUrl::parse(url)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> String {
        DatabaseUrl::parse(raw).unwrap().as_str().to_owned()
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        assert_eq!(url("sqlite://data/r.db"), "sqlite://data/r.db?mode=rwc");
        assert_eq!(
            url("sqlite://r.db?cache=shared"),
            "sqlite://r.db?cache=shared&mode=rwc"
        );
        assert_eq!(url("sqlite://r.db?mode=ro"), "sqlite://r.db?mode=ro");
        assert_eq!(url("sqlite::memory:"), "sqlite::memory:");
        assert!(DatabaseUrl::parse("sqlite::memory:")
            .unwrap()
            .is_in_memory());
        assert!(!DatabaseUrl::parse("sqlite://r.db").unwrap().is_in_memory());
    }

    #[test]
    fn the_backend_comes_from_the_url_scheme() {
        let backend = |raw: &str| DatabaseUrl::parse(raw).map(|url| url.backend());
        assert_eq!(backend("postgres://u@h/db"), Ok(Backend::Postgres));
        assert_eq!(backend("postgresql://u@h/db"), Ok(Backend::Postgres));
        assert_eq!(backend("sqlite://r.db"), Ok(Backend::Sqlite));
        assert_eq!(backend("mysql://u@h/db"), Err(UnsupportedDatabaseUrl));
    }

    #[test]
    fn debug_never_prints_the_url() {
        let url = DatabaseUrl::parse("postgres://user:secret@host/db").unwrap();
        assert!(!format!("{url:?}").contains("secret"));
    }
}
