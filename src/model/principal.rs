//! The principal directory: users and service principals that callers name by an alias
//! (an email, a UPN, a login name, an identity provider's opaque id) as well as by their
//! object id, each with a few attributes.
//!
//! A principal is optional: an object id the directory does not hold works everywhere (it
//! is how every role assignment names its principal). A record adds names and attributes;
//! deleting it takes nothing else with it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::input::{display_name, require_some_field, uuid};
use super::{PrincipalType, Timestamp, ValidationErrors};

/// The most aliases one principal may hold.
pub const MAX_ALIASES: usize = 50;
/// The longest alias accepted, in characters.
pub const MAX_ALIAS: usize = 256;
/// The most attributes one principal may hold.
pub const MAX_ATTRIBUTES: usize = 64;
/// The longest attribute name accepted, in characters.
pub const MAX_ATTRIBUTE_NAME: usize = 128;
/// The longest string attribute value accepted, in characters.
pub const MAX_ATTRIBUTE_STRING: usize = 1024;
/// The most items of an array attribute value.
pub const MAX_ATTRIBUTE_ITEMS: usize = 64;
/// The longest item of an array attribute value, in characters.
pub const MAX_ATTRIBUTE_ITEM: usize = 256;
/// The most bytes a principal's attributes take as JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// A user or service principal as the directory stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// Its object id (`oid`): what role assignments and tokens name it by.
    pub id: Uuid,
    /// `user` or `servicePrincipal`; it never changes.
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
    /// Human name (not unique).
    pub display_name: String,
    /// Other names callers use for it, as written; unique per tenant ignoring case.
    pub aliases: Vec<String>,
    /// Scalars and string lists about it, replaced whole on change.
    pub attributes: Map<String, Value>,
    /// When it was created.
    pub created_date_time: Timestamp,
    /// When it last changed.
    pub last_modified_date_time: Timestamp,
}

impl Principal {
    /// A new principal with id `id`, created at `now`.
    pub fn new(id: Uuid, new: NewPrincipal, now: Timestamp) -> Principal {
        Principal {
            id,
            principal_type: new.principal_type,
            display_name: new.display_name,
            aliases: new.aliases,
            attributes: new.attributes,
            created_date_time: now,
            last_modified_date_time: now,
        }
    }

    /// The principal as `patch` leaves it at `now`: each field the patch sets replaced
    /// (attributes whole), `now` its last change. Whether the aliases are free is the
    /// store's to check.
    pub fn patched(&self, patch: PrincipalPatch, now: Timestamp) -> Principal {
        Principal {
            display_name: patch
                .display_name
                .unwrap_or_else(|| self.display_name.clone()),
            aliases: patch.aliases.unwrap_or_else(|| self.aliases.clone()),
            attributes: patch.attributes.unwrap_or_else(|| self.attributes.clone()),
            last_modified_date_time: now,
            ..self.clone()
        }
    }

    /// True when `new` describes this principal exactly (an idempotent create).
    pub fn matches(&self, new: &NewPrincipal) -> bool {
        self.principal_type == new.principal_type
            && self.display_name == new.display_name
            && self.aliases == new.aliases
            && self.attributes == new.attributes
    }
}

/// The key an alias is unique and looked up by: its Unicode lowercase form. The store's
/// unique index and the engine's alias index both use it, so they agree on what a clash is.
pub fn alias_key(alias: &str) -> String {
    alias.to_lowercase()
}

/// True when `text` reads as an object id (any spelling [`Uuid::parse_str`] takes). Such
/// text always names the object id itself, so no alias may look like one.
pub fn is_object_id(text: &str) -> bool {
    Uuid::parse_str(text).is_ok()
}

/// `POST /v1/principals` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrincipalInput {
    /// The object id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `user` or `servicePrincipal`.
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
    /// Human name.
    pub display_name: String,
    /// Other names; none when absent.
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    /// Attributes; none when absent.
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
}

/// A validated new principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrincipal {
    /// The object id asked for, else `None` (the store generates one).
    pub id: Option<Uuid>,
    /// `User` or `ServicePrincipal`, never `Group`.
    pub principal_type: PrincipalType,
    /// Trimmed.
    pub display_name: String,
    /// Distinct ignoring case, none shaped like an object id.
    pub aliases: Vec<String>,
    /// Within every attribute limit.
    pub attributes: Map<String, Value>,
}

