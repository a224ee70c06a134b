//! `GET /v1/export` and `POST /v1/import`: a tenant's whole directory as one file, and a
//! file applied declaratively in one transaction and one revision.
//!
//! An import is authorized as the writes it contains would be, one by one, escalation
//! rules included (a role the file creates is judged as the file declares it). Parsing,
//! validation and the diff run off the async workers, so a replica keeps answering checks
//! while it imports a million assignments.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::principals::actions_of;
use crate::api::authz::{
    object_scope, Caller, Membership, CREATE_GROUPS, CREATE_RESOURCES, DELETE_GROUPS,
    DELETE_RESOURCES, MANAGE_ASSIGNMENTS, MANAGE_ROLES, MANAGE_UNITS, READ_ASSIGNMENTS,
    READ_GROUPS, READ_GROUP_MEMBERS, READ_RESOURCES, READ_ROLES, READ_SERVICE_PRINCIPALS,
    READ_UNITS, READ_UNIT_MEMBERS, READ_USERS, UPDATE_GROUPS, UPDATE_RESOURCES,
};
use crate::api::extract::Tenant;
use crate::api::respond::REVISION_HEADER;
use crate::api::{ApiError, AppState};
use crate::model::directory_file;
use crate::model::import_plan::{self, Plan, PlanReport};
use crate::model::{
    DenyAssignment, NewDenyAssignment, Resource, RoleAssignment, RoleDefinition, Scope,
};
use crate::store::{ImportRecord, DETAILED_CHANGES_LIMIT};

/// The import route (it has its own body limit and time limit).
pub const IMPORT_PATH: &str = "/v1/import";

/// The export route (it has the import's time limit: a large directory takes longer than
/// other requests).
pub const EXPORT_PATH: &str = "/v1/export";

/// `GET /v1/export`: YAML unless the client accepts only JSON.
pub async fn export(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    for action in [
        READ_ROLES,
        READ_ASSIGNMENTS,
        READ_GROUPS,
        READ_GROUP_MEMBERS,
        READ_UNITS,
        READ_UNIT_MEMBERS,
        READ_USERS,
        READ_SERVICE_PRINCIPALS,
        READ_RESOURCES,
    ] {
        caller.authorize(&app, action, &Scope::root())?;
    }
    let json = wants_json(&headers);
    let (dump, changed) = app.store().tenant_dump(tenant).await?;
    let (body, content_type) = tokio::task::spawn_blocking(move || {
        let file = directory_file::export(&dump);
        if json {
            serde_json::to_vec_pretty(&file)
                .map(|mut body| {
                    body.push(b'\n');
                    (body, "application/json")
                })
                .map_err(|e| ApiError::Internal(e.into()))
        } else {
            yaml_serde::to_string(&file)
                .map(|body| (body.into_bytes(), "application/yaml"))
                .map_err(|e| ApiError::Internal(e.into()))
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))??;
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&changed.to_string()) {
        response
            .headers_mut()
            .insert(REVISION_HEADER.clone(), value);
    }
    Ok(response)
}

/// JSON when `Accept` names JSON and not YAML.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("json") && !accept.contains("yaml")
}

/// Query of `POST /v1/import`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportQuery {
    /// `true`: plan and report, change nothing.
    #[serde(default)]
    dry_run: Option<String>,
    /// `true`: also delete what the file does not list.
    #[serde(default)]
    prune: Option<String>,
}

/// A boolean query parameter: absent, `true` or `false`.
fn flag(name: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            format!("?{name}"),
            format!("`{other}` is not `true` or `false`"),
        )),
    }
}

/// The answer to an import.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportOutcome {
    /// Whether this was a dry run (nothing written).
    dry_run: bool,
    /// Whether anything was written.
    applied: bool,
    /// The import's revision; when nothing was written, the newest revision that changed
    /// the tenant (reading at it sees the directory as the file declares it).
    revision: String,
    /// `sha256:` and the file's hex SHA-256.
    digest: String,
    /// What changed (or, in a dry run, would).
    #[serde(flatten)]
    report: PlanReport,
}

