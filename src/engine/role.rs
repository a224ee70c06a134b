//! Roles compiled once for matching: exact patterns in a hash table probed with the check's
//! precomputed action hash, wildcard patterns as [`Matcher`]s.

use hashbrown::HashTable;
use smallvec::SmallVec;

use super::cow::hash_str;
use super::pattern::Matcher;
use crate::model::condition::Condition;
use crate::model::{ActionPattern, RoleDefinition};

/// A checked action, lowercased once per request, with its hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActionKey<'a> {
    /// Lowercase action text.
    pub text: &'a str,
    /// `hash_str(text)`.
    pub hash: u64,
}

impl<'a> ActionKey<'a> {
    /// Wraps an already lowercase action.
    pub fn new(text: &'a str) -> Self {
        ActionKey {
            text,
            hash: hash_str(text),
        }
    }
}

/// Where a pattern sits in its role: (permission entry, pattern index).
type At = (u16, u16);

struct Exact {
    hash: u64,
    action: Box<str>,
    at: SmallVec<[At; 2]>,
}

struct Wild {
    at: At,
    matcher: Matcher,
}

/// A pattern set: exact patterns hashed, the rest matched one by one.
#[derive(Default)]
struct PatternSet {
    exact: HashTable<Exact>,
    wild: Vec<Wild>,
}

impl PatternSet {
    fn add(&mut self, at: At, pattern: &ActionPattern) {
        let matcher = Matcher::compile(pattern.as_str());
        match matcher.exact() {
            Some(text) => {
                let hash = hash_str(text);
                match self
                    .exact
                    .find_mut(hash, |e| e.hash == hash && *e.action == *text)
                {
                    Some(e) => e.at.push(at),
                    None => {
                        let entry = Exact {
                            hash,
                            action: text.into(),
                            at: SmallVec::from_elem(at, 1),
                        };
                        self.exact.insert_unique(hash, entry, |e| e.hash);
                    }
                }
            }
            None => self.wild.push(Wild { at, matcher }),
        }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wild.is_empty()
    }

    fn exact_hits(&self, action: ActionKey<'_>) -> &[At] {
        self.exact
            .find(action.hash, |e| {
                e.hash == action.hash && *e.action == *action.text
            })
            .map_or(&[], |e| &e.at[..])
    }
}

/// How a role relates to one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleMatch {
    /// Permission entry `entry`'s allowed pattern `pattern` matches, and nothing in that
    /// entry excludes the action.
    Allowed { entry: usize, pattern: usize },
    /// Every entry that matches also excludes, or carries a condition that does not hold:
    /// a failed condition is reported first (entry and matching pattern), else the first
    /// excluding entry, its matching pattern and its excluding pattern.
    Excluded {
        entry: usize,
        pattern: usize,
        excluded: usize,
    },
    /// An entry allows the action and excludes nothing of it, but its condition is false.
    ConditionFailed { entry: usize, pattern: usize },
    /// No allowed pattern matches.
    NotInRole,
}

/// A role definition with its patterns and conditions compiled.
pub(crate) struct CompiledRole {
    /// The definition as stored (names and patterns for explanations).
    pub def: RoleDefinition,
    allowed: PatternSet,
    excluded: PatternSet,
    /// Each permission entry's condition, parsed once; empty when no entry has one (the
    /// common case, which then never looks at conditions).
    conditions: Vec<Option<Condition>>,
}

impl CompiledRole {
    /// Compiles every pattern of `def` (cost: linear in its patterns).
    pub fn compile(def: RoleDefinition) -> CompiledRole {
        let mut allowed = PatternSet::default();
        let mut excluded = PatternSet::default();
        let mut conditions = Vec::new();
        if def.role_permissions.iter().any(|e| e.condition.is_some()) {
            conditions = def
                .role_permissions
                .iter()
                .map(|e| e.condition.as_deref().map(compile_condition))
                .collect();
        }
        for (e, entry) in def.role_permissions.iter().enumerate() {
            for (p, pattern) in entry.allowed_resource_actions.iter().enumerate() {
                allowed.add((e as u16, p as u16), pattern);
            }
            for (p, pattern) in entry.excluded_resource_actions.iter().enumerate() {
                excluded.add((e as u16, p as u16), pattern);
            }
        }
        CompiledRole {
            def,
            allowed,
            excluded,
            conditions,
        }
    }

    /// The condition of entry `entry`, if it has one.
    pub fn condition(&self, entry: usize) -> Option<&Condition> {
        self.conditions.get(entry).and_then(Option::as_ref)
    }

