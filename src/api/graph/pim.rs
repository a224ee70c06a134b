//! `/v1.0/roleManagement/directory/roleEligibilitySchedules` and
//! `.../roleAssignmentScheduleRequests`: Graph's PIM paths over the `/v1` PIM logic
//! (`admin::pim`). Objects keep the `/v1` fields, which are Graph's names; `$filter`
//! (`eq`, `and`), `$select` and `$top` are served, `$expand` is not.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::odata::{self, Options};
use super::{Failure, GraphError};
use crate::api::admin::assignments::authorize_listing;
use crate::api::admin::pim as v1;
use crate::api::authz::{Caller, READ_ASSIGNMENTS};
use crate::api::extract::{ApiJson, IdPath, Tenant};
use crate::api::AppState;
use crate::model::{RequestStatus, ScheduleRequestInput, Scope};
use crate::store::{PageRequest, Review, RoleAssignmentFilter, ScheduleRequestFilter};

/// The eligibility schedules collection.
pub const ELIGIBILITY_SCHEDULES: &str = "/v1.0/roleManagement/directory/roleEligibilitySchedules";
/// The assignment schedule requests collection.
pub const SCHEDULE_REQUESTS: &str = "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests";

const ELIGIBILITY_PROPERTIES: [&str; 10] = [
    "id",
    "principalId",
    "principalType",
    "roleDefinitionId",
    "directoryScopeId",
    "startDateTime",
    "endDateTime",
    "justification",
    "memberType",
    "createdDateTime",
];

const REQUEST_PROPERTIES: [&str; 16] = [
    "id",
    "action",
    "principalId",
    "roleDefinitionId",
    "directoryScopeId",
    "justification",
    "scheduleInfo",
    "ticketInfo",
    "status",
    "startDateTime",
    "endDateTime",
    "targetScheduleId",
    "reviewedBy",
    "reviewJustification",
    "createdDateTime",
    "completedDateTime",
];

/// What `$filter` may compare, parsed.
#[derive(Default)]
struct Filter {
    principal_id: Option<Uuid>,
    role_definition_id: Option<Uuid>,
    directory_scope_id: Option<Scope>,
    status: Option<RequestStatus>,
}

/// `$filter` on `filterable` properties of `entity`, each compared once.
fn filter_of(options: &Options, entity: &str, filterable: &[&str]) -> Result<Filter, GraphError> {
    let mut filter = Filter::default();
    for comparison in &options.filter {
        let property = comparison.property.as_str();
        let repeated = || {
            GraphError::unsupported(format!(
                "Unsupported query: `{property}` is compared more than once"
            ))
        };
        if !filterable.contains(&property) {
            return Err(GraphError::unsupported(format!(
                "Unsupported query: filtering {entity} on `{property}` is not supported; \
                 filter on {}",
                filterable.join(", ")
            )));
        }
        match property {
            "principalId" => {
                if filter.principal_id.is_some() {
                    return Err(repeated());
                }
                filter.principal_id = Some(comparison.value.guid(property)?);
            }
            "roleDefinitionId" => {
                if filter.role_definition_id.is_some() {
                    return Err(repeated());
                }
                filter.role_definition_id = Some(comparison.value.guid(property)?);
            }
            "directoryScopeId" => {
                if filter.directory_scope_id.is_some() {
                    return Err(repeated());
                }
                let raw = comparison.value.text(property)?;
                filter.directory_scope_id = Some(Scope::parse(&raw).map_err(|e| {
                    GraphError::bad_request(format!(
                        "Invalid filter clause: `{raw}` is not a directory scope: {e}"
                    ))
                })?);
            }
            _ => {
                if filter.status.is_some() {
                    return Err(repeated());
                }
                let raw = comparison.value.text(property)?;
                filter.status = Some(RequestStatus::parse(&raw).ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "Invalid filter clause: `{raw}` is not a request status"
                    ))
                })?);
            }
        }
    }
    Ok(filter)
}

/// 400 unless `options` are `$filter`, `$select` and `$top` only, with known properties.
fn check(options: &Options, entity: &str, properties: &[&str]) -> Result<(), GraphError> {
    if !options.expand.is_empty() {
        return Err(GraphError::unsupported(format!(
            "`$expand` is not supported on {entity}"
        )));
    }
    super::check_select(options, entity, properties)
}

fn shaped<T: Serialize>(object: &T) -> Map<String, Value> {
    match serde_json::to_value(object) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// `{"@odata.context", "@odata.nextLink"?, "value"}` for one page.
fn page_body(
    app: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    entity_set: &str,
    options: &Options,
    items: Vec<Map<String, Value>>,
    next: Option<&str>,
) -> Response {
    let base = super::base_url(app, headers);
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(&base, entity_set, options, false)),
    );
    if let Some(cursor) = next {
        body.insert(
            "@odata.nextLink".to_owned(),
            Value::String(super::next_link(&base, uri.path(), options, cursor)),
        );
    }
    let value = items
        .into_iter()
        .map(|mut object| {
            super::select(&mut object, options);
            Value::Object(object)
        })
        .collect();
    body.insert("value".to_owned(), Value::Array(value));
    super::json(StatusCode::OK, HeaderMap::new(), &Value::Object(body))
}

