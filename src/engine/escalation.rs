//! Privilege escalation: does a subject already hold every permission of a role at a scope?
//!
//! The answer must never say yes wrongly (that would let an admin hand out more than it
//! holds), so for wildcard patterns it is deliberately conservative:
//! - An exact action in the role is held when a check of that action at the scope allows
//!   with every condition counted as false (exclusions and deny assignments apply exactly
//!   as in any check; a conditional grant is not held, since the role handed out would
//!   grant without the condition).
//! - A wildcard or keyword pattern `p` is held when no deny assignment reaches the subject
//!   at the scope, and some unconditional permission entry the subject holds there, through
//!   an unconditional assignment, has a
//!   pattern `q` that provably covers `p` (`q` equals `p`, or matches every action, or is
//!   `lit*` and every action `p` matches starts with `lit`), and each of that entry's
//!   exclusions is also an exclusion of the role's entry (so it takes away nothing the role
//!   would give).
//!
//! A holder of a wider pattern written another way may be refused; it is never wrongly
//! allowed.
//!
//! The rest of this module answers the other questions the admin plane asks before a
//! change: which deny assignments bind an administrator near a scope, whether a deny may
//! overlap a set of permissions, which principals a subject acts as, and until when a grant
//! lasts. Each answer errs towards refusing.

use smallvec::SmallVec;
use uuid::Uuid;

use super::check::{covered, lowercase, Conditions};
use super::pattern::Matcher;
use super::principals::Principals;
use super::role::{ActionKey, RoleMatch};
use super::{CheckRequest, Snapshot, Subject};
use crate::model::{
    Action, ActionPattern, DenyAssignment, RolePermission, Scope, TenantId, Timestamp,
    MAX_ACTION_LEN,
};

const KEYWORDS: [&str; 3] = ["allentities", "allproperties", "alltasks"];

