//! The compiled form of a condition, and its canonical printing.
//!
//! The parser builds these and the evaluator walks them; nothing outside the module sees
//! them. Printing a tree gives text that parses back to the same tree (the property tests
//! rely on it), with `NOT`, canonical operator names and only the parentheses it needs.

use std::fmt;

use crate::engine::pattern::Matcher;
use crate::model::Timestamp;

/// One node. `AND` and `OR` are n-ary, so a long chain is wide, not deep.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// True when any child is (at least two children when parsed).
    Or(Vec<Node>),
    /// True when every child is (at least two children when parsed).
    And(Vec<Node>),
    /// `NOT x` or `!x`.
    Not(Box<Node>),
    /// Always false: see [`Condition::never`](super::Condition::never).
    Never,
    /// `$SubjectIsOwner`.
    SubjectIsOwner,
    /// `$ResourceIsSelf`.
    ResourceIsSelf,
    /// `ActionMatches{'pattern'}`: the pattern as written and compiled.
    ActionMatches {
        /// As written, for printing.
        pattern: Box<str>,
        /// Compiled once, at parse time.
        matcher: Matcher,
    },
    /// `<operand> <operator> <operand>`.
    Compare(Box<Compare>),
}

/// A comparison.
#[derive(Debug, Clone)]
pub(super) struct Compare {
    pub left: Operand,
    pub op: Op,
    pub right: Operand,
}

/// An operator: an optional quantifier, a base comparison and whether it is negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Op {
    /// `ForAnyOfAnyValues:` and friends; `None` for a scalar comparison.
    pub quant: Option<Quant>,
    /// What one pair of values is tested for.
    pub base: Base,
    /// The `Not` form: the negation of `base` (per pair when quantified).
    pub negated: bool,
}

/// How the values of a multi-valued comparison combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quant {
    /// Some left value matches some right value.
    AnyOfAny,
    /// Every left value matches some right value.
    AllOfAny,
    /// Some left value matches every right value.
    AnyOfAll,
    /// Every left value matches every right value.
    AllOfAll,
}

impl Quant {
    /// Every quantifier.
    pub const ALL: [Quant; 4] = [
        Quant::AnyOfAny,
        Quant::AllOfAny,
        Quant::AnyOfAll,
        Quant::AllOfAll,
    ];

    fn name(self) -> &'static str {
        match self {
            Quant::AnyOfAny => "ForAnyOfAnyValues",
            Quant::AllOfAny => "ForAllOfAnyValues",
            Quant::AnyOfAll => "ForAnyOfAllValues",
            Quant::AllOfAll => "ForAllOfAllValues",
        }
    }
}

/// What one pair of values is tested for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    StringStartsWith,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    BoolEquals,
    DateTimeEquals,
    DateTimeLessThan,
    DateTimeLessThanEquals,
    DateTimeGreaterThan,
    DateTimeGreaterThanEquals,
}

/// The type both sides of a comparison must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    String,
    Numeric,
    Bool,
    DateTime,
}

impl Family {
    /// For messages: what the operator compares.
    pub fn what(self) -> &'static str {
        match self {
            Family::String => "strings",
            Family::Numeric => "numbers",
            Family::Bool => "booleans (`true` or `false`)",
            Family::DateTime => "RFC 3339 date-time strings",
        }
    }
}

impl Base {
    pub fn family(self) -> Family {
        match self {
            Base::StringEquals
            | Base::StringEqualsIgnoreCase
            | Base::StringLike
            | Base::StringStartsWith => Family::String,
            Base::NumericEquals
            | Base::NumericLessThan
            | Base::NumericLessThanEquals
            | Base::NumericGreaterThan
            | Base::NumericGreaterThanEquals => Family::Numeric,
            Base::BoolEquals => Family::Bool,
            Base::DateTimeEquals
            | Base::DateTimeLessThan
            | Base::DateTimeLessThanEquals
            | Base::DateTimeGreaterThan
            | Base::DateTimeGreaterThanEquals => Family::DateTime,
        }
    }

    /// An ordering comparison: it takes one value on the right, never a set (unquantified).
    pub fn ordered(self) -> bool {
        matches!(
            self,
            Base::NumericLessThan
                | Base::NumericLessThanEquals
                | Base::NumericGreaterThan
                | Base::NumericGreaterThanEquals
                | Base::DateTimeLessThan
                | Base::DateTimeLessThanEquals
                | Base::DateTimeGreaterThan
                | Base::DateTimeGreaterThanEquals
        )
    }
}

/// Every operator name (without a quantifier), its base and whether it is the `Not` form.
pub(super) const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("StringStartsWith", Base::StringStartsWith, false),
    ("StringNotStartsWith", Base::StringStartsWith, true),
    ("NumericEquals", Base::NumericEquals, false),
    ("NumericNotEquals", Base::NumericEquals, true),
    ("NumericLessThan", Base::NumericLessThan, false),
    ("NumericLessThanEquals", Base::NumericLessThanEquals, false),
    ("NumericGreaterThan", Base::NumericGreaterThan, false),
    (
        "NumericGreaterThanEquals",
        Base::NumericGreaterThanEquals,
        false,
    ),
    ("BoolEquals", Base::BoolEquals, false),
    ("BoolNotEquals", Base::BoolEquals, true),
    ("DateTimeEquals", Base::DateTimeEquals, false),
    ("DateTimeGreaterThan", Base::DateTimeGreaterThan, false),
    (
        "DateTimeGreaterThanEquals",
        Base::DateTimeGreaterThanEquals,
        false,
    ),
    ("DateTimeLessThan", Base::DateTimeLessThan, false),
    (
        "DateTimeLessThanEquals",
        Base::DateTimeLessThanEquals,
        false,
    ),
];

