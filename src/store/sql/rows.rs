//! Rows: the tables, bind arguments, JSON bodies, keyed pagination and `changes` rows that
//! the read and write paths share.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};
use uuid::Uuid;

use crate::model::{
    Change, ChangeOp, EntityType, Revision, RoleDefinition, Scope, TenantId, Timestamp,
    ValidationErrors,
};
use crate::store::{LoggedChange, Page, PageRequest, StoreError, StoreResult, Stored};

/// One table: its name (never user input, so it may be formatted into SQL) and the kind
/// of object its rows hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) entity: EntityType,
}

pub(super) const ROLE_DEFINITIONS: Table = Table {
    name: "role_definitions",
    entity: EntityType::RoleDefinition,
};
pub(super) const ROLE_ASSIGNMENTS: Table = Table {
    name: "role_assignments",
    entity: EntityType::RoleAssignment,
};
pub(super) const DENY_ASSIGNMENTS: Table = Table {
    name: "deny_assignments",
    entity: EntityType::DenyAssignment,
};
pub(super) const GROUPS: Table = Table {
    name: "groups",
    entity: EntityType::Group,
};
pub(super) const GROUP_MEMBERS: Table = Table {
    name: "group_members",
    entity: EntityType::GroupMember,
};
pub(super) const UNITS: Table = Table {
    name: "administrative_units",
    entity: EntityType::AdministrativeUnit,
};
pub(super) const UNIT_MEMBERS: Table = Table {
    name: "administrative_unit_members",
    entity: EntityType::AdministrativeUnitMember,
};

impl Table {
    pub(super) fn not_found(self, id: impl fmt::Display) -> StoreError {
        StoreError::NotFound {
            kind: self.entity.as_str(),
            id: id.to_string(),
        }
    }
}

/// A bind argument of a query assembled at run time.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Arg {
    pub(super) fn id(id: Uuid) -> Arg {
        Arg::Text(id.to_string())
    }

    pub(super) fn tenant(tenant: TenantId) -> Arg {
        Arg::Text(tenant.to_string())
    }
}

pub(super) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

pub(super) fn bind_all<'q>(mut query: AnyQuery<'q>, args: &'q [Arg]) -> AnyQuery<'q> {
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text.as_str()),
            Arg::Int(n) => query.bind(*n),
            Arg::Bool(b) => query.bind(*b),
        };
    }
    query
}

/// `column = $n AND ...` for `keys`, numbering placeholders from `first`.
pub(super) fn key_conditions(keys: &[(&str, Arg)], first: usize) -> String {
    keys.iter()
        .enumerate()
        .map(|(i, (column, _))| format!("{column} = ${}", first + i))
        .collect::<Vec<_>>()
        .join(" AND ")
}

pub(super) fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Corrupt(format!("an object does not encode as JSON: {error}")))
}

pub(super) fn from_json<T: DeserializeOwned>(table: &str, body: &str) -> StoreResult<T> {
    serde_json::from_str(body)
        .map_err(|error| StoreError::Corrupt(format!("a `{table}` row does not decode: {error}")))
}

pub(super) fn stored_from_row<T: DeserializeOwned>(
    table: Table,
    row: &AnyRow,
    revision_at: usize,
) -> StoreResult<Stored<T>> {
    let revision: i64 = row.try_get(revision_at)?;
    let body: String = row.try_get(revision_at + 1)?;
    Ok(Stored {
        value: from_json(table.name, &body)?,
        revision: Revision(revision),
    })
}

pub(super) fn builtin_stored(role: &RoleDefinition) -> Stored<RoleDefinition> {
    Stored {
        value: role.clone(),
        revision: Revision(0),
    }
}

/// Now, cut to microseconds: what both backends' text columns and JSON bodies keep.
pub(super) fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Fixed precision and `Z`, so that text order is time order.
pub(super) fn time_text(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(super) fn group_member_key(group: Uuid, member: Uuid) -> String {
    format!("{group}/{member}")
}

pub(super) fn unit_member_key(unit: Uuid, resource: &Scope) -> String {
    format!("{unit}{resource}")
}

pub(super) fn unprocessable(pointer: &str, detail: String) -> StoreError {
    StoreError::Unprocessable(ValidationErrors::single(pointer, detail))
}

/// One row of `table` by its key columns (the tenant is always part of the key).
pub(super) async fn get_row<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: Table,
    tenant: TenantId,
    keys: &[(&str, Arg)],
) -> StoreResult<Option<Stored<T>>> {
    let sql = format!(
        "SELECT revision, body FROM {} WHERE tenant_id = $1 AND {}",
        table.name,
        key_conditions(keys, 2)
    );
    let mut args = vec![Arg::tenant(tenant)];
    args.extend(keys.iter().map(|(_, arg)| arg.clone()));
    let row = bind_all(sqlx::query(&sql), &args)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| stored_from_row(table, &row, 0)).transpose()
}

// ---------------------------------------------------------------------------------------
// Pagination
// ---------------------------------------------------------------------------------------

/// What a cursor's key must look like for one listing.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeyKind {
    Uuid,
    Scope,
    Change,
}

