//! Request bodies as clients send them, and their validation into typed values.
//!
//! Bodies deserialize into loose `*Input` structs (unknown fields rejected, so `id`,
//! `isBuiltIn`, `version` and timestamps can never be set), then `validate` checks every
//! field and reports all problems at once, each with its JSON pointer.

use serde::Deserialize;
use uuid::Uuid;

use super::{ActionPattern, PrincipalType, RolePermission, Scope, Timestamp, ValidationErrors};

/// The longest display name accepted, in characters.
pub const MAX_DISPLAY_NAME: usize = 256;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION: usize = 1024;
/// The most permission entries one role may hold.
pub const MAX_PERMISSION_ENTRIES: usize = 32;
/// The most action patterns one role (or deny assignment) may hold in total.
pub const MAX_ACTIONS: usize = 2000;
/// The most assignable scopes one role may list.
pub const MAX_ASSIGNABLE_SCOPES: usize = 100;
/// The longest role-assignment condition accepted, in bytes (UTF-8).
pub const MAX_CONDITION_BYTES: usize = 4096;
/// The one condition language version accepted (Azure ABAC conditions).
pub const CONDITION_VERSION: &str = "2.0";

pub(super) fn display_name(
    errors: &mut ValidationErrors,
    pointer: &str,
    raw: &str,
) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        errors.push(pointer, "a display name is not empty");
        None
    } else if trimmed.chars().count() > MAX_DISPLAY_NAME {
        errors.push(
            pointer,
            format!("a display name is at most {MAX_DISPLAY_NAME} characters"),
        );
        None
    } else if trimmed.chars().any(char::is_control) {
        errors.push(pointer, "a display name holds no control characters");
        None
    } else if trimmed
        .chars()
        .all(|c| c.is_whitespace() || is_invisible(c))
    {
        errors.push(
            pointer,
            "a display name has a visible character: zero-width, bidirectional-control and \
             other invisible characters alone would show as a blank name",
        );
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Characters that render as nothing: Unicode's format characters (general category Cf:
/// zero-width spaces and joiners, bidirectional marks, embeddings, overrides and isolates,
/// the byte-order mark, invisible operators, tags), the Hangul and braille fillers, the
/// combining grapheme joiner and variation selectors. A name may hold them (joiners and
/// bidirectional marks are part of real names in several scripts), but not only them.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

fn description(errors: &mut ValidationErrors, pointer: &str, raw: Option<String>) -> String {
    let raw = raw.unwrap_or_default();
    if raw.chars().count() > MAX_DESCRIPTION {
        errors.push(
            pointer,
            format!("a description is at most {MAX_DESCRIPTION} characters"),
        );
    }
    raw
}

pub(super) fn scope(errors: &mut ValidationErrors, pointer: &str, raw: &str) -> Option<Scope> {
    errors.check(
        pointer,
        Scope::parse(raw).map_err(|e| format!("`{raw}` is not a scope: {e}")),
    )
}

pub(super) fn uuid(errors: &mut ValidationErrors, pointer: &str, raw: &str) -> Option<Uuid> {
    errors.check(
        pointer,
        Uuid::parse_str(raw).map_err(|_| format!("`{raw}` is not a uuid")),
    )
}

fn patterns(
    errors: &mut ValidationErrors,
    pointer: &str,
    raw: Vec<String>,
    total: &mut usize,
) -> Vec<ActionPattern> {
    *total += raw.len();
    raw.iter()
        .enumerate()
        .filter_map(|(i, action)| {
            errors.check(
                format!("{pointer}/{i}"),
                ActionPattern::parse(action)
                    .map_err(|e| format!("`{action}` is not an action pattern: {e}")),
            )
        })
        .collect()
}

pub(super) fn window(
    errors: &mut ValidationErrors,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
) {
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            errors.push("/endDateTime", "endDateTime is after startDateTime");
        }
    }
}

