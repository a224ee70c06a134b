//! [`ImportStore`] in SQL. An import is one [`WriteTx`]: deletes first (members before
//! what they belong to), then multi-row upserts (`INSERT ... ON CONFLICT DO UPDATE`, what
//! they belong to first), each statement holding up to [`BULK_ARGS`] arguments, so a
//! million assignments are a few hundred statements rather than a million.

use async_trait::async_trait;
use futures::TryStreamExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::rows::{
    from_json, is_unique_violation, to_json, Arg, Key, Sql, Table, DENY_ASSIGNMENTS, GROUPS,
    GROUP_MEMBERS, PRINCIPALS, RESOURCES, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS, UNITS, UNIT_MEMBERS,
};
use super::write::{LogRow, WriteTx, BULK_ARGS};
use super::SqlStore;
use crate::model::import_plan::{Changes, Plan};
use crate::model::{
    alias_key, encode_segment, AdministrativeUnit, AdministrativeUnitMember, ChangeOp,
    DenyAssignment, EntityType, Group, GroupMember, Principal, Resource, Revision, RoleAssignment,
    RoleDefinition, TenantDump, TenantId,
};
use crate::store::{Actor, Backend, ImportRecord, ImportStore, StoreError, StoreResult};

/// How a stored object kind maps onto its table.
trait BulkRow: Serialize + DeserializeOwned + Send + Sync {
    /// Its table.
    const TABLE: Table<Self>;
    /// Its primary key columns after `tenant_id` (the upsert's conflict target).
    const KEY: &'static [&'static str];
    /// Every column besides `tenant_id`, `revision` and `body`: the key's first, in
    /// [`BulkRow::KEY`] order, then filter and unique columns.
    fn columns(&self) -> Vec<Key>;
    /// The change log's entity id.
    fn entity_id(&self) -> String;
}

impl BulkRow for RoleDefinition {
    const TABLE: Table<Self> = ROLE_DEFINITIONS;
    const KEY: &'static [&'static str] = &["id"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("id", Arg::id(self.id)),
            (
                "display_name_key",
                Arg::Text(self.display_name.to_lowercase()),
            ),
            ("is_enabled", Arg::Bool(self.is_enabled)),
        ]
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
}

impl BulkRow for RoleAssignment {
    const TABLE: Table<Self> = ROLE_ASSIGNMENTS;
    const KEY: &'static [&'static str] = &["id"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("id", Arg::id(self.id)),
            ("principal_id", Arg::id(self.principal_id)),
            ("role_definition_id", Arg::id(self.role_definition_id)),
            (
                "directory_scope_id",
                Arg::Text(self.directory_scope_id.to_string()),
            ),
        ]
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
}

impl BulkRow for DenyAssignment {
    const TABLE: Table<Self> = DENY_ASSIGNMENTS;
    const KEY: &'static [&'static str] = &["id"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("id", Arg::id(self.id)),
            ("principal_id", Arg::id(self.principal_id)),
        ]
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
}

impl BulkRow for Group {
    const TABLE: Table<Self> = GROUPS;
    const KEY: &'static [&'static str] = &["id"];
    fn columns(&self) -> Vec<Key> {
        vec![("id", Arg::id(self.id))]
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
}

impl BulkRow for AdministrativeUnit {
    const TABLE: Table<Self> = UNITS;
    const KEY: &'static [&'static str] = &["id"];
    fn columns(&self) -> Vec<Key> {
        vec![("id", Arg::id(self.id))]
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
}

impl BulkRow for GroupMember {
    const TABLE: Table<Self> = GROUP_MEMBERS;
    const KEY: &'static [&'static str] = &["group_id", "member_id"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("group_id", Arg::id(self.group_id)),
            ("member_id", Arg::id(self.id)),
        ]
    }
    fn entity_id(&self) -> String {
        format!("{}/{}", self.group_id, self.id)
    }
}

