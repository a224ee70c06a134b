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
