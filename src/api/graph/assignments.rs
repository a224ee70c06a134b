//! `/v1.0/roleManagement/directory/roleAssignments`: Graph's `unifiedRoleAssignment` over
//! the `/v1/roleAssignments` logic. Graph documents no update of an assignment, so there is
//! no PATCH.

use std::collections::HashMap;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::odata::{self, Options};
use super::{Failure, GraphError, ROLE_ASSIGNMENTS};
use crate::api::admin::assignments as v1;
use crate::api::authz::{object_scope, Caller, READ_GROUPS, READ_SERVICE_PRINCIPALS, READ_USERS};
use crate::api::extract::{ApiJson, IdPath, IfMatch, Tenant};
use crate::api::AppState;
use crate::model::{PrincipalType, RoleAssignment, RoleAssignmentInput, Scope, TenantId};
use crate::store::{PageRequest, RoleAssignmentFilter, StoreError};

/// The properties of `unifiedRoleAssignment` served here (`$select` takes these).
const PROPERTIES: [&str; 6] = [
    "id",
    "principalId",
    "roleDefinitionId",
    "directoryScopeId",
    "appScopeId",
    "condition",
];

/// The navigation properties `$expand` takes.
const EXPANDABLE: [&str; 2] = ["principal", "roleDefinition"];

/// An assignment as Graph's `unifiedRoleAssignment`. App scopes do not exist in Rolecall:
/// `appScopeId` is always null.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Assignment<'a> {
    id: Uuid,
    principal_id: Uuid,
    role_definition_id: Uuid,
    directory_scope_id: &'a str,
    app_scope_id: Option<&'a str>,
    condition: Option<&'a str>,
}

fn to_graph(assignment: &RoleAssignment) -> Map<String, Value> {
    let shaped = Assignment {
        id: assignment.id,
        principal_id: assignment.principal_id,
        role_definition_id: assignment.role_definition_id,
        directory_scope_id: assignment.directory_scope_id.as_str(),
        app_scope_id: None,
        condition: assignment.condition.as_deref(),
    };
    match serde_json::to_value(shaped) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// `$select` among [`PROPERTIES`], `$expand` among [`EXPANDABLE`], each expansion once.
/// Expanding `roleDefinition` shows the role: it needs reading roles at `/`, as listing
/// them does.
fn check(app: &AppState, caller: &Caller, options: &Options) -> Result<(), Failure> {
    super::check_select(options, "unifiedRoleAssignment", &PROPERTIES)?;
    for (i, name) in options.expand.iter().enumerate() {
        if !EXPANDABLE.contains(&name.as_str()) {
            return Err(GraphError::unsupported(format!(
                "`$expand={name}` is not supported on roleAssignments; expand principal or \
                 roleDefinition"
            ))
            .into());
        }
        if options.expand[..i].contains(name) {
            return Err(GraphError::bad_request(format!("`{name}` is expanded twice")).into());
        }
    }
    if options.expand.iter().any(|e| e == "roleDefinition") {
        crate::api::admin::roles::authorize_listing(app, caller)?;
    }
    Ok(())
}

/// `$filter` as a store filter: `principalId`, `roleDefinitionId`, `directoryScopeId`, each
/// once.
fn filter_of(options: &Options) -> Result<RoleAssignmentFilter, GraphError> {
    let mut filter = RoleAssignmentFilter::default();
    for comparison in &options.filter {
        let property = comparison.property.as_str();
        let repeated = || {
            GraphError::unsupported(format!(
                "Unsupported query: `{property}` is compared more than once"
            ))
        };
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
                let scope = Scope::parse(&raw).map_err(|e| {
                    GraphError::bad_request(format!(
                        "Invalid filter clause: `{raw}` is not a directory scope: {e}"
                    ))
                })?;
                filter.directory_scope_id = Some(scope);
            }
            other if PROPERTIES.contains(&other) => {
                return Err(GraphError::unsupported(format!(
                    "Unsupported query: filtering roleAssignments on `{other}` is not \
                     supported; filter on principalId, roleDefinitionId or directoryScopeId"
                )))
            }
            other => {
                return Err(GraphError::bad_request(format!(
                    "Invalid filter clause: could not find a property named '{other}' on type \
                     'microsoft.graph.unifiedRoleAssignment'"
                )))
            }
        }
    }
    Ok(filter)
}

