//! The directory file: one tenant's whole directory as `GET /v1/export` writes it and
//! `POST /v1/import` applies it (YAML or JSON, the same shape).
//!
//! It holds what an administrator declares and nothing the server maintains: ids are kept
//! (assignments refer to roles and groups by id, and replicas and tokens name objects by
//! id), timestamps, versions and revisions are not. So exporting, importing into an empty
//! store and exporting again gives the same bytes, and a file read back changes nothing.
//! Every list is in key order, members nested under their group or unit.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    ActionPattern, AdministrativeUnit, AdministrativeUnitMember, AdministrativeUnitMemberInput,
    DenyAssignment, DenyAssignmentInput, Group, GroupMember, GroupMemberInput, Mappings,
    NamedObject, NamedObjectInput, Principal, PrincipalInput, PrincipalType, Resource,
    ResourceInput, RoleAssignment, RoleAssignmentInput, RoleDefinition, RoleDefinitionInput,
    RolePermission, Scope, TenantDump, TenantId, Timestamp, ValidationErrors,
};

/// The `format` every directory file starts with.
pub const DIRECTORY_FORMAT: &str = "rolecall.directory/v1";

// ---------------------------------------------------------------------------------------
// Export

/// A tenant's directory as a file (serialize only; see [`DirectoryFile`] for reading).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportFile<'a> {
    format: &'static str,
    role_definitions: Vec<RoleOut<'a>>,
    role_assignments: Vec<AssignmentOut<'a>>,
    deny_assignments: Vec<DenyOut<'a>>,
    groups: Vec<GroupOut<'a>>,
    administrative_units: Vec<UnitOut<'a>>,
    principals: Vec<PrincipalOut<'a>>,
    resources: Vec<ResourceOut<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleOut<'a> {
    id: Uuid,
    display_name: &'a str,
    description: &'a str,
    is_enabled: bool,
    role_permissions: &'a [RolePermission],
    assignable_scopes: &'a [Scope],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentOut<'a> {
    id: Uuid,
    principal_id: Uuid,
    principal_type: PrincipalType,
    role_definition_id: Uuid,
    directory_scope_id: &'a Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition_version: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DenyOut<'a> {
    id: Uuid,
    display_name: &'a str,
    description: &'a str,
    principal_id: Uuid,
    principal_type: PrincipalType,
    actions: &'a [ActionPattern],
    excluded_actions: &'a [ActionPattern],
    directory_scope_id: &'a Scope,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupOut<'a> {
    id: Uuid,
    display_name: &'a str,
    description: &'a str,
    members: Vec<MemberOut>,
}

#[derive(Debug, Serialize)]
struct MemberOut {
    id: Uuid,
    #[serde(rename = "type")]
    member_type: PrincipalType,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UnitOut<'a> {
    id: Uuid,
    display_name: &'a str,
    description: &'a str,
    members: Vec<&'a Scope>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PrincipalOut<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    principal_type: PrincipalType,
    display_name: &'a str,
    aliases: &'a [String],
    attributes: &'a Map<String, Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceOut<'a> {
    #[serde(rename = "type")]
    resource_type: &'a str,
    id: &'a str,
    path: &'a Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    attributes: &'a Map<String, Value>,
}

/// `dump` as a directory file, every list in key order.
pub fn export(dump: &TenantDump) -> ExportFile<'_> {
    let mut roles: Vec<&RoleDefinition> = dump.role_definitions.iter().collect();
    roles.sort_by_key(|r| r.id);
    let mut assignments: Vec<&RoleAssignment> = dump.role_assignments.iter().collect();
    assignments.sort_by_key(|a| a.id);
    let mut denies: Vec<&DenyAssignment> = dump.deny_assignments.iter().collect();
    denies.sort_by_key(|d| d.id);
    let mut group_members: BTreeMap<Uuid, Vec<MemberOut>> = BTreeMap::new();
    for member in &dump.group_members {
        group_members
            .entry(member.group_id)
            .or_default()
            .push(MemberOut {
                id: member.id,
                member_type: member.member_type,
            });
    }
    let mut unit_members: BTreeMap<Uuid, Vec<&Scope>> = BTreeMap::new();
    for member in &dump.administrative_unit_members {
        unit_members
            .entry(member.administrative_unit_id)
            .or_default()
            .push(&member.resource);
    }
    let mut groups: Vec<GroupOut<'_>> = dump
        .groups
        .iter()
        .map(|g| {
            let mut members = group_members.remove(&g.id).unwrap_or_default();
            members.sort_by_key(|m| m.id);
            GroupOut {
                id: g.id,
                display_name: &g.display_name,
                description: &g.description,
                members,
            }
        })
        .collect();
    groups.sort_by_key(|g| g.id);
    let mut units: Vec<UnitOut<'_>> = dump
        .administrative_units
        .iter()
        .map(|u| {
            let mut members = unit_members.remove(&u.id).unwrap_or_default();
            members.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            UnitOut {
                id: u.id,
                display_name: &u.display_name,
                description: &u.description,
                members,
            }
        })
        .collect();
    units.sort_by_key(|u| u.id);
    let mut principals: Vec<&Principal> = dump.principals.iter().collect();
    principals.sort_by_key(|p| p.id);
    let mut resources: Vec<&Resource> = dump.resources.iter().collect();
    resources.sort_by(|a, b| (&a.resource_type, &a.id).cmp(&(&b.resource_type, &b.id)));
    ExportFile {
        format: DIRECTORY_FORMAT,
        role_definitions: roles
            .into_iter()
            .map(|r| RoleOut {
                id: r.id,
                display_name: &r.display_name,
                description: &r.description,
                is_enabled: r.is_enabled,
                role_permissions: &r.role_permissions,
                assignable_scopes: &r.assignable_scopes,
            })
            .collect(),
        role_assignments: assignments
            .into_iter()
            .map(|a| AssignmentOut {
                id: a.id,
                principal_id: a.principal_id,
                principal_type: a.principal_type,
                role_definition_id: a.role_definition_id,
                directory_scope_id: &a.directory_scope_id,
                start_date_time: a.start_date_time,
                end_date_time: a.end_date_time,
                condition: a.condition.as_deref(),
                condition_version: a.condition_version.as_deref(),
            })
            .collect(),
        deny_assignments: denies
            .into_iter()
            .map(|d| DenyOut {
                id: d.id,
                display_name: &d.display_name,
                description: &d.description,
                principal_id: d.principal_id,
                principal_type: d.principal_type,
                actions: &d.actions,
                excluded_actions: &d.excluded_actions,
                directory_scope_id: &d.directory_scope_id,
            })
            .collect(),
        groups,
        administrative_units: units,
        principals: principals
            .into_iter()
            .map(|p| PrincipalOut {
                id: p.id,
                principal_type: p.principal_type,
                display_name: &p.display_name,
                aliases: &p.aliases,
                attributes: &p.attributes,
            })
            .collect(),
        resources: resources
            .into_iter()
            .map(|r| ResourceOut {
                resource_type: &r.resource_type,
                id: &r.id,
                path: &r.path,
                display_name: r.display_name.as_deref(),
                attributes: &r.attributes,
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Import

/// A directory file as read (YAML or JSON), before validation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectoryFile {
    /// Must be [`DIRECTORY_FORMAT`].
    pub format: String,
    /// Custom roles (built-ins ship with the binary and are not listed).
    #[serde(default)]
    pub role_definitions: Vec<WithId<RoleDefinitionInput>>,
    /// Role assignments.
    #[serde(default)]
    pub role_assignments: Vec<WithId<RoleAssignmentInput>>,
    /// Deny assignments.
    #[serde(default)]
    pub deny_assignments: Vec<WithId<DenyAssignmentInput>>,
    /// Groups with their direct members.
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    /// Administrative units with their member resources.
    #[serde(default)]
    pub administrative_units: Vec<UnitEntry>,
    /// Users and service principals.
    #[serde(default)]
    pub principals: Vec<PrincipalInput>,
    /// Resources.
    #[serde(default)]
    pub resources: Vec<ResourceInput>,
}

/// An entry that is its API create body plus the object's `id`.
#[derive(Debug)]
pub struct WithId<T> {
    /// The object id as written.
    pub id: String,
    /// The rest, read as the create body (unknown fields refused).
    pub fields: T,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for WithId<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let id = match map.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err(D::Error::custom("`id` must be a string")),
            None => return Err(D::Error::missing_field("id")),
        };
        let fields = serde_path_to_error::deserialize(Value::Object(map)).map_err(|error| {
            let path = error.path().to_string();
            if path == "." {
                D::Error::custom(error.into_inner())
            } else {
                D::Error::custom(format!("{path}: {}", error.into_inner()))
            }
        })?;
        Ok(WithId { id, fields })
    }
}

/// A group and its direct members.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupEntry {
    /// The group's object id.
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Direct members.
    #[serde(default)]
    pub members: Vec<GroupMemberInput>,
}

/// An administrative unit and its member resources.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnitEntry {
    /// The unit's object id.
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Member resource paths.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Parses a directory file: JSON when it starts with `{`, else YAML (a superset). Errors
/// name the place in the file (`roleAssignments[3].principalId`).
pub fn parse(bytes: &[u8]) -> Result<DirectoryFile, ValidationErrors> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let located = |path: String, message: String| {
        let pointer = if path == "." {
            String::new()
        } else {
            to_pointer(&path)
        };
        ValidationErrors::single(pointer, message)
    };
    if first == Some(&b'{') {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let file: DirectoryFile = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| located(e.path().to_string(), e.into_inner().to_string()))?;
        de.end()
            .map_err(|e| ValidationErrors::single("", e.to_string()))?;
        Ok(file)
    } else {
        let de = yaml_serde::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de)
            .map_err(|e| located(e.path().to_string(), e.into_inner().to_string()))
    }
}

