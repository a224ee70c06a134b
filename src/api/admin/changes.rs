//! `/v1/changes`: the tenant's change log, the audit log: oldest first, filtered by actor,
//! entity type, entity id and time range.

use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::authz::{Caller, READ_CHANGES};
use crate::api::extract::{page_request, ApiQuery, Tenant};
use crate::api::respond::List;
use crate::api::{ApiError, AppState};
use crate::model::{Change, EntityType, Revision, Scope, Timestamp};
use crate::store::{ChangeFilter, LoggedChange};

/// Query of `GET /v1/changes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    actor: Option<String>,
    #[serde(rename = "entityType")]
    entity_type: Option<String>,
    #[serde(rename = "entityId")]
    entity_id: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

/// An RFC 3339 instant from the query string.
fn instant(key: &str, raw: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| {
                ApiError::invalid(
                    format!("?{key}"),
                    format!(
                        "`{raw}` is not an RFC 3339 date-time such as 2026-11-30T12:00:00Z: {e}"
                    ),
                )
            })
    })
    .transpose()
}

/// The list envelope plus the store's newest revision.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPage {
    #[serde(flatten)]
    list: List<ChangeEntry>,
    revision: Revision,
}

/// One change as `/v1/changes` shows it: the change's fields, then `actorIssuer`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEntry {
    /// The change itself.
    #[serde(flatten)]
    change: Change,
    /// The token issuer that vouched for `actor`; null for the admin key and bootstrap.
    actor_issuer: Option<String>,
}

impl From<LoggedChange> for ChangeEntry {
    fn from(logged: LoggedChange) -> Self {
        ChangeEntry {
            change: logged.change,
            actor_issuer: logged.actor_issuer,
        }
    }
}

impl IntoResponse for ChangesPage {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<ChangesPage, ApiError> {
    caller.authorize(&app, READ_CHANGES, &Scope::root())?;
    let since = match q.since.as_deref() {
        None => Revision(0),
        Some(raw) => raw
            .parse::<Revision>()
            .map_err(|e| ApiError::invalid("?since", format!("`{raw}`: {e}")))?,
    };
    let entity_type = q
        .entity_type
        .as_deref()
        .map(|raw| {
            EntityType::parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    "?entityType",
                    format!("`{raw}` is not an entity type (`roleAssignment`, `group`, ...)"),
                )
            })
        })
        .transpose()?;
    let filter = ChangeFilter {
        since,
        actor: q.actor,
        entity_type,
        entity_id: q.entity_id,
        from: instant("from", q.from.as_deref())?,
        until: instant("until", q.until.as_deref())?,
    };
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app.store().audit(tenant, &filter, &page).await?;
    // Read after the page, so it is at least the newest change listed.
    let revision = app.store().current_revision().await?;
    Ok(ChangesPage {
        list: List::new(&uri, page, ChangeEntry::from),
        revision,
    })
}
