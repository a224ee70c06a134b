//! The store contract, checked against both backends. Each behaviour is one async fn
//! taking `&dyn Store`; `conformance!` runs every one unchanged on a fresh SQLite file and
//! on a fresh PostgreSQL database (`ROLECALL_TEST_POSTGRES_URL` must name a server: the
//! PostgreSQL half fails, never skips, without it).

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rolecall::engine::{Delta, Snapshot};
use rolecall::model::pim::Length;
use rolecall::model::{
    encode_segment, ActionPattern, ChangeOp, CloneRole, DenyAssignmentPatch, EntityType,
    NamedObjectPatch, NewDenyAssignment, NewGroupMember, NewNamedObject, NewPrincipal, NewResource,
    NewRoleAssignment, NewRoleDefinition, Principal, PrincipalPatch, PrincipalType, ResourcePatch,
    Revision, RoleDefinitionPatch, RolePermission, Scope, TenantId,
};
use rolecall::model::{
    NewRoleEligibility, NewScheduleRequest, RequestStatus, RoleManagementPolicy, ScheduleAction,
};
use rolecall::store::{
    Actor, Backend, ChangeFeed, DirectoryStore, PageRequest, PrincipalFilter, Review,
    RoleAssignmentFilter, RoleDefinitionFilter, SqlStore, Store, StoreError, Upsert,
};
use rolecall::sync::decode;
use uuid::Uuid;

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn tenant() -> TenantId {
    TenantId(Uuid::new_v4())
}

fn actor() -> Actor {
    Actor::new("tester")
}

fn all() -> PageRequest {
    PageRequest {
        limit: 1000,
        cursor: None,
    }
}

fn scope(path: &str) -> Scope {
    Scope::parse(path).unwrap()
}

fn patterns(actions: &[&str]) -> Vec<ActionPattern> {
    actions
        .iter()
        .map(|a| ActionPattern::parse(a).unwrap())
        .collect()
}

fn builtin(id: &str) -> Uuid {
    Uuid::parse_str(id).unwrap()
}

fn new_role(name: &str, actions: &[&str]) -> NewRoleDefinition {
    NewRoleDefinition {
        display_name: name.to_owned(),
        description: format!("{name} (test)"),
        is_enabled: true,
        role_permissions: vec![RolePermission {
            allowed_resource_actions: patterns(actions),
            excluded_resource_actions: Vec::new(),
            condition: None,
        }],
        assignable_scopes: vec![Scope::root()],
    }
}

fn new_assignment(principal: Uuid, role: Uuid, at: &str) -> NewRoleAssignment {
    NewRoleAssignment {
        principal_id: principal,
        principal_type: PrincipalType::User,
        role_definition_id: role,
        directory_scope_id: scope(at),
        start_date_time: None,
        end_date_time: None,
        condition: None,
        condition_version: None,
    }
}

/// An Azure ABAC condition, as stored on a role assignment.
const CONDITION: &str =
    "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'";

/// `new` with `condition` at version 2.0.
fn with_condition(mut new: NewRoleAssignment, condition: &str) -> NewRoleAssignment {
    new.condition = Some(condition.to_owned());
    new.condition_version = Some("2.0".to_owned());
    new
}

fn new_deny(principal: Uuid, actions: &[&str]) -> NewDenyAssignment {
    NewDenyAssignment {
        display_name: "No secrets".to_owned(),
        description: String::new(),
        principal_id: principal,
        principal_type: PrincipalType::User,
        actions: patterns(actions),
        excluded_actions: Vec::new(),
        directory_scope_id: scope("/applications"),
    }
}

fn named(name: &str) -> NewNamedObject {
    NewNamedObject {
        display_name: name.to_owned(),
        description: String::new(),
    }
}

fn user(id: Uuid) -> NewGroupMember {
    NewGroupMember {
        id,
        member_type: PrincipalType::User,
    }
}

fn group_member(id: Uuid) -> NewGroupMember {
    NewGroupMember {
        id,
        member_type: PrincipalType::Group,
    }
}

/// Walks every page of a listing, `limit` items at a time; evaluates to the items and the
/// number of pages.
macro_rules! walk {
    ($limit:expr, |$page:ident| $fetch:expr) => {{
        let mut items = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let $page = PageRequest {
                limit: $limit,
                cursor: cursor.take(),
            };
            let page = $fetch.await.expect("page");
            assert!(page.items.len() <= $limit as usize);
            pages += 1;
            items.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages < 1000, "pagination does not end");
        }
        (items, pages)
    }};
}

fn assert_unprocessable(error: StoreError, pointer: &str) {
    match error {
        StoreError::Unprocessable(errors) => {
            assert_eq!(errors.errors[0].pointer, pointer, "{errors:?}")
        }
        other => panic!("expected unprocessable at {pointer}, got {other:?}"),
    }
}

fn assert_not_found(error: StoreError) {
    assert!(
        matches!(error, StoreError::NotFound { .. }),
        "expected not found, got {error:?}"
    );
}

