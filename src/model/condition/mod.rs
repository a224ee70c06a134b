//! The condition language: Entra's permission-entry conditions and Azure ABAC
//! (`conditionVersion: "2.0"`) role-assignment conditions, parsed once when written and
//! evaluated per check.
//!
//! # Language
//!
//! Keywords and operator names are case-insensitive; whitespace is free-form.
//!
//! - Atoms: `$SubjectIsOwner` is true when the subject's id or one of its aliases equals
//!   (ASCII-case-insensitively) a value of the resource attribute `owners`, else `ownerID`,
//!   else `owner` (the first present one; a string or an array of strings).
//!   `$ResourceIsSelf` is true when the resource id equals the subject's id or an alias,
//!   ASCII-case-insensitively.
//! - `ActionMatches{'pattern'}`: the checked action matches a Rolecall action pattern
//!   (validated when parsed). `SubOperationMatches` is rejected: Rolecall actions have none.
//! - Comparisons `<operand> <Operator> <operand>`. Operands are attributes
//!   (`@Subject[name]`, alias `@Principal[name]`, `@Resource[name]`, `@Action[name]`,
//!   `@Environment[name]`; a name is any characters but `]`, trimmed) or literals:
//!   `'string'` (`''` is a quote), numbers (`-1`, `2.5`), `true`/`false` and sets
//!   (`{'a', 'b'}`). The built-ins `@Subject[id]`, `@Subject[aliases]`, `@Resource[id]`,
//!   `@Resource[type]`, `@Action[name]` and `@Environment[UtcNow]` (names in any case) come
//!   from the check itself and win over attributes of the same name, so a request cannot
//!   spoof them.
//! - Operators: `String[Not]Equals[IgnoreCase]`, `String[Not]Like` (`*` any run, `?` one
//!   character, case-sensitive), `String[Not]StartsWith`, `Numeric[Not]Equals`,
//!   `NumericLessThan[Equals]`, `NumericGreaterThan[Equals]`, `Bool[Not]Equals`,
//!   `DateTimeEquals`, `DateTimeLessThan[Equals]`, `DateTimeGreaterThan[Equals]`, and any of
//!   them after a quantifier: `ForAnyOfAnyValues:`, `ForAllOfAnyValues:`,
//!   `ForAnyOfAllValues:`, `ForAllOfAllValues:`.
//! - `AND` (`&&`) binds tighter than `OR` (`||`); `NOT` (`!`) binds tightest; parentheses
//!   group.
//!
//! # Semantics
//!
//! - A comparison is false when an operand is missing or a value has the wrong type
//!   (strings for `String*`; JSON numbers for `Numeric*`, compared as f64; JSON booleans or
//!   the strings `"true"`/`"false"` in any case for `Bool*`; RFC 3339 strings for
//!   `DateTime*`; `@Environment[UtcNow]` is a date-time, so only they compare it). That
//!   holds for the `Not` forms too. `NOT` negates whatever its operand
//!   answered, so `NOT (@Resource[status] StringEquals 'archived')` is true when `status`
//!   is missing.
//! - Unquantified, both sides are single values: an array attribute on either side makes
//!   the comparison false. A set literal on the right means "any of" (`StringNotEquals
//!   {'a', 'b'}`: none of); ordering operators take no set.
//! - Quantified, each side is a set of values (a single value is a one-element set) and the
//!   operator (its `Not` form included) applies to each pair: `ForAnyOfAnyValues` is true
//!   when some left value matches some right value, `ForAllOfAnyValues` when every left value
//!   matches some right value, `ForAnyOfAllValues` when some left value matches every right
//!   value, `ForAllOfAllValues` when every left value matches every right value. So an empty
//!   left array makes the `ForAny...` forms false and the `ForAll...` forms true.
//!
//! # Limits
//!
//! Text at most [`MAX_TEXT_LEN`] bytes, at most [`MAX_DEPTH`] nested `(` and `NOT`, at most
//! [`MAX_COMPARISONS`] comparisons and atoms, sets of at most [`MAX_SET_ITEMS`] items,
//! attribute names of at most [`MAX_NAME_LEN`] characters. Parsing is linear in the text and
//! its recursion is bounded by the depth limit. Evaluation spends at most
//! [`MAX_EVAL_STEPS`] steps (one per node and per pair of values compared); beyond that it
//! stops and the condition is false.
//!
//! Layout: `lex.rs` tokenizes, `parse.rs` builds the tree of `ast.rs` (which also prints it
//! back), `eval.rs` evaluates it.

mod ast;
mod eval;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::model::Timestamp;

