//! The resource directory: resources named as AuthZEN names them, `(type, id)` unique per
//! tenant, each at a resource path. Every write logs one `resource` change per resource it
//! changes, with entity id `{type}/{id}` (the id percent-encoded as one path segment).

use async_trait::async_trait;

use super::{Actor, Page, PageRequest, StoreResult, Stored, Written};
use crate::model::{NewResource, Resource, ResourcePatch, Revision, Scope, TenantId};

/// Filters for listing resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFilter {
    /// Only resources of this type.
    pub resource_type: Option<String>,
    /// Only resources whose path is this one or lies below it (by whole segments).
    pub path_prefix: Option<Scope>,
}

/// One item of a bulk upsert: the resource as it should stand, and what the caller saw of
/// it when it authorized the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    /// The whole resource (every field replaced).
    pub new: NewResource,
    /// The revision of the stored resource the caller was authorized against, or `None` when
    /// it saw none: if the store holds anything else, the whole upsert fails with
    /// `PreconditionFailed` (another writer got in between).
    pub seen: Option<Revision>,
}

/// What a bulk upsert did to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// It did not exist.
    Created,
    /// It existed with other values.
    Updated,
    /// It existed exactly as sent: nothing written, no change logged.
    Unchanged,
}

/// The outcome of a bulk upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    /// Each item as it now stands, with what was done to it, in request order.
    pub items: Vec<(Resource, UpsertOutcome)>,
    /// The write's revision; when nothing changed (nothing was written), the newest revision
    /// among the items' stored ones, so waiting for it reads every item as it stands.
    pub revision: Revision,
}

/// Resources. Each write logs one `resource` change per resource it changes.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Resources ordered by (type, id), byte-wise.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &ResourceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<Resource>>>;
    /// One resource.
    async fn get(
        &self,
        tenant: TenantId,
        resource_type: &str,
        id: &str,
    ) -> StoreResult<Stored<Resource>>;
    /// The stored ones among `keys` (type, id), in no particular order.
    async fn get_many(
        &self,
        tenant: TenantId,
        keys: &[(String, String)],
    ) -> StoreResult<Vec<Stored<Resource>>>;
    /// Creates a resource; one with its (type, id) already there is a `Conflict`.
    async fn create(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewResource,
    ) -> StoreResult<Written<Resource>>;
    /// Replaces the fields `patch` sets.
    async fn update(
        &self,
        tenant: TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &str,
        patch: ResourcePatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Resource>>;
    /// Deletes a resource (nothing else refers to it).
    async fn delete(
        &self,
        tenant: TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &str,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Resource>>;
    /// Creates or replaces every item in one transaction and one revision; an item that
    /// stands exactly as sent is left alone. Items name distinct (type, id) pairs.
    async fn upsert(
        &self,
        tenant: TenantId,
        actor: &Actor,
        items: Vec<Upsert>,
    ) -> StoreResult<Upserted>;
}
