//! Typed changes: what [`Snapshot::apply`](super::Snapshot::apply) takes. Sync decodes the
//! change log's JSON bodies into these, so the engine never parses anything.

use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, DenyAssignment, Group, GroupMember, Principal,
    Resource, Revision, RoleAssignment, RoleDefinition, TenantId,
};

/// One logged change, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The write's revision: changes apply in revision order.
    pub revision: Revision,
    /// Its position within the write (named in errors).
    pub sequence: i64,
    /// Whose directory changed.
    pub tenant: TenantId,
    /// What changed.
    pub edit: Edit,
}

/// Which kind of object changed, with its versions around the change.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// A custom role definition.
    RoleDefinition(Versions<RoleDefinition>),
    /// A role assignment.
    RoleAssignment(Versions<RoleAssignment>),
    /// A deny assignment.
    DenyAssignment(Versions<DenyAssignment>),
    /// A group (its deletion also removes its edges and assignments).
    Group(Versions<Group>),
    /// A group membership edge.
    GroupMember(Versions<GroupMember>),
    /// An administrative unit (its deletion also removes its member rows).
    AdministrativeUnit(Versions<AdministrativeUnit>),
    /// An administrative unit's member resource.
    AdministrativeUnitMember(Versions<AdministrativeUnitMember>),
    /// A principal of the principal directory, with its aliases.
    Principal(Versions<Principal>),
    /// A resource of the resource directory.
    Resource(Versions<Resource>),
}

/// One object around a change: every version the operation has, so a create cannot lack
/// its new object nor a delete its old one.
#[derive(Debug, Clone, PartialEq)]
pub enum Versions<T> {
    /// The object did not exist before.
    Created(T),
    /// The object existed before and after.
    Updated {
        /// As it was.
        before: T,
        /// As it is.
        after: T,
    },
    /// The object does not exist after.
    Deleted(T),
}

impl<T> Versions<T> {
    /// The object before the change (`None` for a create).
    pub fn before(&self) -> Option<&T> {
        match self {
            Versions::Created(_) => None,
            Versions::Updated { before, .. } | Versions::Deleted(before) => Some(before),
        }
    }

    /// The object after the change (`None` for a delete).
    pub fn after(&self) -> Option<&T> {
        match self {
            Versions::Deleted(_) => None,
            Versions::Updated { after, .. } | Versions::Created(after) => Some(after),
        }
    }
}