impl BulkRow for AdministrativeUnitMember {
    const TABLE: Table<Self> = UNIT_MEMBERS;
    const KEY: &'static [&'static str] = &["unit_id", "resource"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("unit_id", Arg::id(self.administrative_unit_id)),
            ("resource", Arg::Text(self.resource.to_string())),
        ]
    }
    fn entity_id(&self) -> String {
        format!("{}{}", self.administrative_unit_id, self.resource)
    }
}

impl BulkRow for Principal {
    const TABLE: Table<Self> = PRINCIPALS;
    const KEY: &'static [&'static str] = &["id"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("id", Arg::id(self.id)),
            (
                "principal_type",
                Arg::Text(self.principal_type.as_str().to_owned()),
            ),
        ]
    }
    fn entity_id(&self) -> String {
        self.id.to_string()
    }
}

impl BulkRow for Resource {
    const TABLE: Table<Self> = RESOURCES;
    const KEY: &'static [&'static str] = &["resource_type", "id"];
    fn columns(&self) -> Vec<Key> {
        vec![
            ("resource_type", Arg::Text(self.resource_type.clone())),
            ("id", Arg::Text(self.id.clone())),
            ("path", Arg::Text(self.path.as_str().to_owned())),
        ]
    }
    fn entity_id(&self) -> String {
        format!("{}/{}", self.resource_type, encode_segment(&self.id))
    }
}

#[async_trait]
impl ImportStore for SqlStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn tenant_dump(&self, tenant: TenantId) -> StoreResult<(TenantDump, Revision)> {
        let backend = self.url.backend();
        let mut tx = self.pool.begin_with(backend.begin_snapshot()).await?;
        if backend == Backend::Postgres {
            // Whole tables of one tenant: `statement_timeout` bounds requests, not this.
            sqlx::query("SET LOCAL statement_timeout = 0")
                .execute(&mut *tx)
                .await?;
        }
        let changed = tenant_changed(&mut tx, tenant).await?;
        let conn: &mut AnyConnection = &mut tx;
        let dump = TenantDump {
            tenant,
            role_definitions: rows(conn, ROLE_DEFINITIONS, tenant, "id").await?,
            role_assignments: rows(conn, ROLE_ASSIGNMENTS, tenant, "id").await?,
            deny_assignments: rows(conn, DENY_ASSIGNMENTS, tenant, "id").await?,
            groups: rows(conn, GROUPS, tenant, "id").await?,
            group_members: rows(conn, GROUP_MEMBERS, tenant, "group_id, member_id").await?,
            administrative_units: rows(conn, UNITS, tenant, "id").await?,
            administrative_unit_members: rows(conn, UNIT_MEMBERS, tenant, "unit_id, resource")
                .await?,
            principals: rows(conn, PRINCIPALS, tenant, "id").await?,
            resources: rows(conn, RESOURCES, tenant, "resource_type, id").await?,
        };
        tx.rollback().await?;
        Ok((dump, changed))
    }

    #[tracing::instrument(skip_all, fields(%tenant, changes = plan.len()))]
    async fn apply_import(
        &self,
        tenant: TenantId,
        actor: &Actor,
        plan: &Plan,
        record: &ImportRecord,
        based_on: Revision,
    ) -> StoreResult<Revision> {
        let mut w = self.begin_write(tenant, actor).await?;
        if self.url.backend() == Backend::Postgres {
            sqlx::query("SET LOCAL statement_timeout = 0")
                .execute(w.conn())
                .await?;
        }
        let result = async {
            let changed = tenant_changed(w.conn(), tenant).await?;
            if changed > based_on {
                return Err(StoreError::Conflict(format!(
                    "the directory changed (revision {changed}) after the import was planned \
                     against revision {based_on}; send the file again"
                )));
            }
            apply(&mut w, plan).await.map_err(|error| match error {
                // Every key and name was checked against the directory as planned; a
                // unique violation here is two renames trading places within the file.
                StoreError::Unavailable(e) if is_unique_violation(&e) => StoreError::Conflict(
                    "two objects in the file trade a unique name or key; import the renames in \
                     two steps"
                        .to_owned(),
                ),
                other => other,
            })?;
            let mut log = Vec::new();
            if record.detailed {
                log_plan(&mut log, plan)?;
            }
            log.push((
                EntityType::Import,
                record.digest.clone(),
                ChangeOp::Create,
                None,
                Some(to_json(record)?),
            ));
            w.log_many(log).await?;
            Ok(super::write::Done::Changed(()))
        }
        .await;
        Ok(w.finish(result).await?.revision)
    }
}