impl PrincipalInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewPrincipal, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let id = self
            .id
            .as_deref()
            .and_then(|id| uuid(&mut errors, "/id", id));
        principal_type(&mut errors, self.principal_type);
        let name = display_name(&mut errors, "/displayName", &self.display_name);
        let aliases = self.aliases.unwrap_or_default();
        check_aliases(&mut errors, &aliases);
        let attributes = self.attributes.unwrap_or_default();
        check_attributes(&mut errors, "principal", &attributes);
        errors.finish(|| NewPrincipal {
            id,
            principal_type: self.principal_type,
            display_name: name.unwrap_or_default(),
            aliases,
            attributes,
        })
    }
}

/// `PATCH /v1/principals/{id}` body: every field optional, at least one present. A
/// principal's type never changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrincipalPatchInput {
    /// New name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Replaces every alias (`[]` removes them all).
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    /// Replaces the attributes whole (`{}` removes them all).
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
}

/// A validated change to a principal; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalPatch {
    /// New name.
    pub display_name: Option<String>,
    /// New aliases.
    pub aliases: Option<Vec<String>>,
    /// New attributes.
    pub attributes: Option<Map<String, Value>>,
}

impl PrincipalPatchInput {
    /// Checks every present field.
    pub fn validate(self) -> Result<PrincipalPatch, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        require_some_field(
            &mut errors,
            self.display_name.is_some() || self.aliases.is_some() || self.attributes.is_some(),
        );
        let display_name = self
            .display_name
            .and_then(|n| display_name(&mut errors, "/displayName", &n));
        if let Some(aliases) = &self.aliases {
            check_aliases(&mut errors, aliases);
        }
        if let Some(attributes) = &self.attributes {
            check_attributes(&mut errors, "principal", attributes);
        }
        errors.finish(|| PrincipalPatch {
            display_name,
            aliases: self.aliases,
            attributes: self.attributes,
        })
    }
}

fn principal_type(errors: &mut ValidationErrors, kind: PrincipalType) {
    if kind == PrincipalType::Group {
        errors.push(
            "/type",
            "the directory holds users and service principals (`user` or `servicePrincipal`); \
             groups live under `/v1/groups`",
        );
    }
}

/// A JSON pointer token for an object key (RFC 6901: `~` as `~0`, `/` as `~1`).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn check_aliases(errors: &mut ValidationErrors, aliases: &[String]) {
    if aliases.len() > MAX_ALIASES {
        errors.push(
            "/aliases",
            format!("a principal holds at most {MAX_ALIASES} aliases"),
        );
    }
    let mut seen: Vec<String> = Vec::with_capacity(aliases.len());
    for (i, alias) in aliases.iter().enumerate() {
        let pointer = format!("/aliases/{i}");
        let problem = if alias.is_empty() {
            Some("an alias is not empty".to_owned())
        } else if alias.chars().count() > MAX_ALIAS {
            Some(format!("an alias is at most {MAX_ALIAS} characters"))
        } else if alias.trim() != alias {
            Some(format!(
                "`{alias}` starts or ends with whitespace; an alias has none there"
            ))
        } else if alias.chars().any(char::is_control) {
            Some("an alias holds no control characters".to_owned())
        } else if is_object_id(alias) {
            Some(format!(
                "`{alias}` reads as an object id, which always names itself; an alias cannot \
                 look like one"
            ))
        } else {
            None
        };
        if let Some(detail) = problem {
            errors.push(pointer, detail);
            continue;
        }
        let key = alias_key(alias);
        if seen.contains(&key) {
            errors.push(
                pointer,
                format!("`{alias}` repeats an earlier alias (aliases ignore case)"),
            );
        } else {
            seen.push(key);
        }
    }
}

/// Checks `attributes` of a `kind` (`principal`, `resource`) against every attribute limit:
/// the principal and resource directories bound attributes alike.
pub(super) fn check_attributes(
    errors: &mut ValidationErrors,
    kind: &str,
    attributes: &Map<String, Value>,
) {
    if attributes.len() > MAX_ATTRIBUTES {
        errors.push(
            "/attributes",
            format!("a {kind} holds at most {MAX_ATTRIBUTES} attributes"),
        );
    }
    for (name, value) in attributes {
        let pointer = format!("/attributes/{}", pointer_token(name));
        let length = name.chars().count();
        if length == 0 || length > MAX_ATTRIBUTE_NAME {
            errors.push(
                pointer.clone(),
                format!("an attribute name is 1 to {MAX_ATTRIBUTE_NAME} characters"),
            );
        }
        check_attribute_value(errors, &pointer, value);
    }
    let bytes = serde_json::to_string(attributes).map_or(0, |json| json.len());
    if bytes > MAX_ATTRIBUTES_BYTES {
        errors.push(
            "/attributes",
            format!("the attributes take at most {MAX_ATTRIBUTES_BYTES} bytes as JSON; these take {bytes}"),
        );
    }
}

