//! [`DirectoryStore`] in SQL: one generic path for groups and administrative units. What a
//! kind differs in is said once, by its [`SqlContainer`] implementation: its tables (typed,
//! so a group is only ever read from `groups` and its edges from `group_members`), how a
//! member row is keyed, and what a delete takes with it.

use std::future::Future;

use async_trait::async_trait;
use uuid::Uuid;

use super::rows::{
    get_row, list_page, unprocessable, Arg, Filter, Key, KeyKind, Table, DENY_ASSIGNMENTS, GROUPS,
    GROUP_MEMBERS, ROLE_ASSIGNMENTS, UNITS, UNIT_MEMBERS,
};
use super::write::{Done, WriteTx};
use super::SqlStore;
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, DenyAssignment, Group, GroupMember,
    NamedObjectPatch, NewGroupMember, NewNamedObject, PrincipalType, Revision, RoleAssignment,
    Scope, TenantId, Timestamp,
};
use crate::store::{
    Actor, Container, ContainerStore, DirectoryStore, Page, PageRequest, PrincipalStore,
    ResourceStore, StoreResult, Stored, Written,
};

/// How one kind of container is stored.
pub(super) trait SqlContainer: Container {
    /// The containers.
    const TABLE: Table<Self>;
    /// Their members.
    const MEMBERS: Table<Self::Member>;
    /// The member table's column naming the container.
    const PARENT: &'static str;
    /// The member table's column naming a member within its container, and what its
    /// cursor keys look like.
    const MEMBER: (&'static str, KeyKind);

    /// The member row `new` makes in container `parent`, added at `now`.
    fn new_member(parent: Uuid, new: Self::NewMember, now: Timestamp) -> Self::Member;
    /// The container a member row belongs to, and its key there.
    fn member_key(member: &Self::Member) -> (Uuid, &Self::MemberKey);
    /// The member column's value for `key`.
    fn member_arg(key: &Self::MemberKey) -> Arg;
    /// A member's `changes.entity_id`.
    fn member_entity_id(parent: Uuid, key: &Self::MemberKey) -> String;
    /// Refuses a member that cannot be added.
    fn check_new_member(
        w: &mut WriteTx,
        member: &Self::Member,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes, each logged, container `id`'s member rows and whatever else goes with it.
    fn delete_dependents(w: &mut WriteTx, id: Uuid)
        -> impl Future<Output = StoreResult<()>> + Send;
}

impl SqlContainer for Group {
    const TABLE: Table<Group> = GROUPS;
    const MEMBERS: Table<GroupMember> = GROUP_MEMBERS;
    const PARENT: &'static str = "group_id";
    const MEMBER: (&'static str, KeyKind) = ("member_id", KeyKind::Uuid);

    fn new_member(parent: Uuid, new: NewGroupMember, now: Timestamp) -> GroupMember {
        GroupMember {
            group_id: parent,
            id: new.id,
            member_type: new.member_type,
            created_date_time: now,
        }
    }

    fn member_key(member: &GroupMember) -> (Uuid, &Uuid) {
        (member.group_id, &member.id)
    }

    fn member_arg(key: &Uuid) -> Arg {
        Arg::id(*key)
    }

    fn member_entity_id(parent: Uuid, key: &Uuid) -> String {
        format!("{parent}/{key}")
    }

    /// A member group must exist in the tenant (users and service principals are not
    /// stored). A group may contain itself or an ancestor: cycles are harmless.
    async fn check_new_member(w: &mut WriteTx, member: &GroupMember) -> StoreResult<()> {
        if member.member_type == PrincipalType::Group
            && w.get(GROUPS, &[("id", Arg::id(member.id))])
                .await?
                .is_none()
        {
            return Err(unprocessable(
                "/id",
                format!("group `{}` does not exist in this tenant", member.id),
            ));
        }
        Ok(())
    }

    /// Edges in both directions (a self-edge once), then the role and deny assignments
    /// made to the group.
    async fn delete_dependents(w: &mut WriteTx, id: Uuid) -> StoreResult<()> {
        let edges: Vec<GroupMember> = w
            .select_where(
                GROUP_MEMBERS,
                Filter::EitherEq("group_id", "member_id", Arg::id(id)),
                "group_id, member_id",
            )
            .await?;
        for edge in &edges {
            w.delete_member_row::<Group>(edge).await?;
        }
        let assignments: Vec<RoleAssignment> = w
            .select_where(
                ROLE_ASSIGNMENTS,
                Filter::Eq("principal_id", Arg::id(id)),
                "id",
            )
            .await?;
        for assignment in &assignments {
            w.delete_assignment_row(assignment).await?;
        }
        let denies: Vec<DenyAssignment> = w
            .select_where(
                DENY_ASSIGNMENTS,
                Filter::Eq("principal_id", Arg::id(id)),
                "id",
            )
            .await?;
        for deny in &denies {
            w.delete_deny_row(deny).await?;
        }
        Ok(())
    }
}

impl SqlContainer for AdministrativeUnit {
    const TABLE: Table<AdministrativeUnit> = UNITS;
    const MEMBERS: Table<AdministrativeUnitMember> = UNIT_MEMBERS;
    const PARENT: &'static str = "unit_id";
    const MEMBER: (&'static str, KeyKind) = ("resource", KeyKind::Scope);

    fn new_member(parent: Uuid, resource: Scope, now: Timestamp) -> AdministrativeUnitMember {
        AdministrativeUnitMember {
            administrative_unit_id: parent,
            resource,
            created_date_time: now,
        }
    }

    fn member_key(member: &AdministrativeUnitMember) -> (Uuid, &Scope) {
        (member.administrative_unit_id, &member.resource)
    }

    fn member_arg(key: &Scope) -> Arg {
        Arg::Text(key.to_string())
    }

    fn member_entity_id(parent: Uuid, key: &Scope) -> String {
        format!("{parent}{key}")
    }

    /// Any resource path may be a member.
    async fn check_new_member(_: &mut WriteTx, _: &AdministrativeUnitMember) -> StoreResult<()> {
        Ok(())
    }

    /// The member rows only: assignments scoped to the unit stay.
    async fn delete_dependents(w: &mut WriteTx, id: Uuid) -> StoreResult<()> {
        let members: Vec<AdministrativeUnitMember> = w
            .select_where(UNIT_MEMBERS, Filter::Eq("unit_id", Arg::id(id)), "resource")
            .await?;
        for member in &members {
            w.delete_member_row::<AdministrativeUnit>(member).await?;
        }
        Ok(())
    }
}

/// The key columns of a member row.
fn member_keys<C: SqlContainer>(parent: Uuid, key: &C::MemberKey) -> [Key; 2] {
    [
        (C::PARENT, Arg::id(parent)),
        (C::MEMBER.0, C::member_arg(key)),
    ]
}

impl DirectoryStore for SqlStore {
    fn groups(&self) -> &dyn ContainerStore<Group> {
        self
    }

    fn units(&self) -> &dyn ContainerStore<AdministrativeUnit> {
        self
    }

    fn principals(&self) -> &dyn PrincipalStore {
        self
    }

    fn resources(&self) -> &dyn ResourceStore {
        self
    }
}

#[async_trait]
impl<C: SqlContainer> ContainerStore<C> for SqlStore {
    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn list(&self, tenant: TenantId, page: &PageRequest) -> StoreResult<Page<Stored<C>>> {
        self.list_by_id(C::TABLE, tenant, &[], page).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn get(&self, tenant: TenantId, id: Uuid) -> StoreResult<Stored<C>> {
        self.get_by_id(C::TABLE, tenant, id).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn create(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewNamedObject,
    ) -> StoreResult<Written<C>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_container(new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn update(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<C>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_container(id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn delete(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<C>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_container(id, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn list_members(
        &self,
        tenant: TenantId,
        container: Uuid,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<C::Member>>> {
        let mut conn = self.conn().await?;
        if get_row(&mut conn, C::TABLE, tenant, &[("id", Arg::id(container))])
            .await?
            .is_none()
        {
            return Err(C::TABLE.not_found(container));
        }
        let filters = [Filter::Eq(C::PARENT, Arg::id(container))];
        list_page(&mut conn, C::MEMBERS, C::MEMBER, tenant, &filters, page).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn add_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        container: Uuid,
        member: C::NewMember,
    ) -> StoreResult<Written<C::Member>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.add_member::<C>(container, member).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = C::TABLE.name))]
    async fn remove_member(
        &self,
        tenant: TenantId,
        actor: &Actor,
        container: Uuid,
        member: &C::MemberKey,
    ) -> StoreResult<Written<C::Member>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.remove_member::<C>(container, member).await;
        w.finish(result).await
    }
}

impl WriteTx {
    async fn create_container<C: SqlContainer>(
        &mut self,
        new: NewNamedObject,
    ) -> StoreResult<Done<C>> {
        let container = C::new(Uuid::new_v4(), new, self.now);
        let id = container.id();
        self.insert(C::TABLE, &[("id", Arg::id(id))], &container)
            .await?;
        self.log_created(C::TABLE, id.to_string(), &container)
            .await?;
        Ok(Done::Created(container))
    }

    async fn update_container<C: SqlContainer>(
        &mut self,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<C>> {
        let before = self.get_for_write(C::TABLE, id, if_match).await?;
        let after = before.patched(patch, self.now);
        self.update(C::TABLE, id, &[], &after).await?;
        self.log_updated(C::TABLE, id.to_string(), &before, &after)
            .await?;
        Ok(Done::Changed(after))
    }

    async fn delete_container<C: SqlContainer>(
        &mut self,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<C>> {
        let container = self.get_for_write(C::TABLE, id, if_match).await?;
        C::delete_dependents(self, id).await?;
        self.delete_by_id(C::TABLE, id, &container).await?;
        Ok(Done::Changed(container))
    }

    /// `NotFound` unless container `id` exists in this tenant.
    async fn require_container<C: SqlContainer>(&mut self, id: Uuid) -> StoreResult<()> {
        match self.get(C::TABLE, &[("id", Arg::id(id))]).await? {
            Some(_) => Ok(()),
            None => Err(C::TABLE.not_found(id)),
        }
    }

    async fn add_member<C: SqlContainer>(
        &mut self,
        parent: Uuid,
        new: C::NewMember,
    ) -> StoreResult<Done<C::Member>> {
        self.require_container::<C>(parent).await?;
        let member = C::new_member(parent, new, self.now);
        let (_, key) = C::member_key(&member);
        let keys = member_keys::<C>(parent, key);
        if let Some(existing) = self.get(C::MEMBERS, &keys).await? {
            return Ok(Done::Found(existing.value, existing.revision));
        }
        C::check_new_member(self, &member).await?;
        self.insert(C::MEMBERS, &keys, &member).await?;
        let entity_id = C::member_entity_id(parent, key);
        self.log_created(C::MEMBERS, entity_id, &member).await?;
        Ok(Done::Created(member))
    }

    async fn remove_member<C: SqlContainer>(
        &mut self,
        parent: Uuid,
        key: &C::MemberKey,
    ) -> StoreResult<Done<C::Member>> {
        self.require_container::<C>(parent).await?;
        let member = self
            .get(C::MEMBERS, &member_keys::<C>(parent, key))
            .await?
            .ok_or_else(|| C::MEMBERS.not_found(C::member_entity_id(parent, key)))?
            .value;
        self.delete_member_row::<C>(&member).await?;
        Ok(Done::Changed(member))
    }

    /// Deletes one member row and logs it.
    async fn delete_member_row<C: SqlContainer>(&mut self, member: &C::Member) -> StoreResult<()> {
        let (parent, key) = C::member_key(member);
        let keys = member_keys::<C>(parent, key);
        let entity_id = C::member_entity_id(parent, key);
        self.delete_logged(C::MEMBERS, &keys, entity_id, member)
            .await
    }
}