/// Records why `condition` (at `pointer`) is not one Rolecall can evaluate; true when it is.
/// The text is kept as sent, so a position in an error means the same to the client.
fn check_condition(errors: &mut ValidationErrors, pointer: &str, condition: &str) -> bool {
    let problem = if condition.trim().is_empty() {
        "a condition is not blank".to_owned()
    } else if condition.len() > MAX_CONDITION_BYTES {
        format!("a condition is at most {MAX_CONDITION_BYTES} bytes")
    } else {
        match super::condition::Condition::parse(condition) {
            Ok(_) => return true,
            Err(e) => format!("`condition` is not valid: {e}"),
        }
    };
    errors.push(pointer, problem);
    false
}

/// A role assignment's condition and its version, both present or both absent. The text
/// is kept as sent (not trimmed), so a position in it means the same to the client.
fn assignment_condition(
    errors: &mut ValidationErrors,
    condition: Option<String>,
    version: Option<String>,
) -> (Option<String>, Option<String>) {
    let Some(condition) = condition else {
        if version.is_some() {
            errors.push(
                "/conditionVersion",
                "`conditionVersion` is given only with a `condition`",
            );
        }
        return (None, None);
    };
    check_condition(errors, "/condition", &condition);
    match version.as_deref() {
        None => errors.push(
            "/conditionVersion",
            "`conditionVersion` must be \"2.0\" when `condition` is given",
        ),
        Some(CONDITION_VERSION) => {}
        Some(other) => errors.push(
            "/conditionVersion",
            format!("`{other}` is not supported: only version \"2.0\" is supported"),
        ),
    }
    (Some(condition), Some(CONDITION_VERSION.to_owned()))
}

/// One permission entry as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolePermissionInput {
    /// Granted patterns.
    pub allowed_resource_actions: Vec<String>,
    /// Patterns subtracted from this entry.
    #[serde(default)]
    pub excluded_resource_actions: Vec<String>,
    /// Entra's condition on this entry (`$ResourceIsSelf`, `$SubjectIsOwner`, or an ABAC
    /// expression; see `model::condition`): the entry grants only when it holds.
    #[serde(default)]
    pub condition: Option<String>,
}

fn role_permissions(
    errors: &mut ValidationErrors,
    raw: Vec<RolePermissionInput>,
) -> Vec<RolePermission> {
    if raw.is_empty() {
        errors.push(
            "/rolePermissions",
            "a role holds at least one permission entry",
        );
    }
    if raw.len() > MAX_PERMISSION_ENTRIES {
        errors.push(
            "/rolePermissions",
            format!("a role holds at most {MAX_PERMISSION_ENTRIES} permission entries"),
        );
    }
    let mut total = 0;
    let entries = raw
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let base = format!("/rolePermissions/{i}");
            if entry.allowed_resource_actions.is_empty() {
                errors.push(
                    format!("{base}/allowedResourceActions"),
                    "a permission entry allows at least one action",
                );
            }
            let condition = entry
                .condition
                .filter(|c| check_condition(errors, &format!("{base}/condition"), c));
            RolePermission {
                allowed_resource_actions: patterns(
                    errors,
                    &format!("{base}/allowedResourceActions"),
                    entry.allowed_resource_actions,
                    &mut total,
                ),
                excluded_resource_actions: patterns(
                    errors,
                    &format!("{base}/excludedResourceActions"),
                    entry.excluded_resource_actions,
                    &mut total,
                ),
                condition,
            }
        })
        .collect();
    if total > MAX_ACTIONS {
        errors.push(
            "/rolePermissions",
            format!("a role holds at most {MAX_ACTIONS} action patterns in all"),
        );
    }
    entries
}

fn assignable_scopes(errors: &mut ValidationErrors, raw: Option<Vec<String>>) -> Vec<Scope> {
    let raw = raw.unwrap_or_else(|| vec!["/".to_owned()]);
    if raw.is_empty() {
        errors.push(
            "/assignableScopes",
            "a role is assignable at one scope at least (`/` for anywhere)",
        );
    }
    if raw.len() > MAX_ASSIGNABLE_SCOPES {
        errors.push(
            "/assignableScopes",
            format!("a role lists at most {MAX_ASSIGNABLE_SCOPES} assignable scopes"),
        );
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| scope(errors, &format!("/assignableScopes/{i}"), s))
        .collect()
}

