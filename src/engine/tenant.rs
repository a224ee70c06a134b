//! One tenant's directory, indexed, and how each edit changes it.
//!
//! Per tenant (every map a [`CowMap`], so an edit copies only what it touches):
//! - `nodes`: principal → its direct parent groups, its role assignments grouped by scope
//!   and its deny assignments. One lookup per principal serves both group expansion and
//!   grant collection.
//! - `members`: group → direct members (for who-can and group deletion).
//! - `groups`: every group that exists, members or not (so a group id is never taken for a
//!   user or service principal).
//! - `units_of`, `unit_members`, `unit_filter`: administrative units (see `units.rs`).
//! - `by_scope`: scope → assignment id → principal (for who-can); its keys also intern the
//!   scope strings every other index shares.
//! - `roles`: custom roles, compiled. Built-ins are compiled once per snapshot lineage and
//!   shared by every tenant (see `snapshot.rs`).
//! - `principals`, `aliases`: the principal directory (see `directory.rs`).
//! - `resources`, `resources_under`: the resource directory (see `resources.rs`).

use std::sync::Arc;

use smallvec::SmallVec;
use uuid::Uuid;

use super::cow::{hash_str, CowMap, Key};
use super::delta::{Edit, Versions};
use super::directory::PrincipalInfo;
use super::grants::{Grant, GrantExtra, Grants, Holders};
use super::resources::{ResourceInfo, Under};
use super::role::{compile_condition, CompiledRole, DenyPatterns};
use super::units::{Cover, UnitFilter, UnitRef};
use crate::model::{DenyAssignment, PrincipalType, RoleAssignment};

/// One deny assignment, compiled.
pub(crate) struct DenyRec {
    pub def: DenyAssignment,
    /// Canonical scope, interned.
    pub scope: Key,
    pub patterns: DenyPatterns,
}

/// A principal in the index: user, service principal or group.
#[derive(Clone, Default)]
pub(crate) struct Node {
    /// Groups it is a direct member of (inline: most principals are in a few groups).
    pub parents: SmallVec<[Uuid; 2]>,
    /// `bloom_bits` of every grant scope: a check skips `grants` (one cache miss) unless
    /// some covering scope has both its bits here.
    pub scope_bloom: u64,
    /// Its role assignments.
    pub grants: Option<Grants>,
    /// Deny assignments naming it.
    pub denies: Option<Arc<[Arc<DenyRec>]>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.parents.is_empty() && self.grants.is_none() && self.denies.is_none()
    }

    /// Direct parent groups.
    pub fn parents(&self) -> &[Uuid] {
        &self.parents
    }

    /// Deny assignments naming it.
    pub fn denies(&self) -> &[Arc<DenyRec>] {
        self.denies.as_deref().unwrap_or(&[])
    }

    /// Its grants, when one of them may sit at one of `cover`'s scopes.
    #[inline]
    pub fn grants_near(&self, cover: &[Cover<'_>]) -> Option<&Grants> {
        let grants = self.grants.as_ref()?;
        cover
            .iter()
            .any(|c| self.scope_bloom & c.bloom == c.bloom)
            .then_some(grants)
    }

    fn refresh_bloom(&mut self) {
        self.scope_bloom = self.grants.as_ref().map_or(0, Grants::bloom);
    }
}

/// One tenant's directory, indexed. Cloning costs a handful of reference counts.
#[derive(Clone, Default)]
pub(crate) struct TenantIndex {
    pub nodes: CowMap<Uuid, Node>,
    pub members: CowMap<Uuid, CowMap<Uuid, PrincipalType>>,
    /// Every stored group, including those with no members and no assignments.
    pub groups: CowMap<Uuid, ()>,
    pub roles: CowMap<Uuid, Arc<CompiledRole>>,
    pub units_of: CowMap<Key, Arc<[UnitRef]>>,
    pub unit_members: CowMap<Uuid, CowMap<Key, ()>>,
    pub by_scope: CowMap<Key, Option<Holders>>,
    pub denies: CowMap<Uuid, Arc<DenyRec>>,
    /// Lets a check skip probing `units_of` for paths in no unit.
    pub unit_filter: Option<Arc<UnitFilter>>,
    /// The principal directory's records by object id (see `directory.rs`).
    pub principals: CowMap<Uuid, Arc<PrincipalInfo>>,
    /// Lowercased alias → the object id holding it.
    pub aliases: CowMap<Key, Uuid>,
    /// The resource directory by `type NUL id` (see `resources.rs`).
    pub resources: CowMap<Key, Arc<ResourceInfo>>,
    /// `type NUL scope` → the resources of that type at or below the scope.
    pub resources_under: CowMap<Key, Under>,
}