/// `roleAssignments[3].principalId` as the JSON pointer `/roleAssignments/3/principalId`.
fn to_pointer(path: &str) -> String {
    let mut pointer = String::with_capacity(path.len() + 1);
    for part in path.split('.') {
        for (i, piece) in part.split('[').enumerate() {
            let piece = if i == 0 {
                piece
            } else {
                piece.trim_end_matches(']')
            };
            if !piece.is_empty() {
                pointer.push('/');
                pointer.push_str(&piece.replace('~', "~0").replace('/', "~1"));
            }
        }
    }
    pointer
}

/// A validated file: the directory it declares, as objects created at `now`, and where in
/// the file each object came from (for errors found later, against the whole directory).
#[derive(Debug)]
pub struct Declared {
    /// The declared objects (timestamps `now`; versions 1).
    pub dump: TenantDump,
    /// Each object's JSON pointer in the file, by kind and key.
    pub origins: Origins,
}

/// Where each declared object sits in the file.
#[derive(Debug, Default)]
pub struct Origins {
    /// By role id.
    pub roles: BTreeMap<Uuid, usize>,
    /// By assignment id.
    pub assignments: BTreeMap<Uuid, usize>,
    /// By group id.
    pub groups: BTreeMap<Uuid, usize>,
    /// By principal id.
    pub principals: BTreeMap<Uuid, usize>,
}