/// The newest revision that logged a change of `tenant` (0 when none).
async fn tenant_changed(conn: &mut AnyConnection, tenant: TenantId) -> StoreResult<Revision> {
    let value: i64 =
        sqlx::query("SELECT COALESCE(MAX(revision), 0) FROM changes WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .fetch_one(conn)
            .await?
            .try_get(0)?;
    Ok(Revision(value))
}

/// Every row of `table` in `tenant`, ordered by `order`.
async fn rows<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: Table<T>,
    tenant: TenantId,
    order: &'static str,
) -> StoreResult<Vec<T>> {
    let mut sql = Sql::new("SELECT body FROM ");
    sql.push(table.name)
        .push(" WHERE tenant_id = ")
        .push_bind(Arg::tenant(tenant))
        .push(" ORDER BY ")
        .push(order);
    let mut found = Vec::new();
    let mut stream = sql.query().fetch(conn);
    while let Some(row) = stream.try_next().await? {
        let body: String = row.try_get(0)?;
        found.push(from_json(table.name, &body)?);
    }
    Ok(found)
}

/// The plan's deletes, then its upserts, in an order every foreign key allows.
async fn apply(w: &mut WriteTx, plan: &Plan) -> StoreResult<()> {
    delete(w, &plan.administrative_unit_members.delete).await?;
    delete(w, &plan.group_members.delete).await?;
    delete(w, &plan.role_assignments.delete).await?;
    delete(w, &plan.deny_assignments.delete).await?;
    delete(w, &plan.resources.delete).await?;
    let principals_touched: Vec<Uuid> = plan
        .principals
        .delete
        .iter()
        .chain(plan.principals.update.iter().map(|(before, _)| before))
        .filter(|p| !p.aliases.is_empty())
        .map(|p| p.id)
        .collect();
    delete_aliases(w, &principals_touched).await?;
    delete(w, &plan.principals.delete).await?;
    delete(w, &plan.administrative_units.delete).await?;
    delete(w, &plan.groups.delete).await?;
    delete(w, &plan.role_definitions.delete).await?;

    upsert(w, &plan.role_definitions).await?;
    upsert(w, &plan.groups).await?;
    upsert(w, &plan.administrative_units).await?;
    upsert(w, &plan.principals).await?;
    insert_aliases(
        w,
        plan.principals
            .create
            .iter()
            .chain(plan.principals.update.iter().map(|(_, after)| after)),
    )
    .await?;
    upsert(w, &plan.resources).await?;
    upsert(w, &plan.group_members).await?;
    upsert(w, &plan.administrative_unit_members).await?;
    upsert(w, &plan.role_assignments).await?;
    upsert(w, &plan.deny_assignments).await?;
    Ok(())
}

/// Deletes `objects` by key, many per statement.
async fn delete<T: BulkRow>(w: &mut WriteTx, objects: &[T]) -> StoreResult<()> {
    let per_row = T::KEY.len();
    for chunk in objects.chunks(BULK_ARGS / per_row) {
        let mut sql = Sql::new("DELETE FROM ");
        sql.push(T::TABLE.name)
            .push(" WHERE tenant_id = ")
            .push_bind(Arg::tenant(w.tenant))
            .push(" AND (");
        push_names(&mut sql, T::KEY);
        sql.push(") IN (VALUES ");
        for (i, object) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, (_, arg)) in object.columns().into_iter().take(per_row).enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.push_bind(arg);
            }
            sql.push(")");
        }
        sql.push(")");
        sql.query().execute(w.conn()).await?;
    }
    Ok(())
}

