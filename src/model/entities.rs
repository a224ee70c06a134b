//! The directory's objects as they are stored, logged in `changes` and sent on the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::{
    ActionPattern, DenyAssignmentPatch, NamedObjectPatch, NewDenyAssignment, NewNamedObject,
    NewRoleAssignment, NewRoleDefinition, RoleDefinitionPatch, Scope,
};

/// A point in time, always UTC on the wire (RFC 3339).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// An isolated directory. Every object belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A position in the global, gap-free sequence of committed writes.
///
/// On the wire it is a decimal string, so clients treat it as opaque and JSON numbers never
/// lose precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revision(pub i64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not a revision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a revision is a non-negative decimal integer, as returned by a write")]
pub struct RevisionError;

impl std::str::FromStr for Revision {
    type Err = RevisionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<i64>() {
            Ok(n) if n >= 0 && !s.starts_with('+') => Ok(Revision(n)),
            _ => Err(RevisionError),
        }
    }
}

impl Serialize for Revision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Every decision carries one: written without the formatting machinery.
        serializer.serialize_str(itoa::Buffer::new().format(self.0))
    }
}

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// What kind of principal an id names. Users and service principals live in the identity
/// provider; groups are stored here because their nesting is resolved here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalType {
    /// A person.
    User,
    /// A group stored in this directory.
    Group,
    /// An application identity.
    ServicePrincipal,
}

impl PrincipalType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "user",
            PrincipalType::Group => "group",
            PrincipalType::ServicePrincipal => "servicePrincipal",
        }
    }
}

/// One entry of a role's permissions: what it allows, minus what it excludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolePermission {
    /// Patterns this entry grants.
    pub allowed_resource_actions: Vec<ActionPattern>,
    /// Patterns subtracted from this entry only (Azure's NotActions, not a deny).
    #[serde(default)]
    pub excluded_resource_actions: Vec<ActionPattern>,
    /// Entra's condition on this entry (see `model::condition`): the entry grants only when
    /// it holds for the check. Validated when written.
    #[serde(default)]
    pub condition: Option<String>,
}

/// A named collection of permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    /// For built-ins, equal to the Entra template id.
    pub id: Uuid,
    /// Unique per tenant, compared case-insensitively.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// True for roles from the shipped catalog; those cannot be changed.
    pub is_built_in: bool,
    /// A disabled role grants nothing.
    pub is_enabled: bool,
    /// The Entra template id (`wids` claims carry it); equal to `id` for custom roles.
    pub template_id: Uuid,
    /// Starts at 1 and increments with each change.
    pub version: i64,
    /// What the role grants.
    pub role_permissions: Vec<RolePermission>,
    /// Where the role may be assigned; `/` means anywhere.
    pub assignable_scopes: Vec<Scope>,
    /// When it was created (absent for built-ins).
    #[serde(default)]
    pub created_date_time: Option<Timestamp>,
    /// When it last changed (absent for built-ins).
    #[serde(default)]
    pub last_modified_date_time: Option<Timestamp>,
}

impl RoleDefinition {
    /// A new custom role with id `id` (also its template id), created at `now`.
    pub fn custom(id: Uuid, new: NewRoleDefinition, now: Timestamp) -> RoleDefinition {
        RoleDefinition {
            id,
            display_name: new.display_name,
            description: new.description,
            is_built_in: false,
            is_enabled: new.is_enabled,
            template_id: id,
            version: 1,
            role_permissions: new.role_permissions,
            assignable_scopes: new.assignable_scopes,
            created_date_time: Some(now),
            last_modified_date_time: Some(now),
        }
    }

    /// True when some assignable scope covers `scope`.
    pub fn assignable_at(&self, scope: &Scope) -> bool {
        self.assignable_scopes.iter().any(|s| s.covers(scope))
    }

    /// The role as `patch` leaves it at `now`: each field the patch sets replaced, the
    /// version one higher, `now` its last change. Whether the new name is free is the
    /// store's to check.
    pub fn patched(&self, patch: RoleDefinitionPatch, now: Timestamp) -> RoleDefinition {
        RoleDefinition {
            display_name: or_keep(patch.display_name, &self.display_name),
            description: or_keep(patch.description, &self.description),
            is_enabled: patch.is_enabled.unwrap_or(self.is_enabled),
            role_permissions: or_keep(patch.role_permissions, &self.role_permissions),
            assignable_scopes: or_keep(patch.assignable_scopes, &self.assignable_scopes),
            version: self.version + 1,
            last_modified_date_time: Some(now),
            ..self.clone()
        }
    }
}