/// `POST /v1/roleDefinitions` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDefinitionInput {
    /// Required, unique per tenant.
    pub display_name: String,
    /// Optional free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to true.
    #[serde(default)]
    pub is_enabled: Option<bool>,
    /// Required, at least one entry.
    pub role_permissions: Vec<RolePermissionInput>,
    /// Defaults to `["/"]`.
    #[serde(default)]
    pub assignable_scopes: Option<Vec<String>>,
}

/// A validated new custom role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoleDefinition {
    /// Trimmed.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// Whether it grants anything.
    pub is_enabled: bool,
    /// What it grants.
    pub role_permissions: Vec<RolePermission>,
    /// Where it may be assigned.
    pub assignable_scopes: Vec<Scope>,
}

impl RoleDefinitionInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewRoleDefinition, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = display_name(&mut errors, "/displayName", &self.display_name);
        let description = description(&mut errors, "/description", self.description);
        let role_permissions = role_permissions(&mut errors, self.role_permissions);
        let assignable_scopes = assignable_scopes(&mut errors, self.assignable_scopes);
        errors.finish(|| NewRoleDefinition {
            display_name: name.unwrap_or_default(),
            description,
            is_enabled: self.is_enabled.unwrap_or(true),
            role_permissions,
            assignable_scopes,
        })
    }
}

/// `PATCH /v1/roleDefinitions/{id}` body: every field optional, at least one present.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDefinitionPatchInput {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Enable or disable.
    #[serde(default)]
    pub is_enabled: Option<bool>,
    /// Replaces all permission entries.
    #[serde(default)]
    pub role_permissions: Option<Vec<RolePermissionInput>>,
    /// Replaces the assignable scopes.
    #[serde(default)]
    pub assignable_scopes: Option<Vec<String>>,
}

/// A validated change to a custom role; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleDefinitionPatch {
    /// New name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Enable or disable.
    pub is_enabled: Option<bool>,
    /// New permission entries.
    pub role_permissions: Option<Vec<RolePermission>>,
    /// New assignable scopes.
    pub assignable_scopes: Option<Vec<Scope>>,
}

pub(super) fn require_some_field(errors: &mut ValidationErrors, any: bool) {
    if !any {
        errors.push("", "a patch sets at least one field");
    }
}

impl RoleDefinitionPatchInput {
    /// Checks every present field.
    pub fn validate(self) -> Result<RoleDefinitionPatch, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        require_some_field(
            &mut errors,
            self.display_name.is_some()
                || self.description.is_some()
                || self.is_enabled.is_some()
                || self.role_permissions.is_some()
                || self.assignable_scopes.is_some(),
        );
        let display_name = self
            .display_name
            .and_then(|n| display_name(&mut errors, "/displayName", &n));
        let description = self
            .description
            .map(|d| description(&mut errors, "/description", Some(d)));
        let role_permissions = self
            .role_permissions
            .map(|p| role_permissions(&mut errors, p));
        let assignable_scopes = self
            .assignable_scopes
            .map(|s| assignable_scopes(&mut errors, Some(s)));
        errors.finish(|| RoleDefinitionPatch {
            display_name,
            description,
            is_enabled: self.is_enabled,
            role_permissions,
            assignable_scopes,
        })
    }
}

/// `POST /v1/roleDefinitions/{id}/clone` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloneRoleInput {
    /// The clone's name (unique per tenant).
    pub display_name: String,
    /// Defaults to the source role's description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A validated clone request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRole {
    /// Trimmed.
    pub display_name: String,
    /// `None` keeps the source's description.
    pub description: Option<String>,
}

