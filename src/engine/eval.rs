//! Checks, explanations, effective permissions and who-can, over a [`Snapshot`].

use std::collections::{HashMap, HashSet};

use hashbrown::HashTable;
use smallvec::SmallVec;
use uuid::Uuid;

use super::cow::hash_uuid;
use super::index::{canonical, Cover, DenyRec, Grant, Node, Snapshot, TenantIndex};
use super::role::{ActionKey, CompiledRole, RoleMatch};
use super::{
    Access, CheckRequest, Decision, DenyReason, EffectiveDeny, EffectivePermission,
    EffectivePermissions, GrantReason, GrantSource, Miss, MissReason, Reason, Subject,
    ThroughGroup, MAX_EXPLAINED_MISSES,
};
use crate::model::{Action, PrincipalType, Scope, TenantId, Timestamp, MAX_ACTION_LEN};

/// `visits[i].from` for the subject itself.
const ROOT: u32 = u32::MAX;
/// Past this many principals, membership tests use a hash table instead of a scan.
const LINEAR_SEEN: usize = 16;

/// One principal reached from the subject.
#[derive(Clone, Copy)]
pub(super) struct Visit<'a> {
    pub id: Uuid,
    pub node: Option<&'a Node>,
    /// The visit it was reached from (the subject is 0; token groups come from 0 too).
    from: u32,
    depth: u32,
    /// The chain to it starts at a token group.
    token: bool,
}

/// The subject and its groups, breadth first (so each chain is a shortest one).
pub(super) struct Principals<'a> {
    pub visits: SmallVec<[Visit<'a>; 16]>,
    seen: Option<HashTable<u32>>,
    bound_hit: bool,
}

impl<'a> Principals<'a> {
    pub fn expand(
        t: &'a TenantIndex,
        subject: Uuid,
        token_groups: &[Uuid],
        max_depth: usize,
    ) -> Self {
        let mut p = Principals {
            visits: SmallVec::new(),
            seen: None,
            bound_hit: false,
        };
        p.push(Visit {
            id: subject,
            node: None,
            from: ROOT,
            depth: 0,
            token: false,
        });
        for g in token_groups {
            if !p.contains(*g) {
                p.push(Visit {
                    id: *g,
                    node: None,
                    from: 0,
                    depth: 1,
                    token: true,
                });
            }
        }
        let mut i = 0;
        while i < p.visits.len() {
            let node = t.nodes.get(&p.visits[i].id);
            p.visits[i].node = node;
            let v = p.visits[i];
            if let Some(node) = node {
                for parent in node.parents() {
                    if p.contains(*parent) {
                        continue;
                    }
                    if v.depth as usize >= max_depth {
                        p.bound_hit = true;
                        continue;
                    }
                    p.push(Visit {
                        id: *parent,
                        node: None,
                        from: i as u32,
                        depth: v.depth + 1,
                        token: v.token,
                    });
                }
            }
            i += 1;
        }
        p
    }

    fn push(&mut self, v: Visit<'a>) {
        let index = self.visits.len() as u32;
        self.visits.push(v);
        if let Some(seen) = &mut self.seen {
            let visits = &self.visits;
            seen.insert_unique(hash_uuid(&v.id), index, |&i| {
                hash_uuid(&visits[i as usize].id)
            });
        } else if self.visits.len() > LINEAR_SEEN {
            let mut seen = HashTable::with_capacity(64);
            for (i, v) in self.visits.iter().enumerate() {
                seen.insert_unique(hash_uuid(&v.id), i as u32, |_| {
                    unreachable!("capacity reserved")
                });
            }
            self.seen = Some(seen);
        }
    }

    fn contains(&self, id: Uuid) -> bool {
        match &self.seen {
            None => self.visits.iter().any(|v| v.id == id),
            Some(seen) => seen
                .find(hash_uuid(&id), |&i| self.visits[i as usize].id == id)
                .is_some(),
        }
    }

    /// The groups from the subject (exclusive) to visit `i` (inclusive), and whether the
    /// chain starts at a token group.
    fn via(&self, i: usize) -> (Vec<Uuid>, bool) {
        let mut chain = Vec::new();
        let mut j = i as u32;
        while j != 0 && j != ROOT {
            chain.push(self.visits[j as usize].id);
            j = self.visits[j as usize].from;
        }
        chain.reverse();
        (chain, self.visits[i].token)
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.visits.iter().map(|v| v.id).collect()
    }
}

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

