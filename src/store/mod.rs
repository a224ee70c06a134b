//! Persistence: one [`Store`] trait, implemented once in SQL for PostgreSQL and SQLite.
//!
//! Every write runs in one transaction that first increments the single revision row
//! (locked until commit, so revisions commit in order), then changes the tables and
//! appends one `changes` row per object touched. PostgreSQL also sends
//! `NOTIFY rolecall_changes` on commit. SQL lives only in this module.

mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, Catalog, Change, CloneRole, DenyAssignment,
    DenyAssignmentPatch, Group, GroupMember, NamedObjectPatch, NewDenyAssignment, NewGroupMember,
    NewNamedObject, NewRoleAssignment, NewRoleDefinition, Revision, RoleAssignment, RoleDefinition,
    RoleDefinitionPatch, Scope, TenantId, ValidationErrors,
};
pub use crate::model::{Dump, TenantDump};

pub use sql::{Backend, SqlStore, NOTIFY_CHANNEL};

/// What the store can fail with; each variant is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object in this tenant.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// The object kind, e.g. `roleDefinition`.
        kind: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// The write would break a uniqueness or reference rule.
    #[error("{0}")]
    Conflict(String),
    /// Built-in roles are read-only.
    #[error("built-in role `{0}` cannot be changed or deleted; clone it instead")]
    BuiltinImmutable(Uuid),
    /// `If-Match` named another version than the stored one.
    #[error("the object changed since it was read (current etag {current})")]
    PreconditionFailed {
        /// The current ETag value, so the client can re-read.
        current: String,
    },
    /// Well-formed input that the directory's current state cannot accept.
    #[error("{0}")]
    Unprocessable(ValidationErrors),
    /// A page cursor this store did not hand out (or for another listing).
    #[error("not a cursor returned by this listing; start again without `cursor`")]
    InvalidCursor,
    /// The database could not be reached or failed.
    #[error("store unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Stored data did not decode (a bug or a manual edit).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Unavailable(error)
    }
}

/// Store result.
pub type StoreResult<T> = Result<T, StoreError>;

/// Who performed a write, recorded in `changes.actor` and `changes.actor_issuer`.
///
/// A principal id alone does not say who vouched for it: two trusted issuers may both
/// present the same `oid`. So a token caller is recorded with the issuer (`iss`) that
/// signed its token, kept apart from the id so the audit trail can filter on either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The principal id, or a fixed name (`admin-key`, `bootstrap-config`, `bootstrap-cli`).
    id: String,
    /// The token issuer that vouched for `id`; `None` for the admin key and bootstrap.
    issuer: Option<String>,
}

impl Actor {
    /// An actor that no token issuer vouched for: the admin key, bootstrap, tools.
    pub fn new(id: impl Into<String>) -> Actor {
        Actor {
            id: id.into(),
            issuer: None,
        }
    }

    /// A token holder: its principal id and the issuer (`iss`, as the token states it).
    pub fn with_issuer(id: impl Into<String>, issuer: impl Into<String>) -> Actor {
        Actor {
            id: id.into(),
            issuer: Some(issuer.into()),
        }
    }

    /// The principal id or fixed name, stored in `changes.actor`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The issuer that vouched for the actor, stored in `changes.actor_issuer`.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

/// One row of the change log as the audit trail lists it: the [`Change`] (also what sync
/// replays) plus the issuer of the actor, which only the audit trail needs. Derefs to the
/// change, so its fields read as before.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedChange {
    /// The change.
    pub change: Change,
    /// The token issuer that vouched for `change.actor`; `None` for the admin key,
    /// bootstrap, and rows written before the column existed.
    pub actor_issuer: Option<String>,
}

impl std::ops::Deref for LoggedChange {
    type Target = Change;

    fn deref(&self) -> &Change {
        &self.change
    }
}

/// A page request: up to `limit` items after the opaque `cursor` (a previous page's `next`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=1000, checked by the API.
    pub limit: u32,
    /// The last key of the previous page, as the store encoded it.
    pub cursor: Option<String>,
}

/// One page of a stable, keyed ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// At most `limit` items.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// An object with the revision of its last write (its ETag).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The object.
    pub value: T,
    /// The revision that last wrote it; built-ins carry revision 0.
    pub revision: Revision,
}

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// The object as it now stands (for deletes, as it stood).
    pub value: T,
    /// The write's revision; for an idempotent create that found the object, the revision
    /// that created it (nothing was written).
    pub revision: Revision,
    /// False when an idempotent create found the object already there.
    pub created: bool,
}

/// Filters for listing role definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleDefinitionFilter {
    /// Case-insensitive substring of the display name.
    pub display_name: Option<String>,
    /// Only built-ins (true) or only custom roles (false).
    pub is_built_in: Option<bool>,
    /// Only enabled (true) or only disabled (false) roles.
    pub is_enabled: Option<bool>,
}

/// Filters for listing role assignments (all must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleAssignmentFilter {
    /// Only this principal's assignments.
    pub principal_id: Option<Uuid>,
    /// Only this role's assignments.
    pub role_definition_id: Option<Uuid>,
    /// Only assignments at exactly this scope.
    pub directory_scope_id: Option<Scope>,
}