/// A role granted to a principal at a scope, optionally for a time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Unique id.
    pub id: Uuid,
    /// Who receives the role.
    pub principal_id: Uuid,
    /// What kind of principal that is.
    pub principal_type: PrincipalType,
    /// Which role.
    pub role_definition_id: Uuid,
    /// Where it applies.
    pub directory_scope_id: Scope,
    /// Grants nothing before this instant.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// Grants nothing from this instant on.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
    /// An Azure ABAC condition (`conditionVersion` 2.0): the assignment grants only where
    /// it holds. Until conditions are evaluated, an assignment that has one grants nothing.
    /// Absent from bodies stored before conditions existed, hence the default.
    #[serde(default)]
    pub condition: Option<String>,
    /// The condition language's version: `"2.0"` when there is a condition, else null.
    #[serde(default)]
    pub condition_version: Option<String>,
    /// When it was created.
    pub created_date_time: Timestamp,
    /// The activation request this assignment came from (a PIM activation, which ends by
    /// itself); absent for assignments made directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_request_id: Option<Uuid>,
}

impl RoleAssignment {
    /// A new assignment with id `id`, created at `now`.
    pub fn new(id: Uuid, new: NewRoleAssignment, now: Timestamp) -> RoleAssignment {
        RoleAssignment {
            id,
            principal_id: new.principal_id,
            principal_type: new.principal_type,
            role_definition_id: new.role_definition_id,
            directory_scope_id: new.directory_scope_id,
            start_date_time: new.start_date_time,
            end_date_time: new.end_date_time,
            condition: new.condition,
            condition_version: new.condition_version,
            created_date_time: now,
            activation_request_id: None,
        }
    }

    /// True when `now` lies in `[start, end)`.
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.start_date_time.is_none_or(|s| s <= now) && self.end_date_time.is_none_or(|e| now < e)
    }
}

/// Actions a principal may never perform at a scope, whatever else grants them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DenyAssignment {
    /// Unique id.
    pub id: Uuid,
    /// Human name.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Who is denied (a group denies all its transitive members).
    pub principal_id: Uuid,
    /// What kind of principal that is.
    pub principal_type: PrincipalType,
    /// Denied patterns.
    pub actions: Vec<ActionPattern>,
    /// Patterns carved out of `actions`.
    #[serde(default)]
    pub excluded_actions: Vec<ActionPattern>,
    /// Where the deny applies.
    pub directory_scope_id: Scope,
    /// When it was created.
    pub created_date_time: Timestamp,
    /// When it last changed.
    pub last_modified_date_time: Timestamp,
}

impl DenyAssignment {
    /// A new deny assignment with id `id`, created at `now`.
    pub fn new(id: Uuid, new: NewDenyAssignment, now: Timestamp) -> DenyAssignment {
        DenyAssignment {
            id,
            display_name: new.display_name,
            description: new.description,
            principal_id: new.principal_id,
            principal_type: new.principal_type,
            actions: new.actions,
            excluded_actions: new.excluded_actions,
            directory_scope_id: new.directory_scope_id,
            created_date_time: now,
            last_modified_date_time: now,
        }
    }

    /// The deny assignment as `patch` leaves it at `now`: each field the patch sets
    /// replaced, `now` its last change. Its principal and scope never change.
    pub fn patched(&self, patch: DenyAssignmentPatch, now: Timestamp) -> DenyAssignment {
        DenyAssignment {
            display_name: or_keep(patch.display_name, &self.display_name),
            description: or_keep(patch.description, &self.description),
            actions: or_keep(patch.actions, &self.actions),
            excluded_actions: or_keep(patch.excluded_actions, &self.excluded_actions),
            last_modified_date_time: now,
            ..self.clone()
        }
    }
}

/// A stored group: its members are users, service principals or other groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Unique id (the identity provider's object id when mirrored from one).
    pub id: Uuid,
    /// Human name (not unique, as in Entra).
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// When it was created.
    pub created_date_time: Timestamp,
    /// When it last changed.
    pub last_modified_date_time: Timestamp,
}

/// One membership edge: `id` (of kind `type`) is a direct member of `group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    /// The containing group.
    pub group_id: Uuid,
    /// The member's object id.
    pub id: Uuid,
    /// The member's kind.
    #[serde(rename = "type")]
    pub member_type: PrincipalType,
    /// When it was added.
    pub created_date_time: Timestamp,
}

/// A named set of resources; an assignment scoped to it covers each member resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdministrativeUnit {
    /// Unique id.
    pub id: Uuid,
    /// Human name.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// When it was created.
    pub created_date_time: Timestamp,
    /// When it last changed.
    pub last_modified_date_time: Timestamp,
}

/// One resource (and what lies below it) belonging to an administrative unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdministrativeUnitMember {
    /// The containing unit.
    pub administrative_unit_id: Uuid,
    /// The member resource path.
    pub resource: Scope,
    /// When it was added.
    pub created_date_time: Timestamp,
}

/// A patched field: the patch's value when it sets one, else the field as it was.
fn or_keep<T: Clone>(patched: Option<T>, current: &T) -> T {
    patched.unwrap_or_else(|| current.clone())
}

/// Groups and administrative units: a named object, created from a [`NewNamedObject`] and
/// changed by a [`NamedObjectPatch`], that holds members. The two differ only in what their
/// members are, so the store and the admin API serve both through this one shape.
pub trait NamedObject: Clone {
    /// A new object with id `id`, created at `now`.
    fn new(id: Uuid, new: NewNamedObject, now: Timestamp) -> Self;
    /// Its id.
    fn id(&self) -> Uuid;
    /// The object as `patch` leaves it at `now`: each field the patch sets replaced, `now`
    /// its last change.
    fn patched(&self, patch: NamedObjectPatch, now: Timestamp) -> Self;
}

