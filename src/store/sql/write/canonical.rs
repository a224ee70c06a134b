//! The one-time rewrite that migration 0003 asks for: scope key columns written before
//! scopes were canonical (see [`Scope::parse`]) are put in canonical form, and rows that
//! become one are merged.
//!
//! It runs in Rust because the canonical form is defined once, by `Scope::parse`, and
//! SQLite has no regular expressions to copy it with (see the migration's comment). Only
//! key columns need it: bodies are canonicalized whenever they are read, and deny
//! assignments and role definitions keep their scopes only in the body.
//!
//! Each tenant is fixed in one [`WriteTx`], so every rewrite, merge and removal is a logged
//! change at a new revision (replicas follow it; the audit trail keeps every removed row as
//! it stood) and concurrent writers, or a second replica running the same pass, are
//! serialized. Candidates are found outside the transaction and re-read inside it, so a
//! row another writer fixed first is left alone. The pass is idempotent: the
//! `pending_data_fixes` row is deleted only after every tenant is done.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{AnyPool, Row};

use super::super::rows::{from_json, parse_tenant, Arg, ROLE_ASSIGNMENTS, UNIT_MEMBERS};
use super::{Done, WriteTx};
use crate::model::{AdministrativeUnitMember, ChangeOp, RoleAssignment, Scope, TenantId};
use crate::store::{Actor, Backend, StoreError, StoreResult};

/// The `pending_data_fixes` row migration 0003 inserts.
const FIX: &str = "canonical_uuid_scopes";

/// Recorded in `changes.actor` for each row this pass rewrites or merges away.
const ACTOR: &str = "migration-0003-canonical-uuid-scopes";

/// Runs the pass when migration 0003 left it pending; a no-op otherwise.
pub(in crate::store::sql) async fn canonical_uuid_scopes(
    pool: &AnyPool,
    backend: Backend,
) -> StoreResult<()> {
    let pending = sqlx::query("SELECT name FROM pending_data_fixes WHERE name = $1")
        .bind(FIX)
        .fetch_optional(pool)
        .await?;
    if pending.is_none() {
        return Ok(());
    }
    let candidates = find_candidates(pool).await?;
    let actor = Actor::new(ACTOR);
    let (mut rewritten, mut merged) = (0usize, 0usize);
    for (tenant, work) in candidates {
        let mut w = WriteTx::begin(pool, backend, tenant, &actor).await?;
        let result = w.canonicalize_tenant(&work).await;
        let counts = match &result {
            Ok(Done::Changed(counts)) => *counts,
            _ => (0, 0),
        };
        w.finish(result).await?;
        rewritten += counts.0;
        merged += counts.1;
    }
    sqlx::query("DELETE FROM pending_data_fixes WHERE name = $1")
        .bind(FIX)
        .execute(pool)
        .await?;
    tracing::info!(
        rewritten,
        merged,
        "canonical uuid scopes: stored scope keys are canonical"
    );
    Ok(())
}

/// The rows of one tenant that may need the pass, grouped so that every row a rewrite can
/// collide with is re-read with them.
#[derive(Debug, Default)]
struct TenantWork {
    /// `(principal_id, role_definition_id)` of assignments with a non-canonical scope.
    assignments: BTreeSet<(String, String)>,
    /// Units with a member whose resource is not canonical.
    units: BTreeSet<String>,
}

/// The canonical form of a stored scope key. A key that does not parse was not written by
/// Rolecall: refuse to guess.
fn canonical(table: &str, raw: &str) -> StoreResult<Scope> {
    Scope::parse(raw).map_err(|error| {
        StoreError::Corrupt(format!(
            "a `{table}` row has scope `{raw}`, which is not a scope: {error}"
        ))
    })
}

