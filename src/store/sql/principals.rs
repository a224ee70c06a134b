//! [`PrincipalStore`] in SQL: `principals` (the body holds the whole principal) and
//! `principal_aliases`, one row per alias keyed by (tenant, lowercased alias), so the
//! database itself keeps an alias to one principal per tenant.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::rows::{is_unique_violation, Arg, Filter, Sql, PRINCIPALS};
use super::write::{Done, WriteTx};
use super::SqlStore;
use crate::model::{alias_key, NewPrincipal, Principal, PrincipalPatch, Revision, TenantId};
use crate::store::{
    Actor, Page, PageRequest, PrincipalFilter, PrincipalStore, StoreError, StoreResult, Stored,
    Written,
};

#[async_trait]
impl PrincipalStore for SqlStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list(
        &self,
        tenant: TenantId,
        filter: &PrincipalFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<Principal>>> {
        let mut filters: Vec<Filter> = Vec::new();
        if let Some(alias) = &filter.alias {
            let mut conn = self.conn().await?;
            let holder: Option<String> = sqlx::query(
                "SELECT principal_id FROM principal_aliases WHERE tenant_id = $1 AND alias_key = $2",
            )
            .bind(tenant.to_string())
            .bind(alias_key(alias))
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
            match holder {
                Some(id) => filters.push(Filter::Eq("id", Arg::Text(id))),
                None => {
                    return Ok(Page {
                        items: Vec::new(),
                        next: None,
                    })
                }
            }
        }
        if let Some(kind) = filter.principal_type {
            filters.push(Filter::Eq(
                "principal_type",
                Arg::Text(kind.as_str().to_owned()),
            ));
        }
        self.list_by_id(PRINCIPALS, tenant, &filters, page).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get(&self, tenant: TenantId, id: Uuid) -> StoreResult<Stored<Principal>> {
        self.get_by_id(PRINCIPALS, tenant, id).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewPrincipal,
    ) -> StoreResult<Written<Principal>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.create_principal(new).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        patch: PrincipalPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Principal>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.update_principal(id, patch, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Principal>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let before = w.get_for_write(PRINCIPALS, id, if_match).await?;
            w.delete_aliases(id).await?;
            w.delete_by_id(PRINCIPALS, id, &before).await?;
            Ok(Done::Changed(before))
        }
        .await;
        w.finish(result).await
    }
}

impl WriteTx {
    /// Creates the principal, or finds it when one with its id exists exactly as asked.
    async fn create_principal(&mut self, new: NewPrincipal) -> StoreResult<Done<Principal>> {
        if let Some(id) = new.id {
            if let Some(existing) = self.get(PRINCIPALS, &[("id", Arg::id(id))]).await? {
                if existing.value.matches(&new) {
                    return Ok(Done::Found(existing.value, existing.revision));
                }
                return Err(StoreError::Conflict(format!(
                    "principal `{id}` already exists in this tenant with other values; change \
                     it with PATCH"
                )));
            }
        }
        let principal = Principal::new(new.id.unwrap_or_else(Uuid::new_v4), new, self.now);
        let id = principal.id;
        let columns = [
            ("id", Arg::id(id)),
            (
                "principal_type",
                Arg::Text(principal.principal_type.as_str().to_owned()),
            ),
        ];
        self.insert(PRINCIPALS, &columns, &principal).await?;
        self.insert_aliases(id, &principal.aliases).await?;
        self.log_created(PRINCIPALS, id.to_string(), &principal)
            .await?;
        Ok(Done::Created(principal))
    }

    async fn update_principal(
        &mut self,
        id: Uuid,
        patch: PrincipalPatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Done<Principal>> {
        let before = self.get_for_write(PRINCIPALS, id, if_match).await?;
        let after = before.patched(patch, self.now);
        if after.aliases != before.aliases {
            self.delete_aliases(id).await?;
            self.insert_aliases(id, &after.aliases).await?;
        }
        self.update(PRINCIPALS, id, &[], &after).await?;
        self.log_updated(PRINCIPALS, id.to_string(), &before, &after)
            .await?;
        Ok(Done::Changed(after))
    }

    /// Gives principal `id` each of `aliases`: a `Conflict` naming the first one another
    /// principal of this tenant holds (ignoring case).
    async fn insert_aliases(&mut self, id: Uuid, aliases: &[String]) -> StoreResult<()> {
        if aliases.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new("SELECT alias_key FROM principal_aliases WHERE tenant_id = ");
        sql.push_bind(Arg::tenant(self.tenant))
            .push(" AND alias_key IN (");
        for (i, alias) in aliases.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_bind(Arg::Text(alias_key(alias)));
        }
        sql.push(")");
        let taken: Vec<String> = sql
            .query()
            .fetch_all(self.conn())
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if let Some(alias) = aliases.iter().find(|a| taken.contains(&alias_key(a))) {
            return Err(alias_taken(alias));
        }
        let tenant = self.tenant.to_string();
        for alias in aliases {
            // Writers are serialized, so a unique violation here means a bug, not a race;
            // the index is what guarantees it all the same.
            sqlx::query(
                "INSERT INTO principal_aliases (tenant_id, alias_key, principal_id) \
                 VALUES ($1, $2, $3)",
            )
            .bind(tenant.clone())
            .bind(alias_key(alias))
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    alias_taken(alias)
                } else {
                    StoreError::Unavailable(error)
                }
            })?;
        }
        Ok(())
    }

    /// Frees every alias of principal `id`.
    async fn delete_aliases(&mut self, id: Uuid) -> StoreResult<()> {
        let tenant = self.tenant.to_string();
        sqlx::query("DELETE FROM principal_aliases WHERE tenant_id = $1 AND principal_id = $2")
            .bind(tenant)
            .bind(id.to_string())
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

fn alias_taken(alias: &str) -> StoreError {
    StoreError::Conflict(format!(
        "alias `{alias}` is already held by another principal in this tenant (aliases ignore \
         case)"
    ))
}