/// `POST /v1/import?dryRun=&prune=`: the body is a directory file, YAML or JSON.
pub async fn import(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    request: Request,
) -> Result<Response, ApiError> {
    let query: ImportQuery = match request.uri().query() {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::invalid("?", format!("bad query: {e}")))?,
        None => ImportQuery::default(),
    };
    let dry_run = flag("dryRun", query.dry_run.as_deref())?;
    let prune = flag("prune", query.prune.as_deref())?;
    check_media_type(request.headers())?;
    let bytes = crate::api::body::read(request.into_body()).await?;
    let digest = digest_of(&bytes);
    let started = std::time::Instant::now();
    let now = app.decider().now();
    let mappings = app.config().authzen_mappings.clone();
    let declared = tokio::task::spawn_blocking(move || {
        directory_file::parse(&bytes)?.validate(tenant, &mappings, now)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))??;
    let parsed = started.elapsed();
    let (current, based_on) = app.store().tenant_dump(tenant).await?;
    let read = started.elapsed();
    let catalog = app.store().catalog().clone();
    // The directory as read is dropped here too: freeing a million objects is no work for
    // an async worker.
    let plan = tokio::task::spawn_blocking(move || {
        import_plan::plan(&current, declared, prune, &catalog, now)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))??;
    authorize_plan(&app, &caller, &plan).await?;
    let report = plan.report();
    let planned = started.elapsed();
    tracing::info!(
        %digest,
        changes = report.total,
        parse_ms = parsed.as_millis() as u64,
        read_ms = (read - parsed).as_millis() as u64,
        plan_ms = (planned - read).as_millis() as u64,
        "import planned"
    );
    if dry_run || plan.is_empty() {
        return Ok(outcome(ImportOutcome {
            dry_run,
            applied: false,
            revision: based_on.to_string(),
            digest,
            report,
        }));
    }
    let record = ImportRecord {
        digest: digest.clone(),
        prune,
        detailed: plan.len() <= DETAILED_CHANGES_LIMIT,
        report: report.clone(),
    };
    let revision = app
        .store()
        .apply_import(tenant, &caller.actor, &plan, &record, based_on)
        .await?;
    drop(plan);
    let written = started.elapsed();
    // A bulk import reloads the snapshot, which takes longer than a single write's wait.
    app.decider()
        .wait_for_within(revision, app.config().import_timeout)
        .await?;
    tracing::info!(
        %revision,
        %digest,
        changes = report.total,
        write_ms = (written - planned).as_millis() as u64,
        follow_ms = (started.elapsed() - written).as_millis() as u64,
        "import applied"
    );
    Ok(outcome(ImportOutcome {
        dry_run: false,
        applied: true,
        revision: revision.to_string(),
        digest,
        report,
    }))
}

fn outcome(outcome: ImportOutcome) -> Response {
    let revision = HeaderValue::from_str(&outcome.revision).ok();
    let mut response = Json(outcome).into_response();
    if let Some(value) = revision {
        response
            .headers_mut()
            .insert(REVISION_HEADER.clone(), value);
    }
    response
}

/// YAML (`application/yaml`, `text/yaml`, `application/x-yaml`) or JSON; a missing
/// content type is read by sniffing.
fn check_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(raw) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = raw
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/yaml" | "application/x-yaml" | "text/yaml"
        | "text/x-yaml" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            "send the directory file as `application/yaml` or `application/json`".to_owned(),
        )),
    }
}