    /// True when the role grants anything at all.
    pub fn enabled(&self) -> bool {
        self.def.is_enabled
    }

    /// The allowed pattern at `(entry, pattern)`, as written.
    pub fn allowed_pattern(&self, entry: usize, pattern: usize) -> &str {
        self.def.role_permissions[entry].allowed_resource_actions[pattern].as_str()
    }

    /// The excluded pattern at `(entry, pattern)`, as written.
    pub fn excluded_pattern(&self, entry: usize, pattern: usize) -> &str {
        self.def.role_permissions[entry].excluded_resource_actions[pattern].as_str()
    }

    /// Which entry (if any) allows `action`, exclusions applied within each entry, with
    /// conditional entries counted only when `holds` says their condition is true (it is
    /// called only for entries that match and exclude nothing, and never for a role
    /// without conditions).
    pub fn match_action_if(
        &self,
        action: ActionKey<'_>,
        holds: &mut dyn FnMut(&Condition) -> bool,
    ) -> RoleMatch {
        let exact = self.allowed.exact_hits(action);
        if self.excluded.is_empty() && self.conditions.is_empty() {
            if let Some(&(e, p)) = exact.first() {
                return RoleMatch::Allowed {
                    entry: e as usize,
                    pattern: p as usize,
                };
            }
            return match self
                .allowed
                .wild
                .iter()
                .find(|w| w.matcher.matches(action.text))
            {
                Some(w) => RoleMatch::Allowed {
                    entry: w.at.0 as usize,
                    pattern: w.at.1 as usize,
                },
                None => RoleMatch::NotInRole,
            };
        }
        let mut candidates: SmallVec<[At; 4]> = SmallVec::from_slice(exact);
        candidates.extend(
            self.allowed
                .wild
                .iter()
                .filter(|w| w.matcher.matches(action.text))
                .map(|w| w.at),
        );
        if candidates.is_empty() {
            return RoleMatch::NotInRole;
        }
        candidates.sort_unstable();
        let excluded_exact = self.excluded.exact_hits(action);
        let mut first_excluded = None;
        let mut first_failed = None;
        for &(e, p) in &candidates {
            let by = excluded_exact
                .iter()
                .find(|at| at.0 == e)
                .map(|at| at.1)
                .or_else(|| {
                    self.excluded
                        .wild
                        .iter()
                        .find(|w| w.at.0 == e && w.matcher.matches(action.text))
                        .map(|w| w.at.1)
                });
            match by {
                None => match self.condition(e as usize) {
                    Some(condition) if !holds(condition) => {
                        first_failed.get_or_insert(RoleMatch::ConditionFailed {
                            entry: e as usize,
                            pattern: p as usize,
                        });
                    }
                    _ => {
                        return RoleMatch::Allowed {
                            entry: e as usize,
                            pattern: p as usize,
                        }
                    }
                },
                Some(x) => {
                    first_excluded.get_or_insert(RoleMatch::Excluded {
                        entry: e as usize,
                        pattern: p as usize,
                        excluded: x as usize,
                    });
                }
            }
        }
        first_failed
            .or(first_excluded)
            .unwrap_or(RoleMatch::NotInRole)
    }
}

/// Parses a stored condition. Input validation refused bad ones; one that still fails here
/// (an older row, a hand-edited catalog) becomes a condition that never holds: fail closed.
pub(crate) fn compile_condition(text: &str) -> Condition {
    Condition::parse(text).unwrap_or_else(|_| Condition::never(text))
}

/// Deny assignment patterns, compiled.
pub(crate) struct DenyPatterns {
    actions: Vec<Matcher>,
    excluded: Vec<Matcher>,
}

impl DenyPatterns {
    /// Compiles `actions` minus `excluded`.
    pub fn compile(actions: &[ActionPattern], excluded: &[ActionPattern]) -> DenyPatterns {
        DenyPatterns {
            actions: actions
                .iter()
                .map(|p| Matcher::compile(p.as_str()))
                .collect(),
            excluded: excluded
                .iter()
                .map(|p| Matcher::compile(p.as_str()))
                .collect(),
        }
    }

    /// The index of the first denied pattern matching `action`, unless an excluded pattern
    /// carves the action out.
    pub fn matches(&self, action: ActionKey<'_>) -> Option<usize> {
        let hit = self.actions.iter().position(|m| m.matches(action.text))?;
        if self.excluded.iter().any(|m| m.matches(action.text)) {
            return None;
        }
        Some(hit)
    }
}
