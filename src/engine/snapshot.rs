//! The snapshot: every tenant's index at one revision, how a [`Dump`] builds it and how
//! the change log derives the next one (each change's body decoded here).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::cow::CowMap;
use super::role::CompiledRole;
use super::tenant::TenantIndex;
use super::{ApplyError, MAX_GROUP_DEPTH};
use crate::model::{Catalog, Change, ChangeOp, Dump, Revision, TenantId};

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
            tenant.apply(change)?;
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
pub(super) fn objects<T: DeserializeOwned>(
    change: &Change,
) -> Result<(Option<T>, Option<T>), ApplyError> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{EntityType, Group, TenantDump};

    fn group_change(revision: i64, op: ChangeOp, tenant: TenantId, id: Uuid) -> Change {
        let group = json!({
            "id": id,
            "displayName": "Empty",
            "createdDateTime": "2024-01-01T00:00:00Z",
            "lastModifiedDateTime": "2024-01-01T00:00:00Z",
        });
        let (before, after) = match op {
            ChangeOp::Create => (None, Some(group)),
            _ => (Some(group), None),
        };
        Change {
            revision: Revision(revision),
            sequence: 0,
            tenant_id: tenant,
            entity_type: EntityType::Group,
            entity_id: id.to_string(),
            op,
            before,
            after,
            actor: "t".to_owned(),
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn an_empty_group_is_a_group_until_deleted_and_only_in_its_tenant() {
        let catalog = Catalog::parse(r#"{"roles":[]}"#).expect("catalog");
        let tenant = TenantId(Uuid::new_v4());
        let other = TenantId(Uuid::new_v4());
        let id = Uuid::new_v4();
        let empty = Snapshot::empty(&catalog);
        assert!(!empty.is_group(tenant, id));
        let created = empty
            .apply(&[group_change(1, ChangeOp::Create, tenant, id)])
            .expect("applies");
        assert!(created.is_group(tenant, id));
        assert!(!created.is_group(other, id));
        let deleted = created
            .apply(&[group_change(2, ChangeOp::Delete, tenant, id)])
            .expect("applies");
        assert!(!deleted.is_group(tenant, id));
        assert!(created.is_group(tenant, id), "snapshots are immutable");
    }

    #[test]
    fn an_empty_group_in_a_dump_is_a_group() {
        let catalog = Catalog::parse(r#"{"roles":[]}"#).expect("catalog");
        let tenant = TenantId(Uuid::new_v4());
        let id = Uuid::new_v4();
        let now = chrono::Utc::now();
        let dump = Dump {
            revision: Revision(1),
            tenants: vec![TenantDump {
                tenant,
                role_definitions: Vec::new(),
                role_assignments: Vec::new(),
                deny_assignments: Vec::new(),
                groups: vec![Group {
                    id,
                    display_name: "Empty".to_owned(),
                    description: String::new(),
                    created_date_time: now,
                    last_modified_date_time: now,
                }],
                group_members: Vec::new(),
                administrative_units: Vec::new(),
                administrative_unit_members: Vec::new(),
            }],
        };
        let snapshot = Snapshot::build(&dump, &catalog);
        assert!(snapshot.is_group(tenant, id));
        assert!(!snapshot.is_group(tenant, Uuid::new_v4()));
    }
}
