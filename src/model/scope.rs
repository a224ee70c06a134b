//! Scope paths: `/` (the whole tenant) or `/segment/...` (one object and what lies below it).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::action::{char_at, is_slash};

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
    #[error("a scope segment holds only letters, digits, `-._~:@` and `%` escapes; found `{0}`")]
    BadCharacter(char),
    /// A `%` not followed by two hex digits.
    #[error("a `%` in a scope starts an escape of two hex digits, such as `%40`")]
    BadEscape,
}

/// A validated scope path in canonical form. Holding one means it is well formed and that
/// its uuid segments are spelled one way (see [`Scope::parse`]).
///
/// Coverage is by whole segments: `/applications/ab` covers `/applications/ab/keys/k1`
/// but never `/applications/abc`. Comparison is exact (case-sensitive) on the canonical
/// form, so `/applications/{ID}` and `/applications/{id}` are one scope when `id` is a uuid,
/// and every copy of a scope (stored row, snapshot, request) compares equal to every other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// The whole tenant.
    pub fn root() -> Self {
        Scope("/".to_owned())
    }

    /// Validates `path` as a scope and puts it in canonical form: `%` escapes (RFC 3986
    /// percent-encoding, which AuthZEN resource ids need) get uppercase hex digits; each
    /// segment that is a
    /// uuid in hyphenated form (8-4-4-4-12 hex digits, any case) is lowercased, and the id
    /// in `/administrativeUnits/{id}...` (always a uuid) is rewritten to the lowercase
    /// hyphenated form from any form [`uuid::Uuid::parse_str`] reads. Every other segment is
    /// kept byte for byte, case included.
    ///
    /// The 32-digit simple form is rewritten only as a unit id: elsewhere it cannot be told
    /// from a hash or another hex key, and rewriting a segment that is not a uuid would
    /// change what the caller named.
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
        for segment in path[1..].split(is_slash) {
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
            // Byte by byte: every allowed character is ASCII (issue 16: every check parses
            // a resource path).
            let bytes = segment.as_bytes();
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'%' {
                    let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                    if !(hex(i + 1) && hex(i + 2)) {
                        return Err(ScopeError::BadEscape);
                    }
                } else if !(b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@'))
                {
                    return Err(ScopeError::BadCharacter(char_at(segment, i)));
                }
            }
        }
        let canonical = canonical_form(path);
        // A unit id in simple form grows by four hyphens.
        if canonical.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        Ok(Scope(canonical))
    }

    /// The path in canonical form (see [`Scope::parse`]).
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
        ancestors(&self.0)
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

