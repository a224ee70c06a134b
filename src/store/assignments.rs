//! Role assignments and deny assignments: who holds (or is denied) what, where.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Actor, Page, PageRequest, StoreResult, Stored, Written};
use crate::model::{
    DenyAssignment, DenyAssignmentPatch, NewDenyAssignment, NewRoleAssignment, Revision,
    RoleAssignment, Scope, TenantId,
};

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

/// Role assignments and deny assignments.
#[async_trait]
pub trait AssignmentStore: Send + Sync {
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
    /// ([`StoreError::Unprocessable`](super::StoreError::Unprocessable) otherwise).
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
}
