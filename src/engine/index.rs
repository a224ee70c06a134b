//! The snapshot's indexes, how a [`Dump`] builds them and how [`Change`]s update them.
//!
//! Per tenant (every map a [`CowMap`], so a change copies only what it touches):
//! - `nodes`: principal → its direct parent groups, its role assignments grouped by scope
//!   and its deny assignments. One lookup per principal serves both group expansion and
//!   grant collection.
//! - `members`: group → direct members (for who-can and group deletion).
//! - `groups`: every group that exists, members or not (so a group id is never taken for a
//!   user or service principal).
//! - `units_of`: member resource → the administrative units holding it (and their scope
//!   keys), `unit_members`: unit → member resources.
//! - `by_scope`: scope → assignment id → principal (for who-can); its keys also intern the
//!   scope strings every other index shares.
//! - `roles`: custom roles, compiled. Built-ins are compiled once per snapshot lineage and
//!   shared by every tenant.

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use smallvec::SmallVec;
use uuid::Uuid;

use super::cow::{hash_str, CowMap, Key};
use super::role::{CompiledRole, DenyPatterns};
use super::{ApplyError, MAX_GROUP_DEPTH};
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, Catalog, Change, ChangeOp, DenyAssignment, Dump,
    EntityType, Group, GroupMember, PrincipalType, Revision, RoleAssignment, RoleDefinition, Scope,
    TenantId, Timestamp,
};

/// Grants of one principal are kept in a plain array up to this many, then by scope.
const FEW_MAX: usize = 16;

/// Rewrites `/administrativeUnits/{id}...` to the lowercase hyphenated uuid, so unit ids
/// compare as uuids. Every other path is returned as is.
pub(crate) fn canonical(scope: &str) -> Cow<'_, str> {
    const PREFIX: &str = "/administrativeUnits/";
    if let Some(rest) = scope.strip_prefix(PREFIX) {
        let end = rest.find('/').unwrap_or(rest.len());
        let (id, tail) = rest.split_at(end);
        if let Ok(uuid) = Uuid::parse_str(id) {
            let mut buf = Uuid::encode_buffer();
            let canon = uuid.hyphenated().encode_lower(&mut buf);
            if canon != id {
                return Cow::Owned(format!("{PREFIX}{canon}{tail}"));
            }
        }
    }
    Cow::Borrowed(scope)
}

/// The scope naming administrative unit `unit`.
fn unit_scope(unit: Uuid) -> String {
    format!("/administrativeUnits/{}", unit.hyphenated())
}

/// One role assignment, as the index keeps it (72 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub id: Uuid,
    pub principal_type: PrincipalType,
    pub role: Uuid,
    /// Canonical scope, interned.
    pub scope: Key,
    /// `(start, end)`, boxed because few assignments have one.
    pub window: Option<Box<(Option<Timestamp>, Option<Timestamp>)>>,
}

impl Grant {
    /// True when `now` lies in `[start, end)`.
    #[inline]
    pub fn active_at(&self, now: Timestamp) -> bool {
        match &self.window {
            None => true,
            Some(w) => w.0.is_none_or(|s| s <= now) && w.1.is_none_or(|e| now < e),
        }
    }

    /// Grants nothing before this instant.
    pub fn start(&self) -> Option<Timestamp> {
        self.window.as_ref().and_then(|w| w.0)
    }

    /// Grants nothing from this instant on.
    pub fn end(&self) -> Option<Timestamp> {
        self.window.as_ref().and_then(|w| w.1)
    }
}

/// Two bits of a scope hash, for [`Node::scope_bloom`].
#[inline]
pub(crate) fn bloom_bits(hash: u64) -> u64 {
    (1u64 << (hash >> 58)) | (1u64 << ((hash >> 52) & 63))
}

/// One deny assignment, compiled.
pub(crate) struct DenyRec {
    pub def: DenyAssignment,
    /// Canonical scope, interned.
    pub scope: Key,
    pub patterns: DenyPatterns,
}

/// A principal's grants: a short array scanned whole, or arrays keyed by scope.
#[derive(Clone)]
pub(crate) enum Grants {
    Few(Arc<[Grant]>),
    Many(Box<ManyGrants>),
}

/// More than [`FEW_MAX`] grants, keyed by scope.
#[derive(Clone)]
pub(crate) struct ManyGrants {
    by_scope: CowMap<Key, Arc<[Grant]>>,
    len: usize,
}

