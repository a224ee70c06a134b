//! [`RoleStore`] in SQL: custom roles in `role_definitions`, built-ins merged in from the
//! catalog (they are never stored).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::rows::{
    builtin_stored, decode_cursor, fetch_keyed, get_row, into_page, is_unique_violation,
    page_limit, Arg, Filter, Key, KeyKind, ELIGIBILITIES, POLICIES, ROLE_ASSIGNMENTS,
    ROLE_DEFINITIONS,
};
use super::write::{Done, WriteTx};
use super::SqlStore;
use crate::model::{
    Catalog, CloneRole, NewRoleDefinition, Revision, RoleAssignment, RoleDefinition,
    RoleDefinitionPatch, RoleEligibilitySchedule, TenantId,
};
use crate::store::{
    Actor, Page, PageRequest, RoleDefinitionFilter, RoleStore, StoreError, StoreResult, Stored,
    Written,
};

impl SqlStore {
    /// A role by id: the built-in with that id, else the tenant's custom role.
    pub(super) async fn find_role(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Option<Stored<RoleDefinition>>> {
        if let Some(builtin) = self.catalog.get(id) {
            return Ok(Some(builtin_stored(builtin)));
        }
        get_row(conn, ROLE_DEFINITIONS, tenant, &[("id", Arg::id(id))]).await
    }
}

#[async_trait]
impl RoleStore for SqlStore {
    fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_role_definitions(
        &self,
        tenant: TenantId,
        filter: &RoleDefinitionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleDefinition>>> {
        let after = page
            .cursor
            .as_deref()
            .map(|cursor| decode_cursor(cursor, KeyKind::Uuid))
            .transpose()?;
        let limit = page_limit(page);
        let needle = filter.display_name.as_deref().map(str::to_lowercase);
        // Built-ins: filtered and cut in memory, in the same (id text) order.
        let mut rows: Vec<(String, Stored<RoleDefinition>)> = Vec::new();
        if filter.is_built_in != Some(false) && filter.is_enabled != Some(false) {
            rows.extend(
                self.catalog
                    .roles()
                    .iter()
                    .map(|role| (role.id.to_string(), role))
                    .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
                    .filter(|(_, role)| {
                        needle
                            .as_deref()
                            .is_none_or(|needle| role.display_name.to_lowercase().contains(needle))
                    })
                    .take(limit + 1)
                    .map(|(key, role)| (key, builtin_stored(role))),
            );
        }
        if filter.is_built_in != Some(true) {
            let mut filters: Vec<Filter> = Vec::new();
            if let Some(needle) = &filter.display_name {
                filters.push(Filter::Contains("display_name_key", needle.clone()));
            }
            if let Some(is_enabled) = filter.is_enabled {
                filters.push(Filter::Eq("is_enabled", Arg::Bool(is_enabled)));
            }
            let mut conn = self.conn().await?;
            let custom = fetch_keyed(
                &mut conn,
                ROLE_DEFINITIONS,
                "id",
                tenant,
                &filters,
                after,
                limit + 1,
            )
            .await?;
            rows.extend(custom);
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.truncate(limit + 1);
        Ok(into_page(rows, limit))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_role_definition(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleDefinition>> {
        let mut conn = self.conn().await?;
        self.find_role(&mut conn, tenant, id)
            .await?
            .ok_or_else(|| ROLE_DEFINITIONS.not_found(id))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleDefinition,
    ) -> StoreResult<Written<RoleDefinition>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_role(&self.catalog, new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn clone_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        source: Uuid,
        clone: CloneRole,
    ) -> StoreResult<Written<RoleDefinition>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let source = match self.catalog.get(source) {
                Some(builtin) => builtin.clone(),
                None => {
                    w.get(ROLE_DEFINITIONS, &[("id", Arg::id(source))])
                        .await?
                        .ok_or_else(|| ROLE_DEFINITIONS.not_found(source))?
                        .value
                }
            };
            let new = NewRoleDefinition {
                display_name: clone.display_name,
                description: clone.description.unwrap_or(source.description),
                is_enabled: true,
                role_permissions: source.role_permissions,
                assignable_scopes: source.assignable_scopes,
            };
            w.create_role(&self.catalog, new).await
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: RoleDefinitionPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>> {
        if self.catalog.get(id).is_some() {
            return Err(StoreError::BuiltinImmutable(id));
        }
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_role(&self.catalog, id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_role_definition(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        cascade: bool,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleDefinition>> {
        if self.catalog.get(id).is_some() {
            return Err(StoreError::BuiltinImmutable(id));
        }
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_role(id, cascade, if_match).await;
        w.finish(result).await
    }
}

impl WriteTx {
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
        let tenant = self.tenant;
        let taken: Option<String> = sqlx::query(sql)
            .bind(tenant.to_string())
            .bind(name.to_lowercase())
            .fetch_optional(self.conn())
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

    async fn create_role(
        &mut self,
        catalog: &Catalog,
        new: NewRoleDefinition,
    ) -> StoreResult<Done<RoleDefinition>> {
        self.check_role_name(catalog, &new.display_name, None)
            .await?;
        let id = Uuid::new_v4();
        let role = RoleDefinition::custom(id, new, self.now);
        let [name_key, enabled] = role_columns(&role);
        let columns = [("id", Arg::id(id)), name_key, enabled];
        self.insert(ROLE_DEFINITIONS, &columns, &role)
            .await
            .map_err(|error| name_conflict(error, &role.display_name))?;
        self.log_created(ROLE_DEFINITIONS, id.to_string(), &role)
            .await?;
        Ok(Done::Created(role))
    }

    async fn update_role(
        &mut self,
        catalog: &Catalog,
        id: Uuid,
        patch: RoleDefinitionPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<RoleDefinition>> {
        let before = self.get_for_write(ROLE_DEFINITIONS, id, if_match).await?;
        if let Some(name) = &patch.display_name {
            if name.to_lowercase() != before.display_name.to_lowercase() {
                self.check_role_name(catalog, name, Some(id)).await?;
            }
        }
        let after = before.patched(patch, self.now);
        self.update(ROLE_DEFINITIONS, id, &role_columns(&after), &after)
            .await
            .map_err(|error| name_conflict(error, &after.display_name))?;
        self.log_updated(ROLE_DEFINITIONS, id.to_string(), &before, &after)
            .await?;
        Ok(Done::Changed(after))
    }

    async fn delete_role(
        &mut self,
        id: Uuid,
        cascade: bool,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<RoleDefinition>> {
        let role = self.get_for_write(ROLE_DEFINITIONS, id, if_match).await?;
        let assignments: Vec<RoleAssignment> = self
            .select_where(
                ROLE_ASSIGNMENTS,
                Filter::Eq("role_definition_id", Arg::id(id)),
                "id",
            )
            .await?;
        // Eligibilities are grants in waiting: they hold a role as assignments do.
        let eligibilities: Vec<RoleEligibilitySchedule> = self
            .select_where(
                ELIGIBILITIES,
                Filter::Eq("role_definition_id", Arg::id(id)),
                "id",
            )
            .await?;
        if !cascade && (!assignments.is_empty() || !eligibilities.is_empty()) {
            let count = |n: usize, one: &str, many: &str| {
                (n > 0).then(|| format!("{n} {}", if n == 1 { one } else { many }))
            };
            let held: Vec<String> = [
                count(assignments.len(), "assignment", "assignments"),
                count(eligibilities.len(), "eligibility", "eligibilities"),
            ]
            .into_iter()
            .flatten()
            .collect();
            return Err(StoreError::Conflict(format!(
                "role `{id}` still has {}; delete them first or pass cascade=true",
                held.join(" and ")
            )));
        }
        for assignment in &assignments {
            self.delete_assignment_row(assignment).await?;
        }
        for eligibility in &eligibilities {
            self.delete_by_id(ELIGIBILITIES, eligibility.id, eligibility)
                .await?;
        }
        let policy_key = [("id", Arg::id(id))];
        if let Some(policy) = self.get(POLICIES, &policy_key).await? {
            self.delete_logged(POLICIES, &policy_key, id.to_string(), &policy.value)
                .await?;
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
}

/// The role columns besides `id`: the case-folded name (unique per tenant, searched) and
/// the enabled flag (filtered).
fn role_columns(role: &RoleDefinition) -> [Key; 2] {
    [
        (
            "display_name_key",
            Arg::Text(role.display_name.to_lowercase()),
        ),
        ("is_enabled", Arg::Bool(role.is_enabled)),
    ]
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a role named `{name}` already exists in this tenant"
    ))
}

/// A unique violation on a role write can only be the display name.
fn name_conflict(error: StoreError, name: &str) -> StoreError {
    match error {
        StoreError::Unavailable(e) if is_unique_violation(&e) => name_taken(name),
        other => other,
    }
}
