//! Groups and administrative units: one shape (a named object holding members), one
//! generic store path. What differs between the two (their tables, what a member is, what
//! a delete takes with it) is said once per kind, by its [`Container`] implementation and
//! the SQL implementation's own.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::{
    Actor, Page, PageRequest, PrincipalStore, ResourceStore, Store, StoreResult, Stored, Written,
};
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, Group, GroupMember, NamedObject,
    NamedObjectPatch, NewGroupMember, NewNamedObject, Revision, Scope, TenantId,
};

/// A kind of named object that holds members: [`Group`] or [`AdministrativeUnit`].
pub trait Container: NamedObject + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// One member row: a [`GroupMember`] or an [`AdministrativeUnitMember`].
    type Member: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// What adding a member takes: a principal and its type for a group, a resource path
    /// for a unit.
    type NewMember: Send + 'static;
    /// What names one member of a container: a principal id for a group, a resource path
    /// for a unit.
    type MemberKey: Send + Sync + 'static;

    /// This kind's part of `store`.
    fn of(store: &dyn Store) -> &dyn ContainerStore<Self>;
}

impl Container for Group {
    type Member = GroupMember;
    type NewMember = NewGroupMember;
    type MemberKey = Uuid;

    fn of(store: &dyn Store) -> &dyn ContainerStore<Group> {
        store.groups()
    }
}

impl Container for AdministrativeUnit {
    type Member = AdministrativeUnitMember;
    type NewMember = Scope;
    type MemberKey = Scope;

    fn of(store: &dyn Store) -> &dyn ContainerStore<AdministrativeUnit> {
        store.units()
    }
}

/// The containers of one kind and their members.
#[async_trait]
pub trait ContainerStore<C: Container>: Send + Sync {
    /// Containers ordered by id.
    async fn list(&self, tenant: TenantId, page: &PageRequest) -> StoreResult<Page<Stored<C>>>;
    /// One container.
    async fn get(&self, tenant: TenantId, id: Uuid) -> StoreResult<Stored<C>>;
    /// Creates a container.
    async fn create(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewNamedObject,
    ) -> StoreResult<Written<C>>;
    /// Renames or re-describes a container.
    async fn update(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<C>>;
    /// Deletes a container with its member rows, each logged as its own change. A group
    /// also takes its memberships in other groups and the role and deny assignments made to
    /// it. Assignments scoped to a unit stay (they then cover nothing) and are listed by
    /// scope.
    async fn delete(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<C>>;
    /// Direct members, ordered by member id (groups) or resource path (units).
    async fn list_members(
        &self,
        tenant: TenantId,
        container: Uuid,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<C::Member>>>;
    /// Adds a member (idempotent). A member group must exist in the tenant; a group may
    /// contain itself or an ancestor (cycles are harmless).
    async fn add_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        container: Uuid,
        member: C::NewMember,
    ) -> StoreResult<Written<C::Member>>;
    /// Removes a direct member.
    async fn remove_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        container: Uuid,
        member: &C::MemberKey,
    ) -> StoreResult<Written<C::Member>>;
}

/// The directory objects Rolecall stores: groups (whose nesting it resolves),
/// administrative units (whose members scope assignments), principals (the names and
/// attributes of users and service principals) and resources (what AuthZEN resource search
/// enumerates, and their attributes).
pub trait DirectoryStore: Send + Sync {
    /// Groups and their membership edges.
    fn groups(&self) -> &dyn ContainerStore<Group>;
    /// Administrative units and their member resources.
    fn units(&self) -> &dyn ContainerStore<AdministrativeUnit>;
    /// Users and service principals, with their aliases.
    fn principals(&self) -> &dyn PrincipalStore;
    /// Resources by (type, id), with their paths and attributes.
    fn resources(&self) -> &dyn ResourceStore;
}