impl Grants {
    fn len(&self) -> usize {
        match self {
            Grants::Few(list) => list.len(),
            Grants::Many(many) => many.len,
        }
    }

    /// Every grant.
    pub fn for_each(&self, mut f: impl FnMut(&Grant)) {
        match self {
            Grants::Few(list) => list.iter().for_each(f),
            Grants::Many(many) => many
                .by_scope
                .values()
                .flat_map(|l| l.iter())
                .for_each(&mut f),
        }
    }

    /// Two bits per grant scope (all bits when keyed by scope).
    fn bloom(&self) -> u64 {
        match self {
            Grants::Few(list) => list.iter().fold(0, |acc, g| acc | bloom_bits(g.scope.hash)),
            Grants::Many(_) => u64::MAX,
        }
    }

    /// Grants at one of `cover`'s scopes; stops when `f` returns true, and says so.
    #[inline]
    pub fn any_covering(&self, cover: &[Cover<'_>], mut f: impl FnMut(&Grant) -> bool) -> bool {
        match self {
            Grants::Few(list) => list
                .iter()
                .filter(|g| {
                    cover
                        .iter()
                        .any(|c| c.hash == g.scope.hash && c.text == &*g.scope.text)
                })
                .any(f),
            Grants::Many(many) => cover.iter().any(|c| {
                many.by_scope
                    .find(c.hash, |k| &*k.text == c.text)
                    .is_some_and(|(_, list)| list.iter().any(&mut f))
            }),
        }
    }

    fn insert(this: &mut Option<Grants>, grant: Grant) {
        Grants::remove(this, &grant.scope, grant.id);
        match this {
            None => *this = Some(Grants::Few(Arc::from(vec![grant]))),
            Some(Grants::Few(list)) if list.len() < FEW_MAX => {
                let mut next = list.to_vec();
                next.push(grant);
                *list = next.into();
            }
            Some(Grants::Few(list)) => {
                let mut by_scope: CowMap<Key, Arc<[Grant]>> = CowMap::new();
                let len = list.len() + 1;
                for g in list.iter().cloned().chain(std::iter::once(grant)) {
                    let slot = by_scope.get_or_insert_with(&g.scope, || Arc::from(Vec::new()));
                    let mut next = slot.to_vec();
                    next.push(g);
                    *slot = next.into();
                }
                *this = Some(Grants::Many(Box::new(ManyGrants { by_scope, len })));
            }
            Some(Grants::Many(many)) => {
                let slot = many
                    .by_scope
                    .get_or_insert_with(&grant.scope.clone(), || Arc::from(Vec::new()));
                let mut next = slot.to_vec();
                next.push(grant);
                *slot = next.into();
                many.len += 1;
            }
        }
    }

    /// Removes the grant `id` at `scope`; true when it was there.
    fn remove(this: &mut Option<Grants>, scope: &Key, id: Uuid) -> bool {
        let removed = match this {
            None => false,
            Some(Grants::Few(list)) => {
                if !list.iter().any(|g| g.id == id && g.scope == *scope) {
                    return false;
                }
                let next: Vec<Grant> = list
                    .iter()
                    .filter(|g| !(g.id == id && g.scope == *scope))
                    .cloned()
                    .collect();
                *list = next.into();
                true
            }
            Some(Grants::Many(many)) => {
                let Some(slot) = many.by_scope.get_mut(scope) else {
                    return false;
                };
                if !slot.iter().any(|g| g.id == id) {
                    return false;
                }
                let next: Vec<Grant> = slot.iter().filter(|g| g.id != id).cloned().collect();
                if next.is_empty() {
                    many.by_scope.remove(scope);
                } else {
                    *slot = next.into();
                }
                many.len -= 1;
                if many.len <= FEW_MAX / 2 {
                    let mut all = Vec::with_capacity(many.len);
                    many.by_scope
                        .values()
                        .for_each(|l| all.extend(l.iter().cloned()));
                    *this = Some(Grants::Few(all.into()));
                }
                true
            }
        };
        if this.as_ref().is_some_and(|g| g.len() == 0) {
            *this = None;
        }
        removed
    }
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

/// Who holds assignments at one scope: (assignment, principal) pairs, in an array while
/// few, in a map past [`FEW_MAX`].
#[derive(Clone)]
pub(crate) enum Holders {
    Few(Arc<[(Uuid, Uuid)]>),
    Many(Box<CowMap<Uuid, Uuid>>),
}

impl Holders {
    fn insert(this: &mut Option<Holders>, assignment: Uuid, principal: Uuid) {
        match this {
            None => *this = Some(Holders::Few(Arc::from(vec![(assignment, principal)]))),
            Some(Holders::Few(list)) => {
                let mut next: Vec<(Uuid, Uuid)> = list
                    .iter()
                    .copied()
                    .filter(|(a, _)| *a != assignment)
                    .collect();
                next.push((assignment, principal));
                if next.len() > FEW_MAX {
                    let mut map = CowMap::new();
                    for (a, p) in next {
                        map.insert(a, p);
                    }
                    *this = Some(Holders::Many(Box::new(map)));
                } else {
                    *list = next.into();
                }
            }
            Some(Holders::Many(map)) => {
                map.insert(assignment, principal);
            }
        }
    }

    fn remove(this: &mut Option<Holders>, assignment: Uuid) {
        match this {
            None => {}
            Some(Holders::Few(list)) => {
                let next: Vec<(Uuid, Uuid)> = list
                    .iter()
                    .copied()
                    .filter(|(a, _)| *a != assignment)
                    .collect();
                *this = if next.is_empty() {
                    None
                } else {
                    Some(Holders::Few(next.into()))
                };
            }
            Some(Holders::Many(map)) => {
                map.remove(&assignment);
                if map.len() <= FEW_MAX / 2 {
                    let list: Vec<(Uuid, Uuid)> = map.iter().map(|(a, p)| (*a, *p)).collect();
                    *this = if list.is_empty() {
                        None
                    } else {
                        Some(Holders::Few(list.into()))
                    };
                }
            }
        }
    }

    /// Every (assignment, principal) pair.
    pub fn for_each(&self, mut f: impl FnMut(Uuid, Uuid)) {
        match self {
            Holders::Few(list) => list.iter().for_each(|(a, p)| f(*a, *p)),
            Holders::Many(map) => map.iter().for_each(|(a, p)| f(*a, *p)),
        }
    }
}

/// A scope a resource is covered by: an ancestor path, or a unit holding an ancestor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cover<'a> {
    pub hash: u64,
    /// `bloom_bits(hash)`.
    pub bloom: u64,
    pub text: &'a str,
}

/// A unit holding a resource, with the unit's scope key.
#[derive(Clone)]
pub(crate) struct UnitRef {
    pub unit: Uuid,
    pub scope: Key,
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
}

/// One bit per member resource hash (16 to 32 bits per member, so about 5% false
/// positives): a clear bit means "in no unit". Bits are never cleared, as a stale bit
/// only costs a probe; the filter is rebuilt when it has grown too full.
#[derive(Clone)]
pub(crate) struct UnitFilter {
    mask: u64,
    words: Vec<u64>,
}

impl UnitFilter {
    /// Sized for `members` resources, holding each of `hashes`.
    fn sized(members: usize, hashes: impl Iterator<Item = u64>) -> UnitFilter {
        let bits = (members * 32).next_power_of_two().clamp(1 << 12, 1 << 24);
        let mut filter = UnitFilter {
            mask: bits as u64 - 1,
            words: vec![0; bits / 64],
        };
        hashes.for_each(|h| filter.set(h));
        filter
    }

