//! `/v1/changes`: the tenant's change log (audit trail), oldest first.

use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::authz::{Caller, READ_CHANGES};
use crate::api::extract::{page_request, ApiQuery, Tenant};
use crate::api::respond::List;
use crate::api::{ApiError, AppState};
use crate::model::{Change, Revision, Scope};
use crate::store::LoggedChange;

/// Query of `GET /v1/changes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
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
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app.store().list_changes(tenant, since, &page).await?;
    // Read after the page, so it is at least the newest change listed.
    let revision = app.store().current_revision().await?;
    Ok(ChangesPage {
        list: List::new(&uri, page, ChangeEntry::from),
        revision,
    })
}
