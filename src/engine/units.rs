//! Scopes and administrative units: which scopes cover a resource (its ancestors, and the
//! units holding one of them), and how a tenant's unit membership is indexed.
//!
//! Per tenant: `units_of` maps a member resource to the units holding it (with their scope
//! keys), `unit_members` a unit to its member resources, and `unit_filter` lets a check skip
//! probing `units_of` for paths in no unit.

use std::sync::Arc;

use smallvec::SmallVec;
use uuid::Uuid;

use super::cow::{hash_str, CowMap, Key};
use super::grants::bloom_bits;
use super::tenant::TenantIndex;
use crate::model::{ancestors, Scope};

/// The scope naming administrative unit `unit`.
fn unit_scope(unit: Uuid) -> String {
    format!("/administrativeUnits/{}", unit.hyphenated())
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

/// One bit per member resource hash (16 to 32 bits per member, so about 5% false
/// positives): a clear bit means "in no unit". Bits are never cleared, as a stale bit
/// only costs a probe; the filter is rebuilt when it has grown too full.
///
/// It also keeps which depths (segment counts) members have. Members are usually objects
/// at one depth (`/users/{id}`, `/applications/{id}`), so a check probes the filter for
/// those of a resource's ancestors only, not for each: at size L the filter spans 64 pages,
/// and each probe was one more random page and cache line per check (issue 16).
#[derive(Clone)]
pub(crate) struct UnitFilter {
    mask: u64,
    words: Vec<u64>,
    /// Bit `d` (at most 63) set when some member has `d` segments.
    depths: u64,
}

/// The segment count of a canonical scope path (`/` has none), capped at 63.
fn depth_of(path: &str) -> usize {
    if path == "/" {
        return 0;
    }
    path.bytes().filter(|&b| b == b'/').count().min(63)
}

impl UnitFilter {
    /// Sized for `members` resources, holding each of `members_at` (hash, depth).
    fn sized(members: usize, members_at: impl Iterator<Item = (u64, usize)>) -> UnitFilter {
        let bits = (members * 32).next_power_of_two().clamp(1 << 12, 1 << 24);
        let mut filter = UnitFilter {
            mask: bits as u64 - 1,
            words: vec![0; bits / 64],
            depths: 0,
        };
        members_at.for_each(|(hash, depth)| filter.set(hash, depth));
        filter
    }

    fn bits(&self) -> usize {
        self.words.len() * 64
    }

    fn set(&mut self, hash: u64, depth: usize) {
        let bit = hash & self.mask;
        self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        self.depths |= 1 << depth.min(63);
    }

    #[inline]
    pub(super) fn may_hold(&self, hash: u64) -> bool {
        let bit = hash & self.mask;
        self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    /// False when no member has `depth` segments.
    #[inline]
    fn may_hold_at(&self, depth: usize) -> bool {
        self.depths & (1 << depth.min(63)) != 0
    }
}

impl TenantIndex {
    /// Every scope covering `resource` (canonical): its ancestors, and the scope of every
    /// unit holding one of them. No duplicates.
    pub fn cover<'a>(&'a self, resource: &'a str, out: &mut SmallVec<[Cover<'a>; 12]>) {
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
            // `ancestors` yields the resource first and `/` last: `out[i]` has
            // `paths - 1 - i` segments.
            if c.text == "/" || !filter.may_hold_at(paths - 1 - i) || !filter.may_hold(c.hash) {
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
    pub(super) fn add_unit_member(&mut self, unit: Uuid, resource: &Scope) {
        let key = self.intern(resource.as_str());
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
                let depth = depth_of(&key.text);
                if !filter.may_hold(key.hash) || !filter.may_hold_at(depth) {
                    Arc::make_mut(filter).set(key.hash, depth);
                }
            }
            _ => {
                // Grown too full (or first member): rebuild from every member, amortized
                // over the doubling.
                let members_at = self
                    .units_of
                    .iter()
                    .map(|(k, _)| (k.hash, depth_of(&k.text)));
                self.unit_filter = Some(Arc::new(UnitFilter::sized(members, members_at)));
            }
        }
        self.unit_members
            .get_or_insert_with(&unit, CowMap::new)
            .insert(key, ());
    }

    pub(super) fn remove_unit_member(&mut self, unit: Uuid, resource: &str) {
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
    pub(super) fn remove_unit(&mut self, unit: Uuid) {
        let resources: Vec<Arc<str>> = self.unit_members.get(&unit).map_or(Vec::new(), |m| {
            m.iter().map(|(k, _)| Arc::clone(&k.text)).collect()
        });
        for r in resources {
            self.remove_unit_member(unit, &r);
        }
    }
}