/// Rows per upsert statement. Each statement binds three arguments whatever its size: the
/// tenant, the revision, and the rows as one JSON array that the database unpacks
/// (`json_array_elements` on PostgreSQL, `json_each` on SQLite), which costs far less than
/// binding every column of every row.
const UPSERT_ROWS: usize = 5_000;

/// Inserts the plan's new objects and rewrites its changed ones, many per statement.
async fn upsert<T: BulkRow + Clone>(w: &mut WriteTx, changes: &Changes<T>) -> StoreResult<()> {
    let objects: Vec<&T> = changes
        .create
        .iter()
        .chain(changes.update.iter().map(|(_, after)| after))
        .collect();
    let Some(first) = objects.first() else {
        return Ok(());
    };
    let columns = first.columns();
    let names: Vec<&'static str> = columns.iter().map(|(name, _)| *name).collect();
    let booleans: Vec<bool> = columns
        .iter()
        .map(|(_, arg)| matches!(arg, Arg::Bool(_)))
        .collect();
    let postgres = w.backend() == Backend::Postgres;
    for chunk in objects.chunks(UPSERT_ROWS) {
        let mut rows = Vec::with_capacity(chunk.len());
        for object in chunk {
            let mut row: Vec<serde_json::Value> = object
                .columns()
                .into_iter()
                .map(|(_, arg)| match arg {
                    Arg::Text(text) => serde_json::Value::String(text),
                    Arg::OptText(text) => text.map_or(serde_json::Value::Null, Into::into),
                    Arg::Int(n) => n.into(),
                    Arg::Bool(b) => b.into(),
                })
                .collect();
            row.push(serde_json::Value::String(to_json(*object)?));
            rows.push(serde_json::Value::Array(row));
        }
        let mut sql = Sql::new("INSERT INTO ");
        sql.push(T::TABLE.name).push(" (tenant_id, ");
        push_names(&mut sql, &names);
        sql.push(", revision, body) SELECT ")
            .push_bind(Arg::tenant(w.tenant));
        for (k, boolean) in booleans.iter().chain([&false]).enumerate() {
            sql.push(", ");
            let body = k == names.len();
            if k == names.len() {
                sql.push_bind(Arg::Int(w.revision.0)).push(", ");
            }
            push_element(&mut sql, postgres, k, *boolean && !body);
        }
        sql.push(if postgres {
            " FROM json_array_elements("
        } else {
            " FROM json_each("
        })
        .push_bind(Arg::Text(serde_json::Value::Array(rows).to_string()))
        .push(if postgres {
            "::json) AS r"
        } else {
            ") WHERE true"
        });
        sql.push(" ON CONFLICT (tenant_id, ");
        push_names(&mut sql, T::KEY);
        sql.push(") DO UPDATE SET ");
        for name in names.iter().filter(|n| !T::KEY.contains(n)) {
            sql.push(name).push(" = excluded.").push(name).push(", ");
        }
        sql.push("revision = excluded.revision, body = excluded.body");
        sql.query().execute(w.conn()).await?;
    }
    Ok(())
}

/// Element `k` of a row of the JSON array: `r->>k` on PostgreSQL (cast when boolean),
/// `json_extract(value, '$[k]')` on SQLite (JSON booleans come out as 0 and 1).
fn push_element(sql: &mut Sql, postgres: bool, k: usize, boolean: bool) {
    const INDEXES: [&str; 8] = ["0", "1", "2", "3", "4", "5", "6", "7"];
    let index = INDEXES.get(k).copied().unwrap_or("0");
    if postgres {
        sql.push(if boolean { "(r->>" } else { "r->>" })
            .push(index)
            .push(if boolean { ")::boolean" } else { "" });
    } else {
        sql.push("json_extract(value, '$[").push(index).push("]')");
    }
}