/// Implements [`NamedObject`] for a struct of exactly the named-object fields.
macro_rules! named_object {
    ($($kind:ident),*) => {$(
        impl NamedObject for $kind {
            fn new(id: Uuid, new: NewNamedObject, now: Timestamp) -> Self {
                $kind {
                    id,
                    display_name: new.display_name,
                    description: new.description,
                    created_date_time: now,
                    last_modified_date_time: now,
                }
            }

            fn id(&self) -> Uuid {
                self.id
            }

            fn patched(&self, patch: NamedObjectPatch, now: Timestamp) -> Self {
                $kind {
                    display_name: or_keep(patch.display_name, &self.display_name),
                    description: or_keep(patch.description, &self.description),
                    last_modified_date_time: now,
                    ..self.clone()
                }
            }
        }
    )*};
}

named_object!(Group, AdministrativeUnit);

/// What kind of object a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntityType {
    /// A custom role definition.
    RoleDefinition,
    /// A role assignment.
    RoleAssignment,
    /// A deny assignment.
    DenyAssignment,
    /// A group.
    Group,
    /// A group membership edge.
    GroupMember,
    /// An administrative unit.
    AdministrativeUnit,
    /// An administrative unit's member resource.
    AdministrativeUnitMember,
    /// A user or service principal of the principal directory.
    Principal,
    /// A resource of the resource directory.
    Resource,
    /// A declarative import's summary (`POST /v1/import`): the file's digest and what it
    /// changed, logged last in the import's revision.
    Import,
    /// A principal's eligibility for a role (PIM).
    RoleEligibilitySchedule,
    /// A request to activate or deactivate a role (PIM).
    RoleAssignmentScheduleRequest,
    /// A role's activation policy (PIM).
    RoleManagementPolicy,
}

impl EntityType {
    /// False for objects that never change a decision (PIM's eligibilities, requests and
    /// policies: an activation is logged as the role assignment it creates); sync skips
    /// them.
    pub fn affects_decisions(self) -> bool {
        !matches!(
            self,
            EntityType::RoleEligibilitySchedule
                | EntityType::RoleAssignmentScheduleRequest
                | EntityType::RoleManagementPolicy
        )
    }

    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::RoleDefinition => "roleDefinition",
            EntityType::RoleAssignment => "roleAssignment",
            EntityType::DenyAssignment => "denyAssignment",
            EntityType::Group => "group",
            EntityType::GroupMember => "groupMember",
            EntityType::AdministrativeUnit => "administrativeUnit",
            EntityType::AdministrativeUnitMember => "administrativeUnitMember",
            EntityType::Principal => "principal",
            EntityType::Resource => "resource",
            EntityType::Import => "import",
            EntityType::RoleEligibilitySchedule => "roleEligibilitySchedule",
            EntityType::RoleAssignmentScheduleRequest => "roleAssignmentScheduleRequest",
            EntityType::RoleManagementPolicy => "roleManagementPolicy",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "roleDefinition" => EntityType::RoleDefinition,
            "roleAssignment" => EntityType::RoleAssignment,
            "denyAssignment" => EntityType::DenyAssignment,
            "group" => EntityType::Group,
            "groupMember" => EntityType::GroupMember,
            "administrativeUnit" => EntityType::AdministrativeUnit,
            "administrativeUnitMember" => EntityType::AdministrativeUnitMember,
            "principal" => EntityType::Principal,
            "resource" => EntityType::Resource,
            "import" => EntityType::Import,
            "roleEligibilitySchedule" => EntityType::RoleEligibilitySchedule,
            "roleAssignmentScheduleRequest" => EntityType::RoleAssignmentScheduleRequest,
            "roleManagementPolicy" => EntityType::RoleManagementPolicy,
            _ => return None,
        })
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeOp {
    /// The object did not exist before.
    Create,
    /// The object existed before and after.
    Update,
    /// The object does not exist after.
    Delete,
}

impl ChangeOp {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "create" => ChangeOp::Create,
            "update" => ChangeOp::Update,
            "delete" => ChangeOp::Delete,
            _ => return None,
        })
    }
}

/// One row of the change log: the audit trail and the feed replicas follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The write's revision (one write may log several changes).
    pub revision: Revision,
    /// Position within the write, from 0.
    pub sequence: i64,
    /// Whose directory changed.
    pub tenant_id: TenantId,
    /// What kind of object.
    pub entity_type: EntityType,
    /// The object's id (`{groupId}/{memberId}` for memberships, `{unitId}{resource}` for unit members).
    pub entity_id: String,
    /// What happened.
    pub op: ChangeOp,
    /// The object before (null on create).
    pub before: Option<serde_json::Value>,
    /// The object after (null on delete).
    pub after: Option<serde_json::Value>,
    /// Who made the change.
    pub actor: String,
    /// When it was committed.
    pub at: Timestamp,
}
