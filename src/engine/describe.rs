//! A snapshot's contents as plain text, so that two snapshots reached by different roads
//! (a build from a dump, or a build followed by applied changes) can be compared exactly.

use std::fmt::Write as _;

use uuid::Uuid;

use super::grants::bloom_bits;
use super::tenant::TenantIndex;
use super::Snapshot;

impl Snapshot {
    /// Everything this snapshot holds, one fact a line in a fixed order: per tenant its
    /// roles, groups, principals (parent groups, grants, deny assignments), group members,
    /// assignment holders by scope, unit members, and the principal directory (records and
    /// the alias index). Two snapshots that answer every
    /// question alike describe alike: the description leaves out how the index stores a
    /// fact (interning, array or map, the order of insertion) and tenants with nothing
    /// indexed, which answer as an unknown tenant does. The caches a check trusts (a
    /// principal's scope filter, a tenant's unit filter) are checked against the facts, and
    /// a stale one is described as such.
    ///
    /// For tests and debugging: costs time and memory linear in the snapshot.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "revision {}", self.revision);
        let _ = writeln!(out, "max group depth {}", self.max_group_depth);
        let mut tenants: Vec<(&Uuid, &TenantIndex)> = self.tenants.iter().collect();
        tenants.sort_by_key(|(id, _)| **id);
        for (id, t) in tenants {
            if !t.is_empty() {
                let _ = writeln!(out, "tenant {id}");
                describe_tenant(t, &mut out);
            }
        }
        out
    }
}

impl TenantIndex {
    /// True when nothing is indexed (a tenant whose every object was removed).
    fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.members.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.units_of.is_empty()
            && self.unit_members.is_empty()
            && self.by_scope.is_empty()
            && self.denies.is_empty()
            && self.principals.is_empty()
            && self.aliases.is_empty()
            && self.resources.is_empty()
            && self.resources_under.is_empty()
    }
}

/// Sorted lines, each prefixed by `indent`.
fn lines(out: &mut String, indent: &str, mut list: Vec<String>) {
    list.sort();
    for line in list {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn describe_tenant(t: &TenantIndex, out: &mut String) {
    let roles = t
        .roles
        .iter()
        .map(|(id, r)| format!("role {id} {:?}", r.def));
    lines(out, "  ", roles.collect());
    let groups = t.groups.iter().map(|(id, ())| format!("group {id}"));
    lines(out, "  ", groups.collect());

    let mut nodes: Vec<_> = t.nodes.iter().collect();
    nodes.sort_by_key(|(id, _)| **id);
    for (id, node) in nodes {
        let mut parents = node.parents().to_vec();
        parents.sort();
        let _ = writeln!(out, "  principal {id} in {parents:?}");
        let mut grants = Vec::new();
        if let Some(list) = &node.grants {
            list.for_each(|g| {
                grants.push(format!(
                    "grant {} {:?} role {} at {} from {:?} until {:?}",
                    g.id,
                    g.principal_type,
                    g.role,
                    g.scope.text,
                    g.start(),
                    g.end()
                ));
                let bits = bloom_bits(g.scope.hash);
                if node.scope_bloom & bits != bits {
                    grants.push(format!("stale scope filter for grant {}", g.id));
                }
            });
        }
        lines(out, "    ", grants);
        let denies = node
            .denies()
            .iter()
            .map(|d| format!("deny at {} {:?}", d.scope.text, d.def));
        lines(out, "    ", denies.collect());
    }
    let denies = t
        .denies
        .iter()
        .map(|(id, d)| format!("deny {id} of {}", d.def.principal_id));
    lines(out, "  ", denies.collect());

    let mut members = Vec::new();
    for (group, list) in t.members.iter() {
        let mut list: Vec<_> = list.iter().map(|(m, kind)| (*m, *kind)).collect();
        list.sort_by_key(|(m, _)| *m);
        members.push(format!("members of {group}: {list:?}"));
    }
    lines(out, "  ", members);

    let mut holders = Vec::new();
    for (scope, list) in t.by_scope.iter() {
        let mut pairs = Vec::new();
        if let Some(list) = list {
            list.for_each(|assignment, principal| pairs.push((assignment, principal)));
        }
        pairs.sort();
        holders.push(format!("held at {}: {pairs:?}", scope.text));
    }
    lines(out, "  ", holders);

    let mut units = Vec::new();
    for (unit, resources) in t.unit_members.iter() {
        let mut list: Vec<&str> = resources.iter().map(|(k, ())| &*k.text).collect();
        list.sort_unstable();
        units.push(format!("unit {unit}: {list:?}"));
    }
    for (resource, list) in t.units_of.iter() {
        let mut list: Vec<String> = list
            .iter()
            .map(|u| format!("{} at {}", u.unit, u.scope.text))
            .collect();
        list.sort();
        units.push(format!("resource {} in {list:?}", resource.text));
        if !t
            .unit_filter
            .as_ref()
            .is_some_and(|f| f.may_hold(resource.hash))
        {
            units.push(format!("stale unit filter for {}", resource.text));
        }
    }
    lines(out, "  ", units);

    let directory = t.principals.iter().map(|(id, p)| {
        format!(
            "directory principal {id} {:?} {:?} aliases {:?} attributes {}",
            p.principal_type,
            p.display_name,
            p.aliases,
            serde_json::Value::Object(p.attributes.clone())
        )
    });
    lines(out, "  ", directory.collect());
    let aliases = t
        .aliases
        .iter()
        .map(|(alias, id)| format!("alias {:?} of {id}", &*alias.text));
    lines(out, "  ", aliases.collect());
    let resources = t.resources.iter().map(|(key, r)| {
        format!(
            "resource {:?} at {} named {:?} attributes {}",
            &*key.text,
            r.path.as_str(),
            r.display_name,
            serde_json::Value::Object(r.attributes.clone())
        )
    });
    lines(out, "  ", resources.collect());
    let under = t.resources_under.iter().map(|(key, under)| {
        let mut ids: Vec<&str> = under.iter().map(|(id, _)| &*id.text).collect();
        ids.sort_unstable();
        format!("resources under {:?}: {ids:?}", &*key.text)
    });
    lines(out, "  ", under.collect());
}
