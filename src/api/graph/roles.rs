//! `/v1.0/roleManagement/directory/roleDefinitions`: Graph's `unifiedRoleDefinition` over
//! the `/v1/roleDefinitions` logic.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::odata::{self, Options};
use super::{Failure, GraphError, ROLE_DEFINITIONS};
use crate::api::admin::roles as v1;
use crate::api::authz::Caller;
use crate::api::extract::{ApiJson, IdPath, IfMatch, Tenant};
use crate::api::AppState;
use crate::model::{
    RoleDefinition, RoleDefinitionInput, RoleDefinitionPatchInput, RolePermissionInput,
};
use crate::store::{PageRequest, RoleDefinitionFilter};

/// The properties of `unifiedRoleDefinition` served here (`$select` takes these).
const PROPERTIES: [&str; 9] = [
    "id",
    "description",
    "displayName",
    "isBuiltIn",
    "isEnabled",
    "resourceScopes",
    "templateId",
    "version",
    "rolePermissions",
];

/// One `unifiedRolePermission`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Permission<'a> {
    allowed_resource_actions: Vec<&'a str>,
    excluded_resource_actions: Vec<&'a str>,
    condition: Option<&'a str>,
}

/// A role as Graph's `unifiedRoleDefinition`: `resourceScopes` are Rolecall's assignable
/// scopes, `version` is the version number as a string.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Definition<'a> {
    id: uuid::Uuid,
    description: &'a str,
    display_name: &'a str,
    is_built_in: bool,
    is_enabled: bool,
    resource_scopes: Vec<&'a str>,
    template_id: uuid::Uuid,
    version: String,
    role_permissions: Vec<Permission<'a>>,
}

