//! Principal expansion: the subject and the groups reachable from it, breadth first with
//! the chain to each (for checks and explanations), and the other way, every member below
//! a set of groups (for who-can).

use hashbrown::HashSet;

use hashbrown::HashTable;
use smallvec::SmallVec;
use uuid::Uuid;

use super::cow::hash_uuid;
use super::tenant::{Node, TenantIndex};

/// `visits[i].from` for the subject itself.
pub(super) const ROOT: u32 = u32::MAX;
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
    pub bound_hit: bool,
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
    pub fn via(&self, i: usize) -> (Vec<Uuid>, bool) {
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

/// Every principal within `max_depth` memberships below one of `seeds` (seeds included).
pub(super) fn reverse_reach(
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
