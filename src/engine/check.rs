//! Checks and their explanations over a [`Snapshot`].

use std::cell::OnceCell;

use smallvec::SmallVec;
use uuid::Uuid;

use super::grants::Grant;
use super::principals::Principals;
use super::role::{ActionKey, CompiledRole, RoleMatch};
use super::tenant::{DenyRec, TenantIndex};
use super::units::Cover;
use super::{
    CheckRequest, Decision, DenyReason, GrantReason, GrantSource, Miss, MissReason, Reason,
    Snapshot, Subject, MAX_EXPLAINED_MISSES,
};
use crate::model::condition::{Attrs, Condition, Env};
use crate::model::{TenantId, Timestamp, MAX_ACTION_LEN};

/// Lowercases an action into `buf` (actions are ASCII and at most [`MAX_ACTION_LEN`] bytes).
pub(super) fn lowercase<'b>(action: &str, buf: &'b mut [u8; MAX_ACTION_LEN]) -> &'b str {
    let bytes = action.as_bytes();
    let n = bytes.len().min(MAX_ACTION_LEN);
    buf[..n].copy_from_slice(&bytes[..n]);
    buf[..n].make_ascii_lowercase();
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

#[inline]
pub(super) fn covered(cover: &[Cover<'_>], hash: u64, text: &str) -> bool {
    cover.iter().any(|c| c.hash == hash && c.text == text)
}

pub(super) fn deny_matches(
    cover: &[Cover<'_>],
    d: &DenyRec,
    action: ActionKey<'_>,
) -> Option<usize> {
    if !covered(cover, d.scope.hash, &d.scope.text) {
        return None;
    }
    d.patterns.matches(action)
}

/// What a check's conditions read. The environment is assembled on each use from
/// references (the subject's id text is formatted once, on first use): a check that meets no
/// condition never builds it.
pub(super) struct Conditions<'a> {
    snapshot: &'a Snapshot,
    tenant: TenantId,
    request: &'a CheckRequest,
    action_text: &'a str,
    now: Timestamp,
    /// Conditions count as false (the escalation rule: a conditional grant is not held).
    strict: bool,
    /// The subject's id, hyphenated lowercase, formatted on first use without allocating.
    subject_id: OnceCell<[u8; 36]>,
}

impl<'a> Conditions<'a> {
    pub(super) fn new(
        snapshot: &'a Snapshot,
        tenant: TenantId,
        request: &'a CheckRequest,
        action_text: &'a str,
        now: Timestamp,
        strict: bool,
    ) -> Self {
        Conditions {
            snapshot,
            tenant,
            request,
            action_text,
            now,
            strict,
            subject_id: OnceCell::new(),
        }
    }

    /// Whether `condition` holds for this check.
    pub(super) fn holds(&self, condition: &Condition) -> bool {
        if self.strict {
            return false;
        }
        let facts = &self.request.facts;
        let stored = self
            .snapshot
            .principal(self.tenant, &self.request.subject.id);
        let subject_id = self.subject_id.get_or_init(|| {
            let mut buf = [0u8; 36];
            self.request.subject.id.hyphenated().encode_lower(&mut buf);
            buf
        });
        // INVARIANT: a hyphenated uuid is ASCII, so this never falls back.
        let subject_id = std::str::from_utf8(subject_id).unwrap_or_default();
        // A resource named by type and id has its stored attributes as defaults.
        let stored_resource = match (&facts.resource_type, &facts.resource_id) {
            (Some(kind), Some(id)) => self.snapshot.resource(self.tenant, kind, id),
            _ => None,
        };
        let mut segments = self.request.resource.as_str().rsplit('/');
        let last = segments.next().filter(|s| !s.is_empty());
        let second = segments.next().filter(|s| !s.is_empty());
        let env = Env {
            subject_id,
            subject_aliases: stored.map_or(&[][..], |p| &p.aliases[..]),
            subject: Attrs::two(&facts.subject, stored.map(|p| &p.attributes)),
            resource_id: facts.resource_id.as_deref().or(last),
            resource_type: facts.resource_type.as_deref().or(second),
            resource: Attrs::two(&facts.resource, stored_resource.map(|r| &r.attributes)),
            action_name: facts
                .action_name
                .as_deref()
                .unwrap_or(self.request.action.as_str()),
            action_text: self.action_text,
            action: Attrs::two(&facts.action, None),
            environment: Attrs::two(&facts.context, None),
            now: self.now,
        };
        condition.evaluate(&env)
    }
}

impl Snapshot {
    pub(super) fn role<'a>(&'a self, t: &'a TenantIndex, id: &Uuid) -> Option<&'a CompiledRole> {
        match self.builtins.by_id.get(id) {
            Some(role) => Some(&**role),
            None => t.role(id),
        }
    }

    #[inline]
    pub(super) fn grant_allows(
        &self,
        t: &TenantIndex,
        g: &Grant,
        action: ActionKey<'_>,
        now: Timestamp,
        conditions: &Conditions<'_>,
    ) -> bool {
        g.active_at(now)
            && self.role(t, &g.role).is_some_and(|r| {
                r.enabled()
                    && matches!(
                        r.match_action_if(action, &mut |c| conditions.holds(c)),
                        RoleMatch::Allowed { .. }
                    )
            })
            && g.condition().is_none_or(|c| conditions.holds(c))
    }

    /// May the subject perform the action on the resource at `now`?
    ///
    /// Costs about (principals of the subject) × (depth of the resource) hash probes and
    /// allocates nothing for typical subjects when `explain` is false (it stops at the first
    /// deny assignment, then at the first grant). With `explain`, every candidate is
    /// evaluated and described. Tenants never see each other's objects; a tenant the
    /// snapshot has never seen has only the built-in roles (through `wids`).
    pub fn check(
        &self,
        tenant: TenantId,
        request: &CheckRequest,
        now: Timestamp,
        explain: bool,
    ) -> Decision {
        self.check_in(tenant, request, now, explain, false)
    }

    /// [`Snapshot::check`], with every condition counted as false when `strict` (the
    /// escalation rule: a conditional grant is not held for an unconditional purpose).
    pub(super) fn check_in(
        &self,
        tenant: TenantId,
        request: &CheckRequest,
        now: Timestamp,
        explain: bool,
        strict: bool,
    ) -> Decision {
        let t = self.tenant(tenant);
        let mut buf = [0u8; MAX_ACTION_LEN];
        let action = ActionKey::new(lowercase(request.action.as_str(), &mut buf));
        let resource = request.resource.as_str();
        let mut cover = SmallVec::new();
        t.cover(resource, &mut cover);
        let subject = &request.subject;
        let principals = Principals::expand(t, subject.id, &subject.groups, self.max_group_depth);
        let conditions = Conditions::new(self, tenant, request, action.text, now, strict);
        if explain {
            return self.explain(t, &principals, &cover, subject, action, now, &conditions);
        }
        let deny = Decision {
            allowed: false,
            reasons: Vec::new(),
        };
        for v in &principals.visits {
            if let Some(node) = v.node {
                if node
                    .denies()
                    .iter()
                    .any(|d| deny_matches(&cover, d, action).is_some())
                {
                    return deny;
                }
            }
        }
        for v in &principals.visits {
            if let Some(grants) = v.node.and_then(|n| n.grants_near(&cover)) {
                if grants.any_covering(&cover, |g| {
                    self.grant_allows(t, g, action, now, &conditions)
                }) {
                    return Decision {
                        allowed: true,
                        reasons: Vec::new(),
                    };
                }
            }
        }
        for wid in &subject.wids {
            if let Some(role) = self.builtins.by_template.get(wid) {
                if matches!(
                    role.match_action_if(action, &mut |c| conditions.holds(c)),
                    RoleMatch::Allowed { .. }
                ) {
                    return Decision {
                        allowed: true,
                        reasons: Vec::new(),
                    };
                }
            }
        }
        deny
    }

    #[allow(clippy::too_many_arguments)]
    fn judge<'a>(
        &'a self,
        t: &'a TenantIndex,
        g: &Grant,
        covers: bool,
        action: ActionKey<'_>,
        now: Timestamp,
        conditions: &Conditions<'_>,
    ) -> (Option<&'a CompiledRole>, Result<String, Miss>) {
        let role = self.role(t, &g.role);
        if !covers {
            return (role, Err(Miss::ScopeDoesNotCover));
        }
        if !g.active_at(now) {
            return (
                role,
                Err(Miss::OutsideTimeWindow {
                    start_date_time: g.start(),
                    end_date_time: g.end(),
                }),
            );
        }
        let Some(r) = role else {
            return (None, Err(Miss::RoleNotFound));
        };
        if !r.enabled() {
            return (role, Err(Miss::RoleDisabled));
        }
        let verdict = judge_action(r, action, &mut |c| conditions.holds(c));
        if verdict.is_ok() {
            if let Some(c) = g.condition().filter(|c| !conditions.holds(c)) {
                return (
                    role,
                    Err(Miss::AssignmentConditionNotMet {
                        condition: c.text().to_owned(),
                    }),
                );
            }
        }
        (role, verdict)
    }

    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        t: &TenantIndex,
        p: &Principals<'_>,
        cover: &[Cover<'_>],
        subject: &Subject,
        action: ActionKey<'_>,
        now: Timestamp,
        conditions: &Conditions<'_>,
    ) -> Decision {
        let depth_note = p.bound_hit.then_some(Reason::GroupDepthLimit {
            max_depth: self.max_group_depth,
        });
        let mut denies = Vec::new();
        for (i, v) in p.visits.iter().enumerate() {
            let Some(node) = v.node else { continue };
            for d in node.denies() {
                if let Some(hit) = deny_matches(cover, d, action) {
                    let (via, via_token_groups) = p.via(i);
                    denies.push(Reason::Deny(DenyReason {
                        deny_assignment_id: d.def.id,
                        display_name: d.def.display_name.clone(),
                        principal_id: v.id,
                        matched_pattern: d.def.actions[hit].as_str().to_owned(),
                        scope: d.def.directory_scope_id.as_str().to_owned(),
                        via,
                        via_token_groups,
                    }));
                }
            }
        }
        if !denies.is_empty() {
            denies.extend(depth_note);
            return Decision {
                allowed: false,
                reasons: denies,
            };
        }
        let mut grants = Vec::new();
        let mut near_misses = Vec::new();
        let mut scope_misses = Vec::new();
        let mut omitted = 0usize;
        let mut candidates = 0usize;
        for (i, v) in p.visits.iter().enumerate() {
            let Some(list) = v.node.and_then(|n| n.grants.as_ref()) else {
                continue;
            };
            list.for_each(|g| {
                candidates += 1;
                let covers = covered(cover, g.scope.hash, &g.scope.text);
                if !covers && near_misses.len() + scope_misses.len() >= MAX_EXPLAINED_MISSES {
                    omitted += 1;
                    return;
                }
                let (role, verdict) = self.judge(t, g, covers, action, now, conditions);
                let (via, via_token_groups) = p.via(i);
                match verdict {
                    Ok(matched_pattern) => grants.push(Reason::Grant(GrantReason {
                        assignment_id: Some(g.id),
                        source: GrantSource::Assignment,
                        principal_id: v.id,
                        role_definition_id: g.role,
                        role_display_name: role
                            .map(|r| r.def.display_name.clone())
                            .unwrap_or_default(),
                        matched_pattern,
                        scope: g.scope.text.to_string(),
                        via,
                        via_token_groups,
                        end_date_time: g.end(),
                        activation_request_id: g.activation(),
                    })),
                    Err(why) => {
                        let miss = Reason::NotGranted(MissReason {
                            assignment_id: Some(g.id),
                            source: GrantSource::Assignment,
                            principal_id: v.id,
                            role_definition_id: g.role,
                            role_display_name: role.map(|r| r.def.display_name.clone()),
                            scope: g.scope.text.to_string(),
                            via,
                            via_token_groups,
                            why,
                        });
                        if covers {
                            near_misses.push(miss)
                        } else {
                            scope_misses.push(miss)
                        }
                    }
                }
            });
        }
        for wid in &subject.wids {
            candidates += 1;
            let role = self.builtins.by_template.get(wid);
            let verdict = match role {
                Some(r) => judge_action(r, action, &mut |c| conditions.holds(c)),
                None => Err(Miss::RoleNotFound),
            };
            match verdict {
                Ok(matched_pattern) => grants.push(Reason::Grant(GrantReason {
                    assignment_id: None,
                    source: GrantSource::WidsClaim,
                    principal_id: subject.id,
                    role_definition_id: role.map_or(*wid, |r| r.def.id),
                    role_display_name: role.map(|r| r.def.display_name.clone()).unwrap_or_default(),
                    matched_pattern,
                    scope: "/".to_owned(),
                    via: Vec::new(),
                    via_token_groups: false,
                    end_date_time: None,
                    activation_request_id: None,
                })),
                Err(why) => near_misses.push(Reason::NotGranted(MissReason {
                    assignment_id: None,
                    source: GrantSource::WidsClaim,
                    principal_id: subject.id,
                    role_definition_id: role.map_or(*wid, |r| r.def.id),
                    role_display_name: role.map(|r| r.def.display_name.clone()),
                    scope: "/".to_owned(),
                    via: Vec::new(),
                    via_token_groups: false,
                    why,
                })),
            }
        }
        let allowed = !grants.is_empty();
        let mut reasons = if allowed {
            grants
        } else if candidates == 0 {
            vec![Reason::NoAssignments {
                principals: p.ids(),
            }]
        } else {
            let mut misses = near_misses;
            misses.extend(scope_misses);
            if misses.len() > MAX_EXPLAINED_MISSES {
                omitted += misses.len() - MAX_EXPLAINED_MISSES;
                misses.truncate(MAX_EXPLAINED_MISSES);
            }
            if omitted > 0 {
                misses.push(Reason::MoreNotGranted { omitted });
            }
            misses
        };
        reasons.extend(depth_note);
        Decision { allowed, reasons }
    }
}

/// The role's verdict on an action: the matched pattern, or why not. `holds` decides the
/// conditions of entries that would allow.
pub(super) fn judge_action(
    role: &CompiledRole,
    action: ActionKey<'_>,
    holds: &mut dyn FnMut(&Condition) -> bool,
) -> Result<String, Miss> {
    match role.match_action_if(action, holds) {
        RoleMatch::Allowed { entry, pattern } => {
            Ok(role.allowed_pattern(entry, pattern).to_owned())
        }
        RoleMatch::Excluded {
            entry,
            pattern,
            excluded,
        } => Err(Miss::ActionExcluded {
            allowed_pattern: role.allowed_pattern(entry, pattern).to_owned(),
            excluded_pattern: role.excluded_pattern(entry, excluded).to_owned(),
        }),
        RoleMatch::ConditionFailed { entry, pattern } => Err(Miss::ConditionNotMet {
            allowed_pattern: role.allowed_pattern(entry, pattern).to_owned(),
            condition: role
                .condition(entry)
                .map(|c| c.text().to_owned())
                .unwrap_or_default(),
        }),
        RoleMatch::NotInRole => Err(Miss::ActionNotInRole),
    }
}
