//! Role definitions: the built-in catalog merged with each tenant's custom roles.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Actor, Page, PageRequest, StoreResult, Stored, Written};
use crate::model::{
    Catalog, CloneRole, NewRoleDefinition, Revision, RoleDefinition, RoleDefinitionPatch, TenantId,
};

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

/// Role definitions. Built-ins come from the catalog and read as revision 0; only custom
/// roles are stored.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// The built-in roles every tenant sees.
    fn catalog(&self) -> &Arc<Catalog>;

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
    /// Changes a custom role (version + 1). Built-ins answer
    /// [`StoreError::BuiltinImmutable`](super::StoreError::BuiltinImmutable).
    async fn update_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: RoleDefinitionPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>>;
    /// Deletes a custom role. With assignments left it answers
    /// [`StoreError::Conflict`](super::StoreError::Conflict) unless `cascade`, which deletes
    /// them in the same write.
    async fn delete_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        cascade: bool,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>>;
}