impl CloneRoleInput {
    /// Checks every field.
    pub fn validate(self) -> Result<CloneRole, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = display_name(&mut errors, "/displayName", &self.display_name);
        let description = self
            .description
            .map(|d| description(&mut errors, "/description", Some(d)));
        errors.finish(|| CloneRole {
            display_name: name.unwrap_or_default(),
            description,
        })
    }
}

/// `POST /v1/roleAssignments` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentInput {
    /// Who receives the role.
    pub principal_id: String,
    /// `user`, `group` or `servicePrincipal`.
    pub principal_type: PrincipalType,
    /// Which role (a custom role id or a built-in template id).
    pub role_definition_id: String,
    /// Where it applies.
    pub directory_scope_id: String,
    /// Optional start of the window.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// Optional end of the window (after the start).
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
    /// Optional Azure ABAC condition; needs `conditionVersion`.
    #[serde(default)]
    pub condition: Option<String>,
    /// `"2.0"`, given exactly when `condition` is.
    #[serde(default)]
    pub condition_version: Option<String>,
}

/// A validated new role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoleAssignment {
    /// Who.
    pub principal_id: Uuid,
    /// What kind of principal.
    pub principal_type: PrincipalType,
    /// Which role.
    pub role_definition_id: Uuid,
    /// Where.
    pub directory_scope_id: Scope,
    /// From when.
    pub start_date_time: Option<Timestamp>,
    /// Until when.
    pub end_date_time: Option<Timestamp>,
    /// Not blank, at most [`MAX_CONDITION_BYTES`], a valid condition; present exactly when
    /// the version is.
    pub condition: Option<String>,
    /// [`CONDITION_VERSION`] when there is a condition.
    pub condition_version: Option<String>,
}

impl RoleAssignmentInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewRoleAssignment, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let principal_id = uuid(&mut errors, "/principalId", &self.principal_id);
        let role_definition_id = uuid(&mut errors, "/roleDefinitionId", &self.role_definition_id);
        let directory_scope_id = scope(&mut errors, "/directoryScopeId", &self.directory_scope_id);
        window(&mut errors, self.start_date_time, self.end_date_time);
        let (condition, condition_version) =
            assignment_condition(&mut errors, self.condition, self.condition_version);
        errors.finish(|| NewRoleAssignment {
            principal_id: principal_id.unwrap_or_default(),
            principal_type: self.principal_type,
            role_definition_id: role_definition_id.unwrap_or_default(),
            directory_scope_id: directory_scope_id.unwrap_or_else(Scope::root),
            start_date_time: self.start_date_time,
            end_date_time: self.end_date_time,
            condition,
            condition_version,
        })
    }
}

fn deny_actions(
    errors: &mut ValidationErrors,
    actions: Vec<String>,
    excluded: Vec<String>,
) -> (Vec<ActionPattern>, Vec<ActionPattern>) {
    if actions.is_empty() {
        errors.push("/actions", "a deny assignment denies at least one action");
    }
    let mut total = 0;
    let actions = patterns(errors, "/actions", actions, &mut total);
    let excluded = patterns(errors, "/excludedActions", excluded, &mut total);
    if total > MAX_ACTIONS {
        errors.push(
            "/actions",
            format!("a deny assignment holds at most {MAX_ACTIONS} patterns in all"),
        );
    }
    (actions, excluded)
}

/// `POST /v1/denyAssignments` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyAssignmentInput {
    /// Human name.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Who is denied.
    pub principal_id: String,
    /// What kind of principal.
    pub principal_type: PrincipalType,
    /// Denied patterns.
    pub actions: Vec<String>,
    /// Carved out of `actions`.
    #[serde(default)]
    pub excluded_actions: Vec<String>,
    /// Where.
    pub directory_scope_id: String,
}

/// A validated new deny assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDenyAssignment {
    /// Trimmed.
    pub display_name: String,
    /// Free text.
    pub description: String,
    /// Who.
    pub principal_id: Uuid,
    /// What kind.
    pub principal_type: PrincipalType,
    /// Denied patterns.
    pub actions: Vec<ActionPattern>,
    /// Carve-outs.
    pub excluded_actions: Vec<ActionPattern>,
    /// Where.
    pub directory_scope_id: Scope,
}

