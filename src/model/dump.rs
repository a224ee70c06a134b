//! A whole directory at one revision: what the engine's snapshot is built from.

use super::{
    AdministrativeUnit, AdministrativeUnitMember, DenyAssignment, Group, GroupMember, Principal,
    Resource, Revision, RoleAssignment, RoleDefinition, TenantId,
};

/// Every tenant's whole directory at one revision: what the engine's snapshot is built from.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    /// The revision the dump is consistent at.
    pub revision: Revision,
    /// One entry per tenant that has ever been written.
    pub tenants: Vec<TenantDump>,
}

/// One tenant's objects (custom roles only; built-ins come from the catalog).
#[derive(Debug, Clone)]
pub struct TenantDump {
    /// Whose.
    pub tenant: TenantId,
    /// Custom role definitions.
    pub role_definitions: Vec<RoleDefinition>,
    /// Role assignments.
    pub role_assignments: Vec<RoleAssignment>,
    /// Deny assignments.
    pub deny_assignments: Vec<DenyAssignment>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Membership edges.
    pub group_members: Vec<GroupMember>,
    /// Administrative units.
    pub administrative_units: Vec<AdministrativeUnit>,
    /// Unit member resources.
    pub administrative_unit_members: Vec<AdministrativeUnitMember>,
    /// The principal directory's users and service principals.
    pub principals: Vec<Principal>,
    /// The resource directory.
    pub resources: Vec<Resource>,
}

/// One stored object of one tenant, as a streamed dump delivers it
/// ([`ChangeFeed::dump_rows`](crate::store::ChangeFeed::dump_rows)): the snapshot is built
/// from rows as they are read, so the whole dump is never held (at 1M assignments it was
/// a fifth of the replica's peak memory).
#[derive(Debug, Clone)]
pub enum DumpRow {
    /// The tenant exists (sent once per tenant before its objects, even with none).
    Tenant,
    /// A custom role definition.
    RoleDefinition(RoleDefinition),
    /// A role assignment.
    RoleAssignment(RoleAssignment),
    /// A deny assignment.
    DenyAssignment(DenyAssignment),
    /// A group.
    Group(Group),
    /// A membership edge.
    GroupMember(GroupMember),
    /// An administrative unit.
    AdministrativeUnit(AdministrativeUnit),
    /// A unit member resource.
    AdministrativeUnitMember(AdministrativeUnitMember),
    /// A user or service principal of the principal directory.
    Principal(Principal),
    /// A resource of the resource directory.
    Resource(Resource),
}

/// Rows in the order they were read, a few thousand at a time.
pub type DumpBatch = Vec<(TenantId, DumpRow)>;

impl TenantDump {
    /// A tenant with nothing in it.
    pub fn empty(tenant: TenantId) -> TenantDump {
        TenantDump {
            tenant,
            role_definitions: Vec::new(),
            role_assignments: Vec::new(),
            deny_assignments: Vec::new(),
            groups: Vec::new(),
            group_members: Vec::new(),
            administrative_units: Vec::new(),
            administrative_unit_members: Vec::new(),
            principals: Vec::new(),
            resources: Vec::new(),
        }
    }

    /// Adds one streamed row to its list.
    pub fn push(&mut self, row: DumpRow) {
        match row {
            DumpRow::Tenant => {}
            DumpRow::RoleDefinition(v) => self.role_definitions.push(v),
            DumpRow::RoleAssignment(v) => self.role_assignments.push(v),
            DumpRow::DenyAssignment(v) => self.deny_assignments.push(v),
            DumpRow::Group(v) => self.groups.push(v),
            DumpRow::GroupMember(v) => self.group_members.push(v),
            DumpRow::AdministrativeUnit(v) => self.administrative_units.push(v),
            DumpRow::AdministrativeUnitMember(v) => self.administrative_unit_members.push(v),
            DumpRow::Principal(v) => self.principals.push(v),
            DumpRow::Resource(v) => self.resources.push(v),
        }
    }
}
