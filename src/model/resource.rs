//! The resource directory: the resources callers want enumerated by AuthZEN resource search
//! or described by attributes, each named as AuthZEN names it (a `type` and the caller's own
//! `id`) and placed at a resource path (its scope).
//!
//! A resource is optional: checks take any resource path without one. A record adds what
//! resource search enumerates and the attributes `@Resource[...]` reads when a request names
//! the resource by type and id (the request's own properties override them).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::input::{display_name, require_some_field};
use super::principal::check_attributes;
use super::{Mappings, Named, Scope, Timestamp, ValidationErrors};

/// The longest resource id accepted, in characters.
pub const MAX_RESOURCE_ID: usize = 256;
/// The longest resource type accepted, in characters.
pub const MAX_RESOURCE_TYPE: usize = 128;
/// The most resources one bulk upsert may hold: one transaction, bounded.
pub const MAX_BULK_RESOURCES: usize = 1000;

/// A resource as the directory stores it; `(type, id)` is unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Its AuthZEN resource type (`record`, `todo`, ...).
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The caller's id for it, unique per tenant and type.
    pub id: String,
    /// Its resource path: the scope whose assignments reach it.
    pub path: Scope,
    /// Human name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Scalars and string lists about it (`owners` may list principal ids or aliases),
    /// replaced whole on change.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// When it was created.
    pub created_date_time: Timestamp,
    /// When it last changed.
    pub last_modified_date_time: Timestamp,
}

impl Resource {
    /// A new resource, created at `now`.
    pub fn new(new: NewResource, now: Timestamp) -> Resource {
        Resource {
            resource_type: new.resource_type,
            id: new.id,
            path: new.path,
            display_name: new.display_name,
            attributes: new.attributes,
            created_date_time: now,
            last_modified_date_time: now,
        }
    }

    /// The resource as `patch` leaves it at `now`: each field the patch sets replaced
    /// (attributes whole), `now` its last change.
    pub fn patched(&self, patch: ResourcePatch, now: Timestamp) -> Resource {
        Resource {
            path: patch.path.unwrap_or_else(|| self.path.clone()),
            display_name: patch.display_name.or_else(|| self.display_name.clone()),
            attributes: patch.attributes.unwrap_or_else(|| self.attributes.clone()),
            last_modified_date_time: now,
            ..self.clone()
        }
    }

    /// The resource as a bulk upsert's `new` leaves it at `now`: every field replaced (an
    /// absent display name removed), its creation time kept.
    pub fn replaced(&self, new: NewResource, now: Timestamp) -> Resource {
        Resource {
            created_date_time: self.created_date_time,
            ..Resource::new(new, now)
        }
    }

    /// True when `new` describes this resource exactly (an upsert that changes nothing).
    pub fn matches(&self, new: &NewResource) -> bool {
        self.resource_type == new.resource_type
            && self.id == new.id
            && self.path == new.path
            && self.display_name == new.display_name
            && self.attributes == new.attributes
    }
}

/// Why `raw` is not a resource type, or `None` when it is one: 1 to [`MAX_RESOURCE_TYPE`]
/// ASCII letters, digits and `._:-`, so a type is one plain word in every template, key and
/// log line.
pub fn resource_type_problem(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_RESOURCE_TYPE {
        return Some(format!(
            "a resource type is 1 to {MAX_RESOURCE_TYPE} characters"
        ));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:-".contains(*c)))
    {
        return Some(format!(
            "a resource type holds only ASCII letters, digits and `._:-`; found `{}`",
            c.escape_default()
        ));
    }
    None
}

/// Why `raw` is not a resource id, or `None` when it is one: 1 to [`MAX_RESOURCE_ID`]
/// characters of any Unicode but control characters.
pub fn resource_id_problem(raw: &str) -> Option<String> {
    let length = raw.chars().count();
    if length == 0 || length > MAX_RESOURCE_ID {
        Some(format!(
            "a resource id is 1 to {MAX_RESOURCE_ID} characters"
        ))
    } else if raw.chars().any(char::is_control) {
        Some("a resource id holds no control characters".to_owned())
    } else {
        None
    }
}

/// `POST /v1/resources` body, and one item of `POST /v1/resources/bulk`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceInput {
    /// The AuthZEN resource type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The caller's id, unique per tenant and type.
    pub id: String,
    /// The resource path; from the `[[authzen.mappings]]` rule for the type when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Human name; none when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Attributes; none when absent.
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
}

/// A validated new (or, in a bulk upsert, replacing) resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResource {
    /// A valid resource type.
    pub resource_type: String,
    /// A valid resource id.
    pub id: String,
    /// As sent, else what the mapping rule for the type gives.
    pub path: Scope,
    /// Trimmed.
    pub display_name: Option<String>,
    /// Within every attribute limit.
    pub attributes: Map<String, Value>,
}

