//! [`ResourceStore`] in SQL: `resources`, keyed by (tenant, type, id), with the path as a
//! column for prefix filters and the whole resource in the body.

use async_trait::async_trait;
use sqlx::Row;

use super::rows::{
    decode_cursor, get_row, into_page, page_limit, stored_from_row, to_json, Arg, Key, KeyKind,
    Sql, RESOURCES,
};
use super::write::{check_if_match, Done, WriteTx};
use super::SqlStore;
use crate::model::{encode_segment, NewResource, Resource, ResourcePatch, Revision, TenantId};
use crate::store::{
    Actor, Page, PageRequest, ResourceFilter, ResourceStore, StoreError, StoreResult, Stored,
    Upsert, UpsertOutcome, Upserted, Written,
};

/// How many keys one `get_many` statement looks up (two bind arguments each).
const KEYS_PER_STATEMENT: usize = 200;

/// The key columns of resource (`resource_type`, `id`).
fn keys(resource_type: &str, id: &str) -> [Key; 2] {
    [
        ("resource_type", Arg::Text(resource_type.to_owned())),
        ("id", Arg::Text(id.to_owned())),
    ]
}

/// `changes.entity_id` of a resource: `{type}/{id}`, the id percent-encoded as one path
/// segment, so the pair reads back unambiguously whatever the id holds.
fn entity_id(resource_type: &str, id: &str) -> String {
    format!("{resource_type}/{}", encode_segment(id))
}

fn not_found(resource_type: &str, id: &str) -> StoreError {
    RESOURCES.not_found(format!("{resource_type}/{id}"))
}

#[async_trait]
impl ResourceStore for SqlStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list(
        &self,
        tenant: TenantId,
        filter: &ResourceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<Resource>>> {
        let after: Option<(String, String)> = page
            .cursor
            .as_deref()
            .map(|cursor| {
                let key = decode_cursor(cursor, KeyKind::Pair)?;
                serde_json::from_str(&key).map_err(|_| StoreError::InvalidCursor)
            })
            .transpose()?;
        let limit = page_limit(page);
        let mut sql =
            Sql::new("SELECT resource_type, id, revision, body FROM resources WHERE tenant_id = ");
        sql.push_bind(Arg::tenant(tenant));
        if let Some(resource_type) = &filter.resource_type {
            sql.push(" AND resource_type = ")
                .push_bind(Arg::Text(resource_type.clone()));
        }
        if let Some(prefix) = filter.path_prefix.as_ref().filter(|p| !p.is_root()) {
            // Below `/a/b` is exactly the byte range (`/a/b/`, `/a/b0`): `0` follows `/`.
            let prefix = prefix.as_str();
            sql.push(" AND (path = ")
                .push_bind(Arg::Text(prefix.to_owned()))
                .push(" OR (path > ")
                .push_bind(Arg::Text(format!("{prefix}/")))
                .push(" AND path < ")
                .push_bind(Arg::Text(format!("{prefix}0")))
                .push("))");
        }
        if let Some((resource_type, id)) = after {
            sql.push(" AND (resource_type, id) > (")
                .push_bind(Arg::Text(resource_type))
                .push(", ")
                .push_bind(Arg::Text(id))
                .push(")");
        }
        sql.push(" ORDER BY resource_type, id LIMIT ")
            .push_bind(Arg::count(limit + 1));
        let mut conn = self.conn().await?;
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let rows = rows
            .iter()
            .map(|row| {
                let resource_type: String = row.try_get(0)?;
                let id: String = row.try_get(1)?;
                let key = serde_json::to_string(&(resource_type, id)).map_err(|error| {
                    StoreError::Corrupt(format!("a resource key does not encode: {error}"))
                })?;
                Ok((key, stored_from_row(RESOURCES, row, 2)?))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, limit))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get(
        &self,
        tenant: TenantId,
        resource_type: &str,
        id: &str,
    ) -> StoreResult<Stored<Resource>> {
        let mut conn = self.conn().await?;
        get_row(&mut conn, RESOURCES, tenant, &keys(resource_type, id))
            .await?
            .ok_or_else(|| not_found(resource_type, id))
    }

    #[tracing::instrument(skip_all, fields(%tenant, keys = keys.len()))]
    async fn get_many(
        &self,
        tenant: TenantId,
        keys: &[(String, String)],
    ) -> StoreResult<Vec<Stored<Resource>>> {
        let mut conn = self.conn().await?;
        let mut found = Vec::new();
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut sql = Sql::select_stored(RESOURCES, None, tenant);
            sql.push(" AND (resource_type, id) IN (VALUES ");
            for (i, (resource_type, id)) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" })
                    .push_bind(Arg::Text(resource_type.clone()))
                    .push(", ")
                    .push_bind(Arg::Text(id.clone()))
                    .push(")");
            }
            sql.push(")");
            for row in sql.query().fetch_all(&mut *conn).await? {
                found.push(stored_from_row(RESOURCES, &row, 0)?);
            }
        }
        Ok(found)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewResource,
    ) -> StoreResult<Written<Resource>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            if w.get(RESOURCES, &keys(&new.resource_type, &new.id))
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict(format!(
                    "resource `{}/{}` already exists in this tenant; change it with PATCH or \
                     the bulk upsert",
                    new.resource_type, new.id
                )));
            }
            Ok(Done::Created(w.insert_resource(new).await?))
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update(
        &self,
        tenant: TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &str,
        patch: ResourcePatch,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Resource>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let before = w.resource_for_write(resource_type, id, if_match).await?;
            let after = before.patched(patch, w.now);
            w.rewrite_resource(&before, &after).await?;
            Ok(Done::Changed(after))
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete(
        &self,
        tenant: TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &str,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<Resource>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let before = w.resource_for_write(resource_type, id, if_match).await?;
            w.delete_logged(
                RESOURCES,
                &keys(resource_type, id),
                entity_id(resource_type, id),
                &before,
            )
            .await?;
            Ok(Done::Changed(before))
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant, items = items.len()))]
    async fn upsert(
        &self,
        tenant: TenantId,
        actor: &Actor,
        items: Vec<Upsert>,
    ) -> StoreResult<Upserted> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.upsert_resources(items).await;
        let written = w.finish(result).await?;
        Ok(Upserted {
            items: written.value,
            revision: written.revision,
        })
    }
}