fn check_attribute_value(errors: &mut ValidationErrors, pointer: &str, value: &Value) {
    const KINDS: &str = "a string, a number, a boolean or an array of strings";
    match value {
        Value::String(s) if s.chars().count() > MAX_ATTRIBUTE_STRING => errors.push(
            pointer,
            format!("a string attribute is at most {MAX_ATTRIBUTE_STRING} characters"),
        ),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
        Value::Array(items) => {
            if items.len() > MAX_ATTRIBUTE_ITEMS {
                errors.push(
                    pointer,
                    format!("an array attribute holds at most {MAX_ATTRIBUTE_ITEMS} items"),
                );
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if s.chars().count() > MAX_ATTRIBUTE_ITEM => errors.push(
                        format!("{pointer}/{i}"),
                        format!(
                            "an array attribute's item is at most {MAX_ATTRIBUTE_ITEM} characters"
                        ),
                    ),
                    Value::String(_) => {}
                    _ => errors.push(
                        format!("{pointer}/{i}"),
                        "an array attribute holds strings only",
                    ),
                }
            }
        }
        Value::Null => errors.push(
            pointer,
            format!("an attribute is {KINDS}, not null; leave it out instead"),
        ),
        Value::Object(_) => errors.push(pointer, format!("an attribute is {KINDS}, not an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(body: Value) -> Result<NewPrincipal, ValidationErrors> {
        serde_json::from_value::<PrincipalInput>(body)
            .unwrap()
            .validate()
    }

    fn pointers(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn a_valid_principal_keeps_its_aliases_and_attributes_as_written() {
        let new = create(json!({
            "type": "user", "displayName": " Alice ",
            "aliases": ["Alice@Contoso.com", "alice"],
            "attributes": {"department": "R&D", "level": 3, "active": true, "tags": ["a", "b"]}
        }))
        .unwrap();
        assert_eq!(new.display_name, "Alice");
        assert_eq!(new.aliases, ["Alice@Contoso.com", "alice"]);
        assert_eq!(new.attributes["level"], json!(3));
        assert_eq!(new.id, None);
    }

    #[test]
    fn every_bad_alias_and_attribute_is_reported_with_its_pointer() {
        let long = "x".repeat(MAX_ALIAS + 1);
        let errors = create(json!({
            "id": "not-a-uuid", "type": "group", "displayName": "x",
            "aliases": ["ok", "", long, "OK", "9B895D92-2CD3-44C7-9D02-A6AC2D5EA5C3", " pad"],
            "attributes": {
                "fine": 1, "nothing": null, "nested": {"a": 1}, "deep": [["a"]],
                "mixed": ["a", 1], "a/b": "x".repeat(MAX_ATTRIBUTE_STRING + 1)
            }
        }))
        .unwrap_err();
        assert_eq!(
            pointers(&errors),
            [
                "/id",
                "/type",
                "/aliases/1",
                "/aliases/2",
                "/aliases/3",
                "/aliases/4",
                "/aliases/5",
                "/attributes/a~1b",
                "/attributes/deep/0",
                "/attributes/mixed/1",
                "/attributes/nested",
                "/attributes/nothing",
            ]
        );
    }

    #[test]
    fn object_ids_in_any_spelling_are_not_aliases() {
        for id in [
            "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
            "9b895d922cd344c79d02a6ac2d5ea5c3",
            "{9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3}",
            "urn:uuid:9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        ] {
            assert!(is_object_id(id), "{id}");
        }
        assert!(!is_object_id("alice@contoso.com"));
    }

    #[test]
    fn limits_on_counts_and_size_hold() {
        let aliases: Vec<String> = (0..=MAX_ALIASES).map(|i| format!("a{i}")).collect();
        let attributes: Map<String, Value> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), json!("v".repeat(300))))
            .collect();
        let errors = create(json!({
            "type": "servicePrincipal", "displayName": "x",
            "aliases": aliases, "attributes": attributes
        }))
        .unwrap_err();
        assert_eq!(
            pointers(&errors),
            ["/aliases", "/attributes", "/attributes"]
        );
    }

    #[test]
    fn a_patch_sets_something_and_never_the_type() {
        assert!(PrincipalPatchInput::default().validate().is_err());
        assert!(serde_json::from_value::<PrincipalPatchInput>(json!({"type": "user"})).is_err());
        let patch: PrincipalPatchInput =
            serde_json::from_value(json!({"aliases": ["x", "X"]})).unwrap();
        assert_eq!(pointers(&patch.validate().unwrap_err()), ["/aliases/1"]);
    }
}
