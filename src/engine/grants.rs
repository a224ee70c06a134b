//! Role assignments as the index keeps them: one principal's [`Grants`] (a short array, or
//! arrays keyed by scope past [`FEW_MAX`]), and the [`Holders`] of one scope (for who-can).

use std::sync::Arc;

use uuid::Uuid;

use super::cow::{CowMap, Key};
use super::units::Cover;
use crate::model::condition::Condition;
use crate::model::{PrincipalType, Timestamp};

/// Grants of one principal are kept in a plain array up to this many, then by scope.
const FEW_MAX: usize = 16;

/// One role assignment, as the index keeps it (72 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub id: Uuid,
    pub principal_type: PrincipalType,
    pub role: Uuid,
    /// Canonical scope, interned.
    pub scope: Key,
    /// Time window and condition, boxed because few assignments have either.
    pub extra: Option<Box<GrantExtra>>,
}

/// What only some assignments carry.
#[derive(Debug, Clone)]
pub(crate) struct GrantExtra {
    /// Grants nothing before this instant.
    pub start: Option<Timestamp>,
    /// Grants nothing from this instant on.
    pub end: Option<Timestamp>,
    /// Grants only when this holds for the check.
    pub condition: Option<Condition>,
    /// The PIM activation request the assignment came from.
    pub activation: Option<Uuid>,
}

impl Grant {
    /// True when `now` lies in `[start, end)`.
    #[inline]
    pub fn active_at(&self, now: Timestamp) -> bool {
        match &self.extra {
            None => true,
            Some(x) => x.start.is_none_or(|s| s <= now) && x.end.is_none_or(|e| now < e),
        }
    }

    /// Grants nothing before this instant.
    pub fn start(&self) -> Option<Timestamp> {
        self.extra.as_ref().and_then(|x| x.start)
    }

    /// Grants nothing from this instant on.
    pub fn end(&self) -> Option<Timestamp> {
        self.extra.as_ref().and_then(|x| x.end)
    }

    /// The PIM activation request the assignment came from, if any.
    pub fn activation(&self) -> Option<Uuid> {
        self.extra.as_ref().and_then(|x| x.activation)
    }

    /// The assignment's condition, if it has one.
    pub fn condition(&self) -> Option<&Condition> {
        self.extra.as_ref().and_then(|x| x.condition.as_ref())
    }
}

/// Two bits of a scope hash, for [`Node::scope_bloom`].
#[inline]
pub(crate) fn bloom_bits(hash: u64) -> u64 {
    (1u64 << (hash >> 58)) | (1u64 << ((hash >> 52) & 63))
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
    pub(super) fn bloom(&self) -> u64 {
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

    pub(super) fn insert(this: &mut Option<Grants>, grant: Grant) {
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
    pub(super) fn remove(this: &mut Option<Grants>, scope: &Key, id: Uuid) -> bool {
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

/// Who holds assignments at one scope: (assignment, principal) pairs. Most scopes have
/// one holder (an object-level assignment), kept inline: no allocation of its own, which at
/// a million such scopes is most of the who-can index (issue 16). A few more are kept in an
/// array, past [`FEW_MAX`] in a map.
#[derive(Clone)]
pub(crate) enum Holders {
    One(Uuid, Uuid),
    Few(Arc<[(Uuid, Uuid)]>),
    Many(Box<CowMap<Uuid, Uuid>>),
}

impl Holders {
    /// `pairs` (assignment ids distinct), in the smallest form that holds them.
    fn of(pairs: Vec<(Uuid, Uuid)>) -> Option<Holders> {
        match pairs.as_slice() {
            [] => None,
            [(a, p)] => Some(Holders::One(*a, *p)),
            _ if pairs.len() <= FEW_MAX => Some(Holders::Few(pairs.into())),
            _ => {
                let mut map = CowMap::new();
                for (a, p) in pairs {
                    map.insert(a, p);
                }
                Some(Holders::Many(Box::new(map)))
            }
        }
    }

    pub(super) fn insert(this: &mut Option<Holders>, assignment: Uuid, principal: Uuid) {
        match this {
            None => *this = Some(Holders::One(assignment, principal)),
            Some(Holders::Many(map)) => {
                map.insert(assignment, principal);
            }
            Some(held) => {
                let mut next = held.without(assignment);
                next.push((assignment, principal));
                *this = Holders::of(next);
            }
        }
    }

    pub(super) fn remove(this: &mut Option<Holders>, assignment: Uuid) {
        match this {
            None => {}
            Some(Holders::Many(map)) => {
                map.remove(&assignment);
                if map.len() <= FEW_MAX / 2 {
                    *this = Holders::of(map.iter().map(|(a, p)| (*a, *p)).collect());
                }
            }
            Some(held) => *this = Holders::of(held.without(assignment)),
        }
    }

    /// Every pair but `assignment`'s, with room for one more.
    fn without(&self, assignment: Uuid) -> Vec<(Uuid, Uuid)> {
        let mut pairs = Vec::with_capacity(self.len() + 1);
        self.for_each(|a, p| {
            if a != assignment {
                pairs.push((a, p));
            }
        });
        pairs
    }

    /// How many pairs.
    fn len(&self) -> usize {
        match self {
            Holders::One(..) => 1,
            Holders::Few(list) => list.len(),
            Holders::Many(map) => map.len(),
        }
    }

    /// Every (assignment, principal) pair.
    pub fn for_each(&self, mut f: impl FnMut(Uuid, Uuid)) {
        match self {
            Holders::One(a, p) => f(*a, *p),
            Holders::Few(list) => list.iter().for_each(|(a, p)| f(*a, *p)),
            Holders::Many(map) => map.iter().for_each(|(a, p)| f(*a, *p)),
        }
    }
}