fn assert_conflict(error: StoreError) -> String {
    match error {
        StoreError::Conflict(message) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// CRUD of every entity
// ---------------------------------------------------------------------------------------

async fn custom_roles_are_created_read_updated_and_deleted(store: &dyn Store) {
    let t = tenant();
    let created = store
        .create_role_definition(
            t,
            &actor(),
            new_role("Expense approver", &["contoso.expenses/reports/approve"]),
        )
        .await
        .unwrap();
    assert!(created.created);
    let role = &created.value;
    assert_eq!(role.template_id, role.id);
    assert!(!role.is_built_in && role.is_enabled);
    assert_eq!(role.version, 1);
    assert!(role.created_date_time.is_some());
    assert_eq!(role.created_date_time, role.last_modified_date_time);

    let got = store.get_role_definition(t, role.id).await.unwrap();
    assert_eq!(got.value, *role);
    assert_eq!(got.revision, created.revision);

    let patch = RoleDefinitionPatch {
        description: Some("off for now".to_owned()),
        is_enabled: Some(false),
        role_permissions: Some(vec![RolePermission {
            allowed_resource_actions: patterns(&["contoso.expenses/*"]),
            excluded_resource_actions: patterns(&["contoso.expenses/reports/delete"]),
            condition: None,
        }]),
        assignable_scopes: Some(vec![scope("/expenses")]),
        ..RoleDefinitionPatch::default()
    };
    let updated = store
        .update_role_definition(t, &actor(), role.id, patch, Some(created.revision))
        .await
        .unwrap();
    assert!(!updated.created);
    assert_eq!(updated.revision, Revision(created.revision.0 + 1));
    assert_eq!(updated.value.version, 2);
    assert!(!updated.value.is_enabled);
    assert_eq!(updated.value.description, "off for now");
    assert_eq!(updated.value.assignable_scopes, vec![scope("/expenses")]);
    assert_eq!(updated.value.display_name, "Expense approver");
    assert_eq!(updated.value.created_date_time, role.created_date_time);
    assert!(updated.value.last_modified_date_time >= role.last_modified_date_time);
    let got = store.get_role_definition(t, role.id).await.unwrap();
    assert_eq!(got.value, updated.value);
    assert_eq!(got.revision, updated.revision);

    let renamed = store
        .update_role_definition(
            t,
            &actor(),
            role.id,
            RoleDefinitionPatch {
                display_name: Some("Expense APPROVER".to_owned()),
                ..RoleDefinitionPatch::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(renamed.value.display_name, "Expense APPROVER");
    assert_eq!(renamed.value.version, 3);

    let deleted = store
        .delete_role_definition(t, &actor(), role.id, false, None)
        .await
        .unwrap();
    assert_eq!(deleted.value, renamed.value);
    assert_eq!(deleted.revision, Revision(renamed.revision.0 + 1));
    assert_not_found(store.get_role_definition(t, role.id).await.unwrap_err());
    assert_not_found(
        store
            .delete_role_definition(t, &actor(), role.id, false, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .update_role_definition(t, &actor(), role.id, RoleDefinitionPatch::default(), None)
            .await
            .unwrap_err(),
    );
}

async fn role_assignments_are_created_read_listed_and_deleted(store: &dyn Store) {
    let t = tenant();
    let role = store
        .create_role_definition(
            t,
            &actor(),
            new_role(
                "App reader",
                &["microsoft.directory/applications/basic/read"],
            ),
        )
        .await
        .unwrap()
        .value;
    let principal = Uuid::new_v4();
    let mut new = new_assignment(principal, role.id, "/applications/a1");
    new.principal_type = PrincipalType::ServicePrincipal;
    new.start_date_time = Some("2030-01-01T00:00:00Z".parse().unwrap());
    new.end_date_time = Some("2030-02-01T00:00:00.123456Z".parse().unwrap());
    let created = store
        .create_role_assignment(t, &actor(), new.clone())
        .await
        .unwrap();
    assert!(created.created);
    let a = &created.value;
    assert_eq!(
        (
            a.principal_id,
            a.principal_type,
            a.role_definition_id,
            &a.directory_scope_id
        ),
        (
            principal,
            PrincipalType::ServicePrincipal,
            role.id,
            &new.directory_scope_id
        )
    );
    assert_eq!(
        (a.start_date_time, a.end_date_time),
        (new.start_date_time, new.end_date_time)
    );

    let got = store.get_role_assignment(t, a.id).await.unwrap();
    assert_eq!(got.value, *a);
    assert_eq!(got.revision, created.revision);
    let listed = store
        .list_role_assignments(t, &RoleAssignmentFilter::default(), &all())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0], got);
    assert_eq!(listed.next, None);

    let deleted = store
        .delete_role_assignment(t, &actor(), a.id, None)
        .await
        .unwrap();
    assert_eq!(deleted.value, *a);
    assert!(!deleted.created);
    assert_not_found(store.get_role_assignment(t, a.id).await.unwrap_err());
    assert_not_found(
        store
            .delete_role_assignment(t, &actor(), a.id, None)
            .await
            .unwrap_err(),
    );
}

async fn deny_assignments_are_created_read_updated_and_deleted(store: &dyn Store) {
    let t = tenant();
    let principal = Uuid::new_v4();
    let created = store
        .create_deny_assignment(
            t,
            &actor(),
            new_deny(
                principal,
                &["microsoft.directory/applications/credentials/*"],
            ),
        )
        .await
        .unwrap();
    assert!(created.created);
    let id = created.value.id;
    assert_eq!(
        store.get_deny_assignment(t, id).await.unwrap().value,
        created.value
    );

    let patch = DenyAssignmentPatch {
        display_name: Some("No keys".to_owned()),
        actions: Some(patterns(&["a.b/*"])),
        excluded_actions: Some(patterns(&["a.b/read"])),
        ..DenyAssignmentPatch::default()
    };
    let updated = store
        .update_deny_assignment(t, &actor(), id, patch, None)
        .await
        .unwrap();
    assert_eq!(updated.value.display_name, "No keys");
    assert_eq!(updated.value.actions, patterns(&["a.b/*"]));
    assert_eq!(updated.value.excluded_actions, patterns(&["a.b/read"]));
    assert_eq!(updated.value.principal_id, principal);
    assert_eq!(
        updated.value.created_date_time,
        created.value.created_date_time
    );
    let got = store.get_deny_assignment(t, id).await.unwrap();
    assert_eq!(
        (got.value, got.revision),
        (updated.value.clone(), updated.revision)
    );

    let other = store
        .create_deny_assignment(t, &actor(), new_deny(Uuid::new_v4(), &["x.y/z"]))
        .await
        .unwrap();
    let mine = store
        .list_deny_assignments(t, Some(principal), &all())
        .await
        .unwrap();
    assert_eq!(
        mine.items.iter().map(|d| d.value.id).collect::<Vec<_>>(),
        [id]
    );
    let every = store.list_deny_assignments(t, None, &all()).await.unwrap();
    assert_eq!(every.items.len(), 2);

    let deleted = store
        .delete_deny_assignment(t, &actor(), id, None)
        .await
        .unwrap();
    assert_eq!(deleted.value, updated.value);
    assert_not_found(store.get_deny_assignment(t, id).await.unwrap_err());
    assert_not_found(
        store
            .update_deny_assignment(t, &actor(), id, DenyAssignmentPatch::default(), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        store
            .list_deny_assignments(t, None, &all())
            .await
            .unwrap()
            .items[0]
            .value,
        other.value
    );
}

async fn groups_and_their_members_are_created_read_updated_and_deleted(store: &dyn Store) {
    let t = tenant();
    let created = store
        .groups()
        .create(
            t,
            &actor(),
            NewNamedObject {
                display_name: "Outer".to_owned(),
                description: "d".to_owned(),
            },
        )
        .await
        .unwrap();
    let outer = created.value.clone();
    assert_eq!(outer.description, "d");
    assert_eq!(store.groups().get(t, outer.id).await.unwrap().value, outer);
    let updated = store
        .groups()
        .update(
            t,
            &actor(),
            outer.id,
            NamedObjectPatch {
                display_name: Some("Outer team".to_owned()),
                description: None,
            },
            Some(created.revision),
        )
        .await
        .unwrap();
    assert_eq!(updated.value.display_name, "Outer team");
    assert_eq!(updated.value.description, "d");
    assert_eq!(updated.value.created_date_time, outer.created_date_time);

    let inner = store
        .groups()
        .create(t, &actor(), named("Inner"))
        .await
        .unwrap()
        .value;
    let u = Uuid::new_v4();
    let added = store
        .groups()
        .add_member(t, &actor(), outer.id, group_member(inner.id))
        .await
        .unwrap();
    assert!(added.created);
    assert_eq!(
        (
            added.value.group_id,
            added.value.id,
            added.value.member_type
        ),
        (outer.id, inner.id, PrincipalType::Group)
    );
    let again = store
        .groups()
        .add_member(t, &actor(), outer.id, group_member(inner.id))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.value.clone(), again.revision),
        (added.value.clone(), added.revision)
    );
    store
        .groups()
        .add_member(t, &actor(), outer.id, user(u))
        .await
        .unwrap();
    // A cycle (and a group containing itself) is allowed.
    store
        .groups()
        .add_member(t, &actor(), inner.id, group_member(outer.id))
        .await
        .unwrap();
    store
        .groups()
        .add_member(t, &actor(), inner.id, group_member(inner.id))
        .await
        .unwrap();

    let members = store
        .groups()
        .list_members(t, outer.id, &all())
        .await
        .unwrap();
    let mut expected = vec![inner.id, u];
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(
        members.items.iter().map(|m| m.value.id).collect::<Vec<_>>(),
        expected
    );

    // A member group must exist; the parent group must exist.
    let missing = Uuid::new_v4();
    assert_unprocessable(
        store
            .groups()
            .add_member(t, &actor(), outer.id, group_member(missing))
            .await
            .unwrap_err(),
        "/id",
    );
    assert_not_found(
        store
            .groups()
            .add_member(t, &actor(), missing, user(u))
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .groups()
            .list_members(t, missing, &all())
            .await
            .unwrap_err(),
    );

    let removed = store
        .groups()
        .remove_member(t, &actor(), outer.id, &u)
        .await
        .unwrap();
    assert_eq!(removed.value.id, u);
    assert_not_found(
        store
            .groups()
            .remove_member(t, &actor(), outer.id, &u)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .groups()
            .remove_member(t, &actor(), missing, &u)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        store
            .groups()
            .list_members(t, outer.id, &all())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let listed = store.groups().list(t, &all()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    let deleted = store
        .groups()
        .delete(t, &actor(), inner.id, None)
        .await
        .unwrap();
    assert_eq!(deleted.value, inner);
    assert_not_found(store.groups().get(t, inner.id).await.unwrap_err());
    assert_not_found(
        store
            .groups()
            .delete(t, &actor(), inner.id, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .groups()
            .update(t, &actor(), inner.id, NamedObjectPatch::default(), None)
            .await
            .unwrap_err(),
    );
}

async fn administrative_units_and_their_members_are_created_read_updated_and_deleted(
    store: &dyn Store,
) {
    let t = tenant();
    let unit = store
        .units()
        .create(t, &actor(), named("Finance apps"))
        .await
        .unwrap()
        .value;
    assert_eq!(store.units().get(t, unit.id).await.unwrap().value, unit);
    let patched = store
        .units()
        .update(
            t,
            &actor(),
            unit.id,
            NamedObjectPatch {
                display_name: None,
                description: Some("all finance".to_owned()),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(patched.value.description, "all finance");
    assert_eq!(patched.value.display_name, "Finance apps");

    let resource = scope("/applications/a1");
    let added = store
        .units()
        .add_member(t, &actor(), unit.id, resource.clone())
        .await
        .unwrap();
    assert!(added.created);
    assert_eq!(
        (added.value.administrative_unit_id, &added.value.resource),
        (unit.id, &resource)
    );
    let again = store
        .units()
        .add_member(t, &actor(), unit.id, resource.clone())
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.value.clone(), again.revision),
        (added.value.clone(), added.revision)
    );
    store
        .units()
        .add_member(t, &actor(), unit.id, scope("/applications/a0/keys/k"))
        .await
        .unwrap();
    let members = store
        .units()
        .list_members(t, unit.id, &all())
        .await
        .unwrap();
    let paths: Vec<&str> = members
        .items
        .iter()
        .map(|m| m.value.resource.as_str())
        .collect();
    assert_eq!(paths, ["/applications/a0/keys/k", "/applications/a1"]);

    let missing = Uuid::new_v4();
    assert_not_found(
        store
            .units()
            .add_member(t, &actor(), missing, resource.clone())
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .units()
            .list_members(t, missing, &all())
            .await
            .unwrap_err(),
    );
    let removed = store
        .units()
        .remove_member(t, &actor(), unit.id, &resource)
        .await
        .unwrap();
    assert_eq!(removed.value, added.value);
    assert_not_found(
        store
            .units()
            .remove_member(t, &actor(), unit.id, &resource)
            .await
            .unwrap_err(),
    );

    // An assignment scoped to the unit survives the unit (it then covers nothing).
    let scoped = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(
                Uuid::new_v4(),
                builtin(APPLICATION_ADMINISTRATOR),
                &format!("/administrativeUnits/{}", unit.id),
            ),
        )
        .await
        .unwrap();
    let before = store.current_revision().await.unwrap();
    let deleted = store
        .units()
        .delete(t, &actor(), unit.id, None)
        .await
        .unwrap();
    assert_eq!(deleted.value, patched.value);
    assert_not_found(store.units().get(t, unit.id).await.unwrap_err());
    assert!(store.get_role_assignment(t, scoped.value.id).await.is_ok());
    // The remaining member went with the unit, in the same revision.
    let changes = store.changes_after(before, 100).await.unwrap();
    let logged: Vec<(EntityType, ChangeOp)> =
        changes.iter().map(|c| (c.entity_type, c.op)).collect();
    assert_eq!(
        logged,
        [
            (EntityType::AdministrativeUnitMember, ChangeOp::Delete),
            (EntityType::AdministrativeUnit, ChangeOp::Delete)
        ]
    );
    assert_eq!(
        changes[0].entity_id,
        format!("{}/applications/a0/keys/k", unit.id)
    );
    assert!(store
        .units()
        .list(t, &all())
        .await
        .unwrap()
        .items
        .is_empty());
}

// ---------------------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------------------

async fn tenants_never_see_or_change_each_others_objects(store: &dyn Store) {
    let (a, b) = (tenant(), tenant());
    let group = store
        .groups()
        .create(a, &actor(), named("A's group"))
        .await
        .unwrap()
        .value;
    let role = store
        .create_role_definition(a, &actor(), new_role("Reviewer", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let assignment = store
        .create_role_assignment(a, &actor(), new_assignment(Uuid::new_v4(), role.id, "/"))
        .await
        .unwrap()
        .value;
    let deny = store
        .create_deny_assignment(a, &actor(), new_deny(Uuid::new_v4(), &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let unit = store
        .units()
        .create(a, &actor(), named("A's unit"))
        .await
        .unwrap()
        .value;

    assert_not_found(store.groups().get(b, group.id).await.unwrap_err());
    assert_not_found(store.get_role_definition(b, role.id).await.unwrap_err());
    assert_not_found(
        store
            .get_role_assignment(b, assignment.id)
            .await
            .unwrap_err(),
    );
    assert_not_found(store.get_deny_assignment(b, deny.id).await.unwrap_err());
    assert_not_found(store.units().get(b, unit.id).await.unwrap_err());
    assert_not_found(
        store
            .groups()
            .delete(b, &actor(), group.id, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .delete_role_definition(b, &actor(), role.id, true, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .delete_role_assignment(b, &actor(), assignment.id, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .delete_deny_assignment(b, &actor(), deny.id, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .units()
            .delete(b, &actor(), unit.id, None)
            .await
            .unwrap_err(),
    );
    assert_not_found(
        store
            .groups()
            .add_member(b, &actor(), group.id, user(Uuid::new_v4()))
            .await
            .unwrap_err(),
    );
    // B cannot use A's role, nor A's group as a member.
    assert_unprocessable(
        store
            .create_role_assignment(b, &actor(), new_assignment(Uuid::new_v4(), role.id, "/"))
            .await
            .unwrap_err(),
        "/roleDefinitionId",
    );
    let b_group = store
        .groups()
        .create(b, &actor(), named("B's group"))
        .await
        .unwrap()
        .value;
    assert_unprocessable(
        store
            .groups()
            .add_member(b, &actor(), b_group.id, group_member(group.id))
            .await
            .unwrap_err(),
        "/id",
    );
    assert_not_found(
        store
            .clone_role_definition(
                b,
                &actor(),
                role.id,
                CloneRole {
                    display_name: "Copy".to_owned(),
                    description: None,
                },
            )
            .await
            .unwrap_err(),
    );

    assert_eq!(store.groups().list(b, &all()).await.unwrap().items.len(), 1);
    assert!(store
        .list_role_assignments(b, &RoleAssignmentFilter::default(), &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_deny_assignments(b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .units()
        .list(b, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    let b_custom = RoleDefinitionFilter {
        is_built_in: Some(false),
        ..RoleDefinitionFilter::default()
    };
    assert!(store
        .list_role_definitions(b, &b_custom, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_changes(b, Revision(0), &all())
        .await
        .unwrap()
        .items
        .iter()
        .all(|c| c.tenant_id == b));
    assert_eq!(
        store
            .list_changes(a, Revision(0), &all())
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    // Display names are unique per tenant only.
    assert!(store
        .create_role_definition(b, &actor(), new_role("Reviewer", &["x.y/z"]))
        .await
        .is_ok());
    // A's objects are untouched.
    assert_eq!(store.groups().get(a, group.id).await.unwrap().value, group);
    assert_eq!(
        store
            .get_role_assignment(a, assignment.id)
            .await
            .unwrap()
            .value,
        assignment
    );
}

// ---------------------------------------------------------------------------------------
// Built-in roles
// ---------------------------------------------------------------------------------------

async fn built_in_roles_are_listed_merged_in_id_order_and_read_only(store: &dyn Store) {
    let t = tenant();
    let catalog = store.catalog().roles().to_vec();
    assert!(catalog.len() >= 12);
    let listed = store
        .list_role_definitions(t, &RoleDefinitionFilter::default(), &all())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), catalog.len());
    assert!(listed
        .items
        .iter()
        .all(|r| r.value.is_built_in && r.revision == Revision(0)));

    let mut customs = Vec::new();
    for i in 0..4 {
        customs.push(
            store
                .create_role_definition(t, &actor(), new_role(&format!("Custom {i}"), &["x.y/z"]))
                .await
                .unwrap()
                .value,
        );
    }
    let merged = store
        .list_role_definitions(t, &RoleDefinitionFilter::default(), &all())
        .await
        .unwrap();
    let ids: Vec<String> = merged
        .items
        .iter()
        .map(|r| r.value.id.to_string())
        .collect();
    let mut expected: Vec<String> = catalog
        .iter()
        .chain(&customs)
        .map(|r| r.id.to_string())
        .collect();
    expected.sort();
    assert_eq!(ids, expected);

    let only_builtin = RoleDefinitionFilter {
        is_built_in: Some(true),
        ..RoleDefinitionFilter::default()
    };
    let builtins = store
        .list_role_definitions(t, &only_builtin, &all())
        .await
        .unwrap();
    assert_eq!(builtins.items.len(), catalog.len());
    let only_custom = RoleDefinitionFilter {
        is_built_in: Some(false),
        ..RoleDefinitionFilter::default()
    };
    let custom = store
        .list_role_definitions(t, &only_custom, &all())
        .await
        .unwrap();
    assert_eq!(custom.items.len(), 4);
    assert!(custom
        .items
        .iter()
        .all(|r| !r.value.is_built_in && r.revision > Revision(0)));

    let global = store
        .get_role_definition(t, builtin(GLOBAL_ADMINISTRATOR))
        .await
        .unwrap();
    assert_eq!(global.value.display_name, "Global Administrator");
    assert_eq!(global.value.template_id, builtin(GLOBAL_ADMINISTRATOR));
    assert_eq!(global.revision, Revision(0));

    let before = store.current_revision().await.unwrap();
    let patch = RoleDefinitionPatch {
        is_enabled: Some(false),
        ..RoleDefinitionPatch::default()
    };
    let refused = store
        .update_role_definition(t, &actor(), global.value.id, patch, None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::BuiltinImmutable(id) if id == global.value.id),
        "{refused:?}"
    );
    let refused = store
        .delete_role_definition(t, &actor(), global.value.id, true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::BuiltinImmutable(_)),
        "{refused:?}"
    );
    assert_eq!(store.current_revision().await.unwrap(), before);
    assert_eq!(
        store.get_role_definition(t, global.value.id).await.unwrap(),
        global
    );
}

async fn built_in_roles_can_be_cloned_and_assigned(store: &dyn Store) {
    let t = tenant();
    let source = store
        .get_role_definition(t, builtin(APPLICATION_ADMINISTRATOR))
        .await
        .unwrap()
        .value;
    let clone = store
        .clone_role_definition(
            t,
            &actor(),
            source.id,
            CloneRole {
                display_name: "Application credential manager".to_owned(),
                description: None,
            },
        )
        .await
        .unwrap();
    assert!(clone.created);
    let c = &clone.value;
    assert_ne!(c.id, source.id);
    assert_eq!(c.template_id, c.id);
    assert!(!c.is_built_in && c.is_enabled);
    assert_eq!(c.version, 1);
    assert_eq!(c.display_name, "Application credential manager");
    assert_eq!(c.description, source.description);
    assert_eq!(c.role_permissions, source.role_permissions);
    assert_eq!(c.assignable_scopes, source.assignable_scopes);
    assert_eq!(store.get_role_definition(t, c.id).await.unwrap().value, *c);

    // A clone of a (disabled) custom role, with its own description.
    let patch = RoleDefinitionPatch {
        is_enabled: Some(false),
        ..RoleDefinitionPatch::default()
    };
    store
        .update_role_definition(t, &actor(), c.id, patch, None)
        .await
        .unwrap();
    let second = store
        .clone_role_definition(
            t,
            &actor(),
            c.id,
            CloneRole {
                display_name: "Second".to_owned(),
                description: Some("mine".to_owned()),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(second.description, "mine");
    assert!(second.is_enabled);
    assert_eq!(second.role_permissions, source.role_permissions);
    assert_not_found(
        store
            .clone_role_definition(
                t,
                &actor(),
                Uuid::new_v4(),
                CloneRole {
                    display_name: "X".to_owned(),
                    description: None,
                },
            )
            .await
            .unwrap_err(),
    );
    assert_conflict(
        store
            .clone_role_definition(
                t,
                &actor(),
                source.id,
                CloneRole {
                    display_name: "second".to_owned(),
                    description: None,
                },
            )
            .await
            .unwrap_err(),
    );

    let assigned = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(Uuid::new_v4(), builtin(GLOBAL_ADMINISTRATOR), "/"),
        )
        .await
        .unwrap();
    assert!(assigned.created);
    assert_eq!(
        assigned.value.role_definition_id,
        builtin(GLOBAL_ADMINISTRATOR)
    );
}

async fn display_names_are_unique_per_tenant_ignoring_case_including_built_ins(store: &dyn Store) {
    let t = tenant();
    let reviewer = store
        .create_role_definition(t, &actor(), new_role("Reviewer", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let before = store.current_revision().await.unwrap();
    let message = assert_conflict(
        store
            .create_role_definition(t, &actor(), new_role("reviewer", &["x.y/z"]))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("reviewer"), "{message}");
    assert_conflict(
        store
            .create_role_definition(t, &actor(), new_role("REVIEWER", &["x.y/z"]))
            .await
            .unwrap_err(),
    );
    assert_conflict(
        store
            .create_role_definition(t, &actor(), new_role("global administrator", &["x.y/z"]))
            .await
            .unwrap_err(),
    );
    assert_eq!(store.current_revision().await.unwrap(), before);

    let other = store
        .create_role_definition(t, &actor(), new_role("Writer", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let rename = |name: &str| RoleDefinitionPatch {
        display_name: Some(name.to_owned()),
        ..RoleDefinitionPatch::default()
    };
    assert_conflict(
        store
            .update_role_definition(t, &actor(), other.id, rename("rEVIEWER"), None)
            .await
            .unwrap_err(),
    );
    assert_conflict(
        store
            .update_role_definition(t, &actor(), other.id, rename("Global Reader"), None)
            .await
            .unwrap_err(),
    );
    // Renaming to its own name in another case is fine, and frees nothing else.
    let recased = store
        .update_role_definition(t, &actor(), reviewer.id, rename("REVIEWER"), None)
        .await
        .unwrap();
    assert_eq!(recased.value.display_name, "REVIEWER");
    // Deleting a role frees its name.
    store
        .delete_role_definition(t, &actor(), reviewer.id, false, None)
        .await
        .unwrap();
    store
        .update_role_definition(t, &actor(), other.id, rename("reviewer"), None)
        .await
        .unwrap();
    // Another tenant has its own names.
    store
        .create_role_definition(tenant(), &actor(), new_role("Reviewer", &["x.y/z"]))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Assignments: idempotency, races, validation
// ---------------------------------------------------------------------------------------

async fn creating_the_same_assignment_twice_returns_the_first(store: &dyn Store) {
    let t = tenant();
    let role = store
        .create_role_definition(t, &actor(), new_role("App reader", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let principal = Uuid::new_v4();
    let first = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(principal, role.id, "/applications/a1"),
        )
        .await
        .unwrap();
    let before = store.current_revision().await.unwrap();
    assert_eq!(before, first.revision);
    // The same natural key, even with another window or principal type, finds the first.
    let mut again = new_assignment(principal, role.id, "/applications/a1");
    again.principal_type = PrincipalType::ServicePrincipal;
    again.end_date_time = Some("2031-01-01T00:00:00Z".parse().unwrap());
    let second = store
        .create_role_assignment(t, &actor(), again)
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.value, first.value);
    assert_eq!(second.revision, first.revision);
    assert_eq!(
        store.current_revision().await.unwrap(),
        before,
        "an idempotent create writes nothing"
    );
    // Any other scope, role or principal is another assignment.
    let other_scope = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(principal, role.id, "/applications/a1/keys/k"),
        )
        .await
        .unwrap();
    assert!(other_scope.created);
    let other_role = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(principal, builtin(GLOBAL_ADMINISTRATOR), "/applications/a1"),
        )
        .await
        .unwrap();
    assert!(other_role.created);
    let all_of_them = store
        .list_role_assignments(t, &RoleAssignmentFilter::default(), &all())
        .await
        .unwrap();
    assert_eq!(all_of_them.items.len(), 3);
}

async fn role_assignments_keep_their_condition_in_reads_the_change_log_and_the_dump(
    store: &dyn Store,
) {
    let t = tenant();
    let role = store
        .create_role_definition(t, &actor(), new_role("Log reader", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let start = store.current_revision().await.unwrap();
    let new = with_condition(new_assignment(Uuid::new_v4(), role.id, "/a"), CONDITION);
    let conditioned = store
        .create_role_assignment(t, &actor(), new)
        .await
        .unwrap()
        .value;
    assert_eq!(conditioned.condition.as_deref(), Some(CONDITION));
    assert_eq!(conditioned.condition_version.as_deref(), Some("2.0"));
    let plain = store
        .create_role_assignment(t, &actor(), new_assignment(Uuid::new_v4(), role.id, "/b"))
        .await
        .unwrap()
        .value;
    assert_eq!((&plain.condition, &plain.condition_version), (&None, &None));

    let got = store.get_role_assignment(t, conditioned.id).await.unwrap();
    assert_eq!(got.value, conditioned);
    let mut listed: Vec<_> = store
        .list_role_assignments(t, &RoleAssignmentFilter::default(), &all())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.value)
        .collect();
    listed.sort_by_key(|a| a.directory_scope_id.to_string());
    assert_eq!(listed, vec![conditioned.clone(), plain.clone()]);
    let dump = store.dump().await.unwrap();
    let mut dumped = dump
        .tenants
        .iter()
        .find(|d| d.tenant == t)
        .unwrap()
        .role_assignments
        .clone();
    dumped.sort_by_key(|a| a.directory_scope_id.to_string());
    assert_eq!(dumped, listed);

    store
        .delete_role_assignment(t, &actor(), conditioned.id, None)
        .await
        .unwrap();
    let changes = store.list_changes(t, start, &all()).await.unwrap().items;
    let bodies: Vec<_> = changes
        .iter()
        .map(|c| (c.change.op, c.change.before.clone(), c.change.after.clone()))
        .collect();
    let json = |a: &rolecall::model::RoleAssignment| serde_json::to_value(a).unwrap();
    assert_eq!(
        bodies,
        vec![
            (ChangeOp::Create, None, Some(json(&conditioned))),
            (ChangeOp::Create, None, Some(json(&plain))),
            (ChangeOp::Delete, Some(json(&conditioned)), None),
        ]
    );
    // Both fields are always written: the condition and its version, or null.
    let after = changes[0].change.after.as_ref().unwrap();
    assert_eq!(after["condition"], CONDITION);
    assert_eq!(after["conditionVersion"], "2.0");
    let after = changes[1].change.after.as_ref().unwrap();
    assert_eq!(after.get("condition"), Some(&serde_json::Value::Null));
    assert_eq!(
        after.get("conditionVersion"),
        Some(&serde_json::Value::Null)
    );
}

async fn an_assignment_differing_only_in_its_condition_is_a_conflict(store: &dyn Store) {
    let t = tenant();
    let role = store
        .create_role_definition(t, &actor(), new_role("Conditional", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let principal = Uuid::new_v4();
    let plain = new_assignment(principal, role.id, "/a");
    let conditioned = with_condition(new_assignment(principal, role.id, "/b"), CONDITION);
    store
        .create_role_assignment(t, &actor(), plain.clone())
        .await
        .unwrap();
    let first = store
        .create_role_assignment(t, &actor(), conditioned.clone())
        .await
        .unwrap();
    let before = store.current_revision().await.unwrap();

    // The same condition again finds the first.
    let again = store
        .create_role_assignment(t, &actor(), conditioned.clone())
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!((again.value, again.revision), (first.value, first.revision));
    // Another condition, none, or one where there was none: one principal holds one role at
    // one scope once.
    let refused = [
        with_condition(conditioned.clone(), "@Request[x:y] StringEquals 'z'"),
        new_assignment(principal, role.id, "/b"),
        with_condition(plain, CONDITION),
    ];
    for new in refused {
        let message = assert_conflict(
            store
                .create_role_assignment(t, &actor(), new)
                .await
                .unwrap_err(),
        );
        assert!(message.contains("different condition"), "{message}");
    }
    assert_eq!(store.current_revision().await.unwrap(), before);
    let all_of_them = store
        .list_role_assignments(t, &RoleAssignmentFilter::default(), &all())
        .await
        .unwrap();
    assert_eq!(all_of_them.items.len(), 2);
}

async fn parallel_creates_of_one_assignment_yield_exactly_one(store: &dyn Store) {
    let t = tenant();
    let role = store
        .create_role_definition(t, &actor(), new_role("Racer", &["contoso.race/run"]))
        .await
        .unwrap()
        .value;
    let before = store.current_revision().await.unwrap();
    let new = new_assignment(Uuid::new_v4(), role.id, "/");
    let who = actor();
    let results = futures::future::join_all(
        (0..20).map(|_| store.create_role_assignment(t, &who, new.clone())),
    )
    .await;
    let written: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("every create succeeds"))
        .collect();
    assert_eq!(written.iter().filter(|w| w.created).count(), 1);
    assert!(written.iter().all(|w| w.value == written[0].value));
    assert!(written.iter().all(|w| w.revision == Revision(before.0 + 1)));
    let filter = RoleAssignmentFilter {
        role_definition_id: Some(role.id),
        ..RoleAssignmentFilter::default()
    };
    assert_eq!(
        store
            .list_role_assignments(t, &filter, &all())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        store.current_revision().await.unwrap(),
        Revision(before.0 + 1)
    );
}

/// Concurrent assignment creates are group-committed: they share transactions and
/// revisions, yet each caller gets its own outcome (created, found or refused), a created
/// assignment's revision includes it, refusals take nothing from the others, and the change
/// log records each creation once under its own actor.
async fn concurrent_assignment_creates_share_commits_but_keep_their_own_outcomes(
    store: &dyn Store,
) {
    let t = tenant();
    let (alice, bob) = (Actor::new("alice"), Actor::new("bob"));
    let role = store
        .create_role_definition(t, &alice, new_role("Grouped", &["contoso.group/commit"]))
        .await
        .unwrap()
        .value;
    let mut narrow = new_role("Narrow", &["contoso.group/narrow"]);
    narrow.assignable_scopes = vec![scope("/applications/only")];
    let narrow = store
        .create_role_definition(t, &alice, narrow)
        .await
        .unwrap()
        .value;
    let taken = new_assignment(Uuid::new_v4(), role.id, "/applications/taken");
    let existing = store
        .create_role_assignment(t, &alice, taken.clone())
        .await
        .unwrap();
    let before = store.current_revision().await.unwrap();

    /// What each request must get.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expect {
        Created,
        /// One of identical concurrent requests (from both actors): exactly one of them
        /// creates, the others find what it created. Which one wins is not theirs to
        /// know: the writer groups by actor, so one actor's request may overtake another's.
        Twin,
        /// Found: `existing`.
        Existing,
        Conflict,
        Unprocessable(&'static str),
    }
    let mut requests: Vec<(Actor, NewRoleAssignment, Expect)> = Vec::new();
    for i in 0..40 {
        let who = if i % 4 == 3 {
            bob.clone()
        } else {
            alice.clone()
        };
        let new = new_assignment(Uuid::new_v4(), role.id, &format!("/applications/a{i}"));
        requests.push((who, new, Expect::Created));
    }
    requests[5].2 = Expect::Twin;
    let twin = requests[5].1.clone();
    requests.push((alice.clone(), twin.clone(), Expect::Twin));
    requests.push((bob.clone(), twin.clone(), Expect::Twin));
    requests.push((
        alice.clone(),
        with_condition(twin, "@Resource[x] == 'y'"),
        Expect::Conflict,
    ));
    requests.push((alice.clone(), taken.clone(), Expect::Existing));
    requests.push((
        alice.clone(),
        new_assignment(Uuid::new_v4(), Uuid::new_v4(), "/"),
        Expect::Unprocessable("/roleDefinitionId"),
    ));
    requests.push((
        alice.clone(),
        new_assignment(Uuid::new_v4(), narrow.id, "/applications/elsewhere"),
        Expect::Unprocessable("/directoryScopeId"),
    ));
    requests.push((
        bob.clone(),
        new_assignment(Uuid::new_v4(), narrow.id, "/applications/only"),
        Expect::Created,
    ));

    let results = futures::future::join_all(
        requests
            .iter()
            .map(|(who, new, _)| store.create_role_assignment(t, who, new.clone())),
    )
    .await;

    let mut revisions = BTreeSet::new();
    // The requests that created their assignment.
    let mut creators = Vec::new();
    let mut twins = Vec::new();
    for (i, ((_, new, expect), result)) in requests.iter().zip(&results).enumerate() {
        match (expect, result) {
            (Expect::Created | Expect::Twin, Ok(written)) => {
                assert_eq!(written.value.principal_id, new.principal_id);
                assert_eq!(written.value.directory_scope_id, new.directory_scope_id);
                if *expect == Expect::Twin {
                    twins.push(written);
                    if !written.created {
                        continue;
                    }
                }
                assert!(written.created, "request {i} creates");
                assert!(written.revision > before, "request {i}: a new revision");
                revisions.insert(written.revision);
                creators.push(i);
            }
            (Expect::Existing, Ok(written)) => {
                assert!(!written.created, "request {i} finds");
                assert_eq!(written.value, existing.value, "request {i}");
                assert_eq!(written.revision, existing.revision, "request {i}");
            }
            (Expect::Conflict, Err(StoreError::Conflict(_))) => {}
            (Expect::Unprocessable(pointer), Err(StoreError::Unprocessable(errors))) => {
                assert_eq!(
                    errors.errors[0].pointer, *pointer,
                    "request {i}: {errors:?}"
                );
            }
            (expect, got) => panic!("request {i}: expected {expect:?}, got {got:?}"),
        }
    }
    let winners: Vec<_> = twins.iter().filter(|w| w.created).collect();
    assert_eq!(winners.len(), 1, "one of the twins creates: {twins:?}");
    for twin in &twins {
        assert_eq!(
            twin.value, winners[0].value,
            "the twins find what one created"
        );
        assert_eq!(twin.revision, winners[0].revision);
    }
    let created = requests
        .iter()
        .filter(|(_, _, expect)| *expect == Expect::Created)
        .count()
        + 1;
    assert_eq!(creators.len(), created);
    assert!(
        revisions.len() < created,
        "{created} concurrent creates committed in {} revisions: none were grouped",
        revisions.len()
    );
    // Every revision between `before` and now is one of theirs: refusals and finds
    // consumed none.
    let now = store.current_revision().await.unwrap();
    assert_eq!(
        revisions.iter().copied().collect::<Vec<_>>(),
        ((before.0 + 1)..=now.0).map(Revision).collect::<Vec<_>>()
    );
    let changes = store.changes_after(before, 1000).await.unwrap();
    assert_eq!(changes.len(), created, "one change per created assignment");
    for &i in &creators {
        let ((who, new, _), Ok(written)) = (&requests[i], &results[i]) else {
            unreachable!("checked above")
        };
        let logged: Vec<_> = changes
            .iter()
            .filter(|c| c.entity_id == written.value.id.to_string())
            .collect();
        assert_eq!(logged.len(), 1, "{new:?} logged once");
        assert_eq!(logged[0].op, ChangeOp::Create);
        assert_eq!(logged[0].actor, who.id(), "logged under its own actor");
        assert_eq!(logged[0].revision, written.revision);
    }
    let listed = store
        .list_role_assignments(t, &RoleAssignmentFilter::default(), &all())
        .await
        .unwrap();
    assert_eq!(
        listed.items.len(),
        created + 1,
        "the created ones and `existing`"
    );
}

async fn parallel_writes_take_consecutive_revisions(store: &dyn Store) {
    let t = tenant();
    let before = store.current_revision().await.unwrap();
    let who = actor();
    let results = futures::future::join_all(
        (0..20).map(|i| store.groups().create(t, &who, named(&format!("g{i}")))),
    )
    .await;
    let mut revisions: Vec<i64> = results
        .into_iter()
        .map(|r| r.expect("create").revision.0)
        .collect();
    revisions.sort();
    assert_eq!(
        revisions,
        ((before.0 + 1)..=(before.0 + 20)).collect::<Vec<_>>()
    );
    let changes = store.changes_after(before, 1000).await.unwrap();
    assert_eq!(
        changes.iter().map(|c| c.revision.0).collect::<Vec<_>>(),
        revisions
    );
}

async fn assignments_need_an_existing_role_assignable_at_the_scope(store: &dyn Store) {
    let t = tenant();
    let before = store.current_revision().await.unwrap();
    let principal = Uuid::new_v4();
    assert_unprocessable(
        store
            .create_role_assignment(t, &actor(), new_assignment(principal, Uuid::new_v4(), "/"))
            .await
            .unwrap_err(),
        "/roleDefinitionId",
    );
    assert_eq!(store.current_revision().await.unwrap(), before);
    let mut narrow = new_role("Narrow", &["a.b/c"]);
    narrow.assignable_scopes = vec![scope("/applications/ab"), scope("/groups/g1")];
    let narrow = store
        .create_role_definition(t, &actor(), narrow)
        .await
        .unwrap()
        .value;
    for outside in ["/", "/applications", "/applications/abc", "/groups/g2"] {
        assert_unprocessable(
            store
                .create_role_assignment(t, &actor(), new_assignment(principal, narrow.id, outside))
                .await
                .unwrap_err(),
            "/directoryScopeId",
        );
    }
    for inside in [
        "/applications/ab",
        "/applications/ab/credentials/k1",
        "/groups/g1",
    ] {
        let ok = store
            .create_role_assignment(t, &actor(), new_assignment(principal, narrow.id, inside))
            .await
            .unwrap();
        assert!(ok.created, "{inside}");
    }
}

// ---------------------------------------------------------------------------------------
// If-Match, cascades
// ---------------------------------------------------------------------------------------

fn assert_precondition_failed(error: StoreError, current: Revision) {
    match error {
        StoreError::PreconditionFailed { current: reported } => {
            assert_eq!(reported, current.to_string())
        }
        other => panic!("expected precondition failed, got {other:?}"),
    }
}

async fn if_match_must_name_the_current_revision(store: &dyn Store) {
    let t = tenant();
    let stale = Revision(0);
    let role = store
        .create_role_definition(t, &actor(), new_role("Guarded", &["x.y/z"]))
        .await
        .unwrap();
    let patch = || RoleDefinitionPatch {
        description: Some("new".to_owned()),
        ..RoleDefinitionPatch::default()
    };
    assert_precondition_failed(
        store
            .update_role_definition(t, &actor(), role.value.id, patch(), Some(stale))
            .await
            .unwrap_err(),
        role.revision,
    );
    let updated = store
        .update_role_definition(t, &actor(), role.value.id, patch(), Some(role.revision))
        .await
        .unwrap();
    assert_precondition_failed(
        store
            .delete_role_definition(t, &actor(), role.value.id, false, Some(role.revision))
            .await
            .unwrap_err(),
        updated.revision,
    );
    store
        .delete_role_definition(t, &actor(), role.value.id, false, Some(updated.revision))
        .await
        .unwrap();

    let assignment = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(Uuid::new_v4(), builtin(GLOBAL_ADMINISTRATOR), "/"),
        )
        .await
        .unwrap();
    assert_precondition_failed(
        store
            .delete_role_assignment(t, &actor(), assignment.value.id, Some(stale))
            .await
            .unwrap_err(),
        assignment.revision,
    );
    store
        .delete_role_assignment(t, &actor(), assignment.value.id, Some(assignment.revision))
        .await
        .unwrap();

    let deny = store
        .create_deny_assignment(t, &actor(), new_deny(Uuid::new_v4(), &["x.y/z"]))
        .await
        .unwrap();
    let deny_patch = || DenyAssignmentPatch {
        description: Some("d".to_owned()),
        ..DenyAssignmentPatch::default()
    };
    assert_precondition_failed(
        store
            .update_deny_assignment(t, &actor(), deny.value.id, deny_patch(), Some(stale))
            .await
            .unwrap_err(),
        deny.revision,
    );
    let deny2 = store
        .update_deny_assignment(
            t,
            &actor(),
            deny.value.id,
            deny_patch(),
            Some(deny.revision),
        )
        .await
        .unwrap();
    assert_precondition_failed(
        store
            .delete_deny_assignment(t, &actor(), deny.value.id, Some(deny.revision))
            .await
            .unwrap_err(),
        deny2.revision,
    );
    store
        .delete_deny_assignment(t, &actor(), deny.value.id, Some(deny2.revision))
        .await
        .unwrap();

    let rename = || NamedObjectPatch {
        display_name: Some("renamed".to_owned()),
        description: None,
    };
    let group = store
        .groups()
        .create(t, &actor(), named("G"))
        .await
        .unwrap();
    assert_precondition_failed(
        store
            .groups()
            .update(t, &actor(), group.value.id, rename(), Some(stale))
            .await
            .unwrap_err(),
        group.revision,
    );
    // Adding a member does not change the group's own revision.
    store
        .groups()
        .add_member(t, &actor(), group.value.id, user(Uuid::new_v4()))
        .await
        .unwrap();
    assert_eq!(
        store
            .groups()
            .get(t, group.value.id)
            .await
            .unwrap()
            .revision,
        group.revision
    );
    let group2 = store
        .groups()
        .update(t, &actor(), group.value.id, rename(), Some(group.revision))
        .await
        .unwrap();
    assert_precondition_failed(
        store
            .groups()
            .delete(t, &actor(), group.value.id, Some(group.revision))
            .await
            .unwrap_err(),
        group2.revision,
    );
    store
        .groups()
        .delete(t, &actor(), group.value.id, Some(group2.revision))
        .await
        .unwrap();

    let unit = store.units().create(t, &actor(), named("U")).await.unwrap();
    assert_precondition_failed(
        store
            .units()
            .update(t, &actor(), unit.value.id, rename(), Some(stale))
            .await
            .unwrap_err(),
        unit.revision,
    );
    assert_precondition_failed(
        store
            .units()
            .delete(t, &actor(), unit.value.id, Some(stale))
            .await
            .unwrap_err(),
        unit.revision,
    );
    let unit2 = store
        .units()
        .update(t, &actor(), unit.value.id, rename(), Some(unit.revision))
        .await
        .unwrap();
    store
        .units()
        .delete(t, &actor(), unit.value.id, Some(unit2.revision))
        .await
        .unwrap();
}

async fn deleting_a_role_with_assignments_needs_cascade(store: &dyn Store) {
    let t = tenant();
    let role = store
        .create_role_definition(t, &actor(), new_role("Doomed", &["contoso.x/y"]))
        .await
        .unwrap()
        .value;
    let mut assignments = Vec::new();
    for _ in 0..3 {
        assignments.push(
            store
                .create_role_assignment(t, &actor(), new_assignment(Uuid::new_v4(), role.id, "/"))
                .await
                .unwrap()
                .value,
        );
    }
    let unrelated = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(Uuid::new_v4(), builtin(GLOBAL_ADMINISTRATOR), "/"),
        )
        .await
        .unwrap()
        .value;
    let before = store.current_revision().await.unwrap();
    let message = assert_conflict(
        store
            .delete_role_definition(t, &actor(), role.id, false, None)
            .await
            .unwrap_err(),
    );
    assert!(
        message.contains("3 assignments") && message.contains("cascade=true"),
        "{message}"
    );
    assert_eq!(store.current_revision().await.unwrap(), before);
    assert!(store.get_role_definition(t, role.id).await.is_ok());

    let deleted = store
        .delete_role_definition(t, &actor(), role.id, true, None)
        .await
        .unwrap();
    assert_eq!(deleted.revision, Revision(before.0 + 1));
    assert_not_found(store.get_role_definition(t, role.id).await.unwrap_err());
    for a in &assignments {
        assert_not_found(store.get_role_assignment(t, a.id).await.unwrap_err());
    }
    assert!(store.get_role_assignment(t, unrelated.id).await.is_ok());

    // One revision: the assignments first, then the role.
    let changes = store.changes_after(before, 100).await.unwrap();
    assert_eq!(changes.len(), 4);
    assert!(changes
        .iter()
        .all(|c| c.revision == deleted.revision && c.op == ChangeOp::Delete && c.after.is_none()));
    assert_eq!(
        changes.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let mut logged: Vec<String> = changes[..3].iter().map(|c| c.entity_id.clone()).collect();
    logged.sort();
    let mut expected: Vec<String> = assignments.iter().map(|a| a.id.to_string()).collect();
    expected.sort();
    assert_eq!(logged, expected);
    assert!(changes[..3]
        .iter()
        .all(|c| c.entity_type == EntityType::RoleAssignment));
    assert_eq!(changes[3].entity_type, EntityType::RoleDefinition);
    assert_eq!(
        changes[3].before,
        Some(serde_json::to_value(&role).unwrap())
    );

    // Without assignments, no cascade is needed.
    let lonely = store
        .create_role_definition(t, &actor(), new_role("Lonely", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    store
        .delete_role_definition(t, &actor(), lonely.id, false, None)
        .await
        .unwrap();
}

async fn deleting_a_group_removes_its_edges_and_assignments(store: &dyn Store) {
    let t = tenant();
    let parent = store
        .groups()
        .create(t, &actor(), named("Parent"))
        .await
        .unwrap()
        .value;
    let doomed = store
        .groups()
        .create(t, &actor(), named("Doomed"))
        .await
        .unwrap()
        .value;
    let child = store
        .groups()
        .create(t, &actor(), named("Child"))
        .await
        .unwrap()
        .value;
    let u = Uuid::new_v4();
    store
        .groups()
        .add_member(t, &actor(), parent.id, group_member(doomed.id))
        .await
        .unwrap();
    store
        .groups()
        .add_member(t, &actor(), doomed.id, group_member(child.id))
        .await
        .unwrap();
    store
        .groups()
        .add_member(t, &actor(), doomed.id, user(u))
        .await
        .unwrap();
    store
        .groups()
        .add_member(t, &actor(), doomed.id, group_member(doomed.id))
        .await
        .unwrap();
    store
        .groups()
        .add_member(t, &actor(), child.id, group_member(parent.id))
        .await
        .unwrap();
    let mut to_group = new_assignment(doomed.id, builtin(GLOBAL_ADMINISTRATOR), "/");
    to_group.principal_type = PrincipalType::Group;
    let assignment = store
        .create_role_assignment(t, &actor(), to_group)
        .await
        .unwrap()
        .value;
    let deny = store
        .create_deny_assignment(t, &actor(), new_deny(doomed.id, &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let kept = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(u, builtin(GLOBAL_ADMINISTRATOR), "/"),
        )
        .await
        .unwrap()
        .value;

    let before = store.current_revision().await.unwrap();
    let deleted = store
        .groups()
        .delete(t, &actor(), doomed.id, None)
        .await
        .unwrap();
    assert_eq!(deleted.value, doomed);
    assert!(store
        .groups()
        .list_members(t, parent.id, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        store
            .groups()
            .list_members(t, child.id, &all())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_not_found(
        store
            .get_role_assignment(t, assignment.id)
            .await
            .unwrap_err(),
    );
    assert_not_found(store.get_deny_assignment(t, deny.id).await.unwrap_err());
    assert!(store.get_role_assignment(t, kept.id).await.is_ok());

    let changes = store.changes_after(before, 100).await.unwrap();
    assert!(changes
        .iter()
        .all(|c| c.revision == deleted.revision && c.op == ChangeOp::Delete));
    let logged: Vec<(EntityType, String)> = changes
        .iter()
        .map(|c| (c.entity_type, c.entity_id.clone()))
        .collect();
    let edges: BTreeSet<String> = logged
        .iter()
        .filter(|(kind, _)| *kind == EntityType::GroupMember)
        .map(|(_, id)| id.clone())
        .collect();
    let expected: BTreeSet<String> = [
        format!("{}/{}", parent.id, doomed.id),
        format!("{}/{}", doomed.id, child.id),
        format!("{}/{}", doomed.id, u),
        format!("{}/{}", doomed.id, doomed.id),
    ]
    .into_iter()
    .collect();
    assert_eq!(edges, expected);
    assert_eq!(
        logged[4..],
        [
            (EntityType::RoleAssignment, assignment.id.to_string()),
            (EntityType::DenyAssignment, deny.id.to_string()),
            (EntityType::Group, doomed.id.to_string())
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Revisions and the change log
// ---------------------------------------------------------------------------------------

async fn every_write_takes_the_next_revision_and_logs_its_change(store: &dyn Store) {
    let t = tenant();
    let someone = Actor::new("someone@example.com");
    let start = store.current_revision().await.unwrap();
    let created = store
        .groups()
        .create(t, &someone, named("Audited"))
        .await
        .unwrap();
    let patch = NamedObjectPatch {
        display_name: Some("Audited 2".to_owned()),
        description: None,
    };
    let updated = store
        .groups()
        .update(t, &someone, created.value.id, patch, None)
        .await
        .unwrap();
    let member = Uuid::new_v4();
    let added = store
        .groups()
        .add_member(t, &actor(), created.value.id, user(member))
        .await
        .unwrap();
    let removed = store
        .groups()
        .remove_member(t, &actor(), created.value.id, &member)
        .await
        .unwrap();
    let deleted = store
        .groups()
        .delete(t, &someone, created.value.id, None)
        .await
        .unwrap();
    let revisions: Vec<i64> = [
        created.revision,
        updated.revision,
        added.revision,
        removed.revision,
        deleted.revision,
    ]
    .iter()
    .map(|r| r.0)
    .collect();
    assert_eq!(
        revisions,
        ((start.0 + 1)..=(start.0 + 5)).collect::<Vec<_>>()
    );
    assert_eq!(store.current_revision().await.unwrap(), deleted.revision);

    let changes = store.list_changes(t, start, &all()).await.unwrap().items;
    assert_eq!(changes.len(), 5);
    let json = |v: &dyn erased::Json| v.to_json();
    let id = created.value.id.to_string();
    let edge = format!("{id}/{member}");
    let expected = [
        (
            EntityType::Group,
            id.as_str(),
            ChangeOp::Create,
            None,
            Some(json(&created.value)),
            "someone@example.com",
        ),
        (
            EntityType::Group,
            id.as_str(),
            ChangeOp::Update,
            Some(json(&created.value)),
            Some(json(&updated.value)),
            "someone@example.com",
        ),
        (
            EntityType::GroupMember,
            edge.as_str(),
            ChangeOp::Create,
            None,
            Some(json(&added.value)),
            "tester",
        ),
        (
            EntityType::GroupMember,
            edge.as_str(),
            ChangeOp::Delete,
            Some(json(&added.value)),
            None,
            "tester",
        ),
        (
            EntityType::Group,
            id.as_str(),
            ChangeOp::Delete,
            Some(json(&updated.value)),
            None,
            "someone@example.com",
        ),
    ];
    for (change, (revision, expected)) in changes.iter().zip(revisions.iter().zip(expected)) {
        assert_eq!(change.revision, Revision(*revision));
        assert_eq!(change.sequence, 0);
        assert_eq!(change.tenant_id, t);
        assert_eq!(
            (
                change.entity_type,
                change.entity_id.as_str(),
                change.op,
                change.before.clone(),
                change.after.clone(),
                change.actor.as_str()
            ),
            expected
        );
    }
    assert!(changes.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(changes[0].at, created.value.created_date_time);
    assert!(store
        .list_changes(t, deleted.revision, &all())
        .await
        .unwrap()
        .items
        .is_empty());
}

/// `serde_json::to_value` behind a trait object, so the table above can mix entity types.
mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

async fn a_failed_write_consumes_no_revision_and_changes_nothing(store: &dyn Store) {
    let t = tenant();
    let role = store
        .create_role_definition(t, &actor(), new_role("Taken", &["x.y/z"]))
        .await
        .unwrap();
    store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(Uuid::new_v4(), role.value.id, "/"),
        )
        .await
        .unwrap();
    let group = store
        .groups()
        .create(t, &actor(), named("G"))
        .await
        .unwrap();
    let before = store.current_revision().await.unwrap();
    let dump_before = format!("{:?}", store.dump().await.unwrap());

    let failures = [
        store
            .create_role_definition(t, &actor(), new_role("taken", &["x.y/z"]))
            .await
            .map(|_| ()),
        store
            .delete_role_definition(t, &actor(), role.value.id, false, None)
            .await
            .map(|_| ()),
        store
            .groups()
            .delete(t, &actor(), Uuid::new_v4(), None)
            .await
            .map(|_| ()),
        store
            .groups()
            .delete(t, &actor(), group.value.id, Some(Revision(0)))
            .await
            .map(|_| ()),
        store
            .groups()
            .add_member(t, &actor(), group.value.id, group_member(Uuid::new_v4()))
            .await
            .map(|_| ()),
        store
            .create_role_assignment(
                t,
                &actor(),
                new_assignment(Uuid::new_v4(), Uuid::new_v4(), "/"),
            )
            .await
            .map(|_| ()),
        // A write in a tenant never seen before fails too, and must not create the tenant.
        store
            .groups()
            .delete(tenant(), &actor(), Uuid::new_v4(), None)
            .await
            .map(|_| ()),
    ];
    assert!(failures.iter().all(Result::is_err), "{failures:?}");
    assert_eq!(store.current_revision().await.unwrap(), before);
    assert_eq!(format!("{:?}", store.dump().await.unwrap()), dump_before);
    assert!(store.changes_after(before, 100).await.unwrap().is_empty());

    let next = store
        .groups()
        .create(t, &actor(), named("H"))
        .await
        .unwrap();
    assert_eq!(next.revision, Revision(before.0 + 1));
    let changes = store.changes_after(Revision(0), 1000).await.unwrap();
    let revisions: Vec<i64> = changes.iter().map(|c| c.revision.0).collect();
    assert_eq!(
        revisions,
        (1..=next.revision.0).collect::<Vec<_>>(),
        "no gaps in the log"
    );
}

async fn changes_after_returns_whole_revisions_in_order(store: &dyn Store) {
    let (a, b) = (tenant(), tenant());
    let start = store.current_revision().await.unwrap();
    // Revisions of 1, 1, 1 and 4 rows (the group delete takes its three edges with it),
    // interleaved across two tenants.
    let g = store
        .groups()
        .create(a, &actor(), named("G"))
        .await
        .unwrap()
        .value;
    store
        .groups()
        .create(b, &actor(), named("other"))
        .await
        .unwrap();
    let mut members = Vec::new();
    for _ in 0..3 {
        let m = Uuid::new_v4();
        store
            .groups()
            .add_member(a, &actor(), g.id, user(m))
            .await
            .unwrap();
        members.push(m);
    }
    let big = store
        .groups()
        .delete(a, &actor(), g.id, None)
        .await
        .unwrap()
        .revision;
    store
        .groups()
        .create(b, &actor(), named("last"))
        .await
        .unwrap();
    let every = store.changes_after(start, 1000).await.unwrap();
    assert_eq!(every.len(), 10);
    let keys: Vec<(i64, i64)> = every.iter().map(|c| (c.revision.0, c.sequence)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(every.iter().filter(|c| c.revision == big).count(), 4);
    assert!(every.iter().any(|c| c.tenant_id == b));

    for limit in 1..=11 {
        // Walk the feed in steps of `limit`: never a partial revision, nothing skipped.
        let mut after = start;
        let mut seen = Vec::new();
        loop {
            let batch = store.changes_after(after, limit).await.unwrap();
            if batch.is_empty() {
                break;
            }
            let first = batch[0].revision;
            assert!(
                batch.len() <= limit as usize || batch.iter().all(|c| c.revision == first),
                "limit {limit}: {} rows over several revisions",
                batch.len()
            );
            let last = batch[batch.len() - 1].revision;
            for revision in batch.iter().map(|c| c.revision).collect::<BTreeSet<_>>() {
                let whole = every.iter().filter(|c| c.revision == revision).count();
                assert_eq!(
                    batch.iter().filter(|c| c.revision == revision).count(),
                    whole,
                    "limit {limit}"
                );
            }
            seen.extend(batch);
            after = last;
        }
        assert_eq!(seen, every, "limit {limit}");
    }
    // A limit inside the first revision still returns that whole revision.
    let before_big = Revision(big.0 - 1);
    let batch = store.changes_after(before_big, 2).await.unwrap();
    assert_eq!(batch.len(), 4);
    assert!(batch.iter().all(|c| c.revision == big));
    assert!(store
        .changes_after(store.current_revision().await.unwrap(), 10)
        .await
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------------
// Pagination and filters
// ---------------------------------------------------------------------------------------

async fn pages_walk_every_item_once_in_a_stable_order(store: &dyn Store) {
    let t = tenant();
    let (p, q) = (Uuid::new_v4(), Uuid::new_v4());
    let role = store
        .create_role_definition(t, &actor(), new_role("Paged", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let mut mine = Vec::new();
    for i in 0..7 {
        let at = format!("/applications/a{i}");
        mine.push(
            store
                .create_role_assignment(t, &actor(), new_assignment(p, role.id, &at))
                .await
                .unwrap()
                .value
                .id,
        );
        store
            .create_role_assignment(
                t,
                &actor(),
                new_assignment(q, builtin(GLOBAL_ADMINISTRATOR), &at),
            )
            .await
            .unwrap();
    }
    mine.sort_by_key(|id| id.to_string());

    let by_p = RoleAssignmentFilter {
        principal_id: Some(p),
        ..RoleAssignmentFilter::default()
    };
    let (items, pages) = walk!(3, |page| store.list_role_assignments(t, &by_p, &page));
    assert_eq!(pages, 3);
    assert_eq!(items.iter().map(|a| a.value.id).collect::<Vec<_>>(), mine);
    let (items, pages) = walk!(7, |page| store.list_role_assignments(t, &by_p, &page));
    assert_eq!((items.len(), pages), (7, 1));

    let (every, _) = walk!(4, |page| store.list_role_assignments(
        t,
        &RoleAssignmentFilter::default(),
        &page
    ));
    assert_eq!(every.len(), 14);
    let ids: Vec<String> = every.iter().map(|a| a.value.id.to_string()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);

    let by_role = RoleAssignmentFilter {
        role_definition_id: Some(builtin(GLOBAL_ADMINISTRATOR)),
        ..RoleAssignmentFilter::default()
    };
    let (items, _) = walk!(2, |page| store.list_role_assignments(t, &by_role, &page));
    assert!(items.len() == 7 && items.iter().all(|a| a.value.principal_id == q));
    let by_scope = RoleAssignmentFilter {
        directory_scope_id: Some(scope("/applications/a3")),
        ..RoleAssignmentFilter::default()
    };
    let (items, _) = walk!(1, |page| store.list_role_assignments(t, &by_scope, &page));
    assert_eq!(items.len(), 2);
    let exact = RoleAssignmentFilter {
        principal_id: Some(p),
        role_definition_id: Some(role.id),
        directory_scope_id: Some(scope("/applications/a3")),
    };
    let (items, _) = walk!(5, |page| store.list_role_assignments(t, &exact, &page));
    assert_eq!(items.len(), 1);
    let prefix_is_not_exact = RoleAssignmentFilter {
        directory_scope_id: Some(scope("/applications")),
        ..RoleAssignmentFilter::default()
    };
    assert!(store
        .list_role_assignments(t, &prefix_is_not_exact, &all())
        .await
        .unwrap()
        .items
        .is_empty());

    // Groups, members, units, unit members and deny assignments page the same way.
    let mut groups = Vec::new();
    for i in 0..5 {
        groups.push(
            store
                .groups()
                .create(t, &actor(), named(&format!("g{i}")))
                .await
                .unwrap()
                .value
                .id
                .to_string(),
        );
    }
    groups.sort();
    let (items, pages) = walk!(2, |page| store.groups().list(t, &page));
    assert_eq!(pages, 3);
    assert_eq!(
        items
            .iter()
            .map(|g| g.value.id.to_string())
            .collect::<Vec<_>>(),
        groups
    );
    let parent = Uuid::parse_str(&groups[0]).unwrap();
    let mut member_ids = Vec::new();
    for _ in 0..5 {
        let m = Uuid::new_v4();
        store
            .groups()
            .add_member(t, &actor(), parent, user(m))
            .await
            .unwrap();
        member_ids.push(m.to_string());
    }
    member_ids.sort();
    let (items, _) = walk!(2, |page| store.groups().list_members(t, parent, &page));
    assert_eq!(
        items
            .iter()
            .map(|m| m.value.id.to_string())
            .collect::<Vec<_>>(),
        member_ids
    );
    let unit = store
        .units()
        .create(t, &actor(), named("U"))
        .await
        .unwrap()
        .value;
    for path in ["/b", "/a/b", "/a", "/B", "/a-b"] {
        store
            .units()
            .add_member(t, &actor(), unit.id, scope(path))
            .await
            .unwrap();
    }
    let (items, _) = walk!(2, |page| store.units().list_members(t, unit.id, &page));
    let paths: Vec<&str> = items.iter().map(|m| m.value.resource.as_str()).collect();
    assert_eq!(paths, ["/B", "/a", "/a-b", "/a/b", "/b"], "bytewise order");
    for _ in 0..3 {
        store
            .create_deny_assignment(t, &actor(), new_deny(p, &["x.y/z"]))
            .await
            .unwrap();
    }
    let (items, pages) = walk!(1, |page| store.list_deny_assignments(t, Some(p), &page));
    assert_eq!((items.len(), pages), (3, 3));
    let (items, _) = walk!(2, |page| store.list_changes(t, Revision(0), &page));
    let keys: Vec<(i64, i64)> = items.iter().map(|c| (c.revision.0, c.sequence)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted);
    assert_eq!(items.len(), 1 + 14 + 5 + 5 + 1 + 5 + 3);
    let since = items[10].revision;
    let (later, _) = walk!(3, |page| store.list_changes(t, since, &page));
    assert_eq!(later[..], items[11..]);

    // A cursor the store did not hand out is refused.
    for bad in ["!!not-a-cursor", "bm90LWEtdXVpZA", ""] {
        let page = PageRequest {
            limit: 2,
            cursor: Some(bad.to_owned()),
        };
        let invalid = |e: StoreError| assert!(matches!(e, StoreError::InvalidCursor), "{e:?}");
        invalid(store.groups().list(t, &page).await.unwrap_err());
        invalid(
            store
                .list_role_definitions(t, &RoleDefinitionFilter::default(), &page)
                .await
                .unwrap_err(),
        );
        invalid(store.list_changes(t, Revision(0), &page).await.unwrap_err());
    }
}

async fn role_definitions_page_and_filter_across_built_ins_and_custom_roles(store: &dyn Store) {
    let t = tenant();
    for name in [
        "100% sure",
        "a_b",
        "axb",
        "Cloud admin helper",
        "back\\slash",
    ] {
        store
            .create_role_definition(t, &actor(), new_role(name, &["x.y/z"]))
            .await
            .unwrap();
    }
    let mut disabled = new_role("Switched off", &["x.y/z"]);
    disabled.is_enabled = false;
    store
        .create_role_definition(t, &actor(), disabled)
        .await
        .unwrap();

    let (every, _) = walk!(1000, |page| store.list_role_definitions(
        t,
        &RoleDefinitionFilter::default(),
        &page
    ));
    let total = store.catalog().roles().len() + 6;
    assert_eq!(every.len(), total);
    for limit in [1, 3, 7] {
        let (items, pages) = walk!(limit, |page| store.list_role_definitions(
            t,
            &RoleDefinitionFilter::default(),
            &page
        ));
        assert_eq!(items, every, "limit {limit}");
        assert_eq!(pages, total.div_ceil(limit as usize), "limit {limit}");
    }

    let names = |filter: RoleDefinitionFilter| async move {
        let (items, _) = walk!(2, |page| store.list_role_definitions(t, &filter, &page));
        items
            .into_iter()
            .map(|r| r.value.display_name)
            .collect::<BTreeSet<_>>()
    };
    let by_name = |needle: &str| RoleDefinitionFilter {
        display_name: Some(needle.to_owned()),
        ..RoleDefinitionFilter::default()
    };
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(names(by_name("_")).await, set(&["a_b"]));
    assert_eq!(names(by_name("%")).await, set(&["100% sure"]));
    assert_eq!(names(by_name("\\")).await, set(&["back\\slash"]));
    assert_eq!(names(by_name("A_B")).await, set(&["a_b"]));
    assert_eq!(
        names(by_name("application administrator")).await,
        set(&[
            "Application Administrator",
            "Cloud Application Administrator"
        ])
    );
    let cloud = names(by_name("CLOUD")).await;
    assert!(
        cloud.contains("Cloud admin helper") && cloud.contains("Cloud Application Administrator"),
        "{cloud:?}"
    );
    let off = RoleDefinitionFilter {
        is_enabled: Some(false),
        ..RoleDefinitionFilter::default()
    };
    assert_eq!(names(off).await, set(&["Switched off"]));
    let on_custom = RoleDefinitionFilter {
        is_enabled: Some(true),
        is_built_in: Some(false),
        display_name: None,
    };
    assert_eq!(names(on_custom).await.len(), 5);
    let builtin_named = RoleDefinitionFilter {
        display_name: Some("cloud".to_owned()),
        is_built_in: Some(true),
        is_enabled: Some(true),
    };
    assert_eq!(
        names(builtin_named).await,
        set(&["Cloud Application Administrator"])
    );
}

// ---------------------------------------------------------------------------------------
// Dump
// ---------------------------------------------------------------------------------------

async fn the_dump_holds_exactly_what_was_written(store: &dyn Store) {
    let empty = store.dump().await.unwrap();
    assert_eq!(empty.revision, Revision(0));
    assert!(empty.tenants.is_empty());

    let (a, b) = (tenant(), tenant());
    let role = store
        .create_role_definition(a, &actor(), new_role("Dumped", &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let assignment = store
        .create_role_assignment(a, &actor(), new_assignment(Uuid::new_v4(), role.id, "/"))
        .await
        .unwrap()
        .value;
    let builtin_assignment = store
        .create_role_assignment(
            b,
            &actor(),
            new_assignment(Uuid::new_v4(), builtin(GLOBAL_ADMINISTRATOR), "/x"),
        )
        .await
        .unwrap()
        .value;
    let deny = store
        .create_deny_assignment(a, &actor(), new_deny(Uuid::new_v4(), &["x.y/z"]))
        .await
        .unwrap()
        .value;
    let g1 = store
        .groups()
        .create(a, &actor(), named("g1"))
        .await
        .unwrap()
        .value;
    let g2 = store
        .groups()
        .create(a, &actor(), named("g2"))
        .await
        .unwrap()
        .value;
    let e1 = store
        .groups()
        .add_member(a, &actor(), g1.id, group_member(g2.id))
        .await
        .unwrap()
        .value;
    let e2 = store
        .groups()
        .add_member(a, &actor(), g2.id, user(Uuid::new_v4()))
        .await
        .unwrap()
        .value;
    let unit = store
        .units()
        .create(a, &actor(), named("u"))
        .await
        .unwrap()
        .value;
    let m = store
        .units()
        .add_member(a, &actor(), unit.id, scope("/applications/x"))
        .await
        .unwrap()
        .value;
    let renamed = store
        .groups()
        .update(
            a,
            &actor(),
            g1.id,
            NamedObjectPatch {
                display_name: Some("g1'".to_owned()),
                description: None,
            },
            None,
        )
        .await
        .unwrap()
        .value;
    let gone = store
        .groups()
        .create(a, &actor(), named("gone"))
        .await
        .unwrap()
        .value;
    store
        .groups()
        .delete(a, &actor(), gone.id, None)
        .await
        .unwrap();

    let dump = store.dump().await.unwrap();
    assert_eq!(dump.revision, store.current_revision().await.unwrap());
    let mut tenants: Vec<TenantId> = vec![a, b];
    tenants.sort_by_key(|t| t.to_string());
    assert_eq!(
        dump.tenants.iter().map(|t| t.tenant).collect::<Vec<_>>(),
        tenants
    );
    let da = dump.tenants.iter().find(|t| t.tenant == a).unwrap();
    let db = dump.tenants.iter().find(|t| t.tenant == b).unwrap();
    let by_id = |mut groups: Vec<rolecall::model::Group>| {
        groups.sort_by_key(|g| g.id.to_string());
        groups
    };
    assert_eq!(da.role_definitions, vec![role]);
    assert_eq!(da.role_assignments, vec![assignment]);
    assert_eq!(da.deny_assignments, vec![deny]);
    assert_eq!(da.groups, by_id(vec![renamed, g2]));
    let mut edges = vec![e1, e2];
    edges.sort_by_key(|e| (e.group_id.to_string(), e.id.to_string()));
    assert_eq!(da.group_members, edges);
    assert_eq!(da.administrative_units, vec![unit]);
    assert_eq!(da.administrative_unit_members, vec![m]);
    assert_eq!(db.role_assignments, vec![builtin_assignment]);
    assert!(db.role_definitions.is_empty() && db.groups.is_empty() && db.group_members.is_empty());
}

// ---------------------------------------------------------------------------------------
// The change log, replayed, rebuilds the dump
// ---------------------------------------------------------------------------------------

/// What the random writer has written in one tenant. Ids stay listed after a delete (or a
/// cascade) removed them, so later writes to them also exercise refusals.
#[derive(Default)]
struct Known {
    roles: Vec<Uuid>,
    assignments: Vec<Uuid>,
    denies: Vec<Uuid>,
    groups: Vec<Uuid>,
    units: Vec<Uuid>,
    unit_members: Vec<(Uuid, Scope)>,
    edges: Vec<(Uuid, Uuid)>,
    principals: Vec<Uuid>,
    resources: Vec<(String, String)>,
}

fn pick<T: Clone>(rng: &mut StdRng, list: &[T]) -> Option<T> {
    (!list.is_empty()).then(|| list[rng.gen_range(0..list.len())].clone())
}

fn random_patterns(rng: &mut StdRng) -> Vec<ActionPattern> {
    const POOL: [&str; 6] = [
        "contoso.apps/read",
        "contoso.apps/update",
        "contoso.apps/*",
        "contoso.devices/allProperties/read",
        "contoso.devices/delete",
        "*",
    ];
    let mut chosen: Vec<&str> = (0..rng.gen_range(1..=3))
        .map(|_| POOL[rng.gen_range(0..POOL.len())])
        .collect();
    chosen.sort_unstable();
    chosen.dedup();
    patterns(&chosen)
}

/// A scope for an assignment or a deny: a path, or a unit's scope (its id in either case).
fn random_scope(rng: &mut StdRng, written: &Known) -> Scope {
    const PATHS: [&str; 5] = [
        "/",
        "/applications",
        "/applications/a1",
        "/applications/a1/credentials/c1",
        "/devices/d1",
    ];
    match pick(rng, &written.units) {
        Some(unit) if rng.gen_bool(0.3) => {
            let id = if rng.gen_bool(0.5) {
                unit.to_string()
            } else {
                unit.to_string().to_uppercase()
            };
            scope(&format!("/administrativeUnits/{id}"))
        }
        _ => scope(PATHS[rng.gen_range(0..PATHS.len())]),
    }
}

/// Up to three aliases from a small pool (so principals contend for them), distinct
/// ignoring case, as validation leaves them.
fn random_aliases(rng: &mut StdRng) -> Vec<String> {
    const POOL: [&str; 6] = [
        "alice",
        "ALICE",
        "Bob@Contoso.com",
        "bob@contoso.com",
        "svc",
        "Ça",
    ];
    let mut chosen: Vec<String> = Vec::new();
    for _ in 0..rng.gen_range(0..=3) {
        let alias = POOL[rng.gen_range(0..POOL.len())];
        if !chosen
            .iter()
            .any(|c| c.to_lowercase() == alias.to_lowercase())
        {
            chosen.push(alias.to_owned());
        }
    }
    chosen
}

fn random_attributes(rng: &mut StdRng, n: usize) -> serde_json::Map<String, serde_json::Value> {
    let mut attributes = serde_json::Map::new();
    if rng.gen_bool(0.5) {
        attributes.insert("n".to_owned(), serde_json::json!(n));
    }
    if rng.gen_bool(0.5) {
        attributes.insert("tags".to_owned(), serde_json::json!(["a", format!("t{n}")]));
    }
    attributes
}

/// A resource from a small pool of types and ids (so writes meet earlier ones), at its
/// default path or a random scope.
fn random_resource(rng: &mut StdRng, written: &Known, n: usize) -> NewResource {
    const TYPES: [&str; 2] = ["record", "todo"];
    const IDS: [&str; 5] = ["r1", "r2", "a/b", "Ça va", "..."];
    let resource_type = TYPES[rng.gen_range(0..TYPES.len())].to_owned();
    let id = IDS[rng.gen_range(0..IDS.len())].to_owned();
    let path = if rng.gen_bool(0.5) {
        random_scope(rng, written)
    } else {
        scope(&format!("/{resource_type}/{}", encode_segment(&id)))
    };
    NewResource {
        resource_type,
        id,
        path,
        display_name: rng.gen_bool(0.5).then(|| format!("Resource {n}")),
        attributes: random_attributes(rng, n),
    }
}

/// A principal: one of a few users, a service principal, or a group of this tenant.
fn random_principal(rng: &mut StdRng, written: &Known) -> (Uuid, PrincipalType) {
    match pick(rng, &written.groups) {
        Some(group) if rng.gen_bool(0.4) => (group, PrincipalType::Group),
        _ if rng.gen_bool(0.1) => (Uuid::from_u128(0x5e), PrincipalType::ServicePrincipal),
        _ => (Uuid::from_u128(rng.gen_range(1..=4)), PrincipalType::User),
    }
}

/// One random write of any kind to tenant `t` through the store. Refusals (a deleted
/// object, a role still assigned, a duplicate name) are part of the game; only a store
/// failure stops the test.
async fn random_write(store: &dyn Store, rng: &mut StdRng, t: TenantId, w: &mut Known, n: usize) {
    let a = &actor();
    let result: Result<(), StoreError> = match rng.gen_range(0..27) {
        0 | 1 => {
            let mut new = new_role(&format!("Role {n}"), &[]);
            new.role_permissions[0].allowed_resource_actions = random_patterns(rng);
            if rng.gen_bool(0.3) {
                new.role_permissions[0].excluded_resource_actions =
                    patterns(&["contoso.apps/update"]);
            }
            new.is_enabled = rng.gen_bool(0.8);
            store
                .create_role_definition(t, a, new)
                .await
                .map(|r| w.roles.push(r.value.id))
        }
        2 => match pick(rng, &w.roles) {
            Some(id) => {
                let patch = RoleDefinitionPatch {
                    is_enabled: Some(rng.gen_bool(0.7)),
                    role_permissions: rng.gen_bool(0.5).then(|| {
                        vec![RolePermission {
                            allowed_resource_actions: random_patterns(rng),
                            excluded_resource_actions: Vec::new(),
                            condition: None,
                        }]
                    }),
                    ..RoleDefinitionPatch::default()
                };
                store
                    .update_role_definition(t, a, id, patch, None)
                    .await
                    .map(drop)
            }
            None => Ok(()),
        },
        3 => match pick(rng, &w.roles) {
            Some(id) => {
                let cascade = rng.gen_bool(0.5);
                store
                    .delete_role_definition(t, a, id, cascade, None)
                    .await
                    .map(drop)
            }
            None => Ok(()),
        },
        4 => {
            let source = pick(rng, &w.roles).unwrap_or(builtin(APPLICATION_ADMINISTRATOR));
            let clone = CloneRole {
                display_name: format!("Clone {n}"),
                description: None,
            };
            store
                .clone_role_definition(t, a, source, clone)
                .await
                .map(|r| w.roles.push(r.value.id))
        }
        5..=8 => {
            let role = match pick(rng, &w.roles) {
                Some(id) if rng.gen_bool(0.8) => id,
                _ => builtin(GLOBAL_ADMINISTRATOR),
            };
            let (principal, kind) = random_principal(rng, w);
            let mut new = new_assignment(principal, role, random_scope(rng, w).as_str());
            new.principal_type = kind;
            let day = chrono::Duration::days(1);
            let now = chrono::Utc::now();
            match rng.gen_range(0..6) {
                0 => (new.start_date_time, new.end_date_time) = (Some(now - day), Some(now + day)),
                1 => new.start_date_time = Some(now + day),
                2 => new.end_date_time = Some(now - day),
                3 => new = with_condition(new, CONDITION),
                _ => {}
            }
            store
                .create_role_assignment(t, a, new)
                .await
                .map(|r| w.assignments.push(r.value.id))
        }
        9 => match pick(rng, &w.assignments) {
            Some(id) => store.delete_role_assignment(t, a, id, None).await.map(drop),
            None => Ok(()),
        },
        10 => {
            let (principal, kind) = random_principal(rng, w);
            let mut new = new_deny(principal, &[]);
            new.principal_type = kind;
            new.actions = random_patterns(rng);
            new.directory_scope_id = random_scope(rng, w);
            store
                .create_deny_assignment(t, a, new)
                .await
                .map(|r| w.denies.push(r.value.id))
        }
        11 => match pick(rng, &w.denies) {
            Some(id) if rng.gen_bool(0.5) => {
                let patch = DenyAssignmentPatch {
                    actions: Some(random_patterns(rng)),
                    excluded_actions: Some(patterns(&["contoso.apps/read"])),
                    ..DenyAssignmentPatch::default()
                };
                store
                    .update_deny_assignment(t, a, id, patch, None)
                    .await
                    .map(drop)
            }
            Some(id) => store.delete_deny_assignment(t, a, id, None).await.map(drop),
            None => Ok(()),
        },
        12 => store
            .groups()
            .create(t, a, named(&format!("Group {n}")))
            .await
            .map(|g| w.groups.push(g.value.id)),
        13 => match pick(rng, &w.groups) {
            Some(id) if rng.gen_bool(0.3) => {
                let patch = NamedObjectPatch {
                    display_name: Some(format!("Renamed {n}")),
                    description: None,
                };
                store.groups().update(t, a, id, patch, None).await.map(drop)
            }
            Some(id) => store.groups().delete(t, a, id, None).await.map(drop),
            None => Ok(()),
        },
        14 | 15 => match pick(rng, &w.groups) {
            Some(group) => {
                let (member, kind) = random_principal(rng, w);
                let new = NewGroupMember {
                    id: member,
                    member_type: kind,
                };
                store
                    .groups()
                    .add_member(t, a, group, new)
                    .await
                    .map(|_| w.edges.push((group, member)))
            }
            None => Ok(()),
        },
        16 => match pick(rng, &w.edges) {
            Some((group, member)) => store
                .groups()
                .remove_member(t, a, group, &member)
                .await
                .map(drop),
            None => Ok(()),
        },
        17 => match pick(rng, &w.units) {
            Some(id) if rng.gen_bool(0.3) => store.units().delete(t, a, id, None).await.map(drop),
            Some(id) if rng.gen_bool(0.2) => {
                let patch = NamedObjectPatch {
                    display_name: None,
                    description: Some(format!("Described {n}")),
                };
                store.units().update(t, a, id, patch, None).await.map(drop)
            }
            _ => store
                .units()
                .create(t, a, named(&format!("Unit {n}")))
                .await
                .map(|u| w.units.push(u.value.id)),
        },
        18 => match pick(rng, &w.units) {
            Some(unit) => {
                const RESOURCES: [&str; 3] =
                    ["/applications/a1", "/applications/a2", "/devices/d1"];
                let resource = scope(RESOURCES[rng.gen_range(0..RESOURCES.len())]);
                store
                    .units()
                    .add_member(t, a, unit, resource.clone())
                    .await
                    .map(|_| w.unit_members.push((unit, resource)))
            }
            None => Ok(()),
        },
        19 => match pick(rng, &w.unit_members) {
            Some((unit, resource)) => store
                .units()
                .remove_member(t, a, unit, &resource)
                .await
                .map(drop),
            None => Ok(()),
        },
        20 | 21 => match pick(rng, &w.principals) {
            Some(id) if rng.gen_bool(0.5) => {
                let patch = PrincipalPatch {
                    display_name: rng.gen_bool(0.3).then(|| format!("Renamed {n}")),
                    aliases: rng.gen_bool(0.7).then(|| random_aliases(rng)),
                    attributes: rng.gen_bool(0.5).then(|| random_attributes(rng, n)),
                };
                store
                    .principals()
                    .update(t, a, id, patch, None)
                    .await
                    .map(drop)
            }
            _ => {
                let (id, kind) = random_principal(rng, w);
                let new = NewPrincipal {
                    id: rng.gen_bool(0.5).then_some(id),
                    principal_type: if kind == PrincipalType::ServicePrincipal {
                        kind
                    } else {
                        PrincipalType::User
                    },
                    display_name: format!("Principal {n}"),
                    aliases: random_aliases(rng),
                    attributes: random_attributes(rng, n),
                };
                store
                    .principals()
                    .create(t, a, new)
                    .await
                    .map(|p| w.principals.push(p.value.id))
            }
        },
        22 => match pick(rng, &w.principals) {
            Some(id) => store.principals().delete(t, a, id, None).await.map(drop),
            None => Ok(()),
        },
        23 => {
            let new = random_resource(rng, w, n);
            let key = (new.resource_type.clone(), new.id.clone());
            store
                .resources()
                .create(t, a, new)
                .await
                .map(|_| w.resources.push(key))
        }
        24 => match pick(rng, &w.resources) {
            Some((kind, id)) => {
                let patch = ResourcePatch {
                    path: rng.gen_bool(0.5).then(|| random_scope(rng, w)),
                    display_name: rng.gen_bool(0.3).then(|| format!("Resource {n}")),
                    attributes: rng.gen_bool(0.5).then(|| random_attributes(rng, n)),
                };
                store
                    .resources()
                    .update(t, a, &kind, &id, patch, None)
                    .await
                    .map(drop)
            }
            None => Ok(()),
        },
        25 => {
            // A bulk upsert of new and known resources, some unchanged.
            let mut items: Vec<Upsert> = Vec::new();
            for _ in 0..rng.gen_range(1..=4) {
                let mut new = random_resource(rng, w, n);
                if let Some(stored) = store
                    .resources()
                    .get(t, &new.resource_type, &new.id)
                    .await
                    .ok()
                    .filter(|_| rng.gen_bool(0.5))
                {
                    new.path = stored.value.path.clone();
                    new.display_name = stored.value.display_name.clone();
                    new.attributes = stored.value.attributes.clone();
                }
                if items
                    .iter()
                    .any(|i| i.new.resource_type == new.resource_type && i.new.id == new.id)
                {
                    continue;
                }
                let seen = store
                    .resources()
                    .get(t, &new.resource_type, &new.id)
                    .await
                    .ok()
                    .map(|s| s.revision);
                items.push(Upsert { new, seen });
            }
            let keys: Vec<(String, String)> = items
                .iter()
                .map(|i| (i.new.resource_type.clone(), i.new.id.clone()))
                .collect();
            store
                .resources()
                .upsert(t, a, items)
                .await
                .map(|_| w.resources.extend(keys))
        }
        _ => match pick(rng, &w.resources) {
            Some((kind, id)) => store
                .resources()
                .delete(t, a, &kind, &id, None)
                .await
                .map(drop),
            None => Ok(()),
        },
    };
    match result {
        Ok(()) => {}
        Err(error @ (StoreError::Unavailable(_) | StoreError::Corrupt(_))) => {
            panic!("write {n} failed: {error}")
        }
        Err(_refused) => {}
    }
}

/// Follows the change log from `snapshot` as sync does (decode, then apply, a few
/// revisions at a time) and holds the result equal to a snapshot built from a fresh dump.
async fn replay_and_compare(store: &dyn Store, snapshot: Snapshot, seed: u64) -> Snapshot {
    let mut snapshot = snapshot;
    loop {
        let changes = store.changes_after(snapshot.revision(), 7).await.unwrap();
        if changes.is_empty() {
            break;
        }
        let deltas: Vec<Delta> = changes
            .iter()
            .map(|c| decode(c).unwrap_or_else(|e| panic!("seed {seed}: {e}")))
            .collect();
        snapshot = snapshot
            .apply(&deltas)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let built = Snapshot::build(&store.dump().await.unwrap(), store.catalog());
    assert_eq!(snapshot.revision(), built.revision(), "seed {seed}");
    let (replayed, fresh) = (snapshot.describe(), built.describe());
    assert!(
        replayed == fresh,
        "seed {seed} (rerun with ROLECALL_TEST_SEED={seed}): the replayed snapshot differs \
         from a fresh build\n--- replayed\n{replayed}\n--- built from the dump\n{fresh}"
    );
    snapshot
}

async fn the_change_log_replayed_onto_a_snapshot_equals_a_fresh_build(store: &dyn Store) {
    let seeds: Vec<u64> = match std::env::var("ROLECALL_TEST_SEED") {
        Ok(seed) => vec![seed.parse().expect("ROLECALL_TEST_SEED is a number")],
        Err(_) => vec![1, 2],
    };
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let tenants = [tenant(), tenant()];
        let mut known = [Known::default(), Known::default()];
        let mut n = 0;
        // A directory to start from, then a snapshot of it, as a replica starts.
        for _ in 0..40 {
            let i = rng.gen_range(0..2);
            random_write(store, &mut rng, tenants[i], &mut known[i], n).await;
            n += 1;
        }
        let start = Snapshot::build(&store.dump().await.unwrap(), store.catalog());
        let mut snapshot = replay_and_compare(store, start, seed).await;
        for _ in 0..4 {
            for _ in 0..50 {
                let i = rng.gen_range(0..2);
                random_write(store, &mut rng, tenants[i], &mut known[i], n).await;
                n += 1;
            }
            snapshot = replay_and_compare(store, snapshot, seed).await;
        }
        assert!(
            known.iter().all(|k| !k.resources.is_empty()),
            "seed {seed}: the run wrote resources in both tenants"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The principal directory
// ---------------------------------------------------------------------------------------

fn new_principal(
    kind: PrincipalType,
    name: &str,
    aliases: &[&str],
    attributes: serde_json::Value,
) -> NewPrincipal {
    NewPrincipal {
        id: None,
        principal_type: kind,
        display_name: name.to_owned(),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        attributes: attributes.as_object().cloned().unwrap_or_default(),
    }
}

fn aliases_patch(aliases: &[&str]) -> PrincipalPatch {
    PrincipalPatch {
        aliases: Some(aliases.iter().map(|a| (*a).to_owned()).collect()),
        ..PrincipalPatch::default()
    }
}

async fn principal_ids(store: &dyn Store, t: TenantId, filter: PrincipalFilter) -> Vec<Uuid> {
    let page = store.principals().list(t, &filter, &all()).await.unwrap();
    page.items.iter().map(|p| p.value.id).collect()
}

async fn principals_are_created_read_listed_updated_and_deleted(store: &dyn Store) {
    let t = tenant();
    let ps = store.principals();
    let created = ps
        .create(
            t,
            &actor(),
            new_principal(
                PrincipalType::User,
                "Alice",
                &["Alice@Contoso.com", "asmith"],
                serde_json::json!({"department": "R&D", "level": 3, "tags": ["a", "b"]}),
            ),
        )
        .await
        .unwrap();
    assert!(created.created);
    let alice = created.value.clone();
    assert_eq!(alice.principal_type, PrincipalType::User);
    assert_eq!(alice.aliases, ["Alice@Contoso.com", "asmith"]);
    assert_eq!(alice.attributes["level"], serde_json::json!(3));
    assert_eq!(alice.created_date_time, alice.last_modified_date_time);
    let got = ps.get(t, alice.id).await.unwrap();
    assert_eq!((got.value, got.revision), (alice.clone(), created.revision));

    // An object id may be given; creating the same principal again finds it.
    let svc_id = Uuid::new_v4();
    let mut svc = new_principal(
        PrincipalType::ServicePrincipal,
        "Billing worker",
        &["billing-worker"],
        serde_json::json!({}),
    );
    svc.id = Some(svc_id);
    let first = ps.create(t, &actor(), svc.clone()).await.unwrap();
    assert_eq!(first.value.id, svc_id);
    let again = ps.create(t, &actor(), svc.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.value, again.revision),
        (first.value.clone(), first.revision)
    );
    assert_eq!(store.current_revision().await.unwrap(), first.revision);
    let mut other = svc.clone();
    other.display_name = "Someone else".to_owned();
    let message = assert_conflict(ps.create(t, &actor(), other).await.unwrap_err());
    assert!(message.contains(&svc_id.to_string()), "{message}");

    // Listing: by id, by type, by alias ignoring case.
    let mut both = vec![alice.id, svc_id];
    both.sort();
    assert_eq!(
        principal_ids(store, t, PrincipalFilter::default()).await,
        both
    );
    let users = PrincipalFilter {
        principal_type: Some(PrincipalType::User),
        ..PrincipalFilter::default()
    };
    assert_eq!(principal_ids(store, t, users).await, [alice.id]);
    let services = PrincipalFilter {
        principal_type: Some(PrincipalType::ServicePrincipal),
        ..PrincipalFilter::default()
    };
    assert_eq!(principal_ids(store, t, services.clone()).await, [svc_id]);
    let by_alias = |alias: &str| PrincipalFilter {
        alias: Some(alias.to_owned()),
        ..PrincipalFilter::default()
    };
    assert_eq!(
        principal_ids(store, t, by_alias("ALICE@contoso.COM")).await,
        [alice.id]
    );
    assert!(principal_ids(store, t, by_alias("alice")).await.is_empty());
    let wrong_kind = PrincipalFilter {
        alias: Some("asmith".to_owned()),
        ..services
    };
    assert!(principal_ids(store, t, wrong_kind).await.is_empty());

    // A patch replaces what it sets, attributes whole.
    let patch = PrincipalPatch {
        display_name: Some("Alice Smith".to_owned()),
        aliases: Some(vec!["alice@contoso.com".to_owned()]),
        attributes: Some(
            serde_json::json!({"active": true})
                .as_object()
                .cloned()
                .unwrap(),
        ),
    };
    let updated = ps
        .update(t, &actor(), alice.id, patch, Some(created.revision))
        .await
        .unwrap();
    assert_eq!(updated.value.display_name, "Alice Smith");
    assert_eq!(updated.value.aliases, ["alice@contoso.com"]);
    assert_eq!(
        serde_json::Value::Object(updated.value.attributes.clone()),
        serde_json::json!({"active": true})
    );
    assert_eq!(updated.value.created_date_time, alice.created_date_time);
    assert_eq!(ps.get(t, alice.id).await.unwrap().value, updated.value);
    assert!(principal_ids(store, t, by_alias("asmith")).await.is_empty());

    // Deleting frees the aliases.
    let deleted = ps.delete(t, &actor(), alice.id, None).await.unwrap();
    assert_eq!(deleted.value, updated.value);
    assert_not_found(ps.get(t, alice.id).await.unwrap_err());
    assert_not_found(ps.delete(t, &actor(), alice.id, None).await.unwrap_err());
    assert_not_found(
        ps.update(t, &actor(), alice.id, aliases_patch(&[]), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        principal_ids(store, t, PrincipalFilter::default()).await,
        [svc_id]
    );
    ps.create(
        t,
        &actor(),
        new_principal(
            PrincipalType::User,
            "New Alice",
            &["ALICE@CONTOSO.COM"],
            serde_json::json!({}),
        ),
    )
    .await
    .unwrap();
}

async fn aliases_are_unique_per_tenant_ignoring_case(store: &dyn Store) {
    let (t, u) = (tenant(), tenant());
    let ps = store.principals();
    let user = |name: &str, aliases: &[&str]| {
        new_principal(PrincipalType::User, name, aliases, serde_json::json!({}))
    };
    let alice = ps
        .create(t, &actor(), user("Alice", &["Alice@Contoso.com"]))
        .await
        .unwrap()
        .value;
    let before = store.current_revision().await.unwrap();

    let message = assert_conflict(
        ps.create(t, &actor(), user("Impostor", &["x", "ALICE@contoso.com"]))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("`ALICE@contoso.com`"), "{message}");
    assert_eq!(store.current_revision().await.unwrap(), before);
    assert!(principal_ids(
        store,
        t,
        PrincipalFilter {
            alias: Some("x".to_owned()),
            ..PrincipalFilter::default()
        }
    )
    .await
    .is_empty());

    let bob = ps
        .create(t, &actor(), user("Bob", &["bob"]))
        .await
        .unwrap()
        .value;
    let message = assert_conflict(
        ps.update(
            t,
            &actor(),
            bob.id,
            aliases_patch(&["bob", "alice@CONTOSO.com"]),
            None,
        )
        .await
        .unwrap_err(),
    );
    assert!(message.contains("alice@CONTOSO.com"), "{message}");
    assert_eq!(ps.get(t, bob.id).await.unwrap().value.aliases, ["bob"]);

    // Another tenant may use the same alias; a principal may respell its own.
    ps.create(u, &actor(), user("Other Alice", &["alice@contoso.com"]))
        .await
        .unwrap();
    ps.update(
        t,
        &actor(),
        alice.id,
        aliases_patch(&["ALICE@CONTOSO.COM"]),
        None,
    )
    .await
    .unwrap();
    // Once given up, an alias is free.
    ps.update(t, &actor(), alice.id, aliases_patch(&[]), None)
        .await
        .unwrap();
    ps.update(
        t,
        &actor(),
        bob.id,
        aliases_patch(&["bob", "alice@contoso.com"]),
        None,
    )
    .await
    .unwrap();

    // Two writers racing for one alias: exactly one wins.
    let racers = (0..4).map(|i| {
        let new = user(&format!("Racer {i}"), &["Contested"]);
        async move { ps.create(t, &actor(), new).await }
    });
    let results = futures::future::join_all(racers).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for result in results.into_iter().filter_map(Result::err) {
        assert_conflict(result);
    }
}

async fn principal_writes_are_logged_and_honour_if_match(store: &dyn Store) {
    let t = tenant();
    let ps = store.principals();
    let created = ps
        .create(
            t,
            &actor(),
            new_principal(
                PrincipalType::ServicePrincipal,
                "Worker",
                &["worker"],
                serde_json::json!({"tier": "gold"}),
            ),
        )
        .await
        .unwrap();
    let id = created.value.id;
    let stale = Some(Revision(created.revision.0 + 100));
    assert!(matches!(
        ps.update(t, &actor(), id, aliases_patch(&["w"]), stale)
            .await
            .unwrap_err(),
        StoreError::PreconditionFailed { .. }
    ));
    assert!(matches!(
        ps.delete(t, &actor(), id, stale).await.unwrap_err(),
        StoreError::PreconditionFailed { .. }
    ));
    let updated = ps
        .update(
            t,
            &actor(),
            id,
            aliases_patch(&["w"]),
            Some(created.revision),
        )
        .await
        .unwrap();
    assert!(matches!(
        ps.delete(t, &actor(), id, Some(created.revision))
            .await
            .unwrap_err(),
        StoreError::PreconditionFailed { .. }
    ));
    let deleted = ps
        .delete(t, &actor(), id, Some(updated.revision))
        .await
        .unwrap();

    let changes = store.changes_after(Revision(0), 100).await.unwrap();
    let mine: Vec<_> = changes.iter().filter(|c| c.tenant_id == t).collect();
    let ops: Vec<(Revision, ChangeOp)> = mine.iter().map(|c| (c.revision, c.op)).collect();
    assert_eq!(
        ops,
        [
            (created.revision, ChangeOp::Create),
            (updated.revision, ChangeOp::Update),
            (deleted.revision, ChangeOp::Delete),
        ]
    );
    let json = |p: &Principal| Some(serde_json::to_value(p).unwrap());
    for change in &mine {
        assert_eq!(change.entity_type, EntityType::Principal);
        assert_eq!(change.entity_id, id.to_string());
        assert!(matches!(
            decode(change).unwrap().edit,
            rolecall::engine::Edit::Principal(_)
        ));
    }
    assert_eq!(
        (&mine[0].before, &mine[0].after),
        (&None, &json(&created.value))
    );
    assert_eq!(
        (&mine[1].before, &mine[1].after),
        (&json(&created.value), &json(&updated.value))
    );
    assert_eq!(
        (&mine[2].before, &mine[2].after),
        (&json(&updated.value), &None)
    );
    assert_eq!(mine[0].after.as_ref().unwrap()["type"], "servicePrincipal");
}

async fn the_dump_and_the_snapshot_hold_the_principal_directory(store: &dyn Store) {
    let t = tenant();
    let ps = store.principals();
    let mut written = Vec::new();
    for (name, alias) in [("Alice", "Alice@Contoso.com"), ("Bob", "bob")] {
        written.push(
            ps.create(
                t,
                &actor(),
                new_principal(
                    PrincipalType::User,
                    name,
                    &[alias],
                    serde_json::json!({"n": 1}),
                ),
            )
            .await
            .unwrap()
            .value,
        );
    }
    written.sort_by_key(|p| p.id);
    let dump = store.dump().await.unwrap();
    let mine = dump.tenants.iter().find(|d| d.tenant == t).unwrap();
    assert_eq!(mine.principals, written);
    let snapshot = Snapshot::build(&dump, store.catalog());
    let alice = written.iter().find(|p| p.display_name == "Alice").unwrap();
    assert_eq!(
        snapshot.resolve_principal(t, "alice@contoso.COM"),
        Some((alice.id, Some("Alice@Contoso.com")))
    );
    let info = snapshot.principal(t, &alice.id).unwrap();
    assert_eq!(info.attributes["n"], serde_json::json!(1));
    assert_eq!(snapshot.resolve_principal(tenant(), "bob"), None);
}

// ---------------------------------------------------------------------------------------
// Backend-level checks (these need the concrete store)
// ---------------------------------------------------------------------------------------

async fn the_store_reports_its_backend_and_answers_pings(store: &SqlStore) {
    store.ping().await.unwrap();
    let expected = if store.database_url().as_str().starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    assert_eq!(Store::backend(store), expected);
    assert_eq!(store.current_revision().await.unwrap(), Revision(0));
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), Revision(0));
}

async fn a_body_that_does_not_decode_is_reported_as_corrupt(store: &SqlStore) {
    let t = tenant();
    let group = store
        .groups()
        .create(t, &actor(), named("fine"))
        .await
        .unwrap()
        .value;
    sqlx::query("UPDATE groups SET body = $1 WHERE id = $2")
        .bind("{\"not\": \"a group\"}")
        .bind(group.id.to_string())
        .execute(store.pool())
        .await
        .unwrap();
    let error = store.groups().get(t, group.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert!(matches!(
        store.groups().list(t, &all()).await.unwrap_err(),
        StoreError::Corrupt(_)
    ));
    assert!(matches!(
        store.dump().await.unwrap_err(),
        StoreError::Corrupt(_)
    ));
}

async fn an_assignment_stored_before_conditions_reads_as_unconditional(sql: &SqlStore) {
    let store: &dyn Store = sql;
    let t = tenant();
    let assignment = store
        .create_role_assignment(
            t,
            &actor(),
            new_assignment(Uuid::new_v4(), builtin(GLOBAL_ADMINISTRATOR), "/"),
        )
        .await
        .unwrap()
        .value;
    // The body as it was written before `condition` and `conditionVersion` existed.
    let mut old = serde_json::to_value(&assignment).unwrap();
    let fields = old.as_object_mut().unwrap();
    fields.remove("condition").unwrap();
    fields.remove("conditionVersion").unwrap();
    sqlx::query("UPDATE role_assignments SET body = $1 WHERE id = $2")
        .bind(old.to_string())
        .bind(assignment.id.to_string())
        .execute(sql.pool())
        .await
        .unwrap();
    let got = store.get_role_assignment(t, assignment.id).await.unwrap();
    assert_eq!(got.value, assignment);
    assert_eq!(
        (got.value.condition, got.value.condition_version),
        (None, None)
    );
    let dump = store.dump().await.unwrap();
    assert_eq!(dump.tenants[0].role_assignments, vec![assignment]);
}

fn activation(principal: Uuid, role: Uuid, hours: i64) -> NewScheduleRequest {
    NewScheduleRequest {
        action: ScheduleAction::SelfActivate,
        principal_id: principal,
        role_definition_id: role,
        directory_scope_id: Scope::root(),
        justification: Some("incident 7".to_owned()),
        start: None,
        length: Length::For(chrono::Duration::hours(hours)),
        schedule_info: None,
        ticket_info: None,
    }
}

fn refusal(error: StoreError) -> &'static str {
    match error {
        StoreError::Refused(refusal) => refusal.reason(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// PIM in the store: an activation is one write (request and assignment), a refusal writes
/// nothing, expiry run by many replicas at once ends an activation exactly once, and a
/// review is judged against the request's state in the same write.
async fn pim_activation_expiry_and_review_are_single_writes(store: &dyn Store) {
    let t = tenant();
    let admin = actor();
    let who = Uuid::new_v4();
    let me = Actor::new(who.to_string());
    let role = store
        .create_role_definition(t, &admin, new_role("Elevated", &["contoso.pim/act"]))
        .await
        .unwrap()
        .value;
    let t0: chrono::DateTime<chrono::Utc> = "2026-06-01T10:00:00Z".parse().unwrap();

    // Not eligible: refused, and no revision is taken.
    let before = store.current_revision().await.unwrap();
    let refused = store
        .submit_schedule_request(t, &me, activation(who, role.id, 1), t0)
        .await
        .unwrap_err();
    assert_eq!(refusal(refused), "not-eligible");
    assert_eq!(store.current_revision().await.unwrap(), before);

    store
        .create_eligibility(
            t,
            &admin,
            NewRoleEligibility {
                principal_id: who,
                principal_type: PrincipalType::User,
                role_definition_id: role.id,
                directory_scope_id: Scope::root(),
                start_date_time: None,
                end_date_time: None,
                justification: Some("on call".to_owned()),
            },
        )
        .await
        .unwrap();
    let activated = store
        .submit_schedule_request(t, &me, activation(who, role.id, 1), t0)
        .await
        .unwrap();
    assert_eq!(activated.value.status, RequestStatus::Provisioned);
    let assignment_id = activated.value.target_schedule_id.unwrap();
    let assignment = store
        .get_role_assignment(t, assignment_id)
        .await
        .unwrap()
        .value;
    assert_eq!(assignment.activation_request_id, Some(activated.value.id));
    assert_eq!(
        (assignment.start_date_time, assignment.end_date_time),
        (Some(t0), Some(t0 + chrono::Duration::hours(1)))
    );
    // Request and assignment share the write.
    let logged = store.changes_after(before, 100).await.unwrap();
    let in_write: Vec<_> = logged
        .iter()
        .filter(|c| c.revision == activated.revision)
        .map(|c| c.entity_type)
        .collect();
    assert_eq!(
        in_write,
        vec![
            EntityType::RoleAssignment,
            EntityType::RoleAssignmentScheduleRequest
        ]
    );
    let again = store
        .submit_schedule_request(t, &me, activation(who, role.id, 1), t0)
        .await
        .unwrap_err();
    assert_eq!(refusal(again), "already-active");

    // Nothing has ended yet.
    let expiry = Actor::new("rolecall-expiry");
    assert_eq!(
        store
            .expire_activations(&expiry, t0 + chrono::Duration::minutes(30))
            .await
            .unwrap(),
        0
    );
    // Four replicas at once: it ends once.
    let later = t0 + chrono::Duration::hours(2);
    let runs =
        futures::future::join_all((0..4).map(|_| store.expire_activations(&expiry, later))).await;
    let ended: usize = runs.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(ended, 1);
    assert!(matches!(
        store.get_role_assignment(t, assignment_id).await,
        Err(StoreError::NotFound { .. })
    ));
    let request = store
        .get_schedule_request(t, activated.value.id)
        .await
        .unwrap()
        .value;
    assert_eq!(request.status, RequestStatus::Expired);
    let expired = store.changes_after(activated.revision, 100).await.unwrap();
    assert!(
        expired.iter().all(|c| c.actor == "rolecall-expiry"),
        "{expired:?}"
    );
    assert_eq!(
        expired.len(),
        2,
        "the assignment's delete and the request's update"
    );

    // Activating again after expiry works.
    let second = store
        .submit_schedule_request(t, &me, activation(who, role.id, 1), later)
        .await
        .unwrap();
    assert_eq!(second.value.status, RequestStatus::Provisioned);
    // An administrator removing the activation's assignment revokes its request.
    store
        .delete_role_assignment(t, &admin, second.value.target_schedule_id.unwrap(), None)
        .await
        .unwrap();
    let revoked = store
        .get_schedule_request(t, second.value.id)
        .await
        .unwrap()
        .value;
    assert_eq!(revoked.status, RequestStatus::Revoked);

    // With approval required, a request waits; the requester cannot approve it; an
    // approver can, once.
    let gated = store
        .create_role_definition(t, &admin, new_role("Gated", &["contoso.pim/gated"]))
        .await
        .unwrap()
        .value;
    store
        .create_eligibility(
            t,
            &admin,
            NewRoleEligibility {
                principal_id: who,
                principal_type: PrincipalType::User,
                role_definition_id: gated.id,
                directory_scope_id: Scope::root(),
                start_date_time: None,
                end_date_time: None,
                justification: None,
            },
        )
        .await
        .unwrap();
    let mut policy = RoleManagementPolicy::default_for(gated.id);
    policy.is_approval_required = true;
    store.put_policy(t, &admin, policy, None).await.unwrap();
    let pending = store
        .submit_schedule_request(t, &me, activation(who, gated.id, 2), later)
        .await
        .unwrap()
        .value;
    assert_eq!(pending.status, RequestStatus::PendingApproval);
    assert_eq!(pending.target_schedule_id, None);
    let own = store
        .review_schedule_request(t, &me, pending.id, Review::Approve, None, later)
        .await
        .unwrap_err();
    assert_eq!(refusal(own), "self-review");
    let approver = Actor::new("approver");
    let approved_at = later + chrono::Duration::minutes(10);
    let approved = store
        .review_schedule_request(
            t,
            &approver,
            pending.id,
            Review::Approve,
            Some("ok".to_owned()),
            approved_at,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(approved.status, RequestStatus::Provisioned);
    assert_eq!(approved.reviewed_by.as_deref(), Some("approver"));
    // It starts on approval and keeps the length asked.
    assert_eq!(
        (approved.start_date_time, approved.end_date_time),
        (
            Some(approved_at),
            Some(approved_at + chrono::Duration::hours(2))
        )
    );
    let twice = store
        .review_schedule_request(t, &approver, pending.id, Review::Deny, None, approved_at)
        .await
        .unwrap_err();
    assert_eq!(refusal(twice), "not-pending");

    // A role's eligibilities hold it as its assignments do; its policy goes with it.
    let held = store
        .delete_role_definition(t, &admin, gated.id, false, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&held, StoreError::Conflict(m) if m.contains("1 assignment and 1 eligibility")),
        "{held:?}"
    );
    store
        .delete_role_definition(t, &admin, gated.id, true, None)
        .await
        .unwrap();
    let left = store
        .list_eligibilities(
            t,
            &RoleAssignmentFilter {
                role_definition_id: Some(gated.id),
                ..RoleAssignmentFilter::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert!(left.items.is_empty());
    assert!(matches!(
        store.get_policy(t, gated.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Both backends
// ---------------------------------------------------------------------------------------

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::run(rolecall::store::Backend::Sqlite, |store| Box::pin(super::$name(store))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::run(rolecall::store::Backend::Postgres, |store| Box::pin(super::$name(store))).await;
                }
            )*
        }
    };
}

/// Runs one behaviour on a fresh database of `backend`, then closes the pool before the
/// database is dropped.
async fn run<F>(backend: Backend, test: F)
where
    F: for<'a> FnOnce(
        &'a SqlStore,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
{
    let db = crate::common::db::fresh(backend).await;
    let store = db.store().await;
    test(&store).await;
    store.close().await;
    drop(db);
}

conformance!(
    custom_roles_are_created_read_updated_and_deleted,
    role_assignments_are_created_read_listed_and_deleted,
    deny_assignments_are_created_read_updated_and_deleted,
    groups_and_their_members_are_created_read_updated_and_deleted,
    administrative_units_and_their_members_are_created_read_updated_and_deleted,
    tenants_never_see_or_change_each_others_objects,
    built_in_roles_are_listed_merged_in_id_order_and_read_only,
    built_in_roles_can_be_cloned_and_assigned,
    display_names_are_unique_per_tenant_ignoring_case_including_built_ins,
    creating_the_same_assignment_twice_returns_the_first,
    role_assignments_keep_their_condition_in_reads_the_change_log_and_the_dump,
    an_assignment_differing_only_in_its_condition_is_a_conflict,
    parallel_creates_of_one_assignment_yield_exactly_one,
    concurrent_assignment_creates_share_commits_but_keep_their_own_outcomes,
    pim_activation_expiry_and_review_are_single_writes,
    parallel_writes_take_consecutive_revisions,
    assignments_need_an_existing_role_assignable_at_the_scope,
    if_match_must_name_the_current_revision,
    deleting_a_role_with_assignments_needs_cascade,
    deleting_a_group_removes_its_edges_and_assignments,
    every_write_takes_the_next_revision_and_logs_its_change,
    a_failed_write_consumes_no_revision_and_changes_nothing,
    changes_after_returns_whole_revisions_in_order,
    pages_walk_every_item_once_in_a_stable_order,
    role_definitions_page_and_filter_across_built_ins_and_custom_roles,
    the_dump_holds_exactly_what_was_written,
    the_change_log_replayed_onto_a_snapshot_equals_a_fresh_build,
    principals_are_created_read_listed_updated_and_deleted,
    aliases_are_unique_per_tenant_ignoring_case,
    principal_writes_are_logged_and_honour_if_match,
    the_dump_and_the_snapshot_hold_the_principal_directory,
    the_store_reports_its_backend_and_answers_pings,
    a_body_that_does_not_decode_is_reported_as_corrupt,
    an_assignment_stored_before_conditions_reads_as_unconditional,
);