impl DirectoryFile {
    /// Checks every entry as its create request would be checked, and that no key repeats.
    /// Every problem is reported, each at its place in the file.
    pub fn validate(
        self,
        tenant: TenantId,
        mappings: &Mappings,
        now: Timestamp,
    ) -> Result<Declared, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.format != DIRECTORY_FORMAT {
            errors.push(
                "/format",
                format!(
                    "`{}` is not a directory file format this server reads; expected \
                     `{DIRECTORY_FORMAT}`",
                    self.format
                ),
            );
        }
        let mut dump = TenantDump {
            tenant,
            role_definitions: Vec::with_capacity(self.role_definitions.len()),
            role_assignments: Vec::with_capacity(self.role_assignments.len()),
            deny_assignments: Vec::with_capacity(self.deny_assignments.len()),
            groups: Vec::with_capacity(self.groups.len()),
            group_members: Vec::new(),
            administrative_units: Vec::with_capacity(self.administrative_units.len()),
            administrative_unit_members: Vec::new(),
            principals: Vec::with_capacity(self.principals.len()),
            resources: Vec::with_capacity(self.resources.len()),
        };
        let mut origins = Origins::default();

        for (i, entry) in self.role_definitions.into_iter().enumerate() {
            let at = format!("/roleDefinitions/{i}");
            let id = item_id(&mut errors, &at, &entry.id, &mut origins.roles, i);
            if let Some(new) = nested(&mut errors, &at, entry.fields.validate()) {
                dump.role_definitions.push(RoleDefinition::custom(
                    id.unwrap_or_default(),
                    new,
                    now,
                ));
            }
        }
        for (i, entry) in self.role_assignments.into_iter().enumerate() {
            let at = format!("/roleAssignments/{i}");
            let id = item_id(&mut errors, &at, &entry.id, &mut origins.assignments, i);
            if let Some(new) = nested(&mut errors, &at, entry.fields.validate()) {
                dump.role_assignments
                    .push(RoleAssignment::new(id.unwrap_or_default(), new, now));
            }
        }
        let mut seen = BTreeMap::new();
        for (i, entry) in self.deny_assignments.into_iter().enumerate() {
            let at = format!("/denyAssignments/{i}");
            let id = item_id(&mut errors, &at, &entry.id, &mut seen, i);
            if let Some(new) = nested(&mut errors, &at, entry.fields.validate()) {
                dump.deny_assignments
                    .push(DenyAssignment::new(id.unwrap_or_default(), new, now));
            }
        }
        for (i, entry) in self.groups.into_iter().enumerate() {
            let at = format!("/groups/{i}");
            let id = item_id(&mut errors, &at, &entry.id, &mut origins.groups, i);
            let named = NamedObjectInput {
                display_name: entry.display_name,
                description: entry.description,
            };
            let group = nested(&mut errors, &at, named.validate());
            let id = id.unwrap_or_default();
            if let Some(new) = group {
                dump.groups.push(Group::new(id, new, now));
            }
            let mut members = BTreeMap::new();
            for (j, member) in entry.members.into_iter().enumerate() {
                let at = format!("{at}/members/{j}");
                let Some(new) = nested(&mut errors, &at, member.validate()) else {
                    continue;
                };
                if members.insert(new.id, j).is_some() {
                    errors.push(format!("{at}/id"), format!("`{}` is listed twice", new.id));
                    continue;
                }
                dump.group_members.push(GroupMember {
                    group_id: id,
                    id: new.id,
                    member_type: new.member_type,
                    created_date_time: now,
                });
            }
        }
        let mut seen = BTreeMap::new();
        for (i, entry) in self.administrative_units.into_iter().enumerate() {
            let at = format!("/administrativeUnits/{i}");
            let id = item_id(&mut errors, &at, &entry.id, &mut seen, i).unwrap_or_default();
            let named = NamedObjectInput {
                display_name: entry.display_name,
                description: entry.description,
            };
            if let Some(new) = nested(&mut errors, &at, named.validate()) {
                dump.administrative_units
                    .push(AdministrativeUnit::new(id, new, now));
            }
            let mut members = BTreeMap::new();
            for (j, resource) in entry.members.into_iter().enumerate() {
                let at = format!("{at}/members/{j}");
                let input = AdministrativeUnitMemberInput { resource };
                let Some(resource) = nested_leaf(&mut errors, &at, input.validate()) else {
                    continue;
                };
                if members.insert(resource.clone(), j).is_some() {
                    errors.push(at, format!("`{resource}` is listed twice"));
                    continue;
                }
                dump.administrative_unit_members
                    .push(AdministrativeUnitMember {
                        administrative_unit_id: id,
                        resource,
                        created_date_time: now,
                    });
            }
        }
        for (i, input) in self.principals.into_iter().enumerate() {
            let at = format!("/principals/{i}");
            let Some(raw_id) = input.id.clone() else {
                errors.push(
                    format!("{at}/id"),
                    "a principal in a directory file needs its `id`",
                );
                continue;
            };
            let id = item_id(&mut errors, &at, &raw_id, &mut origins.principals, i);
            if let (Some(new), Some(id)) = (nested(&mut errors, &at, input.validate()), id) {
                dump.principals.push(Principal::new(id, new, now));
            }
        }
        let mut seen = BTreeMap::new();
        for (i, input) in self.resources.into_iter().enumerate() {
            let at = format!("/resources/{i}");
            let Some(new) = nested(&mut errors, &at, input.validate(mappings)) else {
                continue;
            };
            let key = (new.resource_type.clone(), new.id.clone());
            if let Some(first) = seen.insert(key, i) {
                errors.push(
                    format!("{at}/id"),
                    format!(
                        "resource `{}/{}` is also at /resources/{first}",
                        new.resource_type, new.id
                    ),
                );
                continue;
            }
            dump.resources.push(Resource::new(new, now));
        }
        errors.finish(|| Declared { dump, origins })
    }
}

