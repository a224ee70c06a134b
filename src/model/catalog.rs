//! The built-in role catalog shipped inside the binary (`catalog/builtin-roles.json`).
//!
//! Built-ins are the same in every tenant, read-only, and keyed by their real Entra
//! template ids so that `wids` claims resolve to them.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use super::{RoleDefinition, RolePermission, Scope};

const CATALOG_JSON: &str = include_str!("../../catalog/builtin-roles.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogFile {
    roles: Vec<CatalogRole>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogRole {
    id: Uuid,
    template_id: Uuid,
    display_name: String,
    #[serde(default)]
    description: String,
    role_permissions: Vec<RolePermission>,
    #[serde(default)]
    assignable_scopes: Option<Vec<Scope>>,
}

/// Why the shipped catalog is unusable (a build defect, caught by a unit test).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The JSON does not parse into roles.
    #[error("built-in role catalog is malformed: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Two roles share an id or a display name.
    #[error("built-in role catalog repeats `{0}`")]
    Duplicate(String),
}

/// Every built-in role, sorted by id, with lookups by id and by lowercase display name.
#[derive(Debug, Clone)]
pub struct Catalog {
    roles: Vec<RoleDefinition>,
    by_id: HashMap<Uuid, usize>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// Parses the catalog compiled into the binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::parse(CATALOG_JSON)
    }

    /// Parses a catalog document.
    pub fn parse(json: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json)?;
        let mut roles: Vec<RoleDefinition> = file
            .roles
            .into_iter()
            .map(|r| RoleDefinition {
                id: r.id,
                display_name: r.display_name,
                description: r.description,
                is_built_in: true,
                is_enabled: true,
                template_id: r.template_id,
                version: 1,
                role_permissions: r.role_permissions,
                assignable_scopes: r.assignable_scopes.unwrap_or_else(|| vec![Scope::root()]),
                created_date_time: None,
                last_modified_date_time: None,
            })
            .collect();
        roles.sort_by_key(|r| r.id.to_string());
        let mut by_id = HashMap::new();
        let mut by_name = HashMap::new();
        for (i, role) in roles.iter().enumerate() {
            if by_id.insert(role.id, i).is_some() {
                return Err(CatalogError::Duplicate(role.id.to_string()));
            }
            if by_name
                .insert(role.display_name.to_lowercase(), i)
                .is_some()
            {
                return Err(CatalogError::Duplicate(role.display_name.clone()));
            }
        }
        Ok(Catalog {
            roles,
            by_id,
            by_name,
        })
    }

    /// Every built-in role, sorted by id (as text, the store's list order).
    pub fn roles(&self) -> &[RoleDefinition] {
        &self.roles
    }

    /// The built-in role with this id (its template id).
    pub fn get(&self, id: Uuid) -> Option<&RoleDefinition> {
        self.by_id.get(&id).map(|&i| &self.roles[i])
    }

    /// The built-in role with this display name, compared case-insensitively.
    pub fn by_display_name(&self, name: &str) -> Option<&RoleDefinition> {
        self.by_name
            .get(&name.to_lowercase())
            .map(|&i| &self.roles[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_parses_and_has_the_core_entra_roles() {
        let catalog = Catalog::builtin().expect("catalog parses");
        assert!(catalog.roles().len() >= 12);
        let global = catalog
            .get(Uuid::parse_str("62e90394-69f5-4237-9190-012177145e10").unwrap())
            .expect("Global Administrator is present");
        assert_eq!(global.display_name, "Global Administrator");
        for name in [
            "Global Reader",
            "Security Reader",
            "Directory Readers",
            "Helpdesk Administrator",
        ] {
            assert!(catalog.by_display_name(name).is_some(), "{name}");
        }
        for role in catalog.roles() {
            assert_eq!(role.id, role.template_id);
            assert!(role
                .role_permissions
                .iter()
                .all(|p| !p.allowed_resource_actions.is_empty()));
        }
    }
}