    fn bits(&self) -> usize {
        self.words.len() * 64
    }

    fn set(&mut self, hash: u64) {
        let bit = hash & self.mask;
        self.words[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    #[inline]
    fn may_hold(&self, hash: u64) -> bool {
        let bit = hash & self.mask;
        self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

impl TenantIndex {
    /// An empty tenant with directories sized for `dump`'s object counts.
    fn sized_for(assignments: usize, principals: usize) -> TenantIndex {
        TenantIndex {
            nodes: CowMap::with_capacity(principals),
            by_scope: CowMap::with_capacity(assignments / 4),
            ..TenantIndex::default()
        }
    }

    /// The interned key for `text` (already canonical), sharing an existing copy.
    fn intern(&self, text: &str) -> Key {
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

    /// Every scope covering `resource` (canonical): its ancestors, and the scope of every
    /// unit holding one of them. No duplicates.
    pub fn cover<'a>(&'a self, resource: &'a str, out: &mut smallvec::SmallVec<[Cover<'a>; 12]>) {
        let scope_ancestors = ancestors(resource);
        for text in scope_ancestors {
            let hash = hash_str(text);
            out.push(Cover {
                hash,
                bloom: bloom_bits(hash),
                text,
            });
        }
        let Some(filter) = &self.unit_filter else {
            return;
        };
        let paths = out.len();
        for i in 0..paths {
            let c = out[i];
            if c.text == "/" || !filter.may_hold(c.hash) {
                continue;
            }
            if let Some((_, units)) = self.units_of.find(c.hash, |k| &*k.text == c.text) {
                for u in units.iter() {
                    if !out
                        .iter()
                        .any(|o| o.hash == u.scope.hash && o.text == &*u.scope.text)
                    {
                        out.push(Cover {
                            hash: u.scope.hash,
                            bloom: bloom_bits(u.scope.hash),
                            text: &u.scope.text,
                        });
                    }
                }
            }
        }
    }

    /// The role with this id: a custom role of this tenant (built-ins are looked up first
    /// by the caller).
    pub fn role(&self, id: &Uuid) -> Option<&CompiledRole> {
        self.roles.get(id).map(|r| &**r)
    }

    fn add_grant(&mut self, a: &RoleAssignment) {
        let scope = self.intern(&canonical(a.directory_scope_id.as_str()));
        let window = match (a.start_date_time, a.end_date_time) {
            (None, None) => None,
            (start, end) => Some(Box::new((start, end))),
        };
        let grant = Grant {
            id: a.id,
            principal_type: a.principal_type,
            role: a.role_definition_id,
            scope: scope.clone(),
            window,
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
        let scope = Key::new(&canonical(a.directory_scope_id.as_str()));
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

    fn add_deny(&mut self, d: &DenyAssignment) {
        self.remove_deny(d.id);
        let scope = self.intern(&canonical(d.directory_scope_id.as_str()));
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

    fn add_member(&mut self, group: Uuid, member: Uuid, kind: PrincipalType) {
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

    fn add_unit_member(&mut self, unit: Uuid, resource: &Scope) {
        let key = self.intern(&canonical(resource.as_str()));
        let scope = self.intern(&unit_scope(unit));
        let units = self
            .units_of
            .get_or_insert_with(&key, || Arc::from(Vec::new()));
        if !units.iter().any(|u| u.unit == unit) {
            let mut list = units.to_vec();
            list.push(UnitRef { unit, scope });
            *units = list.into();
        }
        let members = self.units_of.len();
        match &mut self.unit_filter {
            Some(filter) if members * 16 <= filter.bits() || filter.bits() >= 1 << 24 => {
                if !filter.may_hold(key.hash) {
                    Arc::make_mut(filter).set(key.hash);
                }
            }
            _ => {
                // Grown too full (or first member): rebuild from every member, amortized
                // over the doubling.
                let hashes = self.units_of.iter().map(|(k, _)| k.hash);
                self.unit_filter = Some(Arc::new(UnitFilter::sized(members, hashes)));
            }
        }
        self.unit_members
            .get_or_insert_with(&unit, CowMap::new)
            .insert(key, ());
    }

    fn remove_unit_member(&mut self, unit: Uuid, resource: &str) {
        let key = Key::new(resource);
        if let Some(units) = self.units_of.get_mut(&key) {
            let list: Vec<UnitRef> = units.iter().filter(|u| u.unit != unit).cloned().collect();
            if list.is_empty() {
                self.units_of.remove(&key);
            } else {
                *units = list.into();
            }
        }
        if let Some(members) = self.unit_members.get_mut(&unit) {
            members.remove(&key);
            if members.is_empty() {
                self.unit_members.remove(&unit);
            }
        }
    }

    /// Removes a unit's member rows (assignments at its scope stay and then cover nothing).
    fn remove_unit(&mut self, unit: Uuid) {
        let resources: Vec<Arc<str>> = self.unit_members.get(&unit).map_or(Vec::new(), |m| {
            m.iter().map(|(k, _)| Arc::clone(&k.text)).collect()
        });
        for r in resources {
            self.remove_unit_member(unit, &r);
        }
    }
}

/// `scope` and every ancestor up to `/`, most specific first (`scope` is a valid path).
fn ancestors(scope: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(scope);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&current[..i]),
            None => None,
        };
        Some(current)
    })
}

/// The catalog, compiled once and shared by every tenant and every later snapshot.
pub(crate) struct Builtins {
    pub by_id: CowMap<Uuid, Arc<CompiledRole>>,
    pub by_template: CowMap<Uuid, Arc<CompiledRole>>,
}

impl Builtins {
    fn compile(catalog: &Catalog) -> Builtins {
        let mut by_id = CowMap::new();
        let mut by_template = CowMap::new();
        for def in catalog.roles() {
            let role = Arc::new(CompiledRole::compile(def.clone()));
            by_id.insert(def.id, Arc::clone(&role));
            by_template.insert(def.template_id, role);
        }
        Builtins { by_id, by_template }
    }
}

/// Every tenant's directory at one revision, indexed for checks.
///
/// Immutable: sync builds the next one with [`Snapshot::apply`] and swaps it in whole, so a
/// check never waits. Cloning is cheap (reference counts), and two snapshots of one lineage
/// share every part that did not change between them.
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) revision: Revision,
    pub(crate) builtins: Arc<Builtins>,
    pub(crate) tenants: CowMap<Uuid, TenantIndex>,
    pub(crate) empty: TenantIndex,
    pub(crate) max_group_depth: usize,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.revision)
            .field("tenants", &self.tenants.len())
            .field("builtin_roles", &self.builtins.by_id.len())
            .finish()
    }
}