/// The role in Graph's shape, as a JSON object.
pub(super) fn to_graph(role: &RoleDefinition) -> serde_json::Map<String, Value> {
    let definition = Definition {
        id: role.id,
        description: &role.description,
        display_name: &role.display_name,
        is_built_in: role.is_built_in,
        is_enabled: role.is_enabled,
        resource_scopes: role.assignable_scopes.iter().map(|s| s.as_str()).collect(),
        template_id: role.template_id,
        version: role.version.to_string(),
        role_permissions: role
            .role_permissions
            .iter()
            .map(|p| Permission {
                allowed_resource_actions: p
                    .allowed_resource_actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect(),
                excluded_resource_actions: p
                    .excluded_resource_actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect(),
                condition: p.condition.as_deref(),
            })
            .collect(),
    };
    match serde_json::to_value(definition) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// The options a role definition read takes: `$select` only (`inheritsPermissionsFrom` is
/// not served).
fn check(options: &Options) -> Result<(), GraphError> {
    super::check_select(options, "unifiedRoleDefinition", &PROPERTIES)?;
    if let Some(name) = options.expand.first() {
        return Err(GraphError::unsupported(format!(
            "`$expand={name}` is not supported on roleDefinitions"
        )));
    }
    Ok(())
}

/// `$filter` as a store filter: `displayName`, `isBuiltIn`, `isEnabled`, each once.
/// `displayName eq` is exact (ignoring case, as names are unique so); the store matches a
/// substring, so the handler keeps only exact matches.
fn filter_of(options: &Options) -> Result<(RoleDefinitionFilter, Option<String>), GraphError> {
    let mut filter = RoleDefinitionFilter::default();
    let mut exact_name = None;
    for comparison in &options.filter {
        let property = comparison.property.as_str();
        let repeated = || {
            GraphError::unsupported(format!(
                "Unsupported query: `{property}` is compared more than once"
            ))
        };
        match property {
            "displayName" => {
                if exact_name.is_some() {
                    return Err(repeated());
                }
                let name = comparison.value.text(property)?;
                filter.display_name = Some(name.clone());
                exact_name = Some(name);
            }
            "isBuiltIn" => {
                if filter.is_built_in.is_some() {
                    return Err(repeated());
                }
                filter.is_built_in = Some(comparison.value.boolean(property)?);
            }
            "isEnabled" => {
                if filter.is_enabled.is_some() {
                    return Err(repeated());
                }
                filter.is_enabled = Some(comparison.value.boolean(property)?);
            }
            other if PROPERTIES.contains(&other) => {
                return Err(GraphError::unsupported(format!(
                    "Unsupported query: filtering roleDefinitions on `{other}` is not \
                     supported; filter on displayName, isBuiltIn or isEnabled"
                )))
            }
            other => {
                return Err(GraphError::bad_request(format!(
                    "Invalid filter clause: could not find a property named '{other}' on type \
                     'microsoft.graph.unifiedRoleDefinition'"
                )))
            }
        }
    }
    Ok((filter, exact_name))
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    v1::authorize_listing(&app, &caller)?;
    let options = odata::parse(uri.query())?;
    check(&options)?;
    let (filter, exact_name) = filter_of(&options)?;
    let base = super::base_url(&app, &headers);
    let limit = match exact_name {
        // Read in the largest pages: every page of the substring match is read.
        Some(_) => crate::api::extract::MAX_LIMIT,
        None => options.top.unwrap_or(crate::api::extract::DEFAULT_LIMIT),
    };
    let mut page = PageRequest {
        limit,
        cursor: options.skip_token.clone(),
    };
    let mut roles: Vec<RoleDefinition> = Vec::new();
    let next = loop {
        let listed = app
            .store()
            .list_role_definitions(tenant, &filter, &page)
            .await?;
        match &exact_name {
            None => {
                roles.extend(listed.items.into_iter().map(|s| s.value));
                break listed.next;
            }
            // Names are unique ignoring case: at most one role matches, so every page of
            // the substring match is read and the answer is one page.
            Some(name) => {
                roles.extend(
                    listed
                        .items
                        .into_iter()
                        .map(|s| s.value)
                        .filter(|r| r.display_name.to_lowercase() == name.to_lowercase()),
                );
                match listed.next {
                    Some(cursor) => page.cursor = Some(cursor),
                    None => break None,
                }
            }
        }
    };
    let value: Vec<Value> = roles
        .iter()
        .map(|role| {
            let mut object = to_graph(role);
            super::select(&mut object, &options);
            Value::Object(object)
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(&base, "roleDefinitions", &options, false)),
    );
    if let Some(cursor) = next {
        body.insert(
            "@odata.nextLink".to_owned(),
            Value::String(super::next_link(&base, uri.path(), &options, &cursor)),
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
    check(&options)?;
    let stored = v1::read_role(&app, &caller, tenant, id).await?;
    let base = super::base_url(&app, &headers);
    let mut object = to_graph(&stored.value);
    super::select(&mut object, &options);
    object.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(&base, "roleDefinitions", &options, true)),
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

/// `isEnabled` as sent: Graph's examples send a boolean, its older ones the string
/// `"true"`, which Graph accepts too.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn value(self) -> Result<bool, GraphError> {
        match self {
            Flag::Bool(b) => Ok(b),
            Flag::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Flag::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            Flag::Text(t) => Err(GraphError::bad_request(format!(
                "`isEnabled` is true or false; got `{t}`"
            ))),
        }
    }
}

/// One `unifiedRolePermission` as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionBody {
    allowed_resource_actions: Vec<String>,
    #[serde(default)]
    excluded_resource_actions: Option<Vec<String>>,
    #[serde(default)]
    condition: Option<String>,
}

impl From<PermissionBody> for RolePermissionInput {
    fn from(p: PermissionBody) -> Self {
        RolePermissionInput {
            allowed_resource_actions: p.allowed_resource_actions,
            excluded_resource_actions: p.excluded_resource_actions.unwrap_or_default(),
            condition: p.condition,
        }
    }
}

