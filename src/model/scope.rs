//! Scope paths: `/` (the whole tenant) or `/segment/...` (one object and what lies below it).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest scope path accepted, in bytes.
pub const MAX_SCOPE_LEN: usize = 512;
/// The deepest scope path accepted, in segments.
pub const MAX_SCOPE_DEPTH: usize = 16;

/// Why a string is not a scope path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The path does not start with `/`.
    #[error("a scope starts with `/`")]
    NotAbsolute,
    /// The path is longer than [`MAX_SCOPE_LEN`].
    #[error("a scope is at most {MAX_SCOPE_LEN} bytes")]
    TooLong,
    /// The path is deeper than [`MAX_SCOPE_DEPTH`].
    #[error("a scope has at most {MAX_SCOPE_DEPTH} segments")]
    TooDeep,
    /// Two slashes in a row, or a trailing slash.
    #[error("a scope has no empty segments (no `//`, no trailing `/`)")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("a scope has no `.` or `..` segments")]
    DotSegment,
    /// A character outside the allowed set.
    #[error("a scope segment holds only letters, digits and `-._~:@`; found `{0}`")]
    BadCharacter(char),
}

/// A validated scope path. Holding one means it is well formed.
///
/// Coverage is by whole segments: `/applications/ab` covers `/applications/ab/keys/k1`
/// but never `/applications/abc`. Comparison is exact (case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// The whole tenant.
    pub fn root() -> Self {
        Scope("/".to_owned())
    }

    /// Validates `path` as a scope.
    pub fn parse(path: &str) -> Result<Self, ScopeError> {
        if !path.starts_with('/') {
            return Err(ScopeError::NotAbsolute);
        }
        if path.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        if path == "/" {
            return Ok(Self::root());
        }
        let mut depth = 0;
        for segment in path[1..].split('/') {
            depth += 1;
            if depth > MAX_SCOPE_DEPTH {
                return Err(ScopeError::TooDeep);
            }
            if segment.is_empty() {
                return Err(ScopeError::EmptySegment);
            }
            if segment == "." || segment == ".." {
                return Err(ScopeError::DotSegment);
            }
            if let Some(bad) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "-._~:@".contains(*c)))
            {
                return Err(ScopeError::BadCharacter(bad));
            }
        }
        Ok(Scope(path.to_owned()))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The segments below the root (`/a/b` gives `a`, `b`; `/` gives none).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0[1..].split('/').filter(|s| !s.is_empty())
    }

    /// True when `self` equals `other` or is an ancestor of it, by whole segments.
    pub fn covers(&self, other: &Scope) -> bool {
        if self.is_root() {
            return true;
        }
        match other.0.strip_prefix(self.0.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// `self` and every ancestor up to `/`, most specific first.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let mut next = Some(self.0.as_str());
        std::iter::from_fn(move || {
            let current = next?;
            next = match current.rfind('/') {
                _ if current == "/" => None,
                Some(0) => Some("/"),
                Some(i) => Some(&current[..i]),
                None => None,
            };
            Some(current)
        })
    }

    /// The administrative unit this scope names, if it is exactly `/administrativeUnits/{id}`.
    pub fn administrative_unit(&self) -> Option<uuid::Uuid> {
        let mut segments = self.segments();
        match (segments.next(), segments.next(), segments.next()) {
            (Some("administrativeUnits"), Some(id), None) => uuid::Uuid::parse_str(id).ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Scope::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_by_whole_segments() {
        let ab = Scope::parse("/applications/ab").unwrap();
        assert!(ab.covers(&Scope::parse("/applications/ab").unwrap()));
        assert!(ab.covers(&Scope::parse("/applications/ab/credentials/k1").unwrap()));
        assert!(!ab.covers(&Scope::parse("/applications/abc").unwrap()));
        assert!(!ab.covers(&Scope::parse("/applications").unwrap()));
        assert!(Scope::root().covers(&ab));
    }

    #[test]
    fn ancestors_run_from_the_scope_up_to_the_root() {
        let s = Scope::parse("/a/b/c").unwrap();
        assert_eq!(
            s.ancestors().collect::<Vec<_>>(),
            ["/a/b/c", "/a/b", "/a", "/"]
        );
        assert_eq!(Scope::root().ancestors().collect::<Vec<_>>(), ["/"]);
    }

    #[test]
    fn malformed_paths_are_rejected_with_a_reason() {
        assert_eq!(Scope::parse("applications"), Err(ScopeError::NotAbsolute));
        assert_eq!(Scope::parse("/a//b"), Err(ScopeError::EmptySegment));
        assert_eq!(Scope::parse("/a/"), Err(ScopeError::EmptySegment));
        assert_eq!(Scope::parse("/a/../b"), Err(ScopeError::DotSegment));
        assert_eq!(Scope::parse("/a b"), Err(ScopeError::BadCharacter(' ')));
        assert_eq!(
            Scope::parse(&format!("/{}", "a".repeat(600))),
            Err(ScopeError::TooLong)
        );
        assert_eq!(Scope::parse(&"/a".repeat(17)), Err(ScopeError::TooDeep));
        assert_eq!(Scope::parse(""), Err(ScopeError::NotAbsolute));
    }

    #[test]
    fn an_administrative_unit_scope_names_its_unit() {
        let id = uuid::Uuid::new_v4();
        let s = Scope::parse(&format!("/administrativeUnits/{id}")).unwrap();
        assert_eq!(s.administrative_unit(), Some(id));
        assert_eq!(
            Scope::parse("/administrativeUnits")
                .unwrap()
                .administrative_unit(),
            None
        );
    }
}
