//! Search: who may perform an action on a resource, on which resources a subject may, and
//! what a subject may do on a resource (the AuthZEN search APIs, and `/v1/access`).
//!
//! Each search finds its candidates in the index, never by scanning every principal or
//! resource: subjects from the assignments whose scope covers the resource (with the members
//! of assigned groups), resources from the scopes of the grants that reach the subject,
//! actions from the roles that reach the subject at the resource. A candidate that an
//! unconditional grant allows, with no deny assignment in the way, is an answer at once; any
//! other candidate is decided by a full [`Snapshot::check`] with its stored attributes, so
//! search answers exactly what checking every candidate would, in time linear in the
//! candidates. Results come in a stable order (object id, resource id, action name) and are
//! taken a page at a time after a key, so paging costs the page, not the whole answer,
//! wherever no condition forces evaluation of the skipped candidates.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use uuid::Uuid;

use super::check::lowercase;
use super::escalation::is_exact;
use super::principals::Principals;
use super::resources::{ResourceInfo, Under};
use super::role::{ActionKey, CompiledRole, RoleMatch};
use super::tenant::TenantIndex;
use super::{CheckRequest, Facts, Snapshot, Subject};
use crate::model::{ancestors, Action, PrincipalType, Scope, TenantId, Timestamp, MAX_ACTION_LEN};

/// One page of a search: the answers after the key, and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// At most the page's limit of answers, in order.
    pub items: Vec<T>,
    /// True when at least one more answer follows the last item.
    pub more: bool,
}

/// The action a resource search asks about.
#[derive(Clone, Copy)]
pub enum SearchAction<'a> {
    /// The same action for every resource.
    Fixed(&'a Action),
    /// An action that depends on the resource's id (`None`: no action, so not allowed).
    /// Every resource of the type is then a candidate, checked one by one.
    PerResource(&'a dyn Fn(&str) -> Option<Action>),
}

/// What a role grant allows of one action, conditions aside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allows {
    /// Unconditionally (no entry or assignment condition involved).
    Always,
    /// Only if some condition holds.
    Maybe,
    /// Never.
    Never,
}

fn allows(role: &CompiledRole, action: ActionKey<'_>, assignment_condition: bool) -> Allows {
    if !role.enabled() {
        return Allows::Never;
    }
    if !assignment_condition
        && matches!(
            role.match_action_if(action, &mut |_| false),
            RoleMatch::Allowed { .. }
        )
    {
        return Allows::Always;
    }
    if matches!(
        role.match_action_if(action, &mut |_| true),
        RoleMatch::Allowed { .. }
    ) {
        Allows::Maybe
    } else {
        Allows::Never
    }
}

/// Adds the resources of `under` after `after` to `found`, marking them settled when
/// `settled`.
fn take<'t>(
    under: &'t Under,
    settled: bool,
    after: Option<&str>,
    found: &mut BTreeMap<&'t str, (&'t Arc<ResourceInfo>, bool)>,
) {
    for (_, r) in under.iter() {
        if after.is_some_and(|a| r.id.as_str() <= a) {
            continue;
        }
        let entry = found.entry(r.id.as_str()).or_insert((r, false));
        entry.1 |= settled;
    }
}

/// The administrative unit a scope names, if it is exactly `/administrativeUnits/{id}`.
fn unit_of(scope: &str) -> Option<Uuid> {
    scope
        .strip_prefix("/administrativeUnits/")
        .filter(|rest| !rest.contains('/'))
        .and_then(|rest| Uuid::parse_str(rest).ok())
}

