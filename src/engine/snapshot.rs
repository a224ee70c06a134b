//! The snapshot: every tenant's index at one revision, how a [`Dump`] builds it and how
//! typed [`Delta`]s derive the next one.

use std::sync::Arc;

use uuid::Uuid;

use super::cow::CowMap;
use super::delta::Delta;
use super::role::CompiledRole;
use super::tenant::TenantIndex;
use super::{ApplyError, MAX_GROUP_DEPTH};
use crate::model::{Catalog, Dump, DumpRow, Revision, TenantId};

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
        let mut builder = SnapshotBuilder::new(catalog);
        for t in &dump.tenants {
            let principals = t.role_assignments.len() / 2 + t.group_members.len() / 2;
            builder.sized_tenant(t.tenant, t.role_assignments.len(), principals);
            let index = builder.tenant(t.tenant);
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
            for p in &t.principals {
                index.add_principal(p);
            }
            for r in &t.resources {
                index.add_resource(r);
            }
        }
        builder.finish(dump.revision)
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

    /// The next snapshot: this one with `deltas` applied, in order. Changes at or below
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
    pub fn apply(&self, deltas: &[Delta]) -> Result<Snapshot, ApplyError> {
        self.apply_through(deltas, None)
    }

    /// [`Snapshot::apply`], then at revision `through` at least: the change log's last
    /// revision read, when its changes (or some of them) change no decision and were not
    /// passed as deltas (PIM's requests and eligibilities). A write's waiter then sees it.
    pub fn apply_through(
        &self,
        deltas: &[Delta],
        through: Option<Revision>,
    ) -> Result<Snapshot, ApplyError> {
        let mut next = self.apply_deltas(deltas)?;
        if let Some(through) = through {
            next.revision = next.revision.max(through);
        }
        Ok(next)
    }

    fn apply_deltas(&self, deltas: &[Delta]) -> Result<Snapshot, ApplyError> {
        let mut next = self.clone();
        for delta in deltas {
            if delta.revision <= self.revision {
                continue;
            }
            if delta.revision < next.revision {
                return Err(ApplyError::OutOfOrder {
                    revision: delta.revision,
                    sequence: delta.sequence,
                    after: next.revision,
                });
            }
            // INVARIANT: mutate the tenant in place: after the first change of a batch its
            // maps are unique to `next`, so later changes copy nothing more.
            let tenant = next
                .tenants
                .get_or_insert_with(&delta.tenant.0, TenantIndex::default);
            tenant.apply(&delta.edit);
            next.revision = delta.revision;
        }
        Ok(next)
    }
}

/// Builds a [`Snapshot`] from a dump's rows as they arrive, in any order (each row's index
/// entries depend on no other row), so a replica never holds the whole dump
/// ([`ChangeFeed::dump_rows`](crate::store::ChangeFeed::dump_rows)).
pub struct SnapshotBuilder {
    snapshot: Snapshot,
    tenants: hashbrown::HashMap<Uuid, TenantIndex>,
}

impl SnapshotBuilder {
    /// An empty directory over `catalog`'s built-in roles.
    pub fn new(catalog: &Catalog) -> SnapshotBuilder {
        SnapshotBuilder {
            snapshot: Snapshot::empty(catalog),
            tenants: hashbrown::HashMap::new(),
        }
    }

    /// Declares `tenant` with its index sized for about `assignments` role assignments and
    /// `principals` principals (growing past them costs rehashing, nothing else).
    pub fn sized_tenant(&mut self, tenant: TenantId, assignments: usize, principals: usize) {
        self.tenants
            .entry(tenant.0)
            .or_insert_with(|| TenantIndex::sized_for(assignments, principals));
    }

    fn tenant(&mut self, tenant: TenantId) -> &mut TenantIndex {
        self.tenants.entry(tenant.0).or_default()
    }

    /// Indexes one row of `tenant`.
    pub fn add(&mut self, tenant: TenantId, row: DumpRow) {
        let index = self.tenant(tenant);
        match row {
            DumpRow::Tenant | DumpRow::AdministrativeUnit(_) => {}
            DumpRow::RoleDefinition(role) => {
                index
                    .roles
                    .insert(role.id, Arc::new(CompiledRole::compile(role)));
            }
            DumpRow::Group(g) => {
                index.groups.insert(g.id, ());
            }
            DumpRow::GroupMember(m) => index.add_member(m.group_id, m.id, m.member_type),
            DumpRow::RoleAssignment(a) => index.add_grant(&a),
            DumpRow::DenyAssignment(d) => index.add_deny(&d),
            DumpRow::AdministrativeUnitMember(m) => {
                index.add_unit_member(m.administrative_unit_id, &m.resource)
            }
            DumpRow::Principal(p) => index.add_principal(&p),
            DumpRow::Resource(r) => index.add_resource(&r),
        }
    }

    /// The snapshot of every row added, at `revision`.
    pub fn finish(self, revision: Revision) -> Snapshot {
        let mut snapshot = self.snapshot;
        snapshot.revision = revision;
        snapshot.tenants = CowMap::with_capacity(self.tenants.len());
        for (tenant, index) in self.tenants {
            snapshot.tenants.insert(tenant, index);
        }
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::delta::{Edit, Versions};
    use crate::model::{Group, TenantDump};

    fn catalog() -> Catalog {
        Catalog::parse(r#"{"roles":[]}"#).expect("catalog")
    }

    fn group(id: Uuid) -> Group {
        let at = chrono::Utc::now();
        Group {
            id,
            display_name: "Empty".to_owned(),
            description: String::new(),
            created_date_time: at,
            last_modified_date_time: at,
        }
    }

    fn group_delta(revision: i64, versions: Versions<Group>, tenant: TenantId) -> Delta {
        Delta {
            revision: Revision(revision),
            sequence: 0,
            tenant,
            edit: Edit::Group(versions),
        }
    }

    #[test]
    fn an_empty_group_is_a_group_until_deleted_and_only_in_its_tenant() {
        let tenant = TenantId(Uuid::new_v4());
        let other = TenantId(Uuid::new_v4());
        let id = Uuid::new_v4();
        let empty = Snapshot::empty(&catalog());
        assert!(!empty.is_group(tenant, id));
        let created = empty
            .apply(&[group_delta(1, Versions::Created(group(id)), tenant)])
            .expect("applies");
        assert!(created.is_group(tenant, id));
        assert!(!created.is_group(other, id));
        let deleted = created
            .apply(&[group_delta(2, Versions::Deleted(group(id)), tenant)])
            .expect("applies");
        assert!(!deleted.is_group(tenant, id));
        assert!(created.is_group(tenant, id), "snapshots are immutable");
    }

    #[test]
    fn an_empty_group_in_a_dump_is_a_group() {
        let tenant = TenantId(Uuid::new_v4());
        let id = Uuid::new_v4();
        let dump = Dump {
            revision: Revision(1),
            tenants: vec![TenantDump {
                tenant,
                role_definitions: Vec::new(),
                role_assignments: Vec::new(),
                deny_assignments: Vec::new(),
                groups: vec![group(id)],
                group_members: Vec::new(),
                administrative_units: Vec::new(),
                administrative_unit_members: Vec::new(),
                principals: Vec::new(),
                resources: Vec::new(),
            }],
        };
        let snapshot = Snapshot::build(&dump, &catalog());
        assert!(snapshot.is_group(tenant, id));
        assert!(!snapshot.is_group(tenant, Uuid::new_v4()));
    }
}
