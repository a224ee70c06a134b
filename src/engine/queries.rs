//! Questions about a [`Snapshot`] other than a check: effective permissions, what a group
//! carries, who can, and whether an id names a group.

use hashbrown::{HashMap, HashSet};

use smallvec::SmallVec;
use uuid::Uuid;

use super::check::{covered, deny_matches, judge_action, lowercase};
use super::grants::Grant;
use super::principals::{reverse_reach, Principals, ROOT};
use super::role::{ActionKey, CompiledRole};
use super::units::Cover;
use super::{
    Access, EffectiveDeny, EffectivePermission, EffectivePermissions, GrantSource, Snapshot,
    Subject, ThroughGroup,
};
use crate::model::{Action, PrincipalType, Scope, TenantId, Timestamp, MAX_ACTION_LEN};

/// How one role answers who-can's action: the pattern that matched and the entry
/// conditions it depends on (empty when it allows unconditionally).
struct Verdict<'a> {
    role: &'a CompiledRole,
    pattern: String,
    conditions: Vec<String>,
}

/// A grant allowing the action at a covering scope.
struct Seed {
    principal: Uuid,
    kind: PrincipalType,
    /// Its role's verdict or its assignment carries a condition.
    conditional: bool,
    grant: Grant,
    verdict: usize,
}

/// A principal reached from a seed, directly or through group members.
struct Reached {
    id: Uuid,
    kind: PrincipalType,
    seed: usize,
    /// The visit it was reached from (`ROOT` for a seed's holder).
    from: u32,
    depth: usize,
}

/// What [`Snapshot::reach`] finds.
struct Reach<'a> {
    verdicts: Vec<Verdict<'a>>,
    seeds: Vec<Seed>,
    queue: Vec<Reached>,
    denied: HashSet<Uuid>,
}

impl Snapshot {
    /// Everything the subject may do at `scope`: each permission entry of each active,
    /// enabled grant whose scope covers `scope` (with the assignment, role and group chain
    /// behind it), and each deny assignment in force there. Deny assignments are listed,
    /// not subtracted: they remove actions, not entries.
    pub fn effective_permissions(
        &self,
        tenant: TenantId,
        subject: &Subject,
        scope: &Scope,
        now: Timestamp,
    ) -> EffectivePermissions {
        let t = self.tenant(tenant);
        let resource = scope.as_str();
        let mut cover = SmallVec::new();
        t.cover(resource, &mut cover);
        let p = Principals::expand(t, subject.id, &subject.groups, self.max_group_depth);
        let mut out = EffectivePermissions {
            group_depth_limited: p.bound_hit,
            ..Default::default()
        };
        for (i, v) in p.visits.iter().enumerate() {
            let Some(node) = v.node else { continue };
            for d in node.denies() {
                if covered(&cover, d.scope.hash, &d.scope.text) {
                    let (via, via_token_groups) = p.via(i);
                    out.denies.push(EffectiveDeny {
                        deny_assignment_id: d.def.id,
                        display_name: d.def.display_name.clone(),
                        principal_id: v.id,
                        actions: d.def.actions.clone(),
                        excluded_actions: d.def.excluded_actions.clone(),
                        scope: d.def.directory_scope_id.as_str().to_owned(),
                        via,
                        via_token_groups,
                    });
                }
            }
            let Some(grants) = &node.grants else { continue };
            grants.any_covering(&cover, |g| {
                let Some(role) = self.role(t, &g.role) else {
                    return false;
                };
                if !g.active_at(now) || !role.enabled() {
                    return false;
                }
                let (via, via_token_groups) = p.via(i);
                for entry in &role.def.role_permissions {
                    out.permissions.push(EffectivePermission {
                        allowed_resource_actions: entry.allowed_resource_actions.clone(),
                        excluded_resource_actions: entry.excluded_resource_actions.clone(),
                        assignment_id: Some(g.id),
                        source: GrantSource::Assignment,
                        principal_id: v.id,
                        role_definition_id: g.role,
                        role_display_name: role.def.display_name.clone(),
                        scope: g.scope.text.to_string(),
                        via: via.clone(),
                        via_token_groups,
                        condition: entry.condition.clone(),
                        assignment_condition: g.condition().map(|c| c.text().to_owned()),
                    });
                }
                false
            });
        }
        for wid in &subject.wids {
            let Some(role) = self.builtins.by_template.get(wid) else {
                continue;
            };
            for entry in &role.def.role_permissions {
                out.permissions.push(EffectivePermission {
                    allowed_resource_actions: entry.allowed_resource_actions.clone(),
                    excluded_resource_actions: entry.excluded_resource_actions.clone(),
                    assignment_id: None,
                    source: GrantSource::WidsClaim,
                    principal_id: subject.id,
                    role_definition_id: role.def.id,
                    role_display_name: role.def.display_name.clone(),
                    scope: "/".to_owned(),
                    via: Vec::new(),
                    via_token_groups: false,
                    condition: entry.condition.clone(),
                    assignment_condition: None,
                });
            }
        }
        out
    }

