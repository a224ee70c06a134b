//! Making sure someone can administer: the configured bootstrap admins at start, and the
//! `rolecall bootstrap` command that recovers a locked-out deployment from the database.

use anyhow::Context as _;

use crate::config::Config;
use crate::store::Store;
use crate::{engine, model, store};

/// Gives each configured bootstrap admin Privileged Role Administrator at `/` in the default
/// tenant, unless it already holds it there.
pub(crate) async fn bootstrap_admins(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    for admin in &config.bootstrap_admins {
        let created = bootstrap(store, config.default_tenant, *admin, "bootstrap-config")
            .await
            .with_context(|| format!("bootstrapping admin {admin}"))?;
        if created {
            tracing::info!(%admin, "bootstrap: assigned Privileged Role Administrator at /");
        }
    }
    Ok(())
}

/// Assigns Privileged Role Administrator at `/` to `principal` in `tenant`; false when it
/// already held that assignment.
pub async fn bootstrap(
    store: &dyn Store,
    tenant: model::TenantId,
    principal: uuid::Uuid,
    actor: &str,
) -> anyhow::Result<bool> {
    let role = model::PRIVILEGED_ROLE_ADMINISTRATOR;
    let filter = store::RoleAssignmentFilter {
        principal_id: Some(principal),
        role_definition_id: Some(role),
        directory_scope_id: Some(model::Scope::root()),
    };
    let page = store::PageRequest {
        limit: 1,
        cursor: None,
    };
    if !store
        .list_role_assignments(tenant, &filter, &page)
        .await?
        .items
        .is_empty()
    {
        return Ok(false);
    }
    let input: model::RoleAssignmentInput = serde_json::from_value(serde_json::json!({
        "principalId": principal,
        "principalType": "user",
        "roleDefinitionId": role,
        "directoryScopeId": "/",
    }))?;
    let new = input
        .validate()
        .map_err(|e| anyhow::anyhow!("bootstrap assignment is invalid: {e}"))?;
    store
        .create_role_assignment(tenant, &store::Actor::new(actor), new)
        .await?;
    Ok(true)
}

/// What [`recover_admin`] changed and found, for the operator to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// True when a Privileged Role Administrator assignment at `/` was created; false when
    /// an active one was already there.
    pub assigned: bool,
    /// Privileged Role Administrator assignments at `/` of the principal that were not in
    /// force (expired or not yet started): deleted, so that a permanent one could be made.
    pub replaced: Vec<model::RoleAssignment>,
    /// Deny assignments naming the principal itself that deny an admin action: deleted.
    pub removed: Vec<model::DenyAssignment>,
    /// Deny assignments naming a group the principal belongs to (stored memberships) that
    /// deny an admin action. They also bind every other member of the group.
    pub group_denies: Vec<GroupDeny>,
    /// The admin actions Privileged Role Administrator grants at `/` that the principal
    /// still may not perform there (with no token groups). Empty: the recovery worked.
    pub still_denied: Vec<&'static str>,
}

/// A deny assignment that reaches the recovered principal through its groups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDeny {
    /// The deny assignment.
    pub deny: model::DenyAssignment,
    /// The groups from the principal to the denied group (inclusive).
    pub via: Vec<uuid::Uuid>,
    /// True when it was deleted (only when asked to).
    pub removed: bool,
}