impl Snapshot {
    /// No tenants at revision 0: only built-in roles (usable through `wids` claims).
    pub fn empty(catalog: &Catalog) -> Snapshot {
        Snapshot {
            revision: Revision::default(),
            builtins: Arc::new(Builtins::compile(catalog)),
            tenants: CowMap::new(),
            empty: TenantIndex::default(),
            max_group_depth: MAX_GROUP_DEPTH,
        }
    }

    /// Indexes every tenant of `dump`. Cost: linear in the dump (3 to 4 seconds per million
    /// assignments in release builds).
    pub fn build(dump: &Dump, catalog: &Catalog) -> Snapshot {
        let mut snapshot = Snapshot::empty(catalog);
        snapshot.revision = dump.revision;
        snapshot.tenants = CowMap::with_capacity(dump.tenants.len());
        for t in &dump.tenants {
            let principals = t.role_assignments.len() / 2 + t.group_members.len() / 2;
            let mut index = TenantIndex::sized_for(t.role_assignments.len(), principals);
            for role in &t.role_definitions {
                index
                    .roles
                    .insert(role.id, Arc::new(CompiledRole::compile(role.clone())));
            }
            for g in &t.groups {
                index.groups.insert(g.id, ());
            }
            for m in &t.group_members {
                index.add_member(m.group_id, m.id, m.member_type);
            }
            for a in &t.role_assignments {
                index.add_grant(a);
            }
            for d in &t.deny_assignments {
                index.add_deny(d);
            }
            for m in &t.administrative_unit_members {
                index.add_unit_member(m.administrative_unit_id, &m.resource);
            }
            snapshot.tenants.insert(t.tenant.0, index);
        }
        snapshot
    }

