//! Whether an id names a group: authentication asks, so that a token cannot present a
//! group's id as its own subject and act with the group's assignments.

use uuid::Uuid;

use super::Snapshot;
use crate::model::TenantId;

impl Snapshot {
    /// True when `id` is a group stored in `tenant` at this snapshot's revision, whether or
    /// not it has members or assignments. One hash lookup.
    pub fn is_group(&self, tenant: TenantId, id: Uuid) -> bool {
        self.tenant(tenant).groups.get(&id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Catalog, Change, ChangeOp, Dump, EntityType, Group, Revision, TenantDump};

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