/// One object with its `@odata.context`.
fn entity_body(
    app: &AppState,
    headers: &HeaderMap,
    entity_set: &str,
    options: &Options,
    mut object: Map<String, Value>,
    status: StatusCode,
    response_headers: HeaderMap,
) -> Response {
    super::select(&mut object, options);
    let base = super::base_url(app, headers);
    object.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(&base, entity_set, options, true)),
    );
    super::json(status, response_headers, &Value::Object(object))
}

fn page_request(options: &Options) -> PageRequest {
    PageRequest {
        limit: options.top.unwrap_or(crate::api::extract::DEFAULT_LIMIT),
        cursor: options.skip_token.clone(),
    }
}

pub async fn list_eligibilities(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    const ENTITY: &str = "unifiedRoleEligibilitySchedule";
    let options = odata::parse(uri.query())?;
    check(&options, ENTITY, &ELIGIBILITY_PROPERTIES)?;
    let f = filter_of(
        &options,
        "roleEligibilitySchedules",
        &["principalId", "roleDefinitionId", "directoryScopeId"],
    )?;
    let filter = RoleAssignmentFilter {
        principal_id: f.principal_id,
        role_definition_id: f.role_definition_id,
        directory_scope_id: f.directory_scope_id,
    };
    if !v1::lists_own(&caller, filter.principal_id) {
        authorize_listing(&app, &caller, filter.directory_scope_id.as_ref())?;
    }
    let listed = app
        .store()
        .list_eligibilities(tenant, &filter, &page_request(&options))
        .await?;
    let items = listed.items.iter().map(|s| shaped(&s.value)).collect();
    Ok(page_body(
        &app,
        &headers,
        &uri,
        "roleEligibilitySchedules",
        &options,
        items,
        listed.next.as_deref(),
    ))
}

pub async fn get_eligibility(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let options = odata::parse(uri.query())?;
    super::only_select_and_expand(&options)?;
    check(
        &options,
        "unifiedRoleEligibilitySchedule",
        &ELIGIBILITY_PROPERTIES,
    )?;
    let stored = v1::read_eligibility(&app, &caller, tenant, id).await?;
    Ok(entity_body(
        &app,
        &headers,
        "roleEligibilitySchedules",
        &options,
        shaped(&stored.value),
        StatusCode::OK,
        super::write_headers(stored.revision, None),
    ))
}

pub async fn list_requests(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    const ENTITY: &str = "unifiedRoleAssignmentScheduleRequest";
    let options = odata::parse(uri.query())?;
    check(&options, ENTITY, &REQUEST_PROPERTIES)?;
    let f = filter_of(
        &options,
        "roleAssignmentScheduleRequests",
        &["principalId", "status"],
    )?;
    let filter = ScheduleRequestFilter {
        principal_id: f.principal_id,
        status: f.status,
    };
    if !v1::lists_own(&caller, filter.principal_id) {
        caller.authorize(&app, READ_ASSIGNMENTS, &Scope::root())?;
    }
    let listed = app
        .store()
        .list_schedule_requests(tenant, &filter, &page_request(&options))
        .await?;
    let items = listed.items.iter().map(|s| shaped(&s.value)).collect();
    Ok(page_body(
        &app,
        &headers,
        &uri,
        "roleAssignmentScheduleRequests",
        &options,
        items,
        listed.next.as_deref(),
    ))
}

pub async fn get_request(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let options = odata::parse(uri.query())?;
    super::only_select_and_expand(&options)?;
    check(
        &options,
        "unifiedRoleAssignmentScheduleRequest",
        &REQUEST_PROPERTIES,
    )?;
    let stored = v1::read_request(&app, &caller, tenant, id).await?;
    Ok(entity_body(
        &app,
        &headers,
        "roleAssignmentScheduleRequests",
        &options,
        shaped(&stored.value),
        StatusCode::OK,
        super::write_headers(stored.revision, None),
    ))
}

pub async fn submit_request(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ScheduleRequestInput>,
) -> Result<Response, Failure> {
    let written = v1::submit(&app, &caller, tenant, body).await?;
    let location = format!("{SCHEDULE_REQUESTS}/{}", written.value.id);
    Ok(entity_body(
        &app,
        &headers,
        "roleAssignmentScheduleRequests",
        &Options::default(),
        shaped(&written.value),
        StatusCode::CREATED,
        super::write_headers(written.revision, Some(&location)),
    ))
}

/// Graph's `cancel`: 204 No Content.
pub async fn cancel_request(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<Response, Failure> {
    let written = v1::review(
        &app,
        &caller,
        tenant,
        id,
        Review::Cancel,
        v1::ReviewInput::default(),
    )
    .await?;
    Ok(super::json_empty(written.revision))
}
