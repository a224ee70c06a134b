//! The resource directory: the resources callers want enumerated by AuthZEN resource search
//! or described by attributes, each named as AuthZEN names it (a `type` and the caller's own
//! `id`) and placed at a resource path (its scope).
//!
//! A resource is optional: checks take any resource path without one. A record adds what
//! resource search enumerates and the attributes `@Resource[...]` reads when a request names
//! the resource by type and id (the request's own properties override them).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Scope, Timestamp};

/// The longest resource id accepted, in characters.
pub const MAX_RESOURCE_ID: usize = 256;
/// The longest resource type accepted, in characters.
pub const MAX_RESOURCE_TYPE: usize = 128;

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