    /// The same snapshot with group expansion bounded at `depth` memberships (at least 1)
    /// instead of [`MAX_GROUP_DEPTH`].
    pub fn with_max_group_depth(mut self, depth: usize) -> Snapshot {
        self.max_group_depth = depth.max(1);
        self
    }

    /// The revision this snapshot reflects: every write up to it, none after.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The tenants holding any object.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants.iter().map(|(id, _)| TenantId(*id)).collect()
    }

    pub(crate) fn tenant(&self, tenant: TenantId) -> &TenantIndex {
        self.tenants.get(&tenant.0).unwrap_or(&self.empty)
    }

    /// The next snapshot: this one with `changes` applied, in order. Changes at or below
    /// this snapshot's revision are skipped (already reflected), so replaying a feed is
    /// harmless. Only the touched parts of the touched tenants are copied: applying one
    /// change costs microseconds whatever the tenant's size. Creates replace an object with
    /// the same id; removals of absent objects do nothing (the store logs cascades as their
    /// own changes, and those may arrive after the cascade was applied here).
    ///
    /// INVARIANT: a revision's changes come in one call (as `Store::changes_after` returns
    /// them); a revision already reached is skipped whole.
    ///
    /// On error nothing is returned; the caller should reload from a fresh dump.
    pub fn apply(&self, changes: &[Change]) -> Result<Snapshot, ApplyError> {
        let mut next = self.clone();
        for change in changes {
            if change.revision <= self.revision {
                continue;
            }
            if change.revision < next.revision {
                return Err(ApplyError::OutOfOrder {
                    revision: change.revision,
                    sequence: change.sequence,
                    after: next.revision,
                });
            }
            // INVARIANT: mutate the tenant in place: after the first change of a batch its
            // maps are unique to `next`, so later changes copy nothing more.
            let tenant = next
                .tenants
                .get_or_insert_with(&change.tenant_id.0, TenantIndex::default);
            apply_one(tenant, change)?;
            next.revision = change.revision;
        }
        Ok(next)
    }
}

