//! Action strings (`namespace/entity[/property]/task`) and the patterns that grant them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest action or pattern accepted, in bytes.
pub const MAX_ACTION_LEN: usize = 256;
/// The most segments an action or pattern may have.
pub const MAX_ACTION_SEGMENTS: usize = 12;

/// Why a string is not an action or an action pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Empty string.
    #[error("an action is not empty")]
    Empty,
    /// Longer than [`MAX_ACTION_LEN`].
    #[error("an action is at most {MAX_ACTION_LEN} bytes")]
    TooLong,
    /// More than [`MAX_ACTION_SEGMENTS`] segments.
    #[error("an action has at most {MAX_ACTION_SEGMENTS} segments")]
    TooManySegments,
    /// A segment is empty (`a//b`, leading or trailing `/`).
    #[error("an action has no empty segments")]
    EmptySegment,
    /// Only a namespace, no entity or task.
    #[error("an action names a namespace and at least one more segment (`namespace/entity/task`)")]
    NoNamespace,
    /// A character outside letters, digits, `.`, `-`, `_` (and `*` in patterns).
    #[error("an action holds only letters, digits and `.-_` (and `*` in patterns); found `{0}`")]
    BadCharacter(char),
    /// A `*` in a concrete action (only patterns may hold wildcards).
    #[error("a checked action holds no `*` wildcard")]
    Wildcard,
}

/// The character starting at byte `i` of `s`. Checks that scan bytes and stop at the first
/// byte they refuse call it: every byte before was ASCII, so `i` starts a character.
pub(crate) fn char_at(s: &str, i: usize) -> char {
    s.get(i..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Splits paths at `/` char by char: `split('/')` searches with memchr, whose set-up costs
/// more than these short strings do (every check parses an action and a resource).
pub(crate) fn is_slash(c: char) -> bool {
    c == '/'
}

fn check_common(raw: &str, allow_star: bool) -> Result<(), ActionError> {
    if raw.is_empty() {
        return Err(ActionError::Empty);
    }
    if raw.len() > MAX_ACTION_LEN {
        return Err(ActionError::TooLong);
    }
    let mut segments = 0;
    for segment in raw.split(is_slash) {
        segments += 1;
        if segments > MAX_ACTION_SEGMENTS {
            return Err(ActionError::TooManySegments);
        }
        if segment.is_empty() {
            return Err(ActionError::EmptySegment);
        }
        // Byte by byte: every allowed character is ASCII (issue 16: every check parses one).
        for (i, &b) in segment.as_bytes().iter().enumerate() {
            if b == b'*' {
                if !allow_star {
                    return Err(ActionError::Wildcard);
                }
            } else if !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return Err(ActionError::BadCharacter(char_at(segment, i)));
            }
        }
    }
    if segments < 2 && !raw.contains('*') {
        return Err(ActionError::NoNamespace);
    }
    Ok(())
}

/// A permission pattern as written in a role: an exact action, or one with `*` wildcards
/// and Entra's `allEntities` / `allProperties` / `allTasks` segments. Matching is
/// case-insensitive and is the engine's business; holding one means it is well formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionPattern(String);

impl ActionPattern {
    /// Validates `raw` as a pattern.
    pub fn parse(raw: &str) -> Result<Self, ActionError> {
        check_common(raw, true)?;
        Ok(ActionPattern(raw.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A concrete action being checked (no wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(String);

impl Action {
    /// Validates `raw` as a concrete action.
    pub fn parse(raw: &str) -> Result<Self, ActionError> {
        check_common(raw, false)?;
        Ok(Action(raw.to_owned()))
    }

    /// The action as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_serde {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ActionError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                $ty::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_serde!(ActionPattern);
string_newtype_serde!(Action);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_entra_and_azure_patterns_are_accepted() {
        for ok in [
            "microsoft.directory/applications/credentials/update",
            "microsoft.directory/applications/allProperties/allTasks",
            "Microsoft.Communication/CommunicationServices/Read",
            "contoso.expenses/*",
            "*/read",
            "*",
            "microsoft.azure.supportTickets/allEntities/allTasks",
        ] {
            assert!(ActionPattern::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_patterns_say_why() {
        assert_eq!(ActionPattern::parse(""), Err(ActionError::Empty));
        assert_eq!(
            ActionPattern::parse("contoso"),
            Err(ActionError::NoNamespace)
        );
        assert_eq!(ActionPattern::parse("a//b"), Err(ActionError::EmptySegment));
        assert_eq!(ActionPattern::parse("a/b/"), Err(ActionError::EmptySegment));
        assert_eq!(
            ActionPattern::parse("a/b c"),
            Err(ActionError::BadCharacter(' '))
        );
        assert_eq!(
            Action::parse("contoso.expenses/caf\u{e9}s/read"),
            Err(ActionError::BadCharacter('\u{e9}'))
        );
        assert_eq!(
            ActionPattern::parse("contoso/\u{1F600}/*"),
            Err(ActionError::BadCharacter('\u{1F600}'))
        );
        assert_eq!(
            ActionPattern::parse("a/".repeat(13).trim_end_matches('/')),
            Err(ActionError::TooManySegments)
        );
        assert_eq!(
            ActionPattern::parse(&format!("a/{}", "b".repeat(300))),
            Err(ActionError::TooLong)
        );
    }

    #[test]
    fn a_checked_action_has_no_wildcard() {
        assert_eq!(
            Action::parse("contoso.expenses/*"),
            Err(ActionError::Wildcard)
        );
        assert!(Action::parse("contoso.expenses/reports/approve").is_ok());
    }
}
