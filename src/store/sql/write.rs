//! The write path. A [`WriteTx`] is one write transaction: it takes the next revision (and
//! with it the lock that serializes writers) before anything else, logs one `changes` row
//! per object it touches, and commits or rolls back as a whole.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};
use uuid::Uuid;

use super::rows::{
    bind_all, get_row, group_member_key, is_unique_violation, key_conditions, now, stored_from_row,
    time_text, to_json, unit_member_key, unprocessable, Arg, Table, DENY_ASSIGNMENTS, GROUPS,
    GROUP_MEMBERS, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS, UNITS, UNIT_MEMBERS,
};
use super::{Backend, NOTIFY_CHANNEL};
use crate::model::{
    AdministrativeUnit, AdministrativeUnitMember, Catalog, ChangeOp, DenyAssignment,
    DenyAssignmentPatch, EntityType, Group, GroupMember, NamedObjectPatch, NewDenyAssignment,
    NewGroupMember, NewNamedObject, NewRoleAssignment, NewRoleDefinition, PrincipalType, Revision,
    RoleAssignment, RoleDefinition, RoleDefinitionPatch, Scope, TenantId, Timestamp,
};
use crate::store::{Actor, StoreError, StoreResult, Stored, Written};

mod canonical;

pub(super) use canonical::canonical_uuid_scopes;

/// What a write did, before it commits.
pub(super) enum Done<T> {
    /// A new object: commit, `created: true`.
    Created(T),
    /// An update or delete: commit, `created: false`.
    Changed(T),
    /// An idempotent create found the object (with its stored revision): roll back, so no
    /// revision is consumed.
    Found(T, Revision),
}

/// One write transaction: the revision is already taken (and locked) when it exists.
pub(super) struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    tenant: TenantId,
    actor: Actor,
    revision: Revision,
    now: Timestamp,
    sequence: i64,
}

