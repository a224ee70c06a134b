//! The built-in role catalog shipped inside the binary (`catalog/builtin-roles.json`).
//!
//! Built-ins are the same in every tenant, read-only, and keyed by their real Entra
//! template ids so that `wids` claims resolve to them.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use super::{RoleDefinition, RolePermission, Scope};

const CATALOG_JSON: &str = include_str!("../../catalog/builtin-roles.json");
const ROLECALL_JSON: &str = include_str!("../../catalog/rolecall-roles.json");

/// The built-in role Rolecall adds for services that ask about other principals.
pub const AUTHORIZATION_CHECKER: Uuid = Uuid::from_u128(0x3c1ab9f2_7a54_4c41_9d0e_5f2b8e6d1a07);
/// Privileged Role Administrator's template id.
pub const PRIVILEGED_ROLE_ADMINISTRATOR: Uuid =
    Uuid::from_u128(0xe8611ab8_c189_46e8_94e1_60213ab1f814);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogFile {
    roles: Vec<CatalogRole>,
    /// Patterns appended to the first permission entry of the role with this template id.
    #[serde(default)]
    additions: HashMap<Uuid, Vec<super::ActionPattern>>,
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
    /// An addition names a role the catalog does not have.
    #[error("built-in role catalog adds to unknown role `{0}`")]
    UnknownRole(Uuid),
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
        Self::parse_all(&[CATALOG_JSON, ROLECALL_JSON])
    }

    /// Parses a catalog document.
    pub fn parse(json: &str) -> Result<Self, CatalogError> {
        Self::parse_all(&[json])
    }

    /// Parses catalog documents in order; each one's `additions` may name roles of any.
    pub fn parse_all(jsons: &[&str]) -> Result<Self, CatalogError> {
        let mut all = Vec::new();
        let mut additions = Vec::new();
        for json in jsons {
            let file: CatalogFile = serde_json::from_str(json)?;
            all.extend(file.roles);
            additions.extend(file.additions);
        }
        for (template, patterns) in additions {
            let role = all
                .iter_mut()
                .find(|r| r.template_id == template)
                .ok_or(CatalogError::UnknownRole(template))?;
            match role.role_permissions.first_mut() {
                Some(entry) => entry.allowed_resource_actions.extend(patterns),
                None => return Err(CatalogError::UnknownRole(template)),
            }
        }
        let mut roles: Vec<RoleDefinition> = all
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