impl ResourceInput {
    /// Checks every field; an absent `path` is what `mappings` gives the type and id (the
    /// same path an AuthZEN request naming the resource maps to).
    pub fn validate(self, mappings: &Mappings) -> Result<NewResource, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let type_problem = resource_type_problem(&self.resource_type);
        if let Some(problem) = &type_problem {
            errors.push("/type", problem.clone());
        }
        let id_problem = resource_id_problem(&self.id);
        if let Some(problem) = &id_problem {
            errors.push("/id", problem.clone());
        }
        let path = match &self.path {
            Some(raw) => scope(&mut errors, "/path", raw),
            None if type_problem.is_none() && id_problem.is_none() => {
                let named = Named {
                    resource_type: &self.resource_type,
                    resource_id: &self.id,
                    action_name: "",
                };
                match mappings.path(&named) {
                    Ok(path) => Some(path),
                    Err(problem) => {
                        errors.push(
                            "/id",
                            format!(
                                "the `[[authzen.mappings]]` rule for type `{}` makes no resource \
                                 path of this id ({problem}); send `path`",
                                self.resource_type
                            ),
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let name = self
            .display_name
            .as_deref()
            .and_then(|n| display_name(&mut errors, "/displayName", n));
        let attributes = self.attributes.unwrap_or_default();
        check_attributes(&mut errors, "resource", &attributes);
        errors.finish(|| NewResource {
            resource_type: self.resource_type,
            id: self.id,
            path: path.unwrap_or_else(Scope::root),
            display_name: name,
            attributes,
        })
    }
}

/// `PATCH /v1/resources/{type}/{id}` body: every field optional, at least one present. A
/// resource's type and id never change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcePatchInput {
    /// New resource path (moving the resource).
    #[serde(default)]
    pub path: Option<String>,
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Replaces the attributes whole (`{}` removes them all).
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
}

/// A validated change to a resource; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePatch {
    /// New path.
    pub path: Option<Scope>,
    /// New name.
    pub display_name: Option<String>,
    /// New attributes.
    pub attributes: Option<Map<String, Value>>,
}

impl ResourcePatchInput {
    /// Checks every present field.
    pub fn validate(self) -> Result<ResourcePatch, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        require_some_field(
            &mut errors,
            self.path.is_some() || self.display_name.is_some() || self.attributes.is_some(),
        );
        let path = self
            .path
            .as_deref()
            .and_then(|raw| scope(&mut errors, "/path", raw));
        let display_name = self
            .display_name
            .as_deref()
            .and_then(|n| display_name(&mut errors, "/displayName", n));
        if let Some(attributes) = &self.attributes {
            check_attributes(&mut errors, "resource", attributes);
        }
        errors.finish(|| ResourcePatch {
            path,
            display_name,
            attributes: self.attributes,
        })
    }
}

fn scope(errors: &mut ValidationErrors, pointer: &str, raw: &str) -> Option<Scope> {
    match Scope::parse(raw) {
        Ok(path) => Some(path),
        Err(e) => {
            errors.push(pointer, format!("`{raw}` is not a resource path: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mapping;
    use serde_json::json;

    fn create(body: Value, mappings: &Mappings) -> Result<NewResource, ValidationErrors> {
        serde_json::from_value::<ResourceInput>(body)
            .unwrap()
            .validate(mappings)
    }

    fn pointers(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn an_absent_path_comes_from_the_mapping_rule_for_the_type() {
        let none = Mappings::default();
        let new = create(json!({"type": "record", "id": "r 1/x"}), &none).unwrap();
        assert_eq!(new.path.as_str(), "/record/r%201%2Fx");
        let rules = Mappings::new(vec![
            Mapping::new("todo", Some("/todos/{id}"), None).unwrap()
        ]);
        let todo = create(json!({"type": "todo", "id": "7"}), &rules).unwrap();
        assert_eq!(todo.path.as_str(), "/todos/7");
        let given = create(
            json!({"type": "todo", "id": "7", "path": "/lists/a/todos/7", "displayName": " Seven "}),
            &rules,
        )
        .unwrap();
        assert_eq!(given.path.as_str(), "/lists/a/todos/7");
        assert_eq!(given.display_name.as_deref(), Some("Seven"));
    }

    #[test]
    fn every_bad_field_is_reported_with_its_pointer() {
        let none = Mappings::default();
        let errors = create(
            json!({"type": "a b", "id": "", "path": "records", "displayName": "  ",
                   "attributes": {"owners": ["a", 1]}}),
            &none,
        )
        .unwrap_err();
        assert_eq!(
            pointers(&errors),
            [
                "/type",
                "/id",
                "/path",
                "/displayName",
                "/attributes/owners/1"
            ]
        );
        let long = "x".repeat(MAX_RESOURCE_ID + 1);
        let errors = create(json!({"type": "t".repeat(129), "id": long}), &none).unwrap_err();
        assert_eq!(pointers(&errors), ["/type", "/id"]);
        let control = create(json!({"type": "t", "id": "a\u{7}"}), &none).unwrap_err();
        assert_eq!(pointers(&control), ["/id"]);
        // The default path of `..` would be a dot segment: the caller must send a path.
        let dots = create(json!({"type": "t", "id": ".."}), &none).unwrap_err();
        assert_eq!(pointers(&dots), ["/id"]);
        assert!(create(json!({"type": "t", "id": "..", "path": "/t/dots"}), &none).is_ok());
        assert!(create(json!({"type": "x.y:z-1_", "id": "é 🙂"}), &none).is_ok());
    }

    #[test]
    fn a_patch_sets_something_and_never_the_type_or_id() {
        assert!(ResourcePatchInput::default().validate().is_err());
        assert!(serde_json::from_value::<ResourcePatchInput>(json!({"type": "x"})).is_err());
        assert!(serde_json::from_value::<ResourcePatchInput>(json!({"id": "x"})).is_err());
        let patch: ResourcePatchInput = serde_json::from_value(json!({"path": "/a//b"})).unwrap();
        assert_eq!(pointers(&patch.validate().unwrap_err()), ["/path"]);
    }
}