impl DenyAssignmentInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewDenyAssignment, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = display_name(&mut errors, "/displayName", &self.display_name);
        let description = description(&mut errors, "/description", self.description);
        let principal_id = uuid(&mut errors, "/principalId", &self.principal_id);
        let (actions, excluded_actions) =
            deny_actions(&mut errors, self.actions, self.excluded_actions);
        let directory_scope_id = scope(&mut errors, "/directoryScopeId", &self.directory_scope_id);
        errors.finish(|| NewDenyAssignment {
            display_name: name.unwrap_or_default(),
            description,
            principal_id: principal_id.unwrap_or_default(),
            principal_type: self.principal_type,
            actions,
            excluded_actions,
            directory_scope_id: directory_scope_id.unwrap_or_else(Scope::root),
        })
    }
}

/// `PATCH /v1/denyAssignments/{id}` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyAssignmentPatchInput {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Replaces the denied patterns.
    #[serde(default)]
    pub actions: Option<Vec<String>>,
    /// Replaces the carve-outs.
    #[serde(default)]
    pub excluded_actions: Option<Vec<String>>,
}

/// A validated change to a deny assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyAssignmentPatch {
    /// New name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New denied patterns.
    pub actions: Option<Vec<ActionPattern>>,
    /// New carve-outs.
    pub excluded_actions: Option<Vec<ActionPattern>>,
}

impl DenyAssignmentPatchInput {
    /// Checks every present field.
    pub fn validate(self) -> Result<DenyAssignmentPatch, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        require_some_field(
            &mut errors,
            self.display_name.is_some()
                || self.description.is_some()
                || self.actions.is_some()
                || self.excluded_actions.is_some(),
        );
        let display_name = self
            .display_name
            .and_then(|n| display_name(&mut errors, "/displayName", &n));
        let description = self
            .description
            .map(|d| description(&mut errors, "/description", Some(d)));
        let mut total = 0;
        let actions = self.actions.map(|a| {
            if a.is_empty() {
                errors.push("/actions", "a deny assignment denies at least one action");
            }
            patterns(&mut errors, "/actions", a, &mut total)
        });
        let excluded_actions = self
            .excluded_actions
            .map(|a| patterns(&mut errors, "/excludedActions", a, &mut total));
        if total > MAX_ACTIONS {
            errors.push(
                "/actions",
                format!("a deny assignment holds at most {MAX_ACTIONS} patterns in all"),
            );
        }
        errors.finish(|| DenyAssignmentPatch {
            display_name,
            description,
            actions,
            excluded_actions,
        })
    }
}

/// `POST /v1/groups` and `POST /v1/administrativeUnits` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedObjectInput {
    /// Human name.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A validated name and description (new group or administrative unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNamedObject {
    /// Trimmed.
    pub display_name: String,
    /// Free text.
    pub description: String,
}

impl NamedObjectInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewNamedObject, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = display_name(&mut errors, "/displayName", &self.display_name);
        let description = description(&mut errors, "/description", self.description);
        errors.finish(|| NewNamedObject {
            display_name: name.unwrap_or_default(),
            description,
        })
    }
}

/// `PATCH /v1/groups/{id}` and `PATCH /v1/administrativeUnits/{id}` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedObjectPatchInput {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A validated change of name and/or description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedObjectPatch {
    /// New name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

impl NamedObjectPatchInput {
    /// Checks every present field.
    pub fn validate(self) -> Result<NamedObjectPatch, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        require_some_field(
            &mut errors,
            self.display_name.is_some() || self.description.is_some(),
        );
        let display_name = self
            .display_name
            .and_then(|n| display_name(&mut errors, "/displayName", &n));
        let description = self
            .description
            .map(|d| description(&mut errors, "/description", Some(d)));
        errors.finish(|| NamedObjectPatch {
            display_name,
            description,
        })
    }
}

