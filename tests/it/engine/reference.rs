//! The reference evaluator: obviously correct and slow. It scans every object of the
//! tenant, resolves groups by a naive fixpoint, and matches actions with a recursive
//! matcher over segments written without looking at the engine's. Conditions are parsed
//! from their stored text at each use and evaluated against an environment the reference
//! assembles itself from the dump and the request's facts; only the language (parsing and
//! evaluating one condition) is the engine crate's, and it has unit tests of its own.

use std::collections::{BTreeMap, BTreeSet};

use rolecall::engine::{Facts, Subject};
use rolecall::model::condition::{Attrs, Condition, Env};
use rolecall::model::{Catalog, Dump, RoleDefinition, TenantDump, TenantId, Timestamp};
use uuid::Uuid;

/// What the reference concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefDecision {
    pub allowed: bool,
    /// (assignment id or None for a wids claim, role id) of every grant that allows.
    pub grants: BTreeSet<(Option<Uuid>, Uuid)>,
    /// Every deny assignment that matches.
    pub denies: BTreeSet<Uuid>,
    /// Whether a group lay just past the depth bound.
    pub bound_hit: bool,
}

/// `*` in a segment: any run of characters, `/` included.
fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => glob(rest, s) || (!s.is_empty() && glob(p, &s[1..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn segments_match(p: &[String], a: &[String]) -> bool {
    let Some((first, rest)) = p.split_first() else {
        return a.is_empty();
    };
    match first.as_str() {
        "allentities" => !a.is_empty() && segments_match(rest, &a[1..]),
        "alltasks" => (1..=a.len()).any(|k| segments_match(rest, &a[k..])),
        "allproperties" => (0..=a.len()).any(|k| segments_match(rest, &a[k..])),
        g if g.contains('*') => {
            let g: Vec<char> = g.chars().collect();
            (1..=a.len()).any(|k| {
                let joined: Vec<char> = a[..k].join("/").chars().collect();
                glob(&g, &joined) && segments_match(rest, &a[k..])
            })
        }
        lit => a.first().map(String::as_str) == Some(lit) && segments_match(rest, &a[1..]),
    }
}

/// Does `pattern` grant `action`? Case-insensitive.
pub fn pattern_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<String> = pattern
        .to_lowercase()
        .split('/')
        .map(str::to_owned)
        .collect();
    let a: Vec<String> = action
        .to_lowercase()
        .split('/')
        .map(str::to_owned)
        .collect();
    segments_match(&p, &a)
}

/// Administrative unit ids compare as uuids, and any other segment spelled as a hyphenated
/// uuid compares in lowercase.
pub fn canon(scope: &str) -> String {
    let mut segments: Vec<String> = scope.split('/').map(str::to_owned).collect();
    for (i, segment) in segments.iter_mut().enumerate() {
        let unit = i == 2 && scope.starts_with("/administrativeUnits/");
        if let Ok(u) = Uuid::parse_str(segment) {
            if unit || (segment.len() == 36 && segment.matches('-').count() == 4) {
                *segment = u.hyphenated().to_string();
            }
        }
    }
    segments.join("/")
}

fn path_covers(scope: &str, resource: &str) -> bool {
    scope == "/" || scope == resource || resource.starts_with(&format!("{scope}/"))
}

/// Does an assignment at `scope` apply to `resource`?
pub fn covers(t: &TenantDump, scope: &str, resource: &str) -> bool {
    let (s, r) = (canon(scope), canon(resource));
    path_covers(&s, &r)
        || t.administrative_unit_members.iter().any(|m| {
            format!("/administrativeUnits/{}", m.administrative_unit_id) == s
                && path_covers(&canon(m.resource.as_str()), &r)
        })
}

/// The principals of a subject with their distance in memberships, and whether the bound
/// cut something off.
pub fn principals(
    t: &TenantDump,
    subject: &Subject,
    max_depth: usize,
) -> (BTreeMap<Uuid, usize>, bool) {
    let mut dist = BTreeMap::new();
    dist.insert(subject.id, 0);
    for g in &subject.groups {
        dist.entry(*g).or_insert(1);
    }
    loop {
        let mut changed = false;
        for e in &t.group_members {
            if let Some(&d) = dist.get(&e.id) {
                if d < max_depth && dist.get(&e.group_id).is_none_or(|&old| old > d + 1) {
                    dist.insert(e.group_id, d + 1);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let bound_hit = t
        .group_members
        .iter()
        .any(|e| dist.get(&e.id) == Some(&max_depth) && !dist.contains_key(&e.group_id));
    (dist, bound_hit)
}

fn role<'a>(t: &'a TenantDump, catalog: &'a Catalog, id: Uuid) -> Option<&'a RoleDefinition> {
    catalog
        .get(id)
        .or_else(|| t.role_definitions.iter().find(|r| r.id == id))
}

/// Does the role allow the action? Some entry must match it, exclude nothing of it within
/// the same entry, and carry no condition or one that `holds`.
pub fn role_allows(role: &RoleDefinition, action: &str, holds: &dyn Fn(&str) -> bool) -> bool {
    role.role_permissions.iter().any(|e| {
        e.allowed_resource_actions
            .iter()
            .any(|p| pattern_matches(p.as_str(), action))
            && !e
                .excluded_resource_actions
                .iter()
                .any(|p| pattern_matches(p.as_str(), action))
            && e.condition.as_deref().is_none_or(holds)
    })
}

/// How the reference treats conditions.
#[derive(Debug, Clone, Copy)]
pub enum Conditions<'a> {
    /// Evaluates each one for a request carrying these facts.
    Evaluate(&'a Facts),
    /// Counts each one (even one that does not parse) as this answer: `true` is who-can's
    /// view (a conditional grant may allow), `false` the escalation rule's (it is not held).
    Assume(bool),
}

/// Does the condition `text` hold for `subject` doing `action` on `resource`? Built from
/// scratch on every call: the subject's stored record is found by scanning the tenant's
/// principals, the resource's id and type are the last two segments of its canonical path
/// unless the facts name them. A text that does not parse never holds.
pub fn condition_holds(
    t: &TenantDump,
    subject: &Subject,
    action: &str,
    resource: &str,
    facts: &Facts,
    now: Timestamp,
    text: &str,
) -> bool {
    let Ok(condition) = Condition::parse(text) else {
        return false;
    };
    let stored = t.principals.iter().find(|p| p.id == subject.id);
    // A resource named by type and id has its stored attributes as defaults.
    let stored_resource = t.resources.iter().find(|r| {
        Some(r.resource_type.as_str()) == facts.resource_type.as_deref()
            && Some(r.id.as_str()) == facts.resource_id.as_deref()
    });
    let subject_id = subject.id.hyphenated().to_string();
    let path = canon(resource);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.last().copied();
    let second = segments.len().checked_sub(2).map(|i| segments[i]);
    let action_text = action.to_lowercase();
    let no_aliases: Vec<String> = Vec::new();
    let env = Env {
        subject_id: &subject_id,
        subject_aliases: stored.map_or(&no_aliases, |p| &p.aliases),
        subject: Attrs::two(&facts.subject, stored.map(|p| &p.attributes)),
        resource_id: facts.resource_id.as_deref().or(last),
        resource_type: facts.resource_type.as_deref().or(second),
        resource: Attrs::two(&facts.resource, stored_resource.map(|r| &r.attributes)),
        action_name: facts.action_name.as_deref().unwrap_or(action),
        action_text: &action_text,
        action: Attrs::one(&facts.action),
        environment: Attrs::one(&facts.context),
        now,
    };
    condition.evaluate(&env)
}

fn empty(tenant: TenantId) -> TenantDump {
    TenantDump {
        tenant,
        role_definitions: vec![],
        role_assignments: vec![],
        deny_assignments: vec![],
        groups: vec![],
        group_members: vec![],
        administrative_units: vec![],
        administrative_unit_members: vec![],
        principals: vec![],
        resources: vec![],
    }
}

/// The reference decision for a request carrying `facts`.
#[allow(clippy::too_many_arguments)]
pub fn check(
    dump: &Dump,
    catalog: &Catalog,
    tenant: TenantId,
    subject: &Subject,
    action: &str,
    resource: &str,
    facts: &Facts,
    now: Timestamp,
    max_depth: usize,
) -> RefDecision {
    decide(
        dump,
        catalog,
        tenant,
        subject,
        action,
        resource,
        Conditions::Evaluate(facts),
        now,
        max_depth,
    )
}

/// The reference decision with conditions evaluated or assumed.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    dump: &Dump,
    catalog: &Catalog,
    tenant: TenantId,
    subject: &Subject,
    action: &str,
    resource: &str,
    conditions: Conditions<'_>,
    now: Timestamp,
    max_depth: usize,
) -> RefDecision {
    let fallback = empty(tenant);
    let t = dump
        .tenants
        .iter()
        .find(|t| t.tenant == tenant)
        .unwrap_or(&fallback);
    let holds = |text: &str| match conditions {
        Conditions::Evaluate(facts) => {
            condition_holds(t, subject, action, resource, facts, now, text)
        }
        Conditions::Assume(answer) => answer,
    };
    let (ps, bound_hit) = principals(t, subject, max_depth);
    // Deny assignments carry no conditions.
    let denies: BTreeSet<Uuid> = t
        .deny_assignments
        .iter()
        .filter(|d| {
            ps.contains_key(&d.principal_id)
                && covers(t, d.directory_scope_id.as_str(), resource)
                && d.actions
                    .iter()
                    .any(|p| pattern_matches(p.as_str(), action))
                && !d
                    .excluded_actions
                    .iter()
                    .any(|p| pattern_matches(p.as_str(), action))
        })
        .map(|d| d.id)
        .collect();
    let mut grants: BTreeSet<(Option<Uuid>, Uuid)> = t
        .role_assignments
        .iter()
        .filter(|a| {
            ps.contains_key(&a.principal_id)
                // An activation (PIM) is a time-bound assignment like any other.
                && a.active_at(now)
                && covers(t, a.directory_scope_id.as_str(), resource)
                && role(t, catalog, a.role_definition_id)
                    .is_some_and(|r| r.is_enabled && role_allows(r, action, &holds))
                && a.condition.as_deref().is_none_or(holds)
        })
        .map(|a| (Some(a.id), a.role_definition_id))
        .collect();
    for wid in &subject.wids {
        for r in catalog.roles().iter().filter(|r| r.template_id == *wid) {
            if role_allows(r, action, &holds) {
                grants.insert((None, r.id));
            }
        }
    }
    RefDecision {
        allowed: denies.is_empty() && !grants.is_empty(),
        grants,
        denies,
        bound_hit,
    }
}

/// Every principal id the tenant mentions (assignees, members, groups).
pub fn known_principals(t: &TenantDump) -> BTreeSet<Uuid> {
    let mut out = BTreeSet::new();
    out.extend(t.role_assignments.iter().map(|a| a.principal_id));
    out.extend(t.deny_assignments.iter().map(|a| a.principal_id));
    out.extend(t.group_members.iter().flat_map(|m| [m.id, m.group_id]));
    out.extend(t.groups.iter().map(|g| g.id));
    out
}