pub(super) fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The key a cursor encodes; anything this store did not hand out is refused.
pub(super) fn decode_cursor(cursor: &str, kind: KeyKind) -> StoreResult<String> {
    let refused = || StoreError::InvalidCursor;
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| refused())?;
    let key = String::from_utf8(bytes).map_err(|_| refused())?;
    let valid = match kind {
        KeyKind::Uuid => Uuid::parse_str(&key).is_ok_and(|id| id.to_string() == key),
        KeyKind::Scope => Scope::parse(&key).is_ok(),
        KeyKind::Change => parse_change_key(&key).is_some(),
    };
    if valid {
        Ok(key)
    } else {
        Err(refused())
    }
}

pub(super) fn change_key(revision: Revision, sequence: i64) -> String {
    format!("{}:{sequence}", revision.0)
}

pub(super) fn parse_change_key(key: &str) -> Option<(i64, i64)> {
    let (revision, sequence) = key.split_once(':')?;
    Some((revision.parse().ok()?, sequence.parse().ok()?))
}

pub(super) fn page_limit(page: &PageRequest) -> usize {
    page.limit.max(1) as usize
}

/// Cuts `limit + 1` keyed items into a page, the extra one proving there is a next page.
pub(super) fn into_page<T>(mut rows: Vec<(String, T)>, limit: usize) -> Page<T> {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(key, _)| encode_cursor(key))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

/// One condition of a listing: SQL with `{}` where its placeholder goes, and its argument.
pub(super) type Condition = (&'static str, Arg);

/// Up to `limit` rows of `table` (tenant-scoped) matching every condition, ordered by the
/// text column `key`, after the key `after`; each with its key.
pub(super) async fn fetch_keyed<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: Table,
    key: &'static str,
    tenant: TenantId,
    conditions: Vec<Condition>,
    after: Option<String>,
    limit: usize,
) -> StoreResult<Vec<(String, Stored<T>)>> {
    let mut sql = format!(
        "SELECT {key}, revision, body FROM {} WHERE tenant_id = $1",
        table.name
    );
    let mut args = vec![Arg::tenant(tenant)];
    for (condition, arg) in conditions {
        args.push(arg);
        sql.push_str(" AND ");
        sql.push_str(&condition.replace("{}", &format!("${}", args.len())));
    }
    if let Some(after) = after {
        args.push(Arg::Text(after));
        sql.push_str(&format!(" AND {key} > ${}", args.len()));
    }
    args.push(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(" ORDER BY {key} LIMIT ${}", args.len()));
    let rows = bind_all(sqlx::query(&sql), &args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get::<String, _>(0)?,
                stored_from_row(table, row, 1)?,
            ))
        })
        .collect()
}

/// One page of `table`, ordered by `key`, after the page request's cursor.
pub(super) async fn list_page<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: Table,
    key: (&'static str, KeyKind),
    tenant: TenantId,
    conditions: Vec<Condition>,
    page: &PageRequest,
) -> StoreResult<Page<Stored<T>>> {
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(cursor, key.1))
        .transpose()?;
    let limit = page_limit(page);
    let rows = fetch_keyed(conn, table, key.0, tenant, conditions, after, limit + 1).await?;
    Ok(into_page(rows, limit))
}

/// `%needle%` for `LIKE ... ESCAPE '\'`, lowercased like `display_name_key`.
pub(super) fn like_contains(needle: &str) -> String {
    let mut pattern = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

// ---------------------------------------------------------------------------------------
// Change log rows
// ---------------------------------------------------------------------------------------

pub(super) const CHANGE_COLUMNS: &str =
    "revision, sequence, tenant_id, entity_type, entity_id, op, before, after, actor, at";

/// [`CHANGE_COLUMNS`] and the actor's issuer, for the audit trail.
pub(super) const LOGGED_CHANGE_COLUMNS: &str =
    "revision, sequence, tenant_id, entity_type, entity_id, op, before, after, actor, at, actor_issuer";

/// A row selected with [`LOGGED_CHANGE_COLUMNS`].
pub(super) fn logged_change_from_row(row: &AnyRow) -> StoreResult<LoggedChange> {
    Ok(LoggedChange {
        change: change_from_row(row)?,
        actor_issuer: row.try_get(10)?,
    })
}

pub(super) fn change_from_row(row: &AnyRow) -> StoreResult<Change> {
    let corrupt =
        |what: &str, raw: &str| StoreError::Corrupt(format!("a `changes` row has {what} `{raw}`"));
    let tenant: String = row.try_get(2)?;
    let entity_type: String = row.try_get(3)?;
    let op: String = row.try_get(5)?;
    let before: Option<String> = row.try_get(6)?;
    let after: Option<String> = row.try_get(7)?;
    let at: String = row.try_get(9)?;
    Ok(Change {
        revision: Revision(row.try_get(0)?),
        sequence: row.try_get(1)?,
        tenant_id: TenantId(Uuid::parse_str(&tenant).map_err(|_| corrupt("tenant", &tenant))?),
        entity_type: EntityType::parse(&entity_type)
            .ok_or_else(|| corrupt("entity type", &entity_type))?,
        entity_id: row.try_get(4)?,
        op: ChangeOp::parse(&op).ok_or_else(|| corrupt("op", &op))?,
        before: before.map(|json| from_json("changes", &json)).transpose()?,
        after: after.map(|json| from_json("changes", &json)).transpose()?,
        actor: row.try_get(8)?,
        at: DateTime::parse_from_rfc3339(&at)
            .map_err(|_| corrupt("time", &at))?
            .with_timezone(&Utc),
    })
}