/// Gives `principal` the admin API back without the admin key: the lock-out recovery that
/// `rolecall bootstrap --admin` runs against the database.
///
/// It makes `principal` Privileged Role Administrator at `/` (replacing such an assignment
/// that is not in force), and deletes every deny assignment naming `principal` itself that
/// denies one of [`crate::decide::actions::ADMIN_ACTIONS`] at any scope, whatever else it denies;
/// other deny assignments on it stay. A deny assignment naming one of its groups binds
/// every member, so it is deleted only when `remove_group_denies`; otherwise it is
/// reported. Matching is the engine's own (a check of each admin action at each deny
/// scope, with explanation), so patterns, exclusions, nesting and its depth bound, and
/// unit scopes count exactly as in any decision.
/// Every write is logged with `actor`. Finally the engine is asked again, on a fresh
/// snapshot, whether `principal` holds at `/` each admin action that Privileged Role
/// Administrator grants: [`Recovery::still_denied`] lists the ones it does not.
///
/// Costs two full store dumps and a few checks per distinct deny scope of the tenant.
pub async fn recover_admin(
    store: &dyn Store,
    tenant: model::TenantId,
    principal: uuid::Uuid,
    actor: &str,
    remove_group_denies: bool,
) -> anyhow::Result<Recovery> {
    let writer = store::Actor::new(actor);
    let now = chrono::Utc::now();
    let mut replaced = Vec::new();
    let filter = store::RoleAssignmentFilter {
        principal_id: Some(principal),
        role_definition_id: Some(model::PRIVILEGED_ROLE_ADMINISTRATOR),
        directory_scope_id: Some(model::Scope::root()),
    };
    let page = store::PageRequest {
        limit: 10,
        cursor: None,
    };
    for held in store
        .list_role_assignments(tenant, &filter, &page)
        .await?
        .items
    {
        if !held.value.active_at(now) {
            store
                .delete_role_assignment(tenant, &writer, held.value.id, None)
                .await?;
            replaced.push(held.value);
        }
    }
    let assigned = bootstrap(store, tenant, principal, actor).await?;

    let dump = store.dump().await?;
    let snapshot = engine::Snapshot::build(&dump, store.catalog());
    let denies: Vec<&model::DenyAssignment> = dump
        .tenants
        .iter()
        .filter(|t| t.tenant == tenant)
        .flat_map(|t| &t.deny_assignments)
        .collect();
    let mut scopes: Vec<model::Scope> = denies
        .iter()
        .map(|d| d.directory_scope_id.clone())
        .collect();
    scopes.sort();
    scopes.dedup();
    let mut found: std::collections::BTreeMap<uuid::Uuid, Vec<uuid::Uuid>> = Default::default();
    for scope in &scopes {
        for action in crate::decide::actions::ADMIN_ACTIONS {
            let request = engine::CheckRequest::new(
                engine::Subject::new(principal),
                model::Action::parse(action)?,
                scope.clone(),
            );
            for reason in snapshot.check(tenant, &request, now, true).reasons {
                if let engine::Reason::Deny(deny) = reason {
                    found.entry(deny.deny_assignment_id).or_insert(deny.via);
                }
            }
        }
    }

    let mut removed = Vec::new();
    let mut group_denies = Vec::new();
    for deny in denies {
        let Some(via) = found.remove(&deny.id) else {
            continue;
        };
        let direct = deny.principal_id == principal;
        if direct || remove_group_denies {
            match store
                .delete_deny_assignment(tenant, &writer, deny.id, None)
                .await
            {
                // Deleted meanwhile by someone else: nothing left to do.
                Ok(_) | Err(store::StoreError::NotFound { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        if direct {
            removed.push(deny.clone());
        } else {
            group_denies.push(GroupDeny {
                deny: deny.clone(),
                via,
                removed: remove_group_denies,
            });
        }
    }

    let snapshot = engine::Snapshot::build(&store.dump().await?, store.catalog());
    let mut still_denied = Vec::new();
    for &action in crate::decide::actions::ADMIN_ACTIONS {
        let ask = |subject: engine::Subject| -> anyhow::Result<bool> {
            let request = engine::CheckRequest::new(
                subject,
                model::Action::parse(action)?,
                model::Scope::root(),
            );
            Ok(snapshot.check(tenant, &request, now, false).allowed)
        };
        // What the role grants, asked for a principal nobody has denied anything.
        let role_only = engine::Subject {
            wids: vec![model::PRIVILEGED_ROLE_ADMINISTRATOR],
            ..engine::Subject::new(uuid::Uuid::new_v4())
        };
        if ask(role_only)? && !ask(engine::Subject::new(principal))? {
            still_denied.push(action);
        }
    }
    Ok(Recovery {
        assigned,
        replaced,
        removed,
        group_denies,
        still_denied,
    })
}