/// Adds the `$expand`ed navigation properties to each shaped assignment.
///
/// `roleDefinition` is the role in Graph's shape (each role read once per page).
/// `principal` is a `directoryObject` of the principal's kind with its id, and its
/// `displayName` when the directory holds one and the caller may read that object there.
struct Expander<'a> {
    app: &'a AppState,
    caller: &'a Caller,
    tenant: TenantId,
    roles: HashMap<Uuid, Value>,
}

impl Expander<'_> {
    async fn expand(
        &mut self,
        assignment: &RoleAssignment,
        options: &Options,
        object: &mut Map<String, Value>,
    ) -> Result<(), Failure> {
        for name in &options.expand {
            let value = match name.as_str() {
                "roleDefinition" => self.role(assignment.role_definition_id).await?,
                _ => self.principal(assignment).await?,
            };
            object.insert(name.clone(), value);
        }
        Ok(())
    }

    async fn role(&mut self, id: Uuid) -> Result<Value, Failure> {
        if let Some(known) = self.roles.get(&id) {
            return Ok(known.clone());
        }
        let value = match self.app.store().get_role_definition(self.tenant, id).await {
            Ok(stored) => Value::Object(super::roles::to_graph(&stored.value)),
            Err(StoreError::NotFound { .. }) => Value::Null,
            Err(other) => return Err(other.into()),
        };
        self.roles.insert(id, value.clone());
        Ok(value)
    }

    async fn principal(&self, assignment: &RoleAssignment) -> Result<Value, Failure> {
        let id = assignment.principal_id;
        let (odata_type, collection, read) = match assignment.principal_type {
            PrincipalType::User => ("#microsoft.graph.user", "users", READ_USERS),
            PrincipalType::Group => ("#microsoft.graph.group", "groups", READ_GROUPS),
            PrincipalType::ServicePrincipal => (
                "#microsoft.graph.servicePrincipal",
                "servicePrincipals",
                READ_SERVICE_PRINCIPALS,
            ),
        };
        let mut principal = json!({"@odata.type": odata_type, "id": id});
        if !self
            .caller
            .holds(self.app, read, &object_scope(collection, id))
        {
            return Ok(principal);
        }
        let name = match assignment.principal_type {
            PrincipalType::Group => match self.app.store().groups().get(self.tenant, id).await {
                Ok(stored) => Some(stored.value.display_name),
                Err(StoreError::NotFound { .. }) => None,
                Err(other) => return Err(other.into()),
            },
            _ => self
                .app
                .decider()
                .snapshot()
                .principal(self.tenant, &id)
                .map(|p| p.display_name.clone()),
        };
        if let (Some(name), Some(object)) = (name, principal.as_object_mut()) {
            object.insert("displayName".to_owned(), Value::String(name));
        }
        Ok(principal)
    }
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let options = odata::parse(uri.query())?;
    let filter = filter_of(&options)?;
    v1::authorize_listing(&app, &caller, filter.directory_scope_id.as_ref())?;
    check(&app, &caller, &options)?;
    let page = PageRequest {
        limit: options.top.unwrap_or(crate::api::extract::DEFAULT_LIMIT),
        cursor: options.skip_token.clone(),
    };
    let listed = app
        .store()
        .list_role_assignments(tenant, &filter, &page)
        .await?;
    let mut expander = Expander {
        app: &app,
        caller: &caller,
        tenant,
        roles: HashMap::new(),
    };
    let mut value = Vec::with_capacity(listed.items.len());
    for stored in &listed.items {
        let mut object = to_graph(&stored.value);
        expander
            .expand(&stored.value, &options, &mut object)
            .await?;
        super::select(&mut object, &options);
        value.push(Value::Object(object));
    }
    let base = super::base_url(&app, &headers);
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(&base, "roleAssignments", &options, false)),
    );
    if let Some(cursor) = &listed.next {
        body.insert(
            "@odata.nextLink".to_owned(),
            Value::String(super::next_link(&base, uri.path(), &options, cursor)),
        );
    }
    body.insert("value".to_owned(), Value::Array(value));
    Ok(super::json(
        StatusCode::OK,
        HeaderMap::new(),
        &Value::Object(body),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let options = odata::parse(uri.query())?;
    super::only_select_and_expand(&options)?;
    let stored = v1::read_assignment(&app, &caller, tenant, id).await?;
    check(&app, &caller, &options)?;
    let mut expander = Expander {
        app: &app,
        caller: &caller,
        tenant,
        roles: HashMap::new(),
    };
    let mut object = to_graph(&stored.value);
    expander
        .expand(&stored.value, &options, &mut object)
        .await?;
    super::select(&mut object, &options);
    let base = super::base_url(&app, &headers);
    object.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(&base, "roleAssignments", &options, true)),
    );
    let mut response_headers = HeaderMap::new();
    if let Ok(v) = crate::api::extract::etag(stored.revision).parse() {
        response_headers.insert(axum::http::header::ETAG, v);
    }
    Ok(super::json(
        StatusCode::OK,
        response_headers,
        &Value::Object(object),
    ))
}