fn push_names(sql: &mut Sql, names: &[&'static str]) {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(name);
    }
}

async fn delete_aliases(w: &mut WriteTx, principals: &[Uuid]) -> StoreResult<()> {
    for chunk in principals.chunks(BULK_ARGS) {
        let mut sql = Sql::new("DELETE FROM principal_aliases WHERE tenant_id = ");
        sql.push_bind(Arg::tenant(w.tenant))
            .push(" AND principal_id IN (");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_bind(Arg::id(*id));
        }
        sql.push(")");
        sql.query().execute(w.conn()).await?;
    }
    Ok(())
}

async fn insert_aliases<'a>(
    w: &mut WriteTx,
    principals: impl Iterator<Item = &'a Principal>,
) -> StoreResult<()> {
    let rows: Vec<(String, Uuid)> = principals
        .flat_map(|p| p.aliases.iter().map(|alias| (alias_key(alias), p.id)))
        .collect();
    for chunk in rows.chunks(BULK_ARGS / 3) {
        let mut sql =
            Sql::new("INSERT INTO principal_aliases (tenant_id, alias_key, principal_id) VALUES ");
        for (i, (key, id)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .push_bind(Arg::tenant(w.tenant))
                .push(", ")
                .push_bind(Arg::Text(key.clone()))
                .push(", ")
                .push_bind(Arg::id(*id))
                .push(")");
        }
        sql.query().execute(w.conn()).await?;
    }
    Ok(())
}

/// One change row per object the plan touches, in the order the plan applies them.
fn log_plan(log: &mut Vec<LogRow>, plan: &Plan) -> StoreResult<()> {
    log_kind(log, &plan.administrative_unit_members, true)?;
    log_kind(log, &plan.group_members, true)?;
    log_kind(log, &plan.role_assignments, true)?;
    log_kind(log, &plan.deny_assignments, true)?;
    log_kind(log, &plan.resources, true)?;
    log_kind(log, &plan.principals, true)?;
    log_kind(log, &plan.administrative_units, true)?;
    log_kind(log, &plan.groups, true)?;
    log_kind(log, &plan.role_definitions, true)?;
    log_kind(log, &plan.role_definitions, false)?;
    log_kind(log, &plan.groups, false)?;
    log_kind(log, &plan.administrative_units, false)?;
    log_kind(log, &plan.principals, false)?;
    log_kind(log, &plan.resources, false)?;
    log_kind(log, &plan.group_members, false)?;
    log_kind(log, &plan.administrative_unit_members, false)?;
    log_kind(log, &plan.role_assignments, false)?;
    log_kind(log, &plan.deny_assignments, false)?;
    Ok(())
}

/// A kind's delete rows (`deletes`), or its create and update rows.
fn log_kind<T: BulkRow>(
    log: &mut Vec<LogRow>,
    changes: &Changes<T>,
    deletes: bool,
) -> StoreResult<()> {
    let entity = T::TABLE.entity;
    if deletes {
        for before in &changes.delete {
            log.push((
                entity,
                before.entity_id(),
                ChangeOp::Delete,
                Some(to_json(before)?),
                None,
            ));
        }
        return Ok(());
    }
    for after in &changes.create {
        log.push((
            entity,
            after.entity_id(),
            ChangeOp::Create,
            None,
            Some(to_json(after)?),
        ));
    }
    for (before, after) in &changes.update {
        log.push((
            entity,
            after.entity_id(),
            ChangeOp::Update,
            Some(to_json(before)?),
            Some(to_json(after)?),
        ));
    }
    Ok(())
}
