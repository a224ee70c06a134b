//! The principal directory in the snapshot: what the directory knows of each user and
//! service principal, and which principal each alias names.
//!
//! Per tenant, `principals` maps an object id to its [`PrincipalInfo`] (shared: a lookup
//! hands out a reference, a caller that keeps it clones one `Arc`) and `aliases` maps each
//! alias, lowercased by [`alias_key`], to the object id holding it. The store keeps an alias
//! unique per tenant ignoring case, so each key names one principal.

use std::sync::Arc;

use uuid::Uuid;

use super::cow::{hash_str, Key};
use super::tenant::TenantIndex;
use super::Snapshot;
use crate::model::{alias_key, Principal, PrincipalType, TenantId};

/// What the directory knows of one principal (shared, cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// Its object id.
    pub id: Uuid,
    /// `User` or `ServicePrincipal`.
    pub principal_type: PrincipalType,
    /// Human name.
    pub display_name: String,
    /// Its aliases, as written.
    pub aliases: Vec<String>,
    /// Its attributes (scalars and string lists).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl From<&Principal> for PrincipalInfo {
    fn from(p: &Principal) -> PrincipalInfo {
        PrincipalInfo {
            id: p.id,
            principal_type: p.principal_type,
            display_name: p.display_name.clone(),
            aliases: p.aliases.clone(),
            attributes: p.attributes.clone(),
        }
    }
}

impl TenantIndex {
    /// Adds (or replaces) a principal and indexes its aliases.
    pub(super) fn add_principal(&mut self, p: &Principal) {
        self.remove_principal(p.id);
        for alias in &p.aliases {
            self.aliases.insert(Key::new(&alias_key(alias)), p.id);
        }
        self.principals
            .insert(p.id, Arc::new(PrincipalInfo::from(p)));
    }

    /// Removes a principal and the aliases it holds (an alias since taken by another
    /// principal stays with that one).
    pub(super) fn remove_principal(&mut self, id: Uuid) {
        let Some(old) = self.principals.remove(&id) else {
            return;
        };
        for alias in &old.aliases {
            let key = Key::new(&alias_key(alias));
            if self.aliases.get(&key) == Some(&id) {
                self.aliases.remove(&key);
            }
        }
    }

    /// The object id holding `alias` (any case).
    fn alias_holder(&self, alias: &str) -> Option<Uuid> {
        let key = alias_key(alias);
        self.aliases
            .find(hash_str(&key), |k| *k.text == *key)
            .map(|(_, id)| *id)
    }
}

impl Snapshot {
    /// What the directory holds for object id `id` in `tenant`, if anything. Most object
    /// ids have no record: a principal is optional.
    pub fn principal(&self, tenant: TenantId, id: &Uuid) -> Option<&Arc<PrincipalInfo>> {
        self.tenant(tenant).principals.get(id)
    }

    /// An object id (uuid text, any case) resolves to itself, whether stored or not; any
    /// other text is looked up as an alias, case-insensitively. Returns the id and, for an
    /// alias, the alias as stored.
    pub fn resolve_principal(&self, tenant: TenantId, text: &str) -> Option<(Uuid, Option<&str>)> {
        if let Ok(id) = Uuid::parse_str(text) {
            return Some((id, None));
        }
        let t = self.tenant(tenant);
        let id = t.alias_holder(text)?;
        let key = alias_key(text);
        let stored = t
            .principals
            .get(&id)
            .and_then(|p| p.aliases.iter().find(|a| alias_key(a) == key))
            .map(String::as_str);
        Some((id, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::delta::{Delta, Edit, Versions};
    use crate::model::{Catalog, Revision};

    fn principal(id: Uuid, aliases: &[&str]) -> Principal {
        let at = chrono::Utc::now();
        Principal {
            id,
            principal_type: PrincipalType::User,
            display_name: "Alice".to_owned(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            attributes: serde_json::Map::new(),
            created_date_time: at,
            last_modified_date_time: at,
        }
    }

    fn delta(revision: i64, tenant: TenantId, versions: Versions<Principal>) -> Delta {
        Delta {
            revision: Revision(revision),
            sequence: 0,
            tenant,
            edit: Edit::Principal(versions),
        }
    }

    #[test]
    fn aliases_resolve_ignoring_case_and_follow_every_change() {
        let empty = Snapshot::empty(&Catalog::parse(r#"{"roles":[]}"#).expect("catalog"));
        let (tenant, other) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let id = Uuid::new_v4();
        let alice = principal(id, &["Alice@Contoso.com", "alice"]);
        let created = empty
            .apply(&[delta(1, tenant, Versions::Created(alice.clone()))])
            .expect("applies");
        assert_eq!(
            created.resolve_principal(tenant, "ALICE@contoso.COM"),
            Some((id, Some("Alice@Contoso.com")))
        );
        assert_eq!(created.resolve_principal(other, "alice"), None);
        assert_eq!(
            created
                .principal(tenant, &id)
                .map(|p| p.display_name.as_str()),
            Some("Alice")
        );
        let upper = id.to_string().to_uppercase();
        let unknown = Uuid::new_v4();
        assert_eq!(created.resolve_principal(tenant, &upper), Some((id, None)));
        assert_eq!(
            created.resolve_principal(other, &unknown.to_string()),
            Some((unknown, None))
        );

        let renamed = principal(id, &["a.smith"]);
        let updated = created
            .apply(&[delta(
                2,
                tenant,
                Versions::Updated {
                    before: alice.clone(),
                    after: renamed.clone(),
                },
            )])
            .expect("applies");
        assert_eq!(updated.resolve_principal(tenant, "alice"), None);
        assert_eq!(
            updated.resolve_principal(tenant, "A.Smith"),
            Some((id, Some("a.smith")))
        );
        let deleted = updated
            .apply(&[delta(3, tenant, Versions::Deleted(renamed))])
            .expect("applies");
        assert_eq!(deleted.resolve_principal(tenant, "a.smith"), None);
        assert!(deleted.principal(tenant, &id).is_none());
        assert!(
            created.principal(tenant, &id).is_some(),
            "snapshots are immutable"
        );
    }
}