/// `POST /v1/groups/{id}/members` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMemberInput {
    /// The member's object id.
    pub id: String,
    /// `user`, `group` or `servicePrincipal`.
    #[serde(rename = "type")]
    pub member_type: PrincipalType,
}

/// A validated new membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroupMember {
    /// The member's object id.
    pub id: Uuid,
    /// The member's kind.
    pub member_type: PrincipalType,
}

impl GroupMemberInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewGroupMember, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let id = uuid(&mut errors, "/id", &self.id);
        errors.finish(|| NewGroupMember {
            id: id.unwrap_or_default(),
            member_type: self.member_type,
        })
    }
}

/// `POST /v1/administrativeUnits/{id}/members` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdministrativeUnitMemberInput {
    /// The member resource path, e.g. `/applications/{id}`.
    pub resource: String,
}

impl AdministrativeUnitMemberInput {
    /// Checks the resource path; the whole tenant (`/`) cannot be a member.
    pub fn validate(self) -> Result<Scope, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let resource = scope(&mut errors, "/resource", &self.resource);
        if resource.as_ref().is_some_and(Scope::is_root) {
            errors.push(
                "/resource",
                "the whole tenant (`/`) cannot be a unit member",
            );
        }
        errors.finish(|| resource.unwrap_or_else(Scope::root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(json: serde_json::Value) -> Result<NewRoleDefinition, ValidationErrors> {
        serde_json::from_value::<RoleDefinitionInput>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn every_bad_field_is_reported_with_its_pointer() {
        let errors = role(serde_json::json!({
            "displayName": "  ",
            "rolePermissions": [{"allowedResourceActions": ["ok.ns/read", "bad action"], "condition": "@Resource[status] IsArchived"}],
            "assignableScopes": ["/a/../b"]
        }))
        .unwrap_err();
        let pointers: Vec<_> = errors.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/displayName",
                "/rolePermissions/0/condition",
                "/rolePermissions/0/allowedResourceActions/1",
                "/assignableScopes/0"
            ]
        );
    }

    #[test]
    fn names_are_trimmed_and_scopes_default_to_the_root() {
        let new = role(serde_json::json!({
            "displayName": "  Expense approver ",
            "rolePermissions": [{"allowedResourceActions": ["contoso.expenses/reports/approve"]}]
        }))
        .unwrap();
        assert_eq!(new.display_name, "Expense approver");
        assert_eq!(new.assignable_scopes, vec![Scope::root()]);
        assert!(new.is_enabled);
    }

    #[test]
    fn names_of_invisible_characters_alone_are_refused_and_names_holding_them_kept() {
        for blank in [
            "\u{200B}",
            "\u{202E}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            " \u{202E}\u{2066}\u{2069} ",
            "\u{3164}",
            "\u{E0041}\u{E007F}",
        ] {
            let mut errors = ValidationErrors::default();
            assert_eq!(display_name(&mut errors, "/displayName", blank), None);
            assert!(
                errors.to_string().contains("visible character"),
                "{blank:?}: {errors}"
            );
        }
        for kept in [
            "a\u{200B}b",
            "\u{202E}abc",
            "\u{05D0}\u{200F}",
            "\u{1F469}\u{200D}\u{1F4BB}",
        ] {
            let mut errors = ValidationErrors::default();
            assert_eq!(
                display_name(&mut errors, "/displayName", kept).as_deref(),
                Some(kept),
                "{errors}"
            );
        }
    }

    #[test]
    fn server_owned_fields_cannot_be_set() {
        let attempt = serde_json::from_value::<RoleDefinitionInput>(serde_json::json!({
            "displayName": "x", "rolePermissions": [], "isBuiltIn": true
        }));
        assert!(attempt.is_err());
    }

    #[test]
    fn a_window_ends_after_it_starts() {
        let input: RoleAssignmentInput = serde_json::from_value(serde_json::json!({
            "principalId": uuid::Uuid::new_v4(), "principalType": "user",
            "roleDefinitionId": uuid::Uuid::new_v4(), "directoryScopeId": "/",
            "startDateTime": "2030-01-02T00:00:00Z", "endDateTime": "2030-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            input.validate().unwrap_err().errors[0].pointer,
            "/endDateTime"
        );
    }

    /// A condition in Azure's syntax, valid for any parser of it.
    const CONDITION: &str =
        "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'";

    fn conditioned(
        condition: serde_json::Value,
        version: serde_json::Value,
    ) -> Result<NewRoleAssignment, ValidationErrors> {
        serde_json::from_value::<RoleAssignmentInput>(serde_json::json!({
            "principalId": uuid::Uuid::new_v4(), "principalType": "user",
            "roleDefinitionId": uuid::Uuid::new_v4(), "directoryScopeId": "/",
            "condition": condition, "conditionVersion": version
        }))
        .unwrap()
        .validate()
    }

    fn refusal(result: Result<NewRoleAssignment, ValidationErrors>) -> (String, String) {
        let errors = result.unwrap_err().errors;
        assert_eq!(errors.len(), 1, "{errors:?}");
        (errors[0].pointer.clone(), errors[0].detail.clone())
    }

    #[test]
    fn a_condition_comes_with_version_2_0_and_is_kept_as_sent() {
        let text = format!(" {CONDITION}\n");
        let new = conditioned(text.as_str().into(), "2.0".into()).unwrap();
        assert_eq!(new.condition, Some(text));
        assert_eq!(new.condition_version.as_deref(), Some("2.0"));
        let none = conditioned(serde_json::Value::Null, serde_json::Value::Null).unwrap();
        assert_eq!((none.condition, none.condition_version), (None, None));
    }

    #[test]
    fn a_condition_without_version_2_0_is_refused_at_the_version() {
        let (pointer, detail) = refusal(conditioned(CONDITION.into(), serde_json::Value::Null));
        assert_eq!(pointer, "/conditionVersion");
        assert_eq!(
            detail,
            "`conditionVersion` must be \"2.0\" when `condition` is given"
        );
        let (pointer, detail) = refusal(conditioned(CONDITION.into(), "1.0".into()));
        assert_eq!(pointer, "/conditionVersion");
        assert!(
            detail.contains("only version \"2.0\" is supported"),
            "{detail}"
        );
        let (pointer, _) = refusal(conditioned(serde_json::Value::Null, "2.0".into()));
        assert_eq!(pointer, "/conditionVersion");
    }

    #[test]
    fn a_condition_that_does_not_parse_is_refused_naming_the_position() {
        let (pointer, detail) = refusal(conditioned(
            "@Resource[x:y] StringEquals".into(),
            "2.0".into(),
        ));
        assert_eq!(pointer, "/condition");
        assert!(
            detail.starts_with("`condition` is not valid: at position "),
            "{detail}"
        );
    }

    #[test]
    fn a_condition_is_not_blank_and_at_most_4096_bytes() {
        for blank in ["", "  \n\t"] {
            assert_eq!(
                refusal(conditioned(blank.into(), "2.0".into())).0,
                "/condition"
            );
        }
        // 4,096 bytes pass; one two-byte character more does not.
        let padding = "a".repeat(MAX_CONDITION_BYTES - CONDITION.len());
        let longest = CONDITION.replace("'logs'", &format!("'logs{padding}'"));
        assert_eq!(longest.len(), MAX_CONDITION_BYTES);
        assert!(conditioned(longest.as_str().into(), "2.0".into()).is_ok());
        let longer = CONDITION.replace("'logs'", &format!("'logs{padding}é'"));
        let (pointer, detail) = refusal(conditioned(longer.into(), "2.0".into()));
        assert_eq!(pointer, "/condition");
        assert!(detail.contains("4096 bytes"), "{detail}");
    }

    #[test]
    fn an_empty_patch_is_refused() {
        assert!(RoleDefinitionPatchInput::default().validate().is_err());
        assert!(NamedObjectPatchInput::default().validate().is_err());
    }
}
