//! The principal directory: users and service principals with their aliases and
//! attributes. Aliases are unique per tenant ignoring case (see [`alias_key`]), enforced by
//! the database, so two replicas can never both hand one out.
//!
//! [`alias_key`]: crate::model::alias_key

use async_trait::async_trait;
use uuid::Uuid;

use super::{Actor, Page, PageRequest, StoreResult, Stored, Written};
use crate::model::{NewPrincipal, Principal, PrincipalPatch, PrincipalType, Revision, TenantId};

/// Filters for listing principals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalFilter {
    /// Only the principal holding this alias (compared ignoring case).
    pub alias: Option<String>,
    /// Only users, or only service principals.
    pub principal_type: Option<PrincipalType>,
}

/// Users and service principals. Each write logs one `principal` change; alias rows are
/// derived from the principal and written with it.
#[async_trait]
pub trait PrincipalStore: Send + Sync {
    /// Principals ordered by id.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &PrincipalFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<Principal>>>;
    /// One principal.
    async fn get(&self, tenant: TenantId, id: Uuid) -> StoreResult<Stored<Principal>>;
    /// Creates a principal (with the id asked for, else a new one). Creating one that
    /// exists exactly as asked finds it (idempotent); an id held by another principal, or
    /// an alias another principal holds, is a `Conflict`.
    async fn create(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewPrincipal,
    ) -> StoreResult<Written<Principal>>;
    /// Replaces the fields `patch` sets; an alias another principal holds is a `Conflict`.
    async fn update(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: PrincipalPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Principal>>;
    /// Deletes the directory record and its aliases only: role and deny assignments and
    /// group memberships naming the object id stay, as they would for any id the
    /// directory never held.
    async fn delete(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Principal>>;
}