impl Op {
    /// The operator named `name` (any case), with an optional `For...Values:` prefix.
    pub fn lookup(name: &str) -> Option<Op> {
        let (quant, rest) = match name.split_once(':') {
            Some((prefix, rest)) => {
                let q = Quant::ALL
                    .into_iter()
                    .find(|q| q.name().eq_ignore_ascii_case(prefix))?;
                (Some(q), rest)
            }
            None => (None, name),
        };
        let (_, base, negated) = OPERATORS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(rest))?;
        Some(Op {
            quant,
            base: *base,
            negated: *negated,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(q) = self.quant {
            write!(f, "{}:", q.name())?;
        }
        let name = OPERATORS
            .iter()
            .find(|(_, b, n)| *b == self.base && *n == self.negated)
            .map_or("", |(name, _, _)| name);
        f.write_str(name)
    }
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub(super) enum Operand {
    /// A value Rolecall supplies itself; attributes cannot override it.
    Builtin(Builtin),
    /// A named attribute of one source (name trimmed, non-empty, no `]`).
    Attr(Source, Box<str>),
    /// A literal of the operator's type.
    Lit(Lit),
    /// `{...}`: literals of the operator's type.
    Set(Vec<Lit>),
}

/// Where an attribute is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Subject,
    Resource,
    Action,
    Environment,
}

impl Source {
    /// The source written after `@` (any case); `Principal` is Azure's name for `Subject`.
    pub fn lookup(name: &str) -> Option<Source> {
        [
            ("subject", Source::Subject),
            ("principal", Source::Subject),
            ("resource", Source::Resource),
            ("action", Source::Action),
            ("environment", Source::Environment),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| s)
    }

    fn name(self) -> &'static str {
        match self {
            Source::Subject => "Subject",
            Source::Resource => "Resource",
            Source::Action => "Action",
            Source::Environment => "Environment",
        }
    }
}

/// The values Rolecall supplies; they win over attributes of the same name (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    SubjectId,
    SubjectAliases,
    ResourceId,
    ResourceType,
    ActionName,
    UtcNow,
}

impl Builtin {
    /// Every built-in.
    pub const ALL: [Builtin; 6] = [
        Builtin::SubjectId,
        Builtin::SubjectAliases,
        Builtin::ResourceId,
        Builtin::ResourceType,
        Builtin::ActionName,
        Builtin::UtcNow,
    ];

    /// Its source and canonical name.
    pub fn parts(self) -> (Source, &'static str) {
        match self {
            Builtin::SubjectId => (Source::Subject, "id"),
            Builtin::SubjectAliases => (Source::Subject, "aliases"),
            Builtin::ResourceId => (Source::Resource, "id"),
            Builtin::ResourceType => (Source::Resource, "type"),
            Builtin::ActionName => (Source::Action, "name"),
            Builtin::UtcNow => (Source::Environment, "UtcNow"),
        }
    }

    /// The built-in `source` holds under `name` (any case), if any.
    pub fn lookup(source: Source, name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| {
            let (s, n) = b.parts();
            s == source && n.eq_ignore_ascii_case(name)
        })
    }
}

/// A literal, already of the type its operator compares.
#[derive(Debug, Clone)]
pub(super) enum Lit {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    /// A date-time literal: as written (for printing) and parsed.
    Time(Box<str>, Timestamp),
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for part in s.split_inclusive('\'') {
        f.write_str(part)?;
        if part.ends_with('\'') {
            f.write_str("'")?;
        }
    }
    f.write_str("'")
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Str(s) | Lit::Time(s, _) => write_quoted(f, s),
            // `{}` on an f64 never uses an exponent and round-trips exactly.
            Lit::Num(n) => write!(f, "{n}"),
            Lit::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Builtin(b) => {
                let (source, name) = b.parts();
                write!(f, "@{}[{name}]", source.name())
            }
            Operand::Attr(source, name) => write!(f, "@{}[{name}]", source.name()),
            Operand::Lit(lit) => lit.fmt(f),
            Operand::Set(items) => {
                f.write_str("{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str("}")
            }
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parenthesize exactly the children the parser would otherwise regroup.
        fn child(f: &mut fmt::Formatter<'_>, node: &Node, wrap: bool) -> fmt::Result {
            if wrap {
                write!(f, "({node})")
            } else {
                node.fmt(f)
            }
        }
        match self {
            Node::Or(items) | Node::And(items) => {
                let is_and = matches!(self, Node::And(_));
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if is_and { " AND " } else { " OR " })?;
                    }
                    let wrap = match item {
                        Node::Or(_) => true,
                        Node::And(_) => is_and,
                        _ => false,
                    };
                    child(f, item, wrap)?;
                }
                Ok(())
            }
            Node::Not(inner) => {
                f.write_str("NOT ")?;
                child(f, inner, matches!(**inner, Node::Or(_) | Node::And(_)))
            }
            // No literal is false; this is, whatever the check.
            Node::Never => f.write_str("NOT ($ResourceIsSelf OR NOT $ResourceIsSelf)"),
            Node::SubjectIsOwner => f.write_str("$SubjectIsOwner"),
            Node::ResourceIsSelf => f.write_str("$ResourceIsSelf"),
            Node::ActionMatches { pattern, .. } => {
                f.write_str("ActionMatches{")?;
                write_quoted(f, pattern)?;
                f.write_str("}")
            }
            Node::Compare(c) => write!(f, "{} {} {}", c.left, c.op, c.right),
        }
    }
}