/// A `unifiedRoleDefinition` as sent to create or update one. Read-only and
/// Rolecall-assigned properties (`id`, `templateId`, `version`, `isBuiltIn`) are refused
/// unless they say what Rolecall would write anyway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefinitionBody {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    is_enabled: Option<Flag>,
    #[serde(default)]
    role_permissions: Option<Vec<PermissionBody>>,
    #[serde(default)]
    resource_scopes: Option<Vec<String>>,
    #[serde(default)]
    is_built_in: Option<bool>,
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

impl DefinitionBody {
    fn check_fixed(&self) -> Result<(), GraphError> {
        if let Some(t) = &self.odata_type {
            if t != "#microsoft.graph.unifiedRoleDefinition" {
                return Err(GraphError::bad_request(format!(
                    "`@odata.type` is `#microsoft.graph.unifiedRoleDefinition`; got `{t}`"
                )));
            }
        }
        if self.is_built_in == Some(true) {
            return Err(GraphError::bad_request(
                "`isBuiltIn` is read-only: custom roles are never built in",
            ));
        }
        if self.template_id.is_some() {
            return Err(GraphError::bad_request(
                "`templateId` is not settable here: a custom role's template id is its id",
            ));
        }
        if self.version.is_some() {
            return Err(GraphError::bad_request(
                "`version` is read-only: it counts the role's changes",
            ));
        }
        Ok(())
    }
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DefinitionBody>,
) -> Result<Response, Failure> {
    body.check_fixed()?;
    let input = RoleDefinitionInput {
        display_name: body.display_name.unwrap_or_default(),
        description: body.description,
        is_enabled: body.is_enabled.map(Flag::value).transpose()?,
        role_permissions: body
            .role_permissions
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        assignable_scopes: body.resource_scopes,
    };
    let written = v1::create_role(&app, &caller, tenant, input).await?;
    let base = super::base_url(&app, &headers);
    let location = format!("{ROLE_DEFINITIONS}/{}", written.value.id);
    let mut object = to_graph(&written.value);
    object.insert(
        "@odata.context".to_owned(),
        Value::String(super::context(
            &base,
            "roleDefinitions",
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

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<DefinitionBody>,
) -> Result<Response, Failure> {
    body.check_fixed()?;
    let patch = RoleDefinitionPatchInput {
        display_name: body.display_name,
        description: body.description,
        is_enabled: body.is_enabled.map(Flag::value).transpose()?,
        role_permissions: body
            .role_permissions
            .map(|p| p.into_iter().map(Into::into).collect()),
        assignable_scopes: body.resource_scopes,
    };
    let written = v1::update_role(&app, &caller, tenant, id, if_match, patch).await?;
    Ok(super::json_empty(written.revision))
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
    let written = v1::delete_role(&app, &caller, tenant, id, if_match, None).await?;
    Ok(super::json_empty(written.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_on_unserved_or_unknown_properties_are_refused() {
        let options = odata::parse(Some("$filter=templateId eq 'x'")).unwrap();
        assert_eq!(
            filter_of(&options).unwrap_err().code,
            "Request_UnsupportedQuery"
        );
        let options = odata::parse(Some("$filter=colour eq 'x'")).unwrap();
        assert_eq!(filter_of(&options).unwrap_err().code, "BadRequest");
        let options = odata::parse(Some("$filter=isBuiltIn eq 'yes'")).unwrap();
        assert_eq!(filter_of(&options).unwrap_err().code, "BadRequest");
        let options =
            odata::parse(Some("$filter=isBuiltIn eq true and displayName eq 'A'")).unwrap();
        let (filter, exact) = filter_of(&options).unwrap();
        assert_eq!(filter.is_built_in, Some(true));
        assert_eq!(exact.as_deref(), Some("A"));
        assert!(matches!(
            options.filter[0].value,
            odata::Literal::Bool(true)
        ));
    }
}