impl Snapshot {
    /// The principals of one of `kinds` that may perform `action` on `resource` at `now`,
    /// ordered by object id, the page after `after`. Candidates are [`Snapshot::who_can`]'s;
    /// one reached only through conditional grants is checked with `facts` (its stored
    /// attributes are the defaults for `@Subject[...]`).
    #[allow(clippy::too_many_arguments)]
    pub fn search_subjects(
        &self,
        tenant: TenantId,
        kinds: &[PrincipalType],
        action: &Action,
        resource: &Scope,
        facts: &Facts,
        now: Timestamp,
        after: Option<Uuid>,
        limit: usize,
    ) -> Page<Uuid> {
        let holders = self.holders(tenant, action, resource, now);
        let start = after.map_or(0, |a| holders.partition_point(|h| h.0 <= a));
        let mut request: Option<CheckRequest> = None;
        let mut page = Page {
            items: Vec::new(),
            more: false,
        };
        for &(id, kind, conditional) in &holders[start..] {
            if !kinds.contains(&kind) {
                continue;
            }
            let allowed = !conditional || {
                let q = request.get_or_insert_with(|| CheckRequest {
                    subject: Subject::new(id),
                    action: action.clone(),
                    resource: resource.clone(),
                    facts: facts.clone(),
                });
                q.subject.id = id;
                self.check(tenant, q, now, false).allowed
            };
            if allowed {
                if page.items.len() == limit {
                    page.more = true;
                    break;
                }
                page.items.push(id);
            }
        }
        page
    }

