//! Privilege escalation: does a subject already hold every permission of a role at a scope?
//!
//! The answer must never say yes wrongly (that would let an admin hand out more than it
//! holds), so for wildcard patterns it is deliberately conservative:
//! - An exact action in the role is held when a check of that action at the scope allows
//!   (exclusions and deny assignments apply exactly as in any check).
//! - A wildcard or keyword pattern `p` is held when no deny assignment reaches the subject
//!   at the scope, and some unconditional permission entry the subject holds there has a
//!   pattern `q` that provably covers `p` (`q` equals `p`, or matches every action, or is
//!   `lit*` and every action `p` matches starts with `lit`), and each of that entry's
//!   exclusions is also an exclusion of the role's entry (so it takes away nothing the role
//!   would give).
//!
//! A holder of a wider pattern written another way may be refused; it is never wrongly
//! allowed.

use super::pattern::Matcher;
use super::{CheckRequest, Snapshot, Subject};
use crate::model::{Action, RoleDefinition, Scope, TenantId, Timestamp};

const KEYWORDS: [&str; 3] = ["allentities", "allproperties", "alltasks"];

impl Snapshot {
    /// The patterns of `role` that `subject` does not hold at `scope` (empty: it holds them
    /// all, so assigning `role` there grants nothing new).
    pub fn missing_permissions(
        &self,
        tenant: TenantId,
        subject: &Subject,
        role: &RoleDefinition,
        scope: &Scope,
        now: Timestamp,
    ) -> Vec<String> {
        let held = self.effective_permissions(tenant, subject, scope, now);
        let mut missing = Vec::new();
        for entry in &role.role_permissions {
            let role_exclusions: Vec<String> = entry
                .excluded_resource_actions
                .iter()
                .map(|x| x.as_str().to_ascii_lowercase())
                .collect();
            for pattern in &entry.allowed_resource_actions {
                let p = pattern.as_str().to_ascii_lowercase();
                let ok = if is_exact(&p) {
                    Action::parse(pattern.as_str()).is_ok_and(|action| {
                        let request = CheckRequest {
                            subject: subject.clone(),
                            action,
                            resource: scope.clone(),
                        };
                        self.check(tenant, &request, now, false).allowed
                    })
                } else {
                    held.denies.is_empty()
                        && held.permissions.iter().any(|perm| {
                            let exclusions_ok = perm.excluded_resource_actions.iter().all(|x| {
                                role_exclusions.contains(&x.as_str().to_ascii_lowercase())
                            });
                            exclusions_ok
                                && perm
                                    .allowed_resource_actions
                                    .iter()
                                    .any(|q| covers(&q.as_str().to_ascii_lowercase(), &p))
                        })
                };
                if !ok {
                    missing.push(pattern.as_str().to_owned());
                }
            }
        }
        missing
    }
}

/// No `*` and no keyword segment: the pattern names one action.
fn is_exact(p: &str) -> bool {
    !p.contains('*') && !p.split('/').any(|s| KEYWORDS.contains(&s))
}

/// The text every action matching `p` starts with: up to the first `*`, or up to (not
/// including the `/` before) the first keyword segment.
fn literal_prefix(p: &str) -> &str {
    let mut end = p.find('*').unwrap_or(p.len());
    let mut offset = 0;
    for segment in p.split('/') {
        if offset >= end {
            break;
        }
        if KEYWORDS.contains(&segment) {
            end = end.min(offset.saturating_sub(1));
            break;
        }
        offset += segment.len() + 1;
    }
    &p[..end]
}

/// True only when every action `p` matches is provably matched by `q` (both lowercase).
fn covers(q: &str, p: &str) -> bool {
    if q == p {
        return true;
    }
    match Matcher::compile(q) {
        Matcher::Any => true,
        Matcher::Prefix(lit) => literal_prefix(p).starts_with(&*lit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_sound_for_the_shapes_it_accepts() {
        assert!(covers("*", "a/b/*"));
        assert!(covers("a/*", "a/b/alltasks"));
        assert!(covers("a/b*", "a/b/allproperties/read"));
        assert!(covers(
            "a/allproperties/alltasks",
            "a/allproperties/alltasks"
        ));
        assert!(!covers("a/b/*", "a/*"));
        assert!(!covers("a/*/read", "a/allproperties/read"));
        assert!(!covers("a/allentities/read", "a/alltasks/read"));
        assert!(!covers("a/b/c*", "a/b/allentities/x"));
    }

    #[test]
    fn literal_prefixes_stop_at_the_first_wildcard() {
        assert_eq!(literal_prefix("a/b/*"), "a/b/");
        assert_eq!(literal_prefix("a/b/allproperties/read"), "a/b");
        assert_eq!(literal_prefix("allentities/x"), "");
        assert_eq!(literal_prefix("a/bc*/alltasks"), "a/bc");
        assert_eq!(literal_prefix("a/b"), "a/b");
    }
}