/// The longest condition accepted, in bytes (UTF-8); the same as the API's limit on a
/// role-assignment condition.
pub const MAX_TEXT_LEN: usize = 4096;
/// How deep `(` and `NOT` may nest. The parser checks it before recursing, so no input can
/// exhaust the stack.
pub const MAX_DEPTH: usize = 32;
/// The most comparisons (and `$` atoms and `ActionMatches`) one condition may hold. Within
/// [`MAX_TEXT_LEN`] it cannot be reached (the shortest comparison takes 15 bytes and each
/// `||` two more); it bounds the tree should the text limit ever grow.
pub const MAX_COMPARISONS: usize = 256;
/// The most items one set literal may hold.
pub const MAX_SET_ITEMS: usize = 256;
/// The longest attribute name, in characters.
pub const MAX_NAME_LEN: usize = 256;
/// The most steps one evaluation may take: one per node visited and per pair of values
/// compared. Past it the evaluation stops and the condition is false. Far above any
/// reasonable condition (256 comparisons of 64 × 64 values use a million), it exists so an
/// attacker-sized attribute cannot make a check slow.
pub const MAX_EVAL_STEPS: usize = 1 << 22;

/// A parsed condition: parse once when written, evaluate per check.
///
/// Equality is by text, as written.
#[derive(Debug, Clone)]
pub struct Condition {
    /// As written, returned by [`Condition::text`] and serialized.
    text: String,
    /// Compiled from `text`.
    root: ast::Node,
}

impl Condition {
    /// Parses `text`; the error names the character position at fault and what was expected
    /// there. Costs time linear in the text, which is at most [`MAX_TEXT_LEN`] bytes (longer
    /// text is refused after looking at that many).
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let root = parse::parse(text)?;
        Ok(Condition {
            text: text.to_owned(),
            root,
        })
    }

    /// A condition that never holds, keeping `text`: what a stored condition that no longer
    /// parses becomes, so it fails closed instead of failing the load.
    pub fn never(text: &str) -> Condition {
        Condition {
            text: text.to_owned(),
            root: ast::Node::Never,
        }
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the condition holds for one check. Never panics; stops (answering false)
    /// after [`MAX_EVAL_STEPS`] steps. A condition only ever narrows a grant, so false is the
    /// safe answer; a caller that needs to tell "out of steps" apart uses
    /// [`Condition::try_evaluate`].
    pub fn evaluate(&self, env: &Env<'_>) -> bool {
        self.try_evaluate(env).unwrap_or(false)
    }

    /// Like [`Condition::evaluate`], but `None` when the evaluation ran out of steps.
    pub fn try_evaluate(&self, env: &Env<'_>) -> Option<bool> {
        eval::eval(&self.root, env, &mut eval::Budget::new()).ok()
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Condition) -> bool {
        self.text == other.text
    }
}

impl Eq for Condition {}

/// The text as written.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Condition {
    type Err = ConditionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Condition::parse(s)
    }
}

/// A JSON string, the text as written.
impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A JSON string, parsed: a bad condition fails deserialization with its error.
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Condition::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a text is not a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ConditionError {
    /// 1-based character (not byte) position in the text of what is at fault; one past the
    /// last character when the text ended too soon.
    pub position: usize,
    /// What was wrong or expected there: lowercase, no final period, input in backticks.
    pub message: String,
}

/// Attribute layers: the first layer holding a name wins (request properties over stored
/// attributes). A name held with `null` still wins, and `null` matches no operator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs<'a> {
    /// Searched in order; `None` layers are skipped.
    pub layers: [Option<&'a Map<String, Value>>; 2],
}

impl<'a> Attrs<'a> {
    /// The value of `name` in the first layer that holds it.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.layers.into_iter().flatten().find_map(|m| m.get(name))
    }

    /// One layer.
    pub fn one(m: &'a Map<String, Value>) -> Self {
        Attrs {
            layers: [Some(m), None],
        }
    }

    /// Two layers: `first` (the request's) wins over `second` (stored, when there is one).
    pub fn two(first: &'a Map<String, Value>, second: Option<&'a Map<String, Value>>) -> Self {
        Attrs {
            layers: [Some(first), second],
        }
    }
}

/// Everything a condition may read about one check. Borrowed, so building one per check
/// costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The subject's object id (uuid text): built-in `@Subject[id]`.
    pub subject_id: &'a str,
    /// Other names of the subject: built-in `@Subject[aliases]`; also matched by
    /// `$SubjectIsOwner` and `$ResourceIsSelf`.
    pub subject_aliases: &'a [String],
    /// `@Subject[...]` attributes.
    pub subject: Attrs<'a>,
    /// Built-in `@Resource[id]`; `None` makes it missing (attributes cannot stand in).
    pub resource_id: Option<&'a str>,
    /// Built-in `@Resource[type]`; `None` makes it missing.
    pub resource_type: Option<&'a str>,
    /// `@Resource[...]` attributes, request properties first.
    pub resource: Attrs<'a>,
    /// Built-in `@Action[name]`.
    pub action_name: &'a str,
    /// The checked Rolecall action, lowercase, for `ActionMatches`.
    pub action_text: &'a str,
    /// `@Action[...]` attributes.
    pub action: Attrs<'a>,
    /// `@Environment[...]` attributes: the request context.
    pub environment: Attrs<'a>,
    /// The check's time: built-in `@Environment[UtcNow]`.
    pub now: Timestamp,
}

/// User input for a message: at most 40 characters, `...` marking a cut.
fn shorten(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}