    /// The resources of `resource_type` in the resource directory on which `subject` may
    /// perform `action` at `now`, ordered by id, the page after `after`. `facts` are the
    /// request's; each resource's stored attributes are the defaults for `@Resource[...]`.
    #[allow(clippy::too_many_arguments)]
    pub fn search_resources(
        &self,
        tenant: TenantId,
        subject: &Subject,
        resource_type: &str,
        action: SearchAction<'_>,
        facts: &Facts,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Page<Arc<ResourceInfo>> {
        let t = self.tenant(tenant);
        let mut found: BTreeMap<&str, (&Arc<ResourceInfo>, bool)> = BTreeMap::new();
        match action {
            SearchAction::Fixed(fixed) => {
                self.reached_resources(t, subject, resource_type, fixed, now, after, &mut found);
            }
            // Every resource of the type is a candidate: no grant's action is known ahead.
            SearchAction::PerResource(_) => {
                if let Some(all) = t.resources_under(resource_type, "/") {
                    take(all, false, after, &mut found);
                }
            }
        }
        let mut request: Option<CheckRequest> = None;
        let mut page = Page {
            items: Vec::new(),
            more: false,
        };
        for (r, settled) in found.into_values() {
            let allowed = settled || {
                let checked = match action {
                    SearchAction::Fixed(fixed) => fixed.clone(),
                    SearchAction::PerResource(action_of) => match action_of(&r.id) {
                        Some(checked) => checked,
                        None => continue,
                    },
                };
                let q = request.get_or_insert_with(|| CheckRequest {
                    subject: subject.clone(),
                    action: checked.clone(),
                    resource: r.path.clone(),
                    facts: facts.clone(),
                });
                q.action = checked;
                q.resource = r.path.clone();
                q.facts.resource_type = Some(resource_type.to_owned());
                q.facts.resource_id = Some(r.id.clone());
                self.check(tenant, q, now, false).allowed
            };
            if allowed {
                if page.items.len() == limit {
                    page.more = true;
                    break;
                }
                page.items.push(Arc::clone(r));
            }
        }
        page
    }

    /// Adds to `found` every resource of `resource_type` that a grant of `subject` allowing
    /// `fixed` reaches, marked settled when an unconditional grant with no deny in the way
    /// allows it there.
    #[allow(clippy::too_many_arguments)]
    fn reached_resources<'t>(
        &self,
        t: &'t TenantIndex,
        subject: &Subject,
        resource_type: &str,
        fixed: &Action,
        now: Timestamp,
        after: Option<&str>,
        found: &mut BTreeMap<&'t str, (&'t Arc<ResourceInfo>, bool)>,
    ) {
        let mut buf = [0u8; MAX_ACTION_LEN];
        let key = ActionKey::new(lowercase(fixed.as_str(), &mut buf));
        let p = Principals::expand(t, subject.id, &subject.groups, self.max_group_depth);
        // A deny assignment for this action anywhere on the subject's side means no
        // candidate is taken on a grant's word alone.
        let denied_somewhere = p.visits.iter().any(|v| {
            v.node
                .is_some_and(|n| n.denies().iter().any(|d| d.patterns.matches(key).is_some()))
        });
        let mut scopes: Vec<(Arc<str>, Allows)> = Vec::new();
        for v in &p.visits {
            let Some(grants) = v.node.and_then(|n| n.grants.as_ref()) else {
                continue;
            };
            grants.for_each(|g| {
                if !g.active_at(now) {
                    return;
                }
                if let Some(role) = self.role(t, &g.role) {
                    let a = allows(role, key, g.condition().is_some());
                    if a != Allows::Never {
                        scopes.push((Arc::clone(&g.scope.text), a));
                    }
                }
            });
        }
        for wid in &subject.wids {
            if let Some(role) = self.builtins.by_template.get(wid) {
                let a = allows(role, key, false);
                if a != Allows::Never {
                    scopes.push((Arc::from("/"), a));
                }
            }
        }

        // Every resource some grant's scope reaches, by id, with whether an unconditional
        // grant with no deny in the way settles it. Each scope once (settled if any grant
        // there settles), shallowest first, so a scope under an already settled one adds
        // nothing and is skipped (one grant at `/` ends the walk).
        let mut unique: BTreeMap<Arc<str>, bool> = BTreeMap::new();
        for (scope, a) in scopes {
            *unique.entry(scope).or_insert(false) |= a == Allows::Always && !denied_somewhere;
        }
        let mut ordered: Vec<(Arc<str>, bool)> = unique.into_iter().collect();
        ordered.sort_by_key(|(scope, _)| {
            if &**scope == "/" {
                0
            } else {
                scope.matches('/').count()
            }
        });
        let mut settled_at: HashSet<Arc<str>> = HashSet::new();
        let covered = |settled_at: &HashSet<Arc<str>>, path: &str| {
            ancestors(path).any(|a| settled_at.contains(a))
        };
        for (scope, settled) in ordered {
            if !covered(&settled_at, &scope) {
                if let Some(under) = t.resources_under(resource_type, &scope) {
                    take(under, settled, after, found);
                }
            }
            if let Some(members) = unit_of(&scope).and_then(|u| t.unit_members.get(&u)) {
                for (member, _) in members.iter() {
                    if covered(&settled_at, &member.text) {
                        continue;
                    }
                    if let Some(under) = t.resources_under(resource_type, &member.text) {
                        take(under, settled, after, found);
                    }
                }
            }
            if settled {
                settled_at.insert(scope);
            }
        }
    }

    /// The exact actions `subject` may perform on `resource` at `now`, each with the name
    /// `name_of` gives it (an action with no name is left out), ordered by name. Candidates
    /// are the exact actions of the roles that reach the subject at the resource; a
    /// wildcard or keyword pattern (`allTasks`, ...) among them adds every exact action any
    /// role of the tenant (or the catalog) names. Each candidate is checked with `facts` and its name.
    pub fn search_actions(
        &self,
        tenant: TenantId,
        subject: &Subject,
        resource: &Scope,
        facts: &Facts,
        now: Timestamp,
        name_of: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<(String, Action)> {
        let reach = self.effective_permissions(tenant, subject, resource, now);
        let mut candidates: BTreeMap<String, &str> = BTreeMap::new();
        let mut wildcard = false;
        for entry in &reach.permissions {
            for pattern in &entry.allowed_resource_actions {
                let text = pattern.as_str();
                let lower = text.to_ascii_lowercase();
                if is_exact(&lower) {
                    candidates.entry(lower).or_insert(text);
                } else {
                    wildcard = true;
                }
            }
        }
        let t = self.tenant(tenant);
        let mut known: Vec<String> = Vec::new();
        if wildcard {
            let roles = t.roles.values().chain(self.builtins.by_id.values());
            for role in roles {
                for entry in &role.def.role_permissions {
                    for pattern in &entry.allowed_resource_actions {
                        if is_exact(&pattern.as_str().to_ascii_lowercase()) {
                            known.push(pattern.as_str().to_owned());
                        }
                    }
                }
            }
        }
        for text in &known {
            candidates
                .entry(text.to_ascii_lowercase())
                .or_insert(text.as_str());
        }

        let mut facts = facts.clone();
        let mut out: Vec<(String, Action)> = Vec::new();
        for text in candidates.into_values() {
            let (Some(name), Ok(action)) = (name_of(text), Action::parse(text)) else {
                continue;
            };
            facts.action_name = Some(name.clone());
            let request = CheckRequest {
                subject: subject.clone(),
                action,
                resource: resource.clone(),
                facts,
            };
            if self.check(tenant, &request, now, false).allowed {
                out.push((name, request.action));
            }
            facts = request.facts;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }
}