    /// What membership of `group` carries: the role assignments a new member comes to hold
    /// and the scopes of the deny assignments a leaving member escapes, from the group and
    /// every group it is (transitively) a member of. Grants are `(role, scope)`; time
    /// windows are ignored (a grant that is not active yet will be).
    pub fn through_group(&self, tenant: TenantId, group: Uuid) -> ThroughGroup {
        let t = self.tenant(tenant);
        let p = Principals::expand(t, group, &[], self.max_group_depth);
        let mut out = ThroughGroup::default();
        for v in &p.visits {
            let Some(node) = v.node else { continue };
            if let Some(grants) = &node.grants {
                grants.for_each(|g| out.grants.push((g.role, g.scope.text.to_string())));
            }
            for d in node.denies() {
                out.denies.push(d.def.clone());
            }
        }
        out.grants.sort();
        out.grants.dedup();
        out.denies.sort_by_key(|d| d.id);
        out.denies.dedup_by_key(|d| d.id);
        out
    }

    /// Every principal the store knows of that may perform `action` on `resource` at `now`:
    /// the holders of grants that allow it (whose scope covers the resource) and the
    /// transitive members of those that are groups, minus everyone a matching deny
    /// assignment reaches. A grant that allows only under conditions is listed with them
    /// ([`Access::conditions`]), unevaluated: whether they hold depends on each check's
    /// attributes. An unconditional grant is preferred when a principal has both. Each comes with its nearest granting assignment and chain; the
    /// list is ordered by principal id. Token claims (`groups`, `wids`) are not stored, so
    /// they are not considered.
    ///
    /// Costs: the assignments at the resource's covering scopes, the deny assignments of
    /// the tenant, and the members of the groups found.
    pub fn who_can(
        &self,
        tenant: TenantId,
        action: &Action,
        resource: &Scope,
        now: Timestamp,
    ) -> Vec<Access> {
        let r = self.reach(tenant, action, resource, now);
        let mut out: Vec<Access> = r
            .queue
            .iter()
            .filter(|q| !r.denied.contains(&q.id))
            .map(|q| {
                let s = &r.seeds[q.seed];
                let v = &r.verdicts[s.verdict];
                let mut via = Vec::new();
                let mut j = q.from;
                while j != ROOT {
                    via.push(r.queue[j as usize].id);
                    j = r.queue[j as usize].from;
                }
                let mut conditions = v.conditions.clone();
                conditions.extend(s.grant.condition().map(|c| c.text().to_owned()));
                Access {
                    principal_id: q.id,
                    principal_type: q.kind,
                    assignment_id: s.grant.id,
                    role_definition_id: s.grant.role,
                    role_display_name: v.role.def.display_name.clone(),
                    matched_pattern: v.pattern.clone(),
                    scope: s.grant.scope.text.to_string(),
                    via,
                    conditions,
                }
            })
            .collect();
        out.sort_by_key(|a| a.principal_id);
        out
    }

    /// Who-can's principals without their explanations: `(id, kind, conditional)` for
    /// each principal a grant allowing `action` on `resource` reaches and no matching deny
    /// assignment does, ordered by id; `conditional` when only grants with conditions reach
    /// it. What search enumerates.
    pub(super) fn holders(
        &self,
        tenant: TenantId,
        action: &Action,
        resource: &Scope,
        now: Timestamp,
    ) -> Vec<(Uuid, PrincipalType, bool)> {
        let r = self.reach(tenant, action, resource, now);
        let mut out: Vec<(Uuid, PrincipalType, bool)> = r
            .queue
            .iter()
            .filter(|q| !r.denied.contains(&q.id))
            .map(|q| (q.id, q.kind, r.seeds[q.seed].conditional))
            .collect();
        out.sort_unstable_by_key(|h| h.0);
        out
    }