impl WriteTx {
    /// The stored resource, or `NotFound`; then the `If-Match` check against its revision.
    async fn resource_for_write(
        &mut self,
        resource_type: &str,
        id: &str,
        if_match: Option<Revision>,
    ) -> StoreResult<Resource> {
        let stored = self
            .get(RESOURCES, &keys(resource_type, id))
            .await?
            .ok_or_else(|| not_found(resource_type, id))?;
        check_if_match(if_match, stored.revision)?;
        Ok(stored.value)
    }

    /// Inserts a new resource and logs its creation.
    async fn insert_resource(&mut self, new: NewResource) -> StoreResult<Resource> {
        let resource = Resource::new(new, self.now);
        let [type_column, id_column] = keys(&resource.resource_type, &resource.id);
        let columns = [
            type_column,
            id_column,
            ("path", Arg::Text(resource.path.as_str().to_owned())),
        ];
        self.insert(RESOURCES, &columns, &resource).await?;
        self.log_created(
            RESOURCES,
            entity_id(&resource.resource_type, &resource.id),
            &resource,
        )
        .await?;
        Ok(resource)
    }

    /// Rewrites a stored resource as `after` and logs the change from `before`.
    async fn rewrite_resource(&mut self, before: &Resource, after: &Resource) -> StoreResult<()> {
        let body = to_json(after)?;
        let mut sql = Sql::new("UPDATE resources SET path = ");
        sql.push_bind(Arg::Text(after.path.as_str().to_owned()))
            .push(", revision = ")
            .push_bind(Arg::Int(self.revision.0))
            .push(", body = ")
            .push_bind(Arg::Text(body))
            .push(" WHERE tenant_id = ")
            .push_bind(Arg::tenant(self.tenant))
            .push_keys(&keys(&after.resource_type, &after.id));
        sql.query().execute(self.conn()).await?;
        self.log_updated(
            RESOURCES,
            entity_id(&after.resource_type, &after.id),
            before,
            after,
        )
        .await
    }

    /// Creates or replaces each item; `Found` (nothing to commit) when every item already
    /// stands as sent.
    async fn upsert_resources(
        &mut self,
        items: Vec<Upsert>,
    ) -> StoreResult<Done<Vec<(Resource, UpsertOutcome)>>> {
        let mut done = Vec::with_capacity(items.len());
        let mut newest_unchanged = Revision(0);
        for Upsert { new, seen } in items {
            let stored = self
                .get(RESOURCES, &keys(&new.resource_type, &new.id))
                .await?;
            if stored.as_ref().map(|s| s.revision) != seen {
                return Err(StoreError::Conflict(format!(
                    "resource `{}/{}` changed while this request was authorized; send it again",
                    new.resource_type, new.id
                )));
            }
            match stored {
                None => {
                    let created = self.insert_resource(new).await?;
                    done.push((created, UpsertOutcome::Created));
                }
                Some(stored) if stored.value.matches(&new) => {
                    newest_unchanged = newest_unchanged.max(stored.revision);
                    done.push((stored.value, UpsertOutcome::Unchanged));
                }
                Some(stored) => {
                    let after = stored.value.replaced(new, self.now);
                    self.rewrite_resource(&stored.value, &after).await?;
                    done.push((after, UpsertOutcome::Updated));
                }
            }
        }
        if done
            .iter()
            .all(|(_, outcome)| *outcome == UpsertOutcome::Unchanged)
        {
            return Ok(Done::Found(done, newest_unchanged));
        }
        Ok(Done::Changed(done))
    }
}
