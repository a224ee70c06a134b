//! Privileged Identity Management: eligibilities, activation requests and their reviews,
//! per-role policy, and the expiry of activations (see [`crate::model::pim`]).

use async_trait::async_trait;
use uuid::Uuid;

use super::{Actor, Page, PageRequest, RoleAssignmentFilter, StoreResult, Stored, Written};
use crate::model::{
    NewRoleEligibility, NewScheduleRequest, RequestStatus, Revision, RoleAssignmentScheduleRequest,
    RoleEligibilitySchedule, RoleManagementPolicy, TenantId, Timestamp,
};

/// Filters for listing schedule requests (all must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleRequestFilter {
    /// Only this principal's requests.
    pub principal_id: Option<Uuid>,
    /// Only requests in this status.
    pub status: Option<RequestStatus>,
}

/// A decision on a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Start the activation (approver).
    Approve,
    /// Refuse it (approver).
    Deny,
    /// Withdraw it (requester).
    Cancel,
}

/// Eligibilities, schedule requests and policies.
#[async_trait]
pub trait PimStore: Send + Sync {
    /// Eligibilities matching every filter, ordered by id.
    async fn list_eligibilities(
        &self,
        tenant: TenantId,
        filter: &RoleAssignmentFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleEligibilitySchedule>>>;
    /// One eligibility.
    async fn get_eligibility(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleEligibilitySchedule>>;
    /// Creates an eligibility, or finds the same one (same principal, role, scope and
    /// window) with `created: false`; a different window under the same key is a conflict.
    /// The role must exist and be assignable at the scope.
    async fn create_eligibility(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleEligibility,
    ) -> StoreResult<Written<RoleEligibilitySchedule>>;
    /// Deletes an eligibility (running activations run to their end).
    async fn delete_eligibility(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleEligibilitySchedule>>;

    /// A role's policy: the stored one, or the default (revision 0).
    async fn get_policy(
        &self,
        tenant: TenantId,
        role: Uuid,
    ) -> StoreResult<Stored<RoleManagementPolicy>>;
    /// Replaces a role's policy; the role must exist.
    async fn put_policy(
        &self,
        tenant: TenantId,
        actor: &Actor,
        policy: RoleManagementPolicy,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleManagementPolicy>>;

    /// Schedule requests matching every filter, ordered by id.
    async fn list_schedule_requests(
        &self,
        tenant: TenantId,
        filter: &ScheduleRequestFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleAssignmentScheduleRequest>>>;
    /// One schedule request.
    async fn get_schedule_request(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleAssignmentScheduleRequest>>;
    /// Records a request and acts on it in one write, judged at `now`: an activation is
    /// refused ([`StoreError::Refused`](super::StoreError::Refused)), left pending when the
    /// role's policy wants approval, or provisioned as a time-bound role assignment; a
    /// deactivation ends the principal's running activation.
    async fn submit_schedule_request(
        &self,
        tenant: TenantId,
        actor: &Actor,
        request: NewScheduleRequest,
        now: Timestamp,
    ) -> StoreResult<Written<RoleAssignmentScheduleRequest>>;
    /// Approves, denies or cancels a pending request at `now` (approval provisions the
    /// activation, re-judged against the eligibility as it stands). Who may do which is the
    /// caller's to check, except that nobody approves or denies their own request.
    async fn review_schedule_request(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        review: Review,
        justification: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Written<RoleAssignmentScheduleRequest>>;
    /// Ends every activation, in every tenant, whose end is at or before `now`: deletes its
    /// role assignment and marks its request `Expired`, one write per tenant, logged as
    /// `actor`. Returns how many ended. Safe to run on every replica at once.
    async fn expire_activations(&self, actor: &Actor, now: Timestamp) -> StoreResult<usize>;
}