impl Snapshot {
    /// The allowed patterns of `entries` (a role's permissions) that `subject` does not hold
    /// at `scope` (empty: it holds them all, so granting them there grants nothing new).
    pub fn missing_permissions(
        &self,
        tenant: TenantId,
        subject: &Subject,
        entries: &[RolePermission],
        scope: &Scope,
        now: Timestamp,
    ) -> Vec<String> {
        let held = self.effective_permissions(tenant, subject, scope, now);
        let mut missing = Vec::new();
        for entry in entries {
            let role_exclusions: Vec<String> = entry
                .excluded_resource_actions
                .iter()
                .map(|x| x.as_str().to_ascii_lowercase())
                .collect();
            for pattern in &entry.allowed_resource_actions {
                let p = pattern.as_str().to_ascii_lowercase();
                let ok = if is_exact(&p) {
                    Action::parse(pattern.as_str()).is_ok_and(|action| {
                        let request = CheckRequest::new(subject.clone(), action, scope.clone());
                        self.check_in(tenant, &request, now, false, true).allowed
                    })
                } else {
                    held.denies.is_empty()
                        && held.permissions.iter().any(|perm| {
                            if perm.condition.is_some() || perm.assignment_condition.is_some() {
                                return false;
                            }
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

impl Snapshot {
    /// The subject's id and every group it belongs to (token groups and stored memberships,
    /// transitively, up to the depth bound).
    pub fn principals_of(&self, tenant: TenantId, subject: &Subject) -> Vec<Uuid> {
        let t = self.tenant(tenant);
        Principals::expand(t, subject.id, &subject.groups, self.max_group_depth).ids()
    }

    /// Deny assignments reaching `subject` (directly or through its groups) whose scope
    /// covers `scope` or lies at or below it (a unit scope counts as covering its member
    /// resources): every deny that fences the subject somewhere an assignment at `scope`
    /// would reach.
    pub fn denies_near(
        &self,
        tenant: TenantId,
        subject: &Subject,
        scope: &Scope,
    ) -> Vec<DenyAssignment> {
        let t = self.tenant(tenant);
        let target = scope.as_str();
        let mut above = SmallVec::new();
        t.cover(target, &mut above);
        let p = Principals::expand(t, subject.id, &subject.groups, self.max_group_depth);
        let mut out: Vec<DenyAssignment> = Vec::new();
        for v in &p.visits {
            let Some(node) = v.node else { continue };
            for d in node.denies() {
                let reaches = covered(&above, d.scope.hash, &d.scope.text) || {
                    let mut below = SmallVec::new();
                    t.cover(&d.scope.text, &mut below);
                    below.iter().any(|c| c.text == &*target)
                };
                if reaches && !out.iter().any(|o| o.id == d.def.id) {
                    out.push(d.def.clone());
                }
            }
        }
        out
    }

    /// Whether `group` has any direct member.
    pub fn has_members(&self, tenant: TenantId, group: Uuid) -> bool {
        self.tenant(tenant)
            .members
            .get(&group)
            .is_some_and(|members| !members.is_empty())
    }

    /// Deny assignments whose scope is exactly `scope` (compared canonically).
    pub fn denies_at(&self, tenant: TenantId, scope: &Scope) -> Vec<DenyAssignment> {
        let t = self.tenant(tenant);
        let target = scope.as_str();
        let mut out: Vec<DenyAssignment> = t
            .denies
            .values()
            .filter(|d| *d.scope.text == *target)
            .map(|d| d.def.clone())
            .collect();
        out.sort_by_key(|d| d.id);
        out
    }

    /// Role assignments held by `principal` itself: `(assignment id, scope)`.
    pub fn assignments_of(&self, tenant: TenantId, principal: Uuid) -> Vec<(Uuid, Scope)> {
        let t = self.tenant(tenant);
        let mut out = Vec::new();
        if let Some(grants) = t.nodes.get(&principal).and_then(|n| n.grants.as_ref()) {
            grants.for_each(|g| {
                // A stored scope always parses; should it not, `/` is the stricter place.
                let scope = Scope::parse(&g.scope.text).unwrap_or_else(|_| Scope::root());
                out.push((g.id, scope));
            });
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Until when `subject` may perform `action` on `resource`: `None` when it may not now,
    /// `Some(None)` when some allowing grant has no end (a `wids` claim included), else
    /// `Some(Some(t))` with `t` the latest end among the allowing grants.
    pub fn allowed_until(
        &self,
        tenant: TenantId,
        request: &CheckRequest,
        now: Timestamp,
    ) -> Option<Option<Timestamp>> {
        if !self.check(tenant, request, now, false).allowed {
            return None;
        }
        let t = self.tenant(tenant);
        let mut buf = [0u8; MAX_ACTION_LEN];
        let action = ActionKey::new(lowercase(request.action.as_str(), &mut buf));
        let subject = &request.subject;
        let conditions = Conditions::new(self, tenant, request, action.text, now, false);
        for wid in &subject.wids {
            if let Some(role) = self.builtins.by_template.get(wid) {
                if matches!(
                    role.match_action_if(action, &mut |c| conditions.holds(c)),
                    RoleMatch::Allowed { .. }
                ) {
                    return Some(None);
                }
            }
        }
        let resource = request.resource.as_str();
        let mut cover = SmallVec::new();
        t.cover(resource, &mut cover);
        let p = Principals::expand(t, subject.id, &subject.groups, self.max_group_depth);
        let mut latest: Option<Timestamp> = None;
        let mut unbounded = false;
        for v in &p.visits {
            if let Some(grants) = v.node.and_then(|n| n.grants_near(&cover)) {
                grants.any_covering(&cover, |g| {
                    if self.grant_allows(t, g, action, now, &conditions) {
                        match g.end() {
                            None => unbounded = true,
                            Some(end) => latest = Some(latest.map_or(end, |l| l.max(end))),
                        }
                    }
                    unbounded
                });
            }
            if unbounded {
                return Some(None);
            }
        }
        Some(latest)
    }
}

/// Whether `deny` may take away something `entries` give: true unless provably not. An exact
/// allowed action overlaps when the deny (with its exclusions) matches it; a wildcard
/// overlaps unless every denied pattern's literal prefix is incompatible with its own.
pub fn deny_overlaps(deny: &DenyAssignment, entries: &[RolePermission]) -> bool {
    let denied: Vec<String> = deny
        .actions
        .iter()
        .map(|a| a.as_str().to_ascii_lowercase())
        .collect();
    entries
        .iter()
        .flat_map(|e| e.allowed_resource_actions.iter())
        .any(|allowed| {
            let p = allowed.as_str().to_ascii_lowercase();
            if is_exact(&p) {
                denies_action(&deny.actions, &deny.excluded_actions, &p)
            } else {
                denied.iter().any(|d| {
                    let (a, b) = (literal_prefix(&p), literal_prefix(d));
                    a.starts_with(b) || b.starts_with(a)
                })
            }
        })
}

/// Whether a deny of `actions` minus `excluded` matches the exact action `action`.
pub fn denies_action(actions: &[ActionPattern], excluded: &[ActionPattern], action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    actions
        .iter()
        .any(|a| Matcher::compile(a.as_str()).matches(&action))
        && !excluded
            .iter()
            .any(|x| Matcher::compile(x.as_str()).matches(&action))
}

/// No `*` and no keyword segment: the pattern (lowercase) names one action.
pub(super) fn is_exact(p: &str) -> bool {
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