impl WriteTx {
    pub(super) async fn begin(
        pool: &AnyPool,
        backend: Backend,
        tenant: TenantId,
        actor: &Actor,
    ) -> StoreResult<WriteTx> {
        let mut tx = pool.begin_with(backend.begin_write()).await?;
        // INVARIANT: the first statement of every write. On PostgreSQL it takes the row
        // lock that serializes writers until commit (so revisions commit in order); on
        // SQLite the write lock is already held. Every later read sees every earlier write.
        let value: i64 =
            sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value")
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let now = now();
        sqlx::query(
            "INSERT INTO tenants (tenant_id, created_revision, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant.to_string())
        .bind(value)
        .bind(time_text(now))
        .execute(&mut *tx)
        .await?;
        Ok(WriteTx {
            tx,
            backend,
            tenant,
            actor: actor.clone(),
            revision: Revision(value),
            now,
            sequence: 0,
        })
    }

    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Commits what `result` wrote, or rolls back (on errors and on `Found`).
    pub(super) async fn finish<T>(self, result: StoreResult<Done<T>>) -> StoreResult<Written<T>> {
        match result {
            Ok(Done::Created(value)) => Ok(Written {
                value,
                revision: self.commit().await?,
                created: true,
            }),
            Ok(Done::Changed(value)) => Ok(Written {
                value,
                revision: self.commit().await?,
                created: false,
            }),
            Ok(Done::Found(value, revision)) => {
                self.rollback().await;
                Ok(Written {
                    value,
                    revision,
                    created: false,
                })
            }
            Err(error) => {
                self.rollback().await;
                Err(error)
            }
        }
    }

    async fn commit(mut self) -> StoreResult<Revision> {
        if self.backend == Backend::Postgres {
            // Delivered on commit, in commit order; dropped if the transaction rolls back.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(self.revision.to_string())
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(self.revision)
    }

    async fn rollback(self) {
        // Rolled back explicitly so SQLite's write lock is released now, not when the
        // connection is next used.
        if let Err(error) = self.tx.rollback().await {
            tracing::warn!(%error, "rollback failed");
        }
    }

    /// Appends one `changes` row for this write.
    async fn log<T: Serialize>(
        &mut self,
        entity: EntityType,
        entity_id: String,
        op: ChangeOp,
        before: Option<&T>,
        after: Option<&T>,
    ) -> StoreResult<()> {
        let before = before.map(to_json).transpose()?;
        let after = after.map(to_json).transpose()?;
        sqlx::query(
            "INSERT INTO changes (revision, sequence, tenant_id, entity_type, entity_id, op, before, after, actor, at, actor_issuer) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(self.revision.0)
        .bind(self.sequence)
        .bind(self.tenant.to_string())
        .bind(entity.as_str())
        .bind(entity_id)
        .bind(op.as_str())
        .bind(before)
        .bind(after)
        .bind(self.actor.id().to_owned())
        .bind(time_text(self.now))
        .bind(self.actor.issuer().map(str::to_owned))
        .execute(&mut *self.tx)
        .await?;
        self.sequence += 1;
        Ok(())
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &mut self,
        table: Table,
        keys: &[(&str, Arg)],
    ) -> StoreResult<Option<Stored<T>>> {
        let tenant = self.tenant;
        get_row(self.conn(), table, tenant, keys).await
    }

    /// The row, or `NotFound`; then the `If-Match` check against its revision.
    async fn get_for_write<T: DeserializeOwned>(
        &mut self,
        table: Table,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<T> {
        let stored: Stored<T> = self
            .get(table, &[("id", Arg::id(id))])
            .await?
            .ok_or_else(|| table.not_found(id))?;
        check_if_match(if_match, stored.revision)?;
        Ok(stored.value)
    }

    /// Inserts a row: the tenant, `columns` (keys and filter columns), this revision and
    /// the body.
    async fn insert(
        &mut self,
        table: Table,
        columns: &[(&str, Arg)],
        body: &impl Serialize,
    ) -> StoreResult<()> {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let placeholders: Vec<String> = (1..=columns.len() + 3).map(|n| format!("${n}")).collect();
        let sql = format!(
            "INSERT INTO {} (tenant_id, {}, revision, body) VALUES ({})",
            table.name,
            names.join(", "),
            placeholders.join(", ")
        );
        let mut args = vec![Arg::tenant(self.tenant)];
        args.extend(columns.iter().map(|(_, arg)| arg.clone()));
        args.push(Arg::Int(self.revision.0));
        args.push(Arg::Text(to_json(body)?));
        bind_all(sqlx::query(&sql), &args)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Rewrites the row with key `id`: `columns`, this revision and the body.
    async fn update(
        &mut self,
        table: Table,
        id: Uuid,
        columns: &[(&str, Arg)],
        body: &impl Serialize,
    ) -> StoreResult<()> {
        let mut sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("{name} = ${}", i + 3))
            .collect();
        sets.push(format!("revision = ${}", columns.len() + 3));
        sets.push(format!("body = ${}", columns.len() + 4));
        let sql = format!(
            "UPDATE {} SET {} WHERE tenant_id = $1 AND id = $2",
            table.name,
            sets.join(", ")
        );
        let mut args = vec![Arg::tenant(self.tenant), Arg::id(id)];
        args.extend(columns.iter().map(|(_, arg)| arg.clone()));
        args.push(Arg::Int(self.revision.0));
        args.push(Arg::Text(to_json(body)?));
        bind_all(sqlx::query(&sql), &args)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn delete(&mut self, table: Table, keys: &[(&str, Arg)]) -> StoreResult<()> {
        let sql = format!(
            "DELETE FROM {} WHERE tenant_id = $1 AND {}",
            table.name,
            key_conditions(keys, 2)
        );
        let mut args = vec![Arg::tenant(self.tenant)];
        args.extend(keys.iter().map(|(_, arg)| arg.clone()));
        bind_all(sqlx::query(&sql), &args)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Deletes one row and logs its `delete` change with the object as it stood.
    async fn delete_logged<T: Serialize>(
        &mut self,
        table: Table,
        keys: &[(&str, Arg)],
        entity_id: String,
        before: &T,
    ) -> StoreResult<()> {
        self.delete(table, keys).await?;
        self.log(
            table.entity,
            entity_id,
            ChangeOp::Delete,
            Some(before),
            None,
        )
        .await
    }

    /// Every row of `table` in this tenant where `column` equals `value`, ordered by `order`.
    async fn select_where<T: DeserializeOwned>(
        &mut self,
        table: Table,
        condition: &str,
        value: Arg,
        order: &str,
    ) -> StoreResult<Vec<T>> {
        let sql = format!(
            "SELECT revision, body FROM {} WHERE tenant_id = $1 AND {condition} ORDER BY {order}",
            table.name
        );
        let args = [Arg::tenant(self.tenant), value];
        let rows = bind_all(sqlx::query(&sql), &args)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| stored_from_row(table, row, 0).map(|s: Stored<T>| s.value))
            .collect()
    }

    // --- role definitions ---

    /// The display name must not be a built-in's or another custom role's (ignoring case).
    async fn check_role_name(
        &mut self,
        catalog: &Catalog,
        name: &str,
        except: Option<Uuid>,
    ) -> StoreResult<()> {
        if catalog.by_display_name(name).is_some() {
            return Err(StoreError::Conflict(format!(
                "`{name}` is the display name of a built-in role; choose another"
            )));
        }
        let sql = "SELECT id FROM role_definitions WHERE tenant_id = $1 AND display_name_key = $2";
        let taken: Option<String> = sqlx::query(sql)
            .bind(self.tenant.to_string())
            .bind(name.to_lowercase())
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        match taken {
            Some(id) if Some(id.as_str()) != except.map(|e| e.to_string()).as_deref() => {
                Err(name_taken(name))
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn create_role(
        &mut self,
        catalog: &Catalog,
        new: NewRoleDefinition,
    ) -> StoreResult<Done<RoleDefinition>> {
        self.check_role_name(catalog, &new.display_name, None)
            .await?;
        let id = Uuid::new_v4();
        let role = RoleDefinition {
            id,
            display_name: new.display_name,
            description: new.description,
            is_built_in: false,
            is_enabled: new.is_enabled,
            template_id: id,
            version: 1,
            role_permissions: new.role_permissions,
            assignable_scopes: new.assignable_scopes,
            created_date_time: Some(self.now),
            last_modified_date_time: Some(self.now),
        };
        let columns = role_columns(&role);
        let columns = [("id", Arg::id(id)), columns[0].clone(), columns[1].clone()];
        self.insert(ROLE_DEFINITIONS, &columns, &role)
            .await
            .map_err(|error| name_conflict(error, &role.display_name))?;
        self.log(
            ROLE_DEFINITIONS.entity,
            id.to_string(),
            ChangeOp::Create,
            None,
            Some(&role),
        )
        .await?;
        Ok(Done::Created(role))
    }

    pub(super) async fn update_role(
        &mut self,
        catalog: &Catalog,
        id: Uuid,
        patch: RoleDefinitionPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<RoleDefinition>> {
        let before: RoleDefinition = self.get_for_write(ROLE_DEFINITIONS, id, if_match).await?;
        let mut after = before.clone();
        if let Some(name) = patch.display_name {
            if name.to_lowercase() != before.display_name.to_lowercase() {
                self.check_role_name(catalog, &name, Some(id)).await?;
            }
            after.display_name = name;
        }
        if let Some(description) = patch.description {
            after.description = description;
        }
        if let Some(is_enabled) = patch.is_enabled {
            after.is_enabled = is_enabled;
        }
        if let Some(permissions) = patch.role_permissions {
            after.role_permissions = permissions;
        }
        if let Some(scopes) = patch.assignable_scopes {
            after.assignable_scopes = scopes;
        }
        after.version = before.version + 1;
        after.last_modified_date_time = Some(self.now);
        self.update(ROLE_DEFINITIONS, id, &role_columns(&after), &after)
            .await
            .map_err(|error| name_conflict(error, &after.display_name))?;
        self.log(
            ROLE_DEFINITIONS.entity,
            id.to_string(),
            ChangeOp::Update,
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(Done::Changed(after))
    }

    pub(super) async fn delete_role(
        &mut self,
        id: Uuid,
        cascade: bool,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<RoleDefinition>> {
        let role: RoleDefinition = self.get_for_write(ROLE_DEFINITIONS, id, if_match).await?;
        let assignments: Vec<RoleAssignment> = self
            .select_where(
                ROLE_ASSIGNMENTS,
                "role_definition_id = $2",
                Arg::id(id),
                "id",
            )
            .await?;
        if !assignments.is_empty() && !cascade {
            let n = assignments.len();
            let noun = if n == 1 { "assignment" } else { "assignments" };
            return Err(StoreError::Conflict(format!(
                "role `{id}` still has {n} {noun}; delete them first or pass cascade=true"
            )));
        }
        for assignment in &assignments {
            self.delete_assignment_row(assignment).await?;
        }
        self.delete_logged(
            ROLE_DEFINITIONS,
            &[("id", Arg::id(id))],
            id.to_string(),
            &role,
        )
        .await?;
        Ok(Done::Changed(role))
    }

    // --- role assignments ---

    pub(super) async fn create_assignment(
        &mut self,
        role: Option<Stored<RoleDefinition>>,
        new: NewRoleAssignment,
    ) -> StoreResult<Done<RoleAssignment>> {
        let natural_key = [
            ("principal_id", Arg::id(new.principal_id)),
            ("role_definition_id", Arg::id(new.role_definition_id)),
            (
                "directory_scope_id",
                Arg::Text(new.directory_scope_id.to_string()),
            ),
        ];
        if let Some(existing) = self
            .get::<RoleAssignment>(ROLE_ASSIGNMENTS, &natural_key)
            .await?
        {
            return Ok(Done::Found(existing.value, existing.revision));
        }
        let role = role.ok_or_else(|| {
            unprocessable(
                "/roleDefinitionId",
                format!(
                    "role definition `{}` does not exist in this tenant",
                    new.role_definition_id
                ),
            )
        })?;
        if !role.value.assignable_at(&new.directory_scope_id) {
            let scopes: Vec<&str> = role
                .value
                .assignable_scopes
                .iter()
                .map(Scope::as_str)
                .collect();
            return Err(unprocessable(
                "/directoryScopeId",
                format!(
                    "role `{}` is not assignable at `{}`; its assignable scopes are `{}`",
                    role.value.display_name,
                    new.directory_scope_id,
                    scopes.join("`, `")
                ),
            ));
        }
        let assignment = RoleAssignment {
            id: Uuid::new_v4(),
            principal_id: new.principal_id,
            principal_type: new.principal_type,
            role_definition_id: new.role_definition_id,
            directory_scope_id: new.directory_scope_id,
            start_date_time: new.start_date_time,
            end_date_time: new.end_date_time,
            created_date_time: self.now,
        };
        let mut columns = vec![("id", Arg::id(assignment.id))];
        columns.extend(natural_key);
        self.insert(ROLE_ASSIGNMENTS, &columns, &assignment)
            .await
            .map_err(|error| match error {
                // Writers are serialized, so this means a bug, not a race; say so plainly.
                StoreError::Unavailable(e) if is_unique_violation(&e) => StoreError::Conflict(
                    "this principal already holds this role at this scope".to_owned(),
                ),
                other => other,
            })?;
        self.log(
            ROLE_ASSIGNMENTS.entity,
            assignment.id.to_string(),
            ChangeOp::Create,
            None,
            Some(&assignment),
        )
        .await?;
        Ok(Done::Created(assignment))
    }

    async fn delete_assignment_row(&mut self, assignment: &RoleAssignment) -> StoreResult<()> {
        self.delete_logged(
            ROLE_ASSIGNMENTS,
            &[("id", Arg::id(assignment.id))],
            assignment.id.to_string(),
            assignment,
        )
        .await
    }

    pub(super) async fn delete_assignment(
        &mut self,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<RoleAssignment>> {
        let assignment: RoleAssignment = self.get_for_write(ROLE_ASSIGNMENTS, id, if_match).await?;
        self.delete_assignment_row(&assignment).await?;
        Ok(Done::Changed(assignment))
    }

    // --- deny assignments ---

    pub(super) async fn create_deny(
        &mut self,
        new: NewDenyAssignment,
    ) -> StoreResult<Done<DenyAssignment>> {
        let deny = DenyAssignment {
            id: Uuid::new_v4(),
            display_name: new.display_name,
            description: new.description,
            principal_id: new.principal_id,
            principal_type: new.principal_type,
            actions: new.actions,
            excluded_actions: new.excluded_actions,
            directory_scope_id: new.directory_scope_id,
            created_date_time: self.now,
            last_modified_date_time: self.now,
        };
        let columns = [
            ("id", Arg::id(deny.id)),
            ("principal_id", Arg::id(deny.principal_id)),
        ];
        self.insert(DENY_ASSIGNMENTS, &columns, &deny).await?;
        self.log(
            DENY_ASSIGNMENTS.entity,
            deny.id.to_string(),
            ChangeOp::Create,
            None,
            Some(&deny),
        )
        .await?;
        Ok(Done::Created(deny))
    }

    pub(super) async fn update_deny(
        &mut self,
        id: Uuid,
        patch: DenyAssignmentPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<DenyAssignment>> {
        let before: DenyAssignment = self.get_for_write(DENY_ASSIGNMENTS, id, if_match).await?;
        let mut after = before.clone();
        if let Some(name) = patch.display_name {
            after.display_name = name;
        }
        if let Some(description) = patch.description {
            after.description = description;
        }
        if let Some(actions) = patch.actions {
            after.actions = actions;
        }
        if let Some(excluded) = patch.excluded_actions {
            after.excluded_actions = excluded;
        }
        after.last_modified_date_time = self.now;
        self.update(DENY_ASSIGNMENTS, id, &[], &after).await?;
        self.log(
            DENY_ASSIGNMENTS.entity,
            id.to_string(),
            ChangeOp::Update,
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(Done::Changed(after))
    }

    async fn delete_deny_row(&mut self, deny: &DenyAssignment) -> StoreResult<()> {
        self.delete_logged(
            DENY_ASSIGNMENTS,
            &[("id", Arg::id(deny.id))],
            deny.id.to_string(),
            deny,
        )
        .await
    }

    pub(super) async fn delete_deny(
        &mut self,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<DenyAssignment>> {
        let deny: DenyAssignment = self.get_for_write(DENY_ASSIGNMENTS, id, if_match).await?;
        self.delete_deny_row(&deny).await?;
        Ok(Done::Changed(deny))
    }

    // --- groups and administrative units (same shape: a named object) ---

    pub(super) async fn create_named<T: Named>(
        &mut self,
        table: Table,
        new: NewNamedObject,
    ) -> StoreResult<Done<T>> {
        let object = T::new(Uuid::new_v4(), new, self.now);
        self.insert(table, &[("id", Arg::id(object.id()))], &object)
            .await?;
        self.log(
            table.entity,
            object.id().to_string(),
            ChangeOp::Create,
            None,
            Some(&object),
        )
        .await?;
        Ok(Done::Created(object))
    }

    pub(super) async fn update_named<T: Named>(
        &mut self,
        table: Table,
        id: Uuid,
        patch: NamedObjectPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<T>> {
        let before: T = self.get_for_write(table, id, if_match).await?;
        let after = before.patched(patch, self.now);
        self.update(table, id, &[], &after).await?;
        self.log(
            table.entity,
            id.to_string(),
            ChangeOp::Update,
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(Done::Changed(after))
    }

    pub(super) async fn delete_group(
        &mut self,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<Group>> {
        let group: Group = self.get_for_write(GROUPS, id, if_match).await?;
        // Edges in both directions (a self-edge once), then assignments to the group.
        let edges: Vec<GroupMember> = self
            .select_where(
                GROUP_MEMBERS,
                "(group_id = $2 OR member_id = $2)",
                Arg::id(id),
                "group_id, member_id",
            )
            .await?;
        for edge in &edges {
            self.delete_group_member_row(edge).await?;
        }
        let assignments: Vec<RoleAssignment> = self
            .select_where(ROLE_ASSIGNMENTS, "principal_id = $2", Arg::id(id), "id")
            .await?;
        for assignment in &assignments {
            self.delete_assignment_row(assignment).await?;
        }
        let denies: Vec<DenyAssignment> = self
            .select_where(DENY_ASSIGNMENTS, "principal_id = $2", Arg::id(id), "id")
            .await?;
        for deny in &denies {
            self.delete_deny_row(deny).await?;
        }
        self.delete_logged(GROUPS, &[("id", Arg::id(id))], id.to_string(), &group)
            .await?;
        Ok(Done::Changed(group))
    }

    pub(super) async fn add_group_member(
        &mut self,
        group: Uuid,
        new: NewGroupMember,
    ) -> StoreResult<Done<GroupMember>> {
        if self
            .get::<Group>(GROUPS, &[("id", Arg::id(group))])
            .await?
            .is_none()
        {
            return Err(GROUPS.not_found(group));
        }
        let key = [("group_id", Arg::id(group)), ("member_id", Arg::id(new.id))];
        if let Some(existing) = self.get::<GroupMember>(GROUP_MEMBERS, &key).await? {
            return Ok(Done::Found(existing.value, existing.revision));
        }
        if new.member_type == PrincipalType::Group
            && self
                .get::<Group>(GROUPS, &[("id", Arg::id(new.id))])
                .await?
                .is_none()
        {
            return Err(unprocessable(
                "/id",
                format!("group `{}` does not exist in this tenant", new.id),
            ));
        }
        let member = GroupMember {
            group_id: group,
            id: new.id,
            member_type: new.member_type,
            created_date_time: self.now,
        };
        self.insert(GROUP_MEMBERS, &key, &member).await?;
        self.log(
            GROUP_MEMBERS.entity,
            group_member_key(group, new.id),
            ChangeOp::Create,
            None,
            Some(&member),
        )
        .await?;
        Ok(Done::Created(member))
    }

    async fn delete_group_member_row(&mut self, member: &GroupMember) -> StoreResult<()> {
        let key = [
            ("group_id", Arg::id(member.group_id)),
            ("member_id", Arg::id(member.id)),
        ];
        self.delete_logged(
            GROUP_MEMBERS,
            &key,
            group_member_key(member.group_id, member.id),
            member,
        )
        .await
    }

    pub(super) async fn remove_group_member(
        &mut self,
        group: Uuid,
        member: Uuid,
    ) -> StoreResult<Done<GroupMember>> {
        if self
            .get::<Group>(GROUPS, &[("id", Arg::id(group))])
            .await?
            .is_none()
        {
            return Err(GROUPS.not_found(group));
        }
        let key = [("group_id", Arg::id(group)), ("member_id", Arg::id(member))];
        let edge: GroupMember = self
            .get(GROUP_MEMBERS, &key)
            .await?
            .ok_or_else(|| GROUP_MEMBERS.not_found(group_member_key(group, member)))?
            .value;
        self.delete_group_member_row(&edge).await?;
        Ok(Done::Changed(edge))
    }

    pub(super) async fn delete_unit(
        &mut self,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<AdministrativeUnit>> {
        let unit: AdministrativeUnit = self.get_for_write(UNITS, id, if_match).await?;
        let members: Vec<AdministrativeUnitMember> = self
            .select_where(UNIT_MEMBERS, "unit_id = $2", Arg::id(id), "resource")
            .await?;
        for member in &members {
            self.delete_unit_member_row(member).await?;
        }
        self.delete_logged(UNITS, &[("id", Arg::id(id))], id.to_string(), &unit)
            .await?;
        Ok(Done::Changed(unit))
    }

    pub(super) async fn add_unit_member(
        &mut self,
        unit: Uuid,
        resource: Scope,
    ) -> StoreResult<Done<AdministrativeUnitMember>> {
        if self
            .get::<AdministrativeUnit>(UNITS, &[("id", Arg::id(unit))])
            .await?
            .is_none()
        {
            return Err(UNITS.not_found(unit));
        }
        let key = [
            ("unit_id", Arg::id(unit)),
            ("resource", Arg::Text(resource.to_string())),
        ];
        if let Some(existing) = self
            .get::<AdministrativeUnitMember>(UNIT_MEMBERS, &key)
            .await?
        {
            return Ok(Done::Found(existing.value, existing.revision));
        }
        let member = AdministrativeUnitMember {
            administrative_unit_id: unit,
            resource,
            created_date_time: self.now,
        };
        self.insert(UNIT_MEMBERS, &key, &member).await?;
        self.log(
            UNIT_MEMBERS.entity,
            unit_member_key(unit, &member.resource),
            ChangeOp::Create,
            None,
            Some(&member),
        )
        .await?;
        Ok(Done::Created(member))
    }

    async fn delete_unit_member_row(
        &mut self,
        member: &AdministrativeUnitMember,
    ) -> StoreResult<()> {
        let key = [
            ("unit_id", Arg::id(member.administrative_unit_id)),
            ("resource", Arg::Text(member.resource.to_string())),
        ];
        self.delete_logged(
            UNIT_MEMBERS,
            &key,
            unit_member_key(member.administrative_unit_id, &member.resource),
            member,
        )
        .await
    }

    pub(super) async fn remove_unit_member(
        &mut self,
        unit: Uuid,
        resource: &Scope,
    ) -> StoreResult<Done<AdministrativeUnitMember>> {
        if self
            .get::<AdministrativeUnit>(UNITS, &[("id", Arg::id(unit))])
            .await?
            .is_none()
        {
            return Err(UNITS.not_found(unit));
        }
        let key = [
            ("unit_id", Arg::id(unit)),
            ("resource", Arg::Text(resource.to_string())),
        ];
        let member: AdministrativeUnitMember = self
            .get(UNIT_MEMBERS, &key)
            .await?
            .ok_or_else(|| UNIT_MEMBERS.not_found(unit_member_key(unit, resource)))?
            .value;
        self.delete_unit_member_row(&member).await?;
        Ok(Done::Changed(member))
    }
}

pub(super) fn check_if_match(if_match: Option<Revision>, current: Revision) -> StoreResult<()> {
    match if_match {
        Some(expected) if expected != current => Err(StoreError::PreconditionFailed {
            current: current.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The role columns besides `id`: the case-folded name (unique per tenant, searched) and
/// the enabled flag (filtered).
pub(super) fn role_columns(role: &RoleDefinition) -> [(&'static str, Arg); 2] {
    [
        (
            "display_name_key",
            Arg::Text(role.display_name.to_lowercase()),
        ),
        ("is_enabled", Arg::Bool(role.is_enabled)),
    ]
}

pub(super) fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a role named `{name}` already exists in this tenant"
    ))
}

/// A unique violation on a role write can only be the display name.
pub(super) fn name_conflict(error: StoreError, name: &str) -> StoreError {
    match error {
        StoreError::Unavailable(e) if is_unique_violation(&e) => name_taken(name),
        other => other,
    }
}

/// Groups and administrative units: a named object with the same lifecycle.
pub(super) trait Named: Serialize + DeserializeOwned + Clone + Send {
    fn new(id: Uuid, new: NewNamedObject, now: Timestamp) -> Self;
    fn id(&self) -> Uuid;
    fn patched(&self, patch: NamedObjectPatch, now: Timestamp) -> Self;
}

impl Named for Group {
    fn new(id: Uuid, new: NewNamedObject, now: Timestamp) -> Self {
        Group {
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
        Group {
            display_name: patch
                .display_name
                .unwrap_or_else(|| self.display_name.clone()),
            description: patch
                .description
                .unwrap_or_else(|| self.description.clone()),
            last_modified_date_time: now,
            ..self.clone()
        }
    }
}

impl Named for AdministrativeUnit {
    fn new(id: Uuid, new: NewNamedObject, now: Timestamp) -> Self {
        AdministrativeUnit {
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
        AdministrativeUnit {
            display_name: patch
                .display_name
                .unwrap_or_else(|| self.display_name.clone()),
            description: patch
                .description
                .unwrap_or_else(|| self.description.clone()),
            last_modified_date_time: now,
            ..self.clone()
        }
    }
}