/// The directory's persistence. Implementations keep every write atomic and ordered by
/// revision, and never let one tenant read or change another's objects.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`, for logs and `/readyz`.
    fn backend(&self) -> Backend;

    /// The built-in roles every tenant sees.
    fn catalog(&self) -> &Arc<Catalog>;

    /// Round-trips to the database (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// The newest committed revision.
    async fn current_revision(&self) -> StoreResult<Revision>;

    // --- role definitions (built-ins merged in from the catalog) ---

    /// Built-in and custom roles, ordered by id.
    async fn list_role_definitions(
        &self,
        tenant: TenantId,
        filter: &RoleDefinitionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleDefinition>>>;
    /// One role, built-in or custom.
    async fn get_role_definition(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleDefinition>>;
    /// Creates a custom role; the display name must be free (built-in names included).
    async fn create_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleDefinition,
    ) -> StoreResult<Written<RoleDefinition>>;
    /// Copies any role's permissions and assignable scopes into a new custom role.
    async fn clone_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        source: Uuid,
        clone: CloneRole,
    ) -> StoreResult<Written<RoleDefinition>>;
    /// Changes a custom role (version + 1). Built-ins answer [`StoreError::BuiltinImmutable`].
    async fn update_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: RoleDefinitionPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>>;
    /// Deletes a custom role. With assignments left it answers [`StoreError::Conflict`]
    /// unless `cascade`, which deletes them in the same write.
    async fn delete_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        cascade: bool,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>>;

    // --- role assignments ---

    /// Assignments matching every filter, ordered by id.
    async fn list_role_assignments(
        &self,
        tenant: TenantId,
        filter: &RoleAssignmentFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleAssignment>>>;
    /// One assignment.
    async fn get_role_assignment(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleAssignment>>;
    /// Creates an assignment, or returns the existing one for the same (principal, role,
    /// scope) with `created: false`. The role must exist and be assignable at the scope
    /// ([`StoreError::Unprocessable`] otherwise).
    async fn create_role_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleAssignment,
    ) -> StoreResult<Written<RoleAssignment>>;
    /// Deletes an assignment.
    async fn delete_role_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleAssignment>>;

    // --- deny assignments ---

    /// Deny assignments, ordered by id; optionally one principal's only.
    async fn list_deny_assignments(
        &self,
        tenant: TenantId,
        principal_id: Option<Uuid>,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<DenyAssignment>>>;
    /// One deny assignment.
    async fn get_deny_assignment(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<DenyAssignment>>;
    /// Creates a deny assignment.
    async fn create_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewDenyAssignment,
    ) -> StoreResult<Written<DenyAssignment>>;
    /// Changes a deny assignment.
    async fn update_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: DenyAssignmentPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<DenyAssignment>>;
    /// Deletes a deny assignment.
    async fn delete_deny_assignment(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<DenyAssignment>>;

    // --- groups ---

    /// Groups ordered by id.
    async fn list_groups(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<Group>>>;
    /// One group.
    async fn get_group(&self, tenant: TenantId, id: Uuid) -> StoreResult<Stored<Group>>;
    /// Creates a group.
    async fn create_group(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewNamedObject,
    ) -> StoreResult<Written<Group>>;
    /// Renames or re-describes a group.
    async fn update_group(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Group>>;
    /// Deletes a group with its membership edges (both directions) and the role and deny
    /// assignments made to it, each logged as its own change.
    async fn delete_group(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Group>>;
    /// Direct members ordered by member id.
    async fn list_group_members(
        &self,
        tenant: TenantId,
        group: Uuid,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<GroupMember>>>;
    /// Adds a member (idempotent). A member group must exist in the tenant; a group may
    /// contain itself or an ancestor (cycles are harmless).
    async fn add_group_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        group: Uuid,
        member: NewGroupMember,
    ) -> StoreResult<Written<GroupMember>>;
    /// Removes a direct member.
    async fn remove_group_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        group: Uuid,
        member: Uuid,
    ) -> StoreResult<Written<GroupMember>>;

    // --- administrative units ---

    /// Units ordered by id.
    async fn list_administrative_units(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<AdministrativeUnit>>>;
    /// One unit.
    async fn get_administrative_unit(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<AdministrativeUnit>>;
    /// Creates a unit.
    async fn create_administrative_unit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewNamedObject,
    ) -> StoreResult<Written<AdministrativeUnit>>;
    /// Renames or re-describes a unit.
    async fn update_administrative_unit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<AdministrativeUnit>>;
    /// Deletes a unit with its member rows. Assignments scoped to it stay (they then cover
    /// nothing) and are listed by scope.
    async fn delete_administrative_unit(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<AdministrativeUnit>>;
    /// Member resources ordered by path.
    async fn list_administrative_unit_members(
        &self,
        tenant: TenantId,
        unit: Uuid,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<AdministrativeUnitMember>>>;
    /// Adds a member resource (idempotent).
    async fn add_administrative_unit_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        unit: Uuid,
        resource: Scope,
    ) -> StoreResult<Written<AdministrativeUnitMember>>;
    /// Removes a member resource.
    async fn remove_administrative_unit_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        unit: Uuid,
        resource: &Scope,
    ) -> StoreResult<Written<AdministrativeUnitMember>>;

    // --- change log ---

    /// This tenant's changes with revision > `since`, ordered by (revision, sequence), each
    /// with its actor's issuer.
    async fn list_changes(
        &self,
        tenant: TenantId,
        since: Revision,
        page: &PageRequest,
    ) -> StoreResult<Page<LoggedChange>>;

    // --- sync feed (all tenants) ---

    /// Every tenant's objects, read in one consistent snapshot.
    async fn dump(&self) -> StoreResult<Dump>;
    /// Up to `limit` changes of every tenant with revision > `after`, in order. Only whole
    /// revisions are returned (a revision's changes are never split across calls).
    async fn changes_after(&self, after: Revision, limit: u32) -> StoreResult<Vec<Change>>;
}
