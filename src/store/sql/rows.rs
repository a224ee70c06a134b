//! Rows: the typed tables, the SQL builder and its bind arguments, JSON bodies, keyed
//! pagination and `changes` rows that the read and write paths share.

use std::fmt::{self, Write as _};
use std::marker::PhantomData;

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
    AdministrativeUnit, AdministrativeUnitMember, Change, ChangeOp, DenyAssignment, EntityType,
    Group, GroupMember, Principal, Resource, Revision, RoleAssignment,
    RoleAssignmentScheduleRequest, RoleDefinition, RoleEligibilitySchedule, RoleManagementPolicy,
    Scope, TenantId, Timestamp, ValidationErrors,
};
use crate::store::{LoggedChange, Page, PageRequest, StoreError, StoreResult, Stored};

/// One table, typed by the object its rows hold: a row is only ever decoded as, and written
/// from, that object, so reading a group from the units table does not compile. Its name
/// is never user input, so it may be pushed into SQL as text.
#[derive(Debug)]
pub(super) struct Table<T> {
    pub(super) name: &'static str,
    pub(super) entity: EntityType,
    rows: PhantomData<fn() -> T>,
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Table<T> {}

impl<T> Table<T> {
    const fn new(name: &'static str, entity: EntityType) -> Table<T> {
        Table {
            name,
            entity,
            rows: PhantomData,
        }
    }

    pub(super) fn not_found(self, id: impl fmt::Display) -> StoreError {
        StoreError::NotFound {
            kind: self.entity.as_str(),
            id: id.to_string(),
        }
    }
}

pub(super) const ROLE_DEFINITIONS: Table<RoleDefinition> =
    Table::new("role_definitions", EntityType::RoleDefinition);
pub(super) const ROLE_ASSIGNMENTS: Table<RoleAssignment> =
    Table::new("role_assignments", EntityType::RoleAssignment);
pub(super) const DENY_ASSIGNMENTS: Table<DenyAssignment> =
    Table::new("deny_assignments", EntityType::DenyAssignment);
pub(super) const GROUPS: Table<Group> = Table::new("groups", EntityType::Group);
pub(super) const GROUP_MEMBERS: Table<GroupMember> =
    Table::new("group_members", EntityType::GroupMember);
pub(super) const UNITS: Table<AdministrativeUnit> =
    Table::new("administrative_units", EntityType::AdministrativeUnit);
pub(super) const UNIT_MEMBERS: Table<AdministrativeUnitMember> = Table::new(
    "administrative_unit_members",
    EntityType::AdministrativeUnitMember,
);
pub(super) const PRINCIPALS: Table<Principal> = Table::new("principals", EntityType::Principal);
pub(super) const RESOURCES: Table<Resource> = Table::new("resources", EntityType::Resource);
pub(super) const ELIGIBILITIES: Table<RoleEligibilitySchedule> = Table::new(
    "role_eligibility_schedules",
    EntityType::RoleEligibilitySchedule,
);
pub(super) const SCHEDULE_REQUESTS: Table<RoleAssignmentScheduleRequest> = Table::new(
    "role_assignment_schedule_requests",
    EntityType::RoleAssignmentScheduleRequest,
);
pub(super) const POLICIES: Table<RoleManagementPolicy> =
    Table::new("role_management_policies", EntityType::RoleManagementPolicy);

/// A bind argument.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
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