/// `path` (valid, not `/`) with its uuid segments in canonical form; see [`Scope::parse`].
fn canonical_form(path: &str) -> String {
    let in_unit = path.starts_with("/administrativeUnits/");
    let mut out = String::with_capacity(path.len() + 4);
    let mut buf = uuid::Uuid::encode_buffer();
    for (i, segment) in path[1..].split(is_slash).enumerate() {
        out.push('/');
        if in_unit && i == 1 {
            if let Ok(id) = uuid::Uuid::parse_str(segment) {
                out.push_str(id.hyphenated().encode_lower(&mut buf));
                continue;
            }
        }
        // INVARIANT: a 36-character string parses as a uuid only in the hyphenated form, so
        // this lowercases hex digits and nothing else.
        if segment.len() == 36 && uuid::Uuid::parse_str(segment).is_ok() {
            out.extend(segment.chars().map(|c| c.to_ascii_lowercase()));
        } else if segment.contains('%') {
            // INVARIANT: `parse` checked that two hex digits follow each `%`.
            let mut escape = 0;
            for c in segment.chars() {
                if c == '%' {
                    escape = 2;
                    out.push(c);
                } else if escape > 0 {
                    escape -= 1;
                    out.push(c.to_ascii_uppercase());
                } else {
                    out.push(c);
                }
            }
        } else {
            out.push_str(segment);
        }
    }
    out
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

/// `path` (a valid scope path, as a [`Scope`] holds it) and every ancestor up to `/`, most
/// specific first. For callers holding the path as text (the engine's interned keys).
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_kept_with_uppercase_hex_and_must_be_complete() {
        let s = Scope::parse("/users/beth%40the-smiths.com").unwrap();
        assert_eq!(s.as_str(), "/users/beth%40the-smiths.com");
        let lower = Scope::parse("/users/a%2fb%c3%a9").unwrap();
        assert_eq!(lower.as_str(), "/users/a%2Fb%C3%A9");
        assert_eq!(Scope::parse("/users/a%4"), Err(ScopeError::BadEscape));
        assert_eq!(Scope::parse("/users/a%zz"), Err(ScopeError::BadEscape));
        assert_eq!(Scope::parse("/users/%"), Err(ScopeError::BadEscape));
    }

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
            Scope::parse("/reports/caf\u{e9}"),
            Err(ScopeError::BadCharacter('\u{e9}'))
        );
        assert_eq!(
            Scope::parse("/a%41/\u{1F600}x"),
            Err(ScopeError::BadCharacter('\u{1F600}'))
        );
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

    #[test]
    fn uuid_segments_are_lowercased_and_no_other_segment_changes() {
        let upper = "0A1B2C3D-4E5F-4A6B-8C7D-9E0FA1B2C3D4";
        let lower = upper.to_ascii_lowercase();
        let canonical = |raw: &str| Scope::parse(raw).unwrap().as_str().to_owned();
        assert_eq!(
            canonical(&format!("/applications/{upper}")),
            format!("/applications/{lower}")
        );
        assert_eq!(
            canonical(&format!("/Applications/{upper}/Credentials/{upper}")),
            format!("/Applications/{lower}/Credentials/{lower}")
        );
        // Not uuids: kept byte for byte, however uuid-like.
        for kept in [
            "/applications/ABC",
            "/files/0A1B2C3D4E5F4A6B8C7D9E0FA1B2C3D4",
            "/keys/0A1B2C3D4-E5F-4A6B-8C7D-9E0FA1B2C3D4",
            "/keys/0A1B2C3D-4E5F-4A6B-8C7D-9E0FA1B2C3DG",
            "/keys/urn:uuid:0A1B2C3D-4E5F-4A6B-8C7D-9E0FA1B2C3D4",
            "/x/administrativeUnits/0A1B2C3D4E5F4A6B8C7D9E0FA1B2C3D4",
            "/administrativeUnits/Finance",
        ] {
            assert_eq!(canonical(kept), kept);
        }
    }

    #[test]
    fn a_unit_id_in_any_uuid_form_becomes_lowercase_hyphenated() {
        let id = uuid::Uuid::new_v4();
        let want = format!("/administrativeUnits/{id}/applications/a");
        for form in [
            id.hyphenated().to_string().to_uppercase(),
            id.simple().to_string(),
            id.simple().to_string().to_uppercase(),
            id.urn().to_string(),
        ] {
            let scope =
                Scope::parse(&format!("/administrativeUnits/{form}/applications/a")).unwrap();
            assert_eq!(scope.as_str(), want);
        }
        // Growing a simple-form unit id must not make a scope longer than the limit.
        let head = format!("/administrativeUnits/{}", id.simple());
        let path = format!("{head}/{}", "a".repeat(MAX_SCOPE_LEN - head.len() - 1));
        assert_eq!(path.len(), MAX_SCOPE_LEN);
        assert_eq!(Scope::parse(&path), Err(ScopeError::TooLong));
    }

    #[test]
    fn scopes_that_differ_only_in_uuid_case_are_one_scope() {
        let id = uuid::Uuid::new_v4().to_string();
        let upper = Scope::parse(&format!("/applications/{}", id.to_uppercase())).unwrap();
        let lower = Scope::parse(&format!("/applications/{id}")).unwrap();
        assert_eq!(upper, lower);
        let below = Scope::parse(&format!("/applications/{}/keys/k", id.to_uppercase())).unwrap();
        assert!(lower.covers(&below));
        // Deserializing (request bodies, stored rows) goes through the same canonical form.
        let wire = format!("\"/applications/{}\"", id.to_uppercase());
        let read: Scope = serde_json::from_str(&wire).unwrap();
        assert_eq!(read, lower);
    }

    proptest::proptest! {
        #[test]
        fn canonical_form_is_stable_and_changes_only_case(
            segments in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-zA-Z0-9._~:@-]{1,12}",
                    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                    "[0-9a-fA-F]{32}",
                    proptest::strategy::Just("administrativeUnits".to_owned()),
                ],
                1..6,
            )
        ) {
            let raw = format!("/{}", segments.join("/"));
            proptest::prop_assume!(!segments.iter().any(|s| s == "." || s == ".."));
            let scope = Scope::parse(&raw).unwrap();
            // Parsing the canonical form gives it back.
            let again = Scope::parse(scope.as_str()).unwrap();
            proptest::prop_assert_eq!(again.as_str(), scope.as_str());
            if !raw.starts_with("/administrativeUnits/") {
                // Outside a unit id only the case of uuid segments may change.
                proptest::prop_assert!(scope.as_str().eq_ignore_ascii_case(&raw));
                for (got, was) in scope.segments().zip(&segments) {
                    if got != was.as_str() {
                        proptest::prop_assert!(was.len() == 36 && uuid::Uuid::parse_str(was).is_ok());
                    }
                }
            }
        }
    }
}