impl TenantIndex {
    /// An empty tenant with directories sized for `dump`'s object counts.
    pub(super) fn sized_for(assignments: usize, principals: usize) -> TenantIndex {
        TenantIndex {
            nodes: CowMap::with_capacity(principals),
            by_scope: CowMap::with_capacity(assignments / 4),
            ..TenantIndex::default()
        }
    }

    /// The interned key for `text` (already canonical), sharing an existing copy.
    pub(super) fn intern(&self, text: &str) -> Key {
        let hash = hash_str(text);
        match self.by_scope.find(hash, |k| &*k.text == text) {
            Some((key, _)) => key.clone(),
            None => match self.units_of.find(hash, |k| &*k.text == text) {
                Some((key, _)) => key.clone(),
                None => Key {
                    hash,
                    text: Arc::from(text),
                },
            },
        }
    }

    /// The role with this id: a custom role of this tenant (built-ins are looked up first
    /// by the caller).
    pub fn role(&self, id: &Uuid) -> Option<&CompiledRole> {
        self.roles.get(id).map(|r| &**r)
    }

    pub(super) fn add_grant(&mut self, a: &RoleAssignment) {
        let scope = self.intern(a.directory_scope_id.as_str());
        let extra = match (
            a.start_date_time,
            a.end_date_time,
            a.condition.as_deref(),
            a.activation_request_id,
        ) {
            (None, None, None, None) => None,
            (start, end, condition, activation) => Some(Box::new(GrantExtra {
                start,
                end,
                condition: condition.map(compile_condition),
                activation,
            })),
        };
        let grant = Grant {
            id: a.id,
            principal_type: a.principal_type,
            role: a.role_definition_id,
            scope: scope.clone(),
            extra,
        };
        let node = self
            .nodes
            .get_or_insert_with(&a.principal_id, Node::default);
        Grants::insert(&mut node.grants, grant);
        node.refresh_bloom();
        Holders::insert(
            self.by_scope.get_or_insert_with(&scope, || None),
            a.id,
            a.principal_id,
        );
    }

    fn remove_grant(&mut self, a: &RoleAssignment) {
        let scope = Key::new(a.directory_scope_id.as_str());
        if let Some(node) = self.nodes.get_mut(&a.principal_id) {
            Grants::remove(&mut node.grants, &scope, a.id);
            node.refresh_bloom();
            if node.is_empty() {
                self.nodes.remove(&a.principal_id);
            }
        }
        self.unhold(&scope, a.id);
    }

    fn unhold(&mut self, scope: &Key, assignment: Uuid) {
        if let Some(holders) = self.by_scope.get_mut(scope) {
            Holders::remove(holders, assignment);
            if holders.is_none() {
                self.by_scope.remove(scope);
            }
        }
    }

    pub(super) fn add_deny(&mut self, d: &DenyAssignment) {
        self.remove_deny(d.id);
        let scope = self.intern(d.directory_scope_id.as_str());
        let rec = Arc::new(DenyRec {
            patterns: DenyPatterns::compile(&d.actions, &d.excluded_actions),
            def: d.clone(),
            scope,
        });
        let node = self
            .nodes
            .get_or_insert_with(&d.principal_id, Node::default);
        let mut list = node.denies().to_vec();
        list.push(Arc::clone(&rec));
        node.denies = Some(list.into());
        self.denies.insert(d.id, rec);
    }

    fn remove_deny(&mut self, id: Uuid) {
        let Some(rec) = self.denies.remove(&id) else {
            return;
        };
        let principal = rec.def.principal_id;
        if let Some(node) = self.nodes.get_mut(&principal) {
            let list: Vec<_> = node
                .denies()
                .iter()
                .filter(|d| d.def.id != id)
                .cloned()
                .collect();
            node.denies = if list.is_empty() {
                None
            } else {
                Some(list.into())
            };
            if node.is_empty() {
                self.nodes.remove(&principal);
            }
        }
    }

