//! Walking a tree against one check's [`Env`].
//!
//! Recursion follows the tree, whose depth the parser bounded. Every node and every pair of
//! values compared spends one step of a [`Budget`]; running out aborts the whole evaluation
//! (the caller answers false), so a hostile attribute cannot make a check slow, and an
//! aborted comparison never turns into `true` under a `NOT`.

use std::collections::HashSet;

use smallvec::SmallVec;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ast::{Base, Builtin, Compare, Family, Lit, Node, Operand, Quant, Source};
use super::{Env, MAX_EVAL_STEPS};
use crate::engine::pattern::Matcher;
use crate::model::Timestamp;

/// The evaluation ran out of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exhausted;

/// Steps left.
pub(super) struct Budget(usize);

impl Budget {
    pub fn new() -> Budget {
        Budget(MAX_EVAL_STEPS)
    }

    fn spend(&mut self, steps: usize) -> Result<(), Exhausted> {
        self.0 = self.0.checked_sub(steps).ok_or(Exhausted)?;
        Ok(())
    }
}

/// Evaluates `node`; `Err` only when the budget ran out.
pub(super) fn eval(node: &Node, env: &Env<'_>, budget: &mut Budget) -> Result<bool, Exhausted> {
    budget.spend(1)?;
    match node {
        Node::Or(items) => {
            for item in items {
                if eval(item, env, budget)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Node::And(items) => {
            for item in items {
                if !eval(item, env, budget)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Node::Not(inner) => Ok(!eval(inner, env, budget)?),
        Node::Never => Ok(false),
        Node::SubjectIsOwner => subject_is_owner(env, budget),
        Node::ResourceIsSelf => {
            budget.spend(1 + env.subject_aliases.len())?;
            Ok(env.resource_id.is_some_and(|id| is_subject(env, id)))
        }
        Node::ActionMatches { matcher, .. } => Ok(action_matches(matcher, env.action_text)),
        Node::Compare(c) => compare(c, env, budget),
    }
}

/// `s` names the subject: its id or an alias, ASCII-case-insensitively. Empty never does.
fn is_subject(env: &Env<'_>, s: &str) -> bool {
    !s.is_empty()
        && (s.eq_ignore_ascii_case(env.subject_id)
            || env
                .subject_aliases
                .iter()
                .any(|a| s.eq_ignore_ascii_case(a)))
}

fn subject_is_owner(env: &Env<'_>, budget: &mut Budget) -> Result<bool, Exhausted> {
    let Some(owners) = ["owners", "ownerID", "owner"]
        .into_iter()
        .find_map(|name| env.resource.get(name))
    else {
        return Ok(false);
    };
    let per_owner = 1 + env.subject_aliases.len();
    match owners {
        Value::String(s) => {
            budget.spend(per_owner)?;
            Ok(is_subject(env, s))
        }
        Value::Array(items) => {
            budget.spend(items.len().saturating_mul(per_owner))?;
            Ok(items
                .iter()
                .any(|v| v.as_str().is_some_and(|s| is_subject(env, s))))
        }
        _ => Ok(false),
    }
}

fn action_matches(matcher: &Matcher, action: &str) -> bool {
    if action.bytes().any(|b| b.is_ascii_uppercase()) {
        matcher.matches(&action.to_ascii_lowercase())
    } else {
        matcher.matches(action)
    }
}

/// One value, untyped.
#[derive(Debug, Clone, Copy)]
enum Item<'e> {
    Str(&'e str),
    Num(f64),
    Bool(bool),
    Time(Timestamp),
    /// `null`, an object or a nested array: matches no type.
    Other,
}

impl<'e> Item<'e> {
    fn json(v: &'e Value) -> Item<'e> {
        match v {
            Value::String(s) => Item::Str(s),
            Value::Number(n) => n.as_f64().map_or(Item::Other, Item::Num),
            Value::Bool(b) => Item::Bool(*b),
            _ => Item::Other,
        }
    }

    fn lit(l: &'e Lit) -> Item<'e> {
        match l {
            Lit::Str(s) => Item::Str(s),
            Lit::Num(n) => Item::Num(*n),
            Lit::Bool(b) => Item::Bool(*b),
            Lit::Time(_, t) => Item::Time(*t),
        }
    }

    fn as_str(self) -> Option<&'e str> {
        match self {
            Item::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_num(self) -> Option<f64> {
        match self {
            Item::Num(n) => Some(n),
            _ => None,
        }
    }

    fn as_bool(self) -> Option<bool> {
        match self {
            Item::Bool(b) => Some(b),
            Item::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Item::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    fn as_time(self) -> Option<Timestamp> {
        match self {
            Item::Time(t) => Some(t),
            Item::Str(s) => DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }
}

/// An operand's value for one check.
#[derive(Debug, Clone, Copy)]
enum Val<'e> {
    Missing,
    One(Item<'e>),
    Array(&'e [Value]),
    Set(&'e [Lit]),
    Aliases(&'e [String]),
}

impl<'e> Val<'e> {
    fn len(self) -> usize {
        match self {
            Val::Missing => 0,
            Val::One(_) => 1,
            Val::Array(a) => a.len(),
            Val::Set(s) => s.len(),
            Val::Aliases(a) => a.len(),
        }
    }

    fn item(self, i: usize) -> Option<Item<'e>> {
        match self {
            Val::Missing => None,
            Val::One(item) => (i == 0).then_some(item),
            Val::Array(a) => a.get(i).map(Item::json),
            Val::Set(s) => s.get(i).map(Item::lit),
            Val::Aliases(a) => a.get(i).map(|s| Item::Str(s)),
        }
    }

    /// Every item converted by `conv`, or `None` when one has the wrong type. Inline for
    /// the usual one to four values, so a comparison allocates nothing.
    fn typed<T>(self, conv: impl Fn(Item<'e>) -> Option<T>) -> Option<SmallVec<[T; 4]>> {
        (0..self.len())
            .map(|i| self.item(i).and_then(&conv))
            .collect()
    }
}

fn resolve<'e>(operand: &'e Operand, env: &Env<'e>) -> Val<'e> {
    let json = |v: Option<&'e Value>| match v {
        None => Val::Missing,
        Some(Value::Array(items)) => Val::Array(items),
        Some(v) => Val::One(Item::json(v)),
    };
    match operand {
        Operand::Builtin(b) => match b {
            Builtin::SubjectId => Val::One(Item::Str(env.subject_id)),
            Builtin::SubjectAliases => Val::Aliases(env.subject_aliases),
            Builtin::ResourceId => env
                .resource_id
                .map_or(Val::Missing, |s| Val::One(Item::Str(s))),
            Builtin::ResourceType => env
                .resource_type
                .map_or(Val::Missing, |s| Val::One(Item::Str(s))),
            Builtin::ActionName => Val::One(Item::Str(env.action_name)),
            Builtin::UtcNow => Val::One(Item::Time(env.now)),
        },
        Operand::Attr(source, name) => json(match source {
            Source::Subject => env.subject.get(name),
            Source::Resource => env.resource.get(name),
            Source::Action => env.action.get(name),
            Source::Environment => env.environment.get(name),
        }),
        Operand::Lit(lit) => Val::One(Item::lit(lit)),
        Operand::Set(items) => Val::Set(items),
    }
}

fn compare(c: &Compare, env: &Env<'_>, budget: &mut Budget) -> Result<bool, Exhausted> {
    let left = resolve(&c.left, env);
    let right = resolve(&c.right, env);
    if matches!(left, Val::Missing) || matches!(right, Val::Missing) {
        return Ok(false);
    }
    // Unquantified, a set literal on the right means "any of"; an array attribute on either
    // side is a type mismatch. The `Not` form negates the whole positive answer.
    let (quant, pair_negated, negate_result) = match c.op.quant {
        Some(q) => (q, c.op.negated, false),
        None => {
            let multi = |v: Val<'_>| matches!(v, Val::Array(_) | Val::Aliases(_));
            if multi(left) || multi(right) || matches!(left, Val::Set(_)) {
                return Ok(false);
            }
            (Quant::AnyOfAny, false, c.op.negated)
        }
    };
    budget.spend(left.len().saturating_add(right.len()))?;
    let base = c.op.base;
    let answer = match base.family() {
        Family::String => {
            let (Some(l), Some(r)) = (left.typed(Item::as_str), right.typed(Item::as_str)) else {
                return Ok(false);
            };
            let by_hash = matches!(quant, Quant::AnyOfAny | Quant::AllOfAny)
                && !pair_negated
                && matches!(base, Base::StringEquals | Base::StringEqualsIgnoreCase)
                && r.len() > 16;
            if by_hash {
                string_in_set(quant, base, &l, &r)
            } else {
                quantify(quant, &l, &r, budget, |a, b| {
                    string_pair(base, a, b) != pair_negated
                })?
            }
        }
        Family::Numeric => {
            let (Some(l), Some(r)) = (left.typed(Item::as_num), right.typed(Item::as_num)) else {
                return Ok(false);
            };
            quantify(quant, &l, &r, budget, |a, b| {
                ordered_pair(base, a.partial_cmp(b)) != pair_negated
            })?
        }
        Family::Bool => {
            let (Some(l), Some(r)) = (left.typed(Item::as_bool), right.typed(Item::as_bool)) else {
                return Ok(false);
            };
            quantify(quant, &l, &r, budget, |a, b| (a == b) != pair_negated)?
        }
        Family::DateTime => {
            let (Some(l), Some(r)) = (left.typed(Item::as_time), right.typed(Item::as_time)) else {
                return Ok(false);
            };
            quantify(quant, &l, &r, budget, |a, b| {
                ordered_pair(base, a.partial_cmp(b)) != pair_negated
            })?
        }
    };
    Ok(answer != negate_result)
}

/// Combines `pred` over the pairs as `quant` says. An empty left side makes the `ForAny...`
/// forms false and the `ForAll...` forms true; an empty right side fails every `...OfAny`
/// test and passes every `...OfAll` test.
fn quantify<T>(
    quant: Quant,
    left: &[T],
    right: &[T],
    budget: &mut Budget,
    pred: impl Fn(&T, &T) -> bool,
) -> Result<bool, Exhausted> {
    let (all_left, all_right) = match quant {
        Quant::AnyOfAny => (false, false),
        Quant::AllOfAny => (true, false),
        Quant::AnyOfAll => (false, true),
        Quant::AllOfAll => (true, true),
    };
    for a in left {
        budget.spend(1 + right.len())?;
        let hit = if all_right {
            right.iter().all(|b| pred(a, b))
        } else {
            right.iter().any(|b| pred(a, b))
        };
        // Some-left stops at the first hit, every-left at the first miss.
        if hit != all_left {
            return Ok(hit);
        }
    }
    Ok(all_left)
}

/// `ForAnyOfAnyValues` / `ForAllOfAnyValues` with a positive string equality, through a hash
/// set: linear in both sides however large they are.
fn string_in_set(quant: Quant, base: Base, left: &[&str], right: &[&str]) -> bool {
    let fold = |s: &str| -> String {
        if base == Base::StringEqualsIgnoreCase {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.to_owned()
        }
    };
    let set: HashSet<String> = right.iter().map(|s| fold(s)).collect();
    let hit = |a: &&str| set.contains(&fold(a));
    match quant {
        Quant::AllOfAny => left.iter().all(hit),
        _ => left.iter().any(hit),
    }
}

fn string_pair(base: Base, a: &str, b: &str) -> bool {
    match base {
        Base::StringEquals => a == b,
        Base::StringEqualsIgnoreCase => fold_eq(a, b),
        Base::StringLike => like(b, a),
        Base::StringStartsWith => a.starts_with(b),
        _ => false,
    }
}

/// Equal after Unicode lowercasing, without allocating.
fn fold_eq(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// The numeric and date-time comparisons, from the ordering of the two sides.
fn ordered_pair(base: Base, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let Some(ord) = ord else {
        return false;
    };
    match base {
        Base::NumericEquals | Base::DateTimeEquals => ord == Equal,
        Base::NumericLessThan | Base::DateTimeLessThan => ord == Less,
        Base::NumericLessThanEquals | Base::DateTimeLessThanEquals => ord != Greater,
        Base::NumericGreaterThan | Base::DateTimeGreaterThan => ord == Greater,
        Base::NumericGreaterThanEquals | Base::DateTimeGreaterThanEquals => ord != Less,
        _ => false,
    }
}

/// `value` matches `pattern`, where `*` is any run of characters and `?` any one character
/// (case-sensitive). The pattern splits at `*`; its first and last pieces anchor at the
/// ends and each middle piece is found leftmost after the previous one, which is never
/// wrong for `*`. No backtracking: at most (pattern length) × (value length) steps.
pub(super) fn like(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let fits = |piece: &[char], at: &[char]| {
        piece.len() == at.len() && piece.iter().zip(at).all(|(p, c)| *p == '?' || p == c)
    };
    let pieces: Vec<&[char]> = p.split(|c| *c == '*').collect();
    let (first, rest) = match pieces.split_first() {
        Some(split) => split,
        None => return v.is_empty(),
    };
    let Some((last, middle)) = rest.split_last() else {
        // No `*` at all.
        return fits(first, &v);
    };
    if v.len() < first.len() + last.len() {
        return false;
    }
    let end = v.len() - last.len();
    if !fits(first, &v[..first.len()]) || !fits(last, &v[end..]) {
        return false;
    }
    let mut from = first.len();
    for piece in middle {
        let found = (from..=end)
            .take_while(|i| i + piece.len() <= end)
            .find(|&i| fits(piece, &v[i..i + piece.len()]));
        match found {
            Some(i) => from = i + piece.len(),
            None => return false,
        }
    }
    true
}