/// A `unifiedRoleAssignment` as sent to create one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentBody {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    role_definition_id: String,
    principal_id: String,
    #[serde(default)]
    directory_scope_id: Option<String>,
    #[serde(default)]
    app_scope_id: Option<String>,
    #[serde(default)]
    condition: Option<String>,
}

/// The kind of principal `id` names, which Graph's body does not say: a stored group is a
/// group, a principal in the directory has its recorded kind, and any other object id is
/// taken for a user (what `/v1` callers send for an id the directory does not hold).
async fn principal_type(
    app: &AppState,
    tenant: TenantId,
    raw: &str,
) -> Result<PrincipalType, Failure> {
    let Ok(id) = Uuid::parse_str(raw) else {
        // Validation names the bad id.
        return Ok(PrincipalType::User);
    };
    match app.store().groups().get(tenant, id).await {
        Ok(_) => return Ok(PrincipalType::Group),
        Err(StoreError::NotFound { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    Ok(app
        .decider()
        .snapshot()
        .principal(tenant, &id)
        .map_or(PrincipalType::User, |p| p.principal_type))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<Response, Failure> {
    if let Some(t) = &body.odata_type {
        if t != "#microsoft.graph.unifiedRoleAssignment" {
            return Err(GraphError::bad_request(format!(
                "`@odata.type` is `#microsoft.graph.unifiedRoleAssignment`; got `{t}`"
            ))
            .into());
        }
    }
    if body.app_scope_id.is_some() {
        return Err(GraphError::bad_request(
            "`appScopeId` is not supported: Rolecall scopes assignments by `directoryScopeId`",
        )
        .into());
    }
    let Some(directory_scope_id) = body.directory_scope_id else {
        return Err(GraphError::bad_request("`directoryScopeId` is required").into());
    };
    let input = RoleAssignmentInput {
        principal_type: principal_type(&app, tenant, &body.principal_id).await?,
        principal_id: body.principal_id,
        role_definition_id: body.role_definition_id,
        directory_scope_id,
        start_date_time: None,
        end_date_time: None,
        condition_version: body
            .condition
            .as_ref()
            .map(|_| crate::model::CONDITION_VERSION.to_owned()),
        condition: body.condition,
    };
    let written = v1::create_assignment(&app, &caller, tenant, input).await?;
    let base = super::base_url(&app, &headers);
    let location = format!("{ROLE_ASSIGNMENTS}/{}", written.value.id);
    let mut object = to_graph(&written.value);
    object.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(
            &base,
            "roleAssignments",
            &Options::default(),
            true,
        )),
    );
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(super::json(
        status,
        super::write_headers(written.revision, Some(&location)),
        &Value::Object(object),
    ))
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, Failure> {
    let options = odata::parse(uri.query())?;
    if options != Options::default() {
        return Err(GraphError::unsupported("a delete takes no query options").into());
    }
    let written = v1::delete_assignment(&app, &caller, tenant, id, if_match).await?;
    Ok(super::json_empty(written.revision))
}