fn decode<T: DeserializeOwned>(change: &Change, before: bool) -> Result<T, ApplyError> {
    let (value, field) = if before {
        (&change.before, "before")
    } else {
        (&change.after, "after")
    };
    let value = value.as_ref().ok_or(ApplyError::MissingObject {
        revision: change.revision,
        sequence: change.sequence,
        entity: change.entity_type.as_str(),
        op: change.op.as_str(),
        field,
    })?;
    T::deserialize(value).map_err(|e| ApplyError::Undecodable {
        revision: change.revision,
        sequence: change.sequence,
        entity: change.entity_type.as_str(),
        message: e.to_string(),
    })
}

/// Decodes the objects an operation needs: `before` for update and delete, `after` for
/// create and update.
fn objects<T: DeserializeOwned>(change: &Change) -> Result<(Option<T>, Option<T>), ApplyError> {
    let before = match change.op {
        ChangeOp::Create => None,
        ChangeOp::Update | ChangeOp::Delete => Some(decode(change, true)?),
    };
    let after = match change.op {
        ChangeOp::Delete => None,
        ChangeOp::Create | ChangeOp::Update => Some(decode(change, false)?),
    };
    Ok((before, after))
}

fn apply_one(t: &mut TenantIndex, change: &Change) -> Result<(), ApplyError> {
    match change.entity_type {
        EntityType::RoleDefinition => {
            let (before, after) = objects::<RoleDefinition>(change)?;
            if let Some(b) = before {
                t.roles.remove(&b.id);
            }
            if let Some(a) = after {
                t.roles.insert(a.id, Arc::new(CompiledRole::compile(a)));
            }
        }
        EntityType::RoleAssignment => {
            let (before, after) = objects::<RoleAssignment>(change)?;
            if let Some(b) = before {
                t.remove_grant(&b);
            }
            if let Some(a) = after {
                t.add_grant(&a);
            }
        }
        EntityType::DenyAssignment => {
            let (before, after) = objects::<DenyAssignment>(change)?;
            if let Some(b) = before {
                t.remove_deny(b.id);
            }
            if let Some(a) = after {
                t.add_deny(&a);
            }
        }
        EntityType::Group => {
            let (before, after) = objects::<Group>(change)?;
            if let (ChangeOp::Delete, Some(b)) = (change.op, before) {
                t.remove_group(b.id);
            }
            if let Some(a) = after {
                t.groups.insert(a.id, ());
            }
        }
        EntityType::GroupMember => {
            let (before, after) = objects::<GroupMember>(change)?;
            if let Some(b) = before {
                t.remove_member(b.group_id, b.id);
            }
            if let Some(a) = after {
                t.add_member(a.group_id, a.id, a.member_type);
            }
        }
        EntityType::AdministrativeUnit => {
            let (before, _after) = objects::<AdministrativeUnit>(change)?;
            if let (ChangeOp::Delete, Some(b)) = (change.op, before) {
                t.remove_unit(b.id);
            }
        }
        EntityType::AdministrativeUnitMember => {
            let (before, after) = objects::<AdministrativeUnitMember>(change)?;
            if let Some(b) = before {
                t.remove_unit_member(b.administrative_unit_id, &canonical(b.resource.as_str()));
            }
            if let Some(a) = after {
                t.add_unit_member(a.administrative_unit_id, &a.resource);
            }
        }
    }
    Ok(())
}
