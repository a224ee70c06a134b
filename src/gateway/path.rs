//! The original request's path as a gateway reports it, normalized before any rule sees it.
//!
//! An upstream reads the raw path its own way, so every spelling that two servers could read
//! differently is either resolved here the way servers resolve it, or refused (the request is
//! denied): the query and fragment are dropped; `%XX` escapes are decoded; empty segments
//! (`//`) are dropped, as nginx's `merge_slashes` does; `.` and `..` (also spelled `%2E`) are
//! resolved as RFC 3986 §5.2.4 says, so `/api/apps/A/../B` is decided as `/api/apps/B`, and a
//! `..` above `/` is refused. Refused: an escape that is not two hex digits, bytes that are not
//! UTF-8, an encoded `/` (`%2F`) or a `\` (some servers split on them), control characters, an
//! escape of an escape (`%252E`: a server that decodes twice sees `.`), and a dot segment with
//! a `;` parameter (`..;`, which Tomcat reads as `..`).

use std::borrow::Cow;

/// The longest original URI accepted, in bytes.
pub const MAX_URI_LEN: usize = 8192;

/// Why an original URI is refused (the request is denied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Neither `/...` nor `http(s)://host/...`.
    #[error("the path does not start with `/`")]
    NotAbsolute,
    /// Longer than [`MAX_URI_LEN`].
    #[error("the URI is longer than {MAX_URI_LEN} bytes")]
    TooLong,
    /// A `%` not followed by two hex digits.
    #[error("a `%` in the path is not followed by two hex digits")]
    BadEscape,
    /// The decoded bytes are not UTF-8.
    #[error("the decoded path is not UTF-8")]
    NotUtf8,
    /// `%2F` inside a segment: one segment to some servers, two to others.
    #[error("an encoded `/` (`%2F`) in the path is refused")]
    EncodedSlash,
    /// A `\` (raw or `%5C`), which some servers read as `/`.
    #[error("a `\\` in the path is refused")]
    Backslash,
    /// A control character (raw or escaped).
    #[error("a control character in the path is refused")]
    ControlCharacter,
    /// A decoded segment still holds an escape (`%252E` decodes to `%2E`).
    #[error("a doubly encoded escape in the path is refused")]
    DoubleEncoded,
    /// `.;...` or `..;...`.
    #[error("a `.` or `..` segment with a `;` parameter is refused")]
    DotParameter,
    /// More `..` segments than segments before them.
    #[error("the path climbs above `/` with `..`")]
    AboveRoot,
}

/// The decoded segments of `uri`'s path, dot segments resolved and empty ones dropped.
/// `/` gives none. A segment borrows from `uri` unless it held an escape.
pub fn normalize(uri: &str) -> Result<Vec<Cow<'_, str>>, PathError> {
    if uri.len() > MAX_URI_LEN {
        return Err(PathError::TooLong);
    }
    let path = path_of(uri);
    let path = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let mut segments: Vec<Cow<'_, str>> = Vec::new();
    for raw in path.split('/') {
        let segment = decode(raw)?;
        match segment.as_ref() {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
            }
            s if matches!(s.split(';').next(), Some("." | "..")) => {
                return Err(PathError::DotParameter);
            }
            _ => segments.push(segment),
        }
    }
    Ok(segments)
}

/// The path of an origin-form (`/a?q`) or absolute-form (`http://h/a?q`) URI, without its
/// query or fragment.
fn path_of(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let uri = &uri[..end];
    let scheme = uri.get(..8).map_or("", |head| {
        if head[..7].eq_ignore_ascii_case("http://") {
            &head[..7]
        } else if head.eq_ignore_ascii_case("https://") {
            head
        } else {
            ""
        }
    });
    if scheme.is_empty() {
        return uri;
    }
    let rest = &uri[scheme.len()..];
    rest.find('/').map_or("/", |slash| &rest[slash..])
}

/// One segment with its escapes decoded, checked for what is refused.
fn decode(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let decoded = if raw.contains('%') {
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = |j: usize| {
                    bytes
                        .get(j)
                        .and_then(|b| (*b as char).to_digit(16))
                        .ok_or(PathError::BadEscape)
                };
                // Lossless: two hex digits make at most 255.
                out.push((hex(i + 1)? * 16 + hex(i + 2)?) as u8);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        Cow::Owned(String::from_utf8(out).map_err(|_| PathError::NotUtf8)?)
    } else {
        Cow::Borrowed(raw)
    };
    for c in decoded.chars() {
        match c {
            '/' => return Err(PathError::EncodedSlash),
            '\\' => return Err(PathError::Backslash),
            c if c.is_control() => return Err(PathError::ControlCharacter),
            _ => {}
        }
    }
    if let Cow::Owned(text) = &decoded {
        let bytes = text.as_bytes();
        let escape = bytes
            .windows(3)
            .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
        if escape {
            return Err(PathError::DoubleEncoded);
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(uri: &str) -> Result<Vec<String>, PathError> {
        normalize(uri).map(|s| s.into_iter().map(Cow::into_owned).collect())
    }

    #[test]
    fn the_query_fragment_empty_segments_and_dots_go() {
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(
            segments("/api//apps/A/./credentials/?x=/../../admin#f").unwrap(),
            ["api", "apps", "A", "credentials"]
        );
        assert_eq!(
            segments("/api/apps/A/../B/credentials").unwrap(),
            ["api", "apps", "B", "credentials"]
        );
        assert_eq!(
            segments("/api/apps/A/%2e%2E/B/credentials").unwrap(),
            ["api", "apps", "B", "credentials"]
        );
        assert_eq!(
            segments("http://api.contoso.test:8443/a/b?c").unwrap(),
            ["a", "b"]
        );
        assert_eq!(segments("HTTPS://h").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn escapes_are_decoded_once() {
        assert_eq!(
            segments("/users/beth%40the-smiths.com/caf%C3%A9").unwrap(),
            ["users", "beth@the-smiths.com", "café"]
        );
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        for (uri, error) in [
            ("api/x", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/a/%zz", PathError::BadEscape),
            ("/a/%4", PathError::BadEscape),
            ("/a/%ff", PathError::NotUtf8),
            ("/public/..%2Fadmin", PathError::EncodedSlash),
            ("/public/..%2fadmin", PathError::EncodedSlash),
            ("/public\\..\\admin", PathError::Backslash),
            ("/public/%5C", PathError::Backslash),
            ("/a/%00", PathError::ControlCharacter),
            ("/a/b\tc", PathError::ControlCharacter),
            ("/a/%252E%252E/b", PathError::DoubleEncoded),
            ("/public/..;/admin", PathError::DotParameter),
            ("/public/.;x/admin", PathError::DotParameter),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
        ] {
            assert_eq!(segments(uri), Err(error.clone()), "{uri}");
        }
        assert_eq!(
            segments(&format!("/{}", "a".repeat(MAX_URI_LEN))),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn a_semicolon_elsewhere_is_an_ordinary_character() {
        assert_eq!(segments("/a;b/..x").unwrap(), ["a;b", "..x"]);
    }
}