/// Parses an entry's `id` and records where it is; a repeat is an error naming the first.
fn item_id(
    errors: &mut ValidationErrors,
    at: &str,
    raw: &str,
    seen: &mut BTreeMap<Uuid, usize>,
    index: usize,
) -> Option<Uuid> {
    let Ok(id) = Uuid::parse_str(raw.trim()) else {
        errors.push(format!("{at}/id"), format!("`{raw}` is not an object id"));
        return None;
    };
    if let Some(first) = seen.insert(id, index) {
        let kind = at.rsplit_once('/').map_or(at, |(kind, _)| kind);
        errors.push(
            format!("{at}/id"),
            format!("`{id}` is also at {kind}/{first}"),
        );
        seen.insert(id, first);
        return None;
    }
    Some(id)
}

/// An entry's validation result with its field pointers moved under `at`.
fn nested<T>(
    errors: &mut ValidationErrors,
    at: &str,
    result: Result<T, ValidationErrors>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(inner) => {
            for e in inner.errors {
                errors.push(format!("{at}{}", e.pointer), e.detail);
            }
            None
        }
    }
}

/// As [`nested`], for a value the file holds bare (a unit member's path): its input's one
/// field pointer is the entry itself.
fn nested_leaf<T>(
    errors: &mut ValidationErrors,
    at: &str,
    result: Result<T, ValidationErrors>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(inner) => {
            for e in inner.errors {
                errors.push(at.to_owned(), e.detail);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_pointers() {
        assert_eq!(
            to_pointer("roleAssignments[3].principalId"),
            "/roleAssignments/3/principalId"
        );
        assert_eq!(to_pointer("groups[0].members[2]"), "/groups/0/members/2");
        assert_eq!(to_pointer("a/b"), "/a~1b");
    }

    #[test]
    fn unknown_fields_inside_an_entry_are_refused() {
        let yaml = format!(
            "format: {DIRECTORY_FORMAT}\nroleAssignments:\n  - id: 6f2c1f64-2ad0-4a8e-9d1f-0d4b0e6f1a01\n    principalId: 6f2c1f64-2ad0-4a8e-9d1f-0d4b0e6f1a02\n    principalType: user\n    roleDefinitionId: 62e90394-69f5-4237-9190-012177145e10\n    directoryScopeId: /\n    endDatetime: 2030-01-01T00:00:00Z\n"
        );
        let err = parse(yaml.as_bytes()).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/roleAssignments/0");
        assert!(err.errors[0].detail.contains("endDatetime"), "{err:?}");
    }
}