fn digest_of(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest.as_ref() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Each write of `plan` authorized as the admin API authorizes it on its own. The admin
/// key holds every action, so only token callers are checked item by item.
async fn authorize_plan(app: &AppState, caller: &Caller, plan: &Plan) -> Result<(), ApiError> {
    if caller.identity().is_none() {
        // The admin key holds every action and no admin-plane rule binds it.
        return Ok(());
    }
    let root = Scope::root();
    let roles = &plan.role_definitions;
    if !roles.create.is_empty() || !roles.update.is_empty() || !roles.delete.is_empty() {
        caller.authorize(app, MANAGE_ROLES, &root)?;
    }
    for (before, after) in &roles.update {
        caller.authorize_role_change(app, before, after)?;
    }
    let assignments = &plan.role_assignments;
    for assignment in &assignments.create {
        grant(app, caller, plan, assignment).await?;
    }
    for (before, after) in &assignments.update {
        caller.authorize(app, MANAGE_ASSIGNMENTS, &before.directory_scope_id)?;
        grant(app, caller, plan, after).await?;
    }
    for assignment in &assignments.delete {
        caller.authorize(app, MANAGE_ASSIGNMENTS, &assignment.directory_scope_id)?;
    }

    let denies = &plan.deny_assignments;
    let as_new = |d: &DenyAssignment| NewDenyAssignment {
        display_name: d.display_name.clone(),
        description: d.description.clone(),
        principal_id: d.principal_id,
        principal_type: d.principal_type,
        actions: d.actions.clone(),
        excluded_actions: d.excluded_actions.clone(),
        directory_scope_id: d.directory_scope_id.clone(),
    };
    for deny in &denies.create {
        caller.authorize_deny(app, &as_new(deny))?;
    }
    for (before, after) in &denies.update {
        caller.authorize_deny_delete(app, before)?;
        caller.authorize_deny(app, &as_new(after))?;
    }
    for deny in &denies.delete {
        caller.authorize_deny_delete(app, deny)?;
    }

    let groups = &plan.groups;
    if !groups.create.is_empty() {
        caller.authorize(app, CREATE_GROUPS, &root)?;
    }
    for (_, after) in &groups.update {
        caller.authorize(app, UPDATE_GROUPS, &object_scope("groups", after.id))?;
    }
    for group in &groups.delete {
        caller.authorize(app, DELETE_GROUPS, &object_scope("groups", group.id))?;
        caller.authorize_group_delete(app, group.id)?;
    }
    let members = &plan.group_members;
    for member in members
        .create
        .iter()
        .chain(members.update.iter().map(|(_, after)| after))
    {
        caller
            .authorize_membership(app, member.group_id, Membership::Add)
            .await?;
    }
    for member in members
        .delete
        .iter()
        .chain(members.update.iter().map(|(before, _)| before))
    {
        caller
            .authorize_membership(app, member.group_id, Membership::Remove(member.id))
            .await?;
    }

    let units = &plan.administrative_units;
    if !units.create.is_empty() {
        caller.authorize(app, MANAGE_UNITS, &root)?;
    }
    for (_, after) in &units.update {
        caller.authorize(
            app,
            MANAGE_UNITS,
            &object_scope("administrativeUnits", after.id),
        )?;
    }
    for unit in &units.delete {
        caller.authorize(
            app,
            MANAGE_UNITS,
            &object_scope("administrativeUnits", unit.id),
        )?;
        caller.authorize_unit_release(app, unit.id)?;
    }
    let unit_members = &plan.administrative_unit_members;
    for member in &unit_members.create {
        let unit = object_scope("administrativeUnits", member.administrative_unit_id);
        caller.authorize(app, MANAGE_UNITS, &unit)?;
        caller.authorize(app, MANAGE_UNITS, &member.resource)?;
    }
    for member in &unit_members.delete {
        let unit = object_scope("administrativeUnits", member.administrative_unit_id);
        caller.authorize(app, MANAGE_UNITS, &unit)?;
        caller.authorize(app, MANAGE_UNITS, &member.resource)?;
        caller.authorize_unit_release(app, member.administrative_unit_id)?;
    }

    let principals = &plan.principals;
    for principal in &principals.create {
        caller.authorize(app, actions_of(principal.principal_type).create, &root)?;
    }
    for (before, _) in &principals.update {
        let actions = actions_of(before.principal_type);
        caller.authorize(
            app,
            actions.update,
            &object_scope(actions.collection, before.id),
        )?;
    }
    for principal in &principals.delete {
        let actions = actions_of(principal.principal_type);
        caller.authorize(
            app,
            actions.delete,
            &object_scope(actions.collection, principal.id),
        )?;
    }

    let resources = &plan.resources;
    for resource in &resources.create {
        caller.authorize(app, CREATE_RESOURCES, &resource.path)?;
    }
    // Resource ids are the caller's own names, so they can be guessed: a stored resource
    // the caller may not see is refused without its path, as the API answers 404 for it.
    let hidden = |resource: &Resource, action: &str| {
        !caller.holds(app, READ_RESOURCES, &resource.path)
            && !caller.holds(app, action, &resource.path)
    };
    for (before, after) in &resources.update {
        if hidden(before, UPDATE_RESOURCES) {
            return Err(hidden_resource(before));
        }
        caller.authorize(app, UPDATE_RESOURCES, &before.path)?;
        if after.path != before.path {
            caller.authorize(app, UPDATE_RESOURCES, &after.path)?;
        }
    }
    for resource in &resources.delete {
        if hidden(resource, DELETE_RESOURCES) {
            return Err(hidden_resource(resource));
        }
        caller.authorize(app, DELETE_RESOURCES, &resource.path)?;
    }
    Ok(())
}

fn hidden_resource(resource: &Resource) -> ApiError {
    ApiError::ForbiddenOther(format!(
        "resource `{}/{}` exists where the caller may not change it",
        resource.resource_type, resource.id
    ))
}

/// Creating `assignment`, its role judged as it stands after the import (a role the file
/// creates or changes is not yet in the store).
async fn grant(
    app: &AppState,
    caller: &Caller,
    plan: &Plan,
    assignment: &RoleAssignment,
) -> Result<(), ApiError> {
    let roles = &plan.role_definitions;
    let declared: Option<&RoleDefinition> = roles
        .create
        .iter()
        .chain(roles.update.iter().map(|(_, after)| after))
        .find(|r| r.id == assignment.role_definition_id);
    match declared {
        Some(role) => caller.authorize_grant_of(
            app,
            role,
            &assignment.directory_scope_id,
            assignment.end_date_time,
        ),
        None => {
            caller
                .authorize_role_grant(
                    app,
                    assignment.role_definition_id,
                    &assignment.directory_scope_id,
                    assignment.end_date_time,
                )
                .await
        }
    }
}