    /// A row count, as the `LIMIT` argument.
    pub(super) fn count(n: usize) -> Arg {
        Arg::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// One key column of a row and its value.
pub(super) type Key = (&'static str, Arg);

/// One condition of a listing or a bulk read.
#[derive(Debug, Clone)]
pub(super) enum Filter {
    /// `column = value`.
    Eq(&'static str, Arg),
    /// `(first = value OR second = value)`.
    EitherEq(&'static str, &'static str, Arg),
    /// The lowercased column holds the needle, ignoring case (`LIKE`, wildcards escaped).
    Contains(&'static str, String),
}

pub(super) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// SQL assembled at run time, with its bind arguments.
///
/// It stands in for `sqlx::QueryBuilder`, whose `Any` form writes `?` placeholders, which
/// PostgreSQL rejects (launchbadge/sqlx#3000); this one writes `$N`, which both backends
/// read. Text is pushed only as `&'static str` (keywords, and table and column names from
/// typed constants), so a value can enter only as a bound argument.
#[derive(Debug, Default)]
pub(super) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(super) fn new(text: &'static str) -> Sql {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// `SELECT [key, ]revision, body FROM table WHERE tenant_id = $1`: stored objects of
    /// one tenant, each after its key when one is named.
    pub(super) fn select_stored<T>(
        table: Table<T>,
        key: Option<&'static str>,
        tenant: TenantId,
    ) -> Sql {
        let mut sql = Sql::new("SELECT ");
        if let Some(key) = key {
            sql.push(key).push(", ");
        }
        sql.push("revision, body FROM ")
            .push(table.name)
            .push(" WHERE tenant_id = ")
            .push_bind(Arg::tenant(tenant));
        sql
    }

    pub(super) fn push(&mut self, text: &'static str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Binds `arg` and writes its placeholder.
    pub(super) fn push_bind(&mut self, arg: Arg) -> &mut Sql {
        self.args.push(arg);
        // Writing to a String cannot fail.
        let _ = write!(self.text, "${}", self.args.len());
        self
    }

    /// ` AND column = value` for each key.
    pub(super) fn push_keys(&mut self, keys: &[Key]) -> &mut Sql {
        for (column, arg) in keys {
            self.push(" AND ")
                .push(column)
                .push(" = ")
                .push_bind(arg.clone());
        }
        self
    }

    /// ` AND ` and the filter.
    pub(super) fn push_filter(&mut self, filter: &Filter) -> &mut Sql {
        self.push(" AND ");
        match filter {
            Filter::Eq(column, arg) => self.push(column).push(" = ").push_bind(arg.clone()),
            Filter::EitherEq(first, second, arg) => self
                .push("(")
                .push(first)
                .push(" = ")
                .push_bind(arg.clone())
                .push(" OR ")
                .push(second)
                .push(" = ")
                .push_bind(arg.clone())
                .push(")"),
            Filter::Contains(column, needle) => self
                .push(column)
                .push(" LIKE ")
                .push_bind(Arg::Text(like_contains(needle)))
                .push(" ESCAPE '\\'"),
        }
    }

    /// The query, every argument bound.
    pub(super) fn query(&self) -> AnyQuery<'_> {
        let mut query = sqlx::query(&self.text);
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::OptText(text) => query.bind(text.as_deref()),
                Arg::Int(n) => query.bind(*n),
                Arg::Bool(b) => query.bind(*b),
            };
        }
        query
    }
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
    table: Table<T>,
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

pub(super) fn parse_tenant(raw: &str) -> StoreResult<TenantId> {
    Uuid::parse_str(raw)
        .map(TenantId)
        .map_err(|_| StoreError::Corrupt(format!("a row has tenant id `{raw}`")))
}

pub(super) fn unprocessable(pointer: &str, detail: String) -> StoreError {
    StoreError::Unprocessable(ValidationErrors::single(pointer, detail))
}

/// One row of `table` by its key columns (the tenant is always part of the key).
pub(super) async fn get_row<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: Table<T>,
    tenant: TenantId,
    keys: &[Key],
) -> StoreResult<Option<Stored<T>>> {
    let mut sql = Sql::select_stored(table, None, tenant);
    sql.push_keys(keys);
    let row = sql.query().fetch_optional(&mut *conn).await?;
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
    /// A JSON pair of strings: `[type, id]` for resources.
    Pair,
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
        KeyKind::Pair => serde_json::from_str::<(String, String)>(&key).is_ok(),
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

/// Up to `limit` rows of `table` (tenant-scoped) matching every filter, ordered by the
/// text column `key`, after the key `after`; each with its key.
pub(super) async fn fetch_keyed<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: Table<T>,
    key: &'static str,
    tenant: TenantId,
    filters: &[Filter],
    after: Option<String>,
    limit: usize,
) -> StoreResult<Vec<(String, Stored<T>)>> {
    let mut sql = Sql::select_stored(table, Some(key), tenant);
    for filter in filters {
        sql.push_filter(filter);
    }
    if let Some(after) = after {
        sql.push(" AND ")
            .push(key)
            .push(" > ")
            .push_bind(Arg::Text(after));
    }
    sql.push(" ORDER BY ")
        .push(key)
        .push(" LIMIT ")
        .push_bind(Arg::count(limit));
    let rows = sql.query().fetch_all(&mut *conn).await?;
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
    table: Table<T>,
    key: (&'static str, KeyKind),
    tenant: TenantId,
    filters: &[Filter],
    page: &PageRequest,
) -> StoreResult<Page<Stored<T>>> {
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(cursor, key.1))
        .transpose()?;
    let limit = page_limit(page);
    let rows = fetch_keyed(conn, table, key.0, tenant, filters, after, limit + 1).await?;
    Ok(into_page(rows, limit))
}

/// `%needle%` for `LIKE ... ESCAPE '\'`, lowercased like `display_name_key`.
fn like_contains(needle: &str) -> String {
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