fn deny_matches(cover: &[Cover<'_>], d: &DenyRec, action: ActionKey<'_>) -> Option<usize> {
    if !covered(cover, d.scope.hash, &d.scope.text) {
        return None;
    }
    d.patterns.matches(action)
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
    ) -> bool {
        g.active_at(now)
            && self.role(t, &g.role).is_some_and(|r| {
                r.enabled() && matches!(r.match_action(action), RoleMatch::Allowed { .. })
            })
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
        let t = self.tenant(tenant);
        let mut buf = [0u8; MAX_ACTION_LEN];
        let action = ActionKey::new(lowercase(request.action.as_str(), &mut buf));
        let resource = canonical(request.resource.as_str());
        let mut cover = SmallVec::new();
        t.cover(&resource, &mut cover);
        let subject = &request.subject;
        let principals = Principals::expand(t, subject.id, &subject.groups, self.max_group_depth);
        if explain {
            return self.explain(t, &principals, &cover, subject, action, now);
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
                if grants.any_covering(&cover, |g| self.grant_allows(t, g, action, now)) {
                    return Decision {
                        allowed: true,
                        reasons: Vec::new(),
                    };
                }
            }
        }
        for wid in &subject.wids {
            if let Some(role) = self.builtins.by_template.get(wid) {
                if matches!(role.match_action(action), RoleMatch::Allowed { .. }) {
                    return Decision {
                        allowed: true,
                        reasons: Vec::new(),
                    };
                }
            }
        }
        deny
    }

    fn judge<'a>(
        &'a self,
        t: &'a TenantIndex,
        g: &Grant,
        covers: bool,
        action: ActionKey<'_>,
        now: Timestamp,
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
        (role, judge_action(r, action))
    }

    fn explain(
        &self,
        t: &TenantIndex,
        p: &Principals<'_>,
        cover: &[Cover<'_>],
        subject: &Subject,
        action: ActionKey<'_>,
        now: Timestamp,
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
                let (role, verdict) = self.judge(t, g, covers, action, now);
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
                Some(r) => judge_action(r, action),
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
        let resource = canonical(scope.as_str());
        let mut cover = SmallVec::new();
        t.cover(&resource, &mut cover);
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
                for entry in role
                    .def
                    .role_permissions
                    .iter()
                    .filter(|e| e.condition.is_none())
                {
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
                    });
                }
                false
            });
        }
        for wid in &subject.wids {
            let Some(role) = self.builtins.by_template.get(wid) else {
                continue;
            };
            for entry in role
                .def
                .role_permissions
                .iter()
                .filter(|e| e.condition.is_none())
            {
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
    /// assignment reaches. Each comes with its nearest granting assignment and chain; the
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
        let t = self.tenant(tenant);
        let mut buf = [0u8; MAX_ACTION_LEN];
        let action = ActionKey::new(lowercase(action.as_str(), &mut buf));
        let resource = canonical(resource.as_str());
        let mut cover: SmallVec<[Cover<'_>; 12]> = SmallVec::new();
        t.cover(&resource, &mut cover);

        struct Seed<'a> {
            principal: Uuid,
            kind: PrincipalType,
            grant: Grant,
            role: &'a CompiledRole,
            pattern: String,
        }
        let mut seeds: Vec<Seed<'_>> = Vec::new();
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
                    let Some(role) = self.role(t, &g.role).filter(|r| r.enabled()) else {
                        return false;
                    };
                    if let Ok(pattern) = judge_action(role, action) {
                        seeds.push(Seed {
                            principal,
                            kind: g.principal_type,
                            grant: g.clone(),
                            role,
                            pattern,
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

        struct Reached {
            id: Uuid,
            kind: PrincipalType,
            seed: usize,
            from: u32,
            depth: usize,
        }
        let mut queue: Vec<Reached> = Vec::new();
        let mut seen: HashMap<Uuid, ()> = HashMap::new();
        for (i, s) in seeds.iter().enumerate() {
            if seen.insert(s.principal, ()).is_none() {
                queue.push(Reached {
                    id: s.principal,
                    kind: s.kind,
                    seed: i,
                    from: ROOT,
                    depth: 0,
                });
            }
        }
        let mut head = 0;
        while head < queue.len() {
            let (id, seed, depth) = (queue[head].id, queue[head].seed, queue[head].depth);
            if depth < max_depth {
                if let Some(members) = t.members.get(&id) {
                    let mut list: Vec<(Uuid, PrincipalType)> =
                        members.iter().map(|(m, k)| (*m, *k)).collect();
                    list.sort_unstable_by_key(|(m, _)| *m);
                    for (m, kind) in list {
                        if seen.insert(m, ()).is_none() {
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
        let mut out: Vec<Access> = queue
            .iter()
            .filter(|r| !denied.contains(&r.id))
            .map(|r| {
                let s = &seeds[r.seed];
                let mut via = Vec::new();
                let mut j = r.from;
                while j != ROOT {
                    via.push(queue[j as usize].id);
                    j = queue[j as usize].from;
                }
                Access {
                    principal_id: r.id,
                    principal_type: r.kind,
                    assignment_id: s.grant.id,
                    role_definition_id: s.grant.role,
                    role_display_name: s.role.def.display_name.clone(),
                    matched_pattern: s.pattern.clone(),
                    scope: s.grant.scope.text.to_string(),
                    via,
                }
            })
            .collect();
        out.sort_by_key(|a| a.principal_id);
        out
    }
}

/// Every principal within `max_depth` memberships below one of `seeds` (seeds included).
fn reverse_reach(
    t: &TenantIndex,
    seeds: impl Iterator<Item = Uuid>,
    max_depth: usize,
) -> HashSet<Uuid> {
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut level: Vec<Uuid> = seeds.filter(|s| seen.insert(*s)).collect();
    for _ in 0..max_depth {
        let mut next = Vec::new();
        for id in &level {
            if let Some(members) = t.members.get(id) {
                next.extend(members.iter().map(|(m, _)| *m).filter(|m| seen.insert(*m)));
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    seen
}

/// The role's verdict on an action: the matched pattern, or why not.
fn judge_action(role: &CompiledRole, action: ActionKey<'_>) -> Result<String, Miss> {
    match role.match_action(action) {
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
        RoleMatch::NotInRole => Err(Miss::ActionNotInRole),
    }
}