/// Streams the key columns of both tables (no bodies) and keeps what is not canonical.
async fn find_candidates(pool: &AnyPool) -> StoreResult<BTreeMap<TenantId, TenantWork>> {
    let mut work: BTreeMap<TenantId, TenantWork> = BTreeMap::new();
    let sql = "SELECT tenant_id, principal_id, role_definition_id, directory_scope_id \
               FROM role_assignments";
    let mut rows = sqlx::query(sql).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let scope: String = row.try_get(3)?;
        if canonical(ROLE_ASSIGNMENTS.name, &scope)?.as_str() != scope {
            let tenant = parse_tenant(&row.try_get::<String, _>(0)?)?;
            work.entry(tenant)
                .or_default()
                .assignments
                .insert((row.try_get(1)?, row.try_get(2)?));
        }
    }
    drop(rows);
    let sql = "SELECT tenant_id, unit_id, resource FROM administrative_unit_members";
    let mut rows = sqlx::query(sql).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let resource: String = row.try_get(2)?;
        if canonical(UNIT_MEMBERS.name, &resource)?.as_str() != resource {
            let tenant = parse_tenant(&row.try_get::<String, _>(0)?)?;
            work.entry(tenant)
                .or_default()
                .units
                .insert(row.try_get(1)?);
        }
    }
    Ok(work)
}

/// One stored row as the pass sees it.
struct Found<T> {
    /// The key column as stored.
    raw_key: String,
    /// The body as stored (the `before` of its logged change, spelled as it was).
    raw_body: Value,
    /// The body decoded, which canonicalizes its scopes.
    value: T,
}

impl WriteTx {
    /// Rewrites and merges one tenant's rows; `(rewritten, merged away)`, or `Found` (roll
    /// back) when another writer already did it all.
    async fn canonicalize_tenant(
        &mut self,
        work: &TenantWork,
    ) -> StoreResult<Done<(usize, usize)>> {
        let mut counts = (0, 0);
        for (principal, role) in &work.assignments {
            self.canonicalize_assignments(principal, role, &mut counts)
                .await?;
        }
        for unit in &work.units {
            self.canonicalize_unit_members(unit, &mut counts).await?;
        }
        Ok(if counts == (0, 0) {
            Done::Found(counts, self.revision)
        } else {
            Done::Changed(counts)
        })
    }

    /// Reads `sql` (selecting key and body; `$1` is the tenant, then `binds`) and
    /// groups the rows by the canonical form of their key, keeping only the groups that
    /// hold a key in another form.
    async fn non_canonical_groups<T: DeserializeOwned>(
        &mut self,
        table: &str,
        sql: &str,
        binds: &[&str],
    ) -> StoreResult<BTreeMap<String, Vec<Found<T>>>> {
        let mut query = sqlx::query(sql).bind(self.tenant.to_string());
        for bind in binds {
            query = query.bind(bind.to_string());
        }
        let rows = query.fetch_all(&mut *self.tx).await?;
        let mut groups: BTreeMap<String, Vec<Found<T>>> = BTreeMap::new();
        for row in rows {
            let raw_key: String = row.try_get(0)?;
            let body: String = row.try_get(1)?;
            let canonical = canonical(table, &raw_key)?.as_str().to_owned();
            groups.entry(canonical).or_default().push(Found {
                raw_key,
                raw_body: from_json(table, &body)?,
                value: from_json(table, &body)?,
            });
        }
        groups.retain(|canonical, rows| rows.iter().any(|r| r.raw_key != *canonical));
        Ok(groups)
    }