    pub(super) fn add_member(&mut self, group: Uuid, member: Uuid, kind: PrincipalType) {
        let node = self.nodes.get_or_insert_with(&member, Node::default);
        if !node.parents.contains(&group) {
            node.parents.push(group);
        }
        self.members
            .get_or_insert_with(&group, CowMap::new)
            .insert(member, kind);
    }

    fn remove_member(&mut self, group: Uuid, member: Uuid) {
        if let Some(node) = self.nodes.get_mut(&member) {
            if node.parents.contains(&group) {
                node.parents.retain(|g| *g != group);
                if node.is_empty() {
                    self.nodes.remove(&member);
                }
            }
        }
        if let Some(members) = self.members.get_mut(&group) {
            members.remove(&member);
            if members.is_empty() {
                self.members.remove(&group);
            }
        }
    }

    /// Removes a group with every edge touching it and every assignment made to it, as the
    /// store does, so a later logged removal of any of those finds nothing to do.
    fn remove_group(&mut self, group: Uuid) {
        self.groups.remove(&group);
        let members: Vec<Uuid> = self
            .members
            .get(&group)
            .map_or(Vec::new(), |m| m.iter().map(|(k, _)| *k).collect());
        for m in members {
            self.remove_member(group, m);
        }
        let Some(node) = self.nodes.get(&group).cloned() else {
            return;
        };
        for parent in &node.parents {
            self.remove_member(*parent, group);
        }
        for deny in node.denies() {
            self.remove_deny(deny.def.id);
        }
        if let Some(grants) = &node.grants {
            let mut ids = Vec::new();
            grants.for_each(|g| ids.push((g.id, g.scope.clone())));
            for (id, scope) in ids {
                self.unhold(&scope, id);
            }
        }
        self.nodes.remove(&group);
    }

    /// Applies one edit, as [`Snapshot::apply`](super::Snapshot::apply) describes.
    pub(super) fn apply(&mut self, edit: &Edit) {
        match edit {
            Edit::RoleDefinition(v) => {
                if let Some(b) = v.before() {
                    self.roles.remove(&b.id);
                }
                if let Some(a) = v.after() {
                    let role = CompiledRole::compile(a.clone());
                    self.roles.insert(a.id, Arc::new(role));
                }
            }
            Edit::RoleAssignment(v) => {
                if let Some(b) = v.before() {
                    self.remove_grant(b);
                }
                if let Some(a) = v.after() {
                    self.add_grant(a);
                }
            }
            Edit::DenyAssignment(v) => {
                if let Some(b) = v.before() {
                    self.remove_deny(b.id);
                }
                if let Some(a) = v.after() {
                    self.add_deny(a);
                }
            }
            Edit::Group(v) => {
                if let Versions::Deleted(b) = v {
                    self.remove_group(b.id);
                }
                if let Some(a) = v.after() {
                    self.groups.insert(a.id, ());
                }
            }
            Edit::GroupMember(v) => {
                if let Some(b) = v.before() {
                    self.remove_member(b.group_id, b.id);
                }
                if let Some(a) = v.after() {
                    self.add_member(a.group_id, a.id, a.member_type);
                }
            }
            Edit::AdministrativeUnit(v) => {
                if let Versions::Deleted(b) = v {
                    self.remove_unit(b.id);
                }
            }
            Edit::AdministrativeUnitMember(v) => {
                if let Some(b) = v.before() {
                    let resource = b.resource.as_str();
                    self.remove_unit_member(b.administrative_unit_id, resource);
                }
                if let Some(a) = v.after() {
                    self.add_unit_member(a.administrative_unit_id, &a.resource);
                }
            }
            Edit::Principal(v) => {
                if let Some(b) = v.before() {
                    self.remove_principal(b.id);
                }
                if let Some(a) = v.after() {
                    self.add_principal(a);
                }
            }
            Edit::Resource(v) => {
                if let Some(b) = v.before() {
                    self.remove_resource(&b.resource_type, &b.id);
                }
                if let Some(a) = v.after() {
                    self.add_resource(a);
                }
            }
        }
    }
}