    /// The grants allowing `action` at a scope covering `resource`, the principals they
    /// reach (through group members, breadth first), and those a matching deny reaches.
    /// Each role is judged once, however many assignments name it.
    fn reach(
        &self,
        tenant: TenantId,
        action: &Action,
        resource: &Scope,
        now: Timestamp,
    ) -> Reach<'_> {
        let t = self.tenant(tenant);
        let mut buf = [0u8; MAX_ACTION_LEN];
        let action = ActionKey::new(lowercase(action.as_str(), &mut buf));
        let resource = resource.as_str();
        let mut cover: SmallVec<[Cover<'_>; 12]> = SmallVec::new();
        t.cover(resource, &mut cover);

        let mut verdicts: Vec<Verdict<'_>> = Vec::new();
        // Role id -> its verdict's index (`None`: the role does not allow the action).
        let mut judged: HashMap<Uuid, Option<usize>> = HashMap::new();
        let mut seeds: Vec<Seed> = Vec::new();
        for c in cover.iter() {
            let Some((_, Some(holders))) = t.by_scope.find(c.hash, |k| &*k.text == c.text) else {
                continue;
            };
            holders.for_each(|assignment, principal| {
                let Some(grants) = t.nodes.get(&principal).and_then(|n| n.grants.as_ref()) else {
                    return;
                };
                grants.any_covering(std::slice::from_ref(c), |g| {
                    if g.id != assignment || !g.active_at(now) {
                        return false;
                    }
                    let verdict = *judged.entry(g.role).or_insert_with(|| {
                        let role = self.role(t, &g.role).filter(|r| r.enabled())?;
                        let mut conditions = Vec::new();
                        let pattern = judge_action(role, action, &mut |_| false)
                            .or_else(|_| {
                                judge_action(role, action, &mut |c| {
                                    conditions.push(c.text().to_owned());
                                    true
                                })
                            })
                            .ok()?;
                        verdicts.push(Verdict {
                            role,
                            pattern,
                            conditions,
                        });
                        Some(verdicts.len() - 1)
                    });
                    if let Some(verdict) = verdict {
                        seeds.push(Seed {
                            principal,
                            kind: g.principal_type,
                            conditional: !verdicts[verdict].conditions.is_empty()
                                || g.condition().is_some(),
                            grant: g.clone(),
                            verdict,
                        });
                    }
                    true
                });
            });
        }
        seeds.sort_by_key(|s| (s.principal, s.grant.id));

        let max_depth = self.max_group_depth;
        let denied = reverse_reach(
            t,
            t.denies
                .values()
                .filter(|d| deny_matches(&cover, d, action).is_some())
                .map(|d| d.def.principal_id),
            max_depth,
        );

        let mut queue: Vec<Reached> = Vec::new();
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut head = 0;
        // Two rounds: everyone an unconditional grant reaches (directly or through groups)
        // first, then whoever only a conditional grant reaches, so a principal reached both
        // ways is listed without conditions.
        for conditional in [false, true] {
            for (i, s) in seeds.iter().enumerate() {
                if s.conditional != conditional {
                    continue;
                }
                if seen.insert(s.principal) {
                    queue.push(Reached {
                        id: s.principal,
                        kind: s.kind,
                        seed: i,
                        from: ROOT,
                        depth: 0,
                    });
                }
            }
            while head < queue.len() {
                let (id, seed, depth) = (queue[head].id, queue[head].seed, queue[head].depth);
                if depth < max_depth {
                    if let Some(members) = t.members.get(&id) {
                        let mut list: Vec<(Uuid, PrincipalType)> =
                            members.iter().map(|(m, k)| (*m, *k)).collect();
                        list.sort_unstable_by_key(|(m, _)| *m);
                        for (m, kind) in list {
                            if seen.insert(m) {
                                queue.push(Reached {
                                    id: m,
                                    kind,
                                    seed,
                                    from: head as u32,
                                    depth: depth + 1,
                                });
                            }
                        }
                    }
                }
                head += 1;
            }
        }
        Reach {
            verdicts,
            seeds,
            queue,
            denied,
        }
    }

    /// True when `id` is a group stored in `tenant` at this snapshot's revision, whether or
    /// not it has members or assignments: authentication asks, so that a token cannot
    /// present a group's id as its own subject and act with the group's assignments. One
    /// hash lookup.
    pub fn is_group(&self, tenant: TenantId, id: Uuid) -> bool {
        self.tenant(tenant).groups.get(&id).is_some()
    }
}