    /// One principal's assignments of one role. Per canonical scope one assignment stays:
    /// the one already stored canonically, else the oldest; it keeps its id. The others are
    /// deleted (each logged with its body as stored, and warned about).
    async fn canonicalize_assignments(
        &mut self,
        principal: &str,
        role: &str,
        counts: &mut (usize, usize),
    ) -> StoreResult<()> {
        let sql = "SELECT directory_scope_id, body FROM role_assignments \
                   WHERE tenant_id = $1 AND principal_id = $2 AND role_definition_id = $3 \
                   ORDER BY id";
        let table = ROLE_ASSIGNMENTS.name;
        let groups = self
            .non_canonical_groups::<RoleAssignment>(table, sql, &[principal, role])
            .await?;
        for (canonical, mut rows) in groups {
            rows.sort_by_key(|r| {
                (
                    r.raw_key != canonical,
                    r.value.created_date_time,
                    r.value.id,
                )
            });
            let mut rows = rows.into_iter();
            let Some(keeper) = rows.next() else { continue };
            // Merged rows go first, so the keeper's rewrite meets no unique violation.
            for dropped in rows {
                tracing::warn!(
                    tenant = %self.tenant,
                    kept = %keeper.value.id,
                    removed = %dropped.value.id,
                    scope = %canonical,
                    "canonical uuid scopes: two assignments of one role at one scope; \
                     the removed one is in the change log"
                );
                let id = dropped.value.id;
                self.delete_logged(
                    ROLE_ASSIGNMENTS,
                    &[("id", Arg::id(id))],
                    id.to_string(),
                    &dropped.raw_body,
                )
                .await?;
                counts.1 += 1;
            }
            if keeper.raw_key != canonical {
                let id = keeper.value.id;
                let columns = [("directory_scope_id", Arg::Text(canonical.clone()))];
                self.update(ROLE_ASSIGNMENTS, id, &columns, &keeper.value)
                    .await?;
                let after = serde_json::to_value(&keeper.value).map_err(|error| {
                    StoreError::Corrupt(format!("an assignment does not encode: {error}"))
                })?;
                self.log(
                    ROLE_ASSIGNMENTS.entity,
                    id.to_string(),
                    ChangeOp::Update,
                    Some(&keeper.raw_body),
                    Some(&after),
                )
                .await?;
                counts.0 += 1;
            }
        }
        Ok(())
    }

    /// One unit's members. Every row of a group that needs the rewrite is deleted and one
    /// canonical row (added when the first of them was) is inserted, so a replica replaying
    /// the log ends with the member present whichever spelling it had indexed.
    async fn canonicalize_unit_members(
        &mut self,
        unit: &str,
        counts: &mut (usize, usize),
    ) -> StoreResult<()> {
        let sql = "SELECT resource, body FROM administrative_unit_members \
                   WHERE tenant_id = $1 AND unit_id = $2 ORDER BY resource";
        let table = UNIT_MEMBERS.name;
        let groups = self
            .non_canonical_groups::<AdministrativeUnitMember>(table, sql, &[unit])
            .await?;
        for (canonical, rows) in groups {
            let Some(first) = rows.iter().map(|r| r.value.created_date_time).min() else {
                continue;
            };
            let unit_id = rows[0].value.administrative_unit_id;
            for row in &rows {
                let key = [
                    ("unit_id", Arg::Text(unit.to_owned())),
                    ("resource", Arg::Text(row.raw_key.clone())),
                ];
                self.delete_logged(
                    UNIT_MEMBERS,
                    &key,
                    format!("{unit}{}", row.raw_key),
                    &row.raw_body,
                )
                .await?;
            }
            let resource = Scope::parse(&canonical).map_err(|error| {
                StoreError::Corrupt(format!("a canonical scope does not parse: {error}"))
            })?;
            let member = AdministrativeUnitMember {
                administrative_unit_id: unit_id,
                resource,
                created_date_time: first,
            };
            let key = [
                ("unit_id", Arg::Text(unit.to_owned())),
                ("resource", Arg::Text(canonical.clone())),
            ];
            self.insert(UNIT_MEMBERS, &key, &member).await?;
            self.log(
                UNIT_MEMBERS.entity,
                format!("{unit}{canonical}"),
                ChangeOp::Create,
                None,
                Some(&member),
            )
            .await?;
            if rows.len() > 1 {
                tracing::warn!(
                    tenant = %self.tenant,
                    unit,
                    resource = %canonical,
                    spellings = rows.len(),
                    "canonical uuid scopes: one member resource was stored in several spellings; \
                     merged into one"
                );
            }
            counts.0 += 1;
            counts.1 += rows.len() - 1;
        }
        Ok(())
    }
}
