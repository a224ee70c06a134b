//! The resource directory in the snapshot: each resource by `(type, id)`, and each type's
//! resources under every scope covering them, so resource search enumerates exactly the
//! resources a grant's scope reaches without scanning the rest.
//!
//! Per tenant, `resources` maps `type NUL id` to the resource, and `resources_under` maps
//! `type NUL scope` to the resources of that type at `scope` or below it (one entry per
//! ancestor of each resource's path, `/` included: paths are a few segments deep). An
//! administrative unit's scope reaches the resources under each of its member paths.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::cow::{hash_str, CowMap, Key};
use super::tenant::TenantIndex;
use super::Snapshot;
use crate::model::{ancestors, Resource, Scope, TenantId};

/// What the directory holds of one resource (shared, cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Its AuthZEN type.
    pub resource_type: String,
    /// The caller's id for it.
    pub id: String,
    /// Its resource path.
    pub path: Scope,
    /// Human name, if any.
    pub display_name: Option<String>,
    /// Its attributes: the defaults for `@Resource[...]`.
    pub attributes: Map<String, Value>,
}

impl From<&Resource> for ResourceInfo {
    fn from(r: &Resource) -> ResourceInfo {
        ResourceInfo {
            resource_type: r.resource_type.clone(),
            id: r.id.clone(),
            path: r.path.clone(),
            display_name: r.display_name.clone(),
            attributes: r.attributes.clone(),
        }
    }
}

/// `type NUL rest`: types and ids hold no control characters, so the pair is unambiguous.
fn pair(resource_type: &str, rest: &str) -> String {
    let mut key = String::with_capacity(resource_type.len() + 1 + rest.len());
    key.push_str(resource_type);
    key.push('\0');
    key.push_str(rest);
    key
}

/// The resources of one type under one scope, by id.
pub(crate) type Under = CowMap<Key, Arc<ResourceInfo>>;

impl TenantIndex {
    /// Adds (or replaces) a resource.
    pub(super) fn add_resource(&mut self, r: &Resource) {
        self.remove_resource(&r.resource_type, &r.id);
        let info = Arc::new(ResourceInfo::from(r));
        let id = Key::new(&r.id);
        for scope in ancestors(r.path.as_str()) {
            self.resources_under
                .get_or_insert_with(&Key::new(&pair(&r.resource_type, scope)), CowMap::new)
                .insert(id.clone(), Arc::clone(&info));
        }
        self.resources
            .insert(Key::new(&pair(&r.resource_type, &r.id)), info);
    }

    /// Removes a resource, if present.
    pub(super) fn remove_resource(&mut self, resource_type: &str, id: &str) {
        let Some(old) = self.resources.remove(&Key::new(&pair(resource_type, id))) else {
            return;
        };
        let id = Key::new(id);
        for scope in ancestors(old.path.as_str()) {
            let key = Key::new(&pair(resource_type, scope));
            if let Some(under) = self.resources_under.get_mut(&key) {
                under.remove(&id);
                if under.is_empty() {
                    self.resources_under.remove(&key);
                }
            }
        }
    }

    /// The resources of `resource_type` at `scope` (a canonical path) or below it.
    pub(crate) fn resources_under(&self, resource_type: &str, scope: &str) -> Option<&Under> {
        let key = pair(resource_type, scope);
        self.resources_under
            .find(hash_str(&key), |k| *k.text == *key)
            .map(|(_, under)| under)
    }
}

impl Snapshot {
    /// The resource `(resource_type, id)` of `tenant`, if the directory holds it.
    pub fn resource(
        &self,
        tenant: TenantId,
        resource_type: &str,
        id: &str,
    ) -> Option<&Arc<ResourceInfo>> {
        let key = pair(resource_type, id);
        self.tenant(tenant)
            .resources
            .find(hash_str(&key), |k| *k.text == *key)
            .map(|(_, r)| r)
    }

    /// How many resources of `resource_type` the directory holds for `tenant`.
    pub fn resource_count(&self, tenant: TenantId, resource_type: &str) -> usize {
        self.tenant(tenant)
            .resources_under(resource_type, "/")
            .map_or(0, CowMap::len)
    }
}
