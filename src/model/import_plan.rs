//! What applying a directory file changes: the diff between a tenant's directory and the
//! one a file declares, and the checks only the whole result can answer (names and keys
//! unique, references resolved).
//!
//! Without `prune` a file adds and replaces: what it does not list stays. With `prune` the
//! directory becomes exactly the file. An object that already stands as declared is
//! unchanged: no write, no change row.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::Serialize;
use uuid::Uuid;

use super::directory_file::{Declared, Origins};
use super::{
    alias_key, AdministrativeUnit, AdministrativeUnitMember, Catalog, DenyAssignment, Group,
    GroupMember, Principal, PrincipalType, Resource, RoleAssignment, RoleDefinition, Scope,
    TenantDump, Timestamp, ValidationErrors,
};

/// An object kind a directory file declares.
pub trait Declarable: Clone + PartialEq {
    /// What identifies it within its tenant.
    type Key: Eq + Hash + Clone + Ord;
    /// Its key.
    fn key(&self) -> Self::Key;
    /// The declared object as it would replace `current`: what the server keeps (creation
    /// time, last change, version) taken from `current`, so equality means "as declared".
    fn settle(&mut self, current: &Self);
    /// Marks the settled object as changed at `now` (last change, version).
    fn touch(&mut self, now: Timestamp);
}

/// One kind's part of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes<T> {
    /// New objects.
    pub create: Vec<T>,
    /// (before, after) of each changed object.
    pub update: Vec<(T, T)>,
    /// Objects removed (only with `prune`).
    pub delete: Vec<T>,
    /// How many declared objects already stood as declared.
    pub unchanged: usize,
}

impl<T> Changes<T> {
    fn len(&self) -> usize {
        self.create.len() + self.update.len() + self.delete.len()
    }
}

/// Everything one import changes, kind by kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Custom roles.
    pub role_definitions: Changes<RoleDefinition>,
    /// Role assignments.
    pub role_assignments: Changes<RoleAssignment>,
    /// Deny assignments.
    pub deny_assignments: Changes<DenyAssignment>,
    /// Groups.
    pub groups: Changes<Group>,
    /// Group memberships.
    pub group_members: Changes<GroupMember>,
    /// Administrative units.
    pub administrative_units: Changes<AdministrativeUnit>,
    /// Unit member resources.
    pub administrative_unit_members: Changes<AdministrativeUnitMember>,
    /// Users and service principals.
    pub principals: Changes<Principal>,
    /// Resources.
    pub resources: Changes<Resource>,
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Created.
    pub created: usize,
    /// Changed.
    pub updated: usize,
    /// Removed.
    pub deleted: usize,
    /// Declared and already standing as declared.
    pub unchanged: usize,
}

/// What an import does, in counts and keys (at most [`LISTED_KEYS`] keys per list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// Per kind (camelCase kind names, as in the file), in file order.
    pub kinds: Vec<KindReport>,
    /// Objects changed in all.
    pub total: usize,
}

/// One kind of a [`PlanReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindReport {
    /// The kind, as the file names its list (`groupMembers` for memberships).
    pub kind: &'static str,
    /// The counts.
    #[serde(flatten)]
    pub counts: KindCounts,
    /// Keys created (the first [`LISTED_KEYS`]).
    pub create: Vec<String>,
    /// Keys changed.
    pub update: Vec<String>,
    /// Keys removed.
    pub delete: Vec<String>,
}

/// How many keys of each list a report names.
pub const LISTED_KEYS: usize = 100;

/// A key for people: ids as they are, pairs joined by `/`.
pub trait ShowKey {
    /// The key as text.
    fn show_key(&self) -> String;
}

macro_rules! by_id {
    ($($kind:ty),*) => {$(
        impl Declarable for $kind {
            type Key = Uuid;
            fn key(&self) -> Uuid {
                self.id
            }
            fn settle(&mut self, current: &Self) {
                self.created_date_time = current.created_date_time;
                self.last_modified_date_time = current.last_modified_date_time;
            }
            fn touch(&mut self, now: Timestamp) {
                self.last_modified_date_time = now;
            }
        }
        impl ShowKey for $kind {
            fn show_key(&self) -> String {
                self.id.to_string()
            }
        }
    )*};
}

by_id!(DenyAssignment, Group, AdministrativeUnit, Principal);

impl Declarable for RoleDefinition {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.id
    }
    fn settle(&mut self, current: &Self) {
        self.created_date_time = current.created_date_time;
        self.last_modified_date_time = current.last_modified_date_time;
        self.version = current.version;
    }
    fn touch(&mut self, now: Timestamp) {
        self.last_modified_date_time = Some(now);
        self.version += 1;
    }
}

impl ShowKey for RoleDefinition {
    fn show_key(&self) -> String {
        self.id.to_string()
    }
}

impl Declarable for RoleAssignment {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.id
    }
    fn settle(&mut self, current: &Self) {
        self.created_date_time = current.created_date_time;
    }
    fn touch(&mut self, _: Timestamp) {}
}

impl ShowKey for RoleAssignment {
    fn show_key(&self) -> String {
        self.id.to_string()
    }
}

impl Declarable for GroupMember {
    type Key = (Uuid, Uuid);
    fn key(&self) -> (Uuid, Uuid) {
        (self.group_id, self.id)
    }
    fn settle(&mut self, current: &Self) {
        self.created_date_time = current.created_date_time;
    }
    fn touch(&mut self, _: Timestamp) {}
}

impl ShowKey for GroupMember {
    fn show_key(&self) -> String {
        format!("{}/{}", self.group_id, self.id)
    }
}

impl Declarable for AdministrativeUnitMember {
    type Key = (Uuid, Scope);
    fn key(&self) -> (Uuid, Scope) {
        (self.administrative_unit_id, self.resource.clone())
    }
    fn settle(&mut self, current: &Self) {
        self.created_date_time = current.created_date_time;
    }
    fn touch(&mut self, _: Timestamp) {}
}

impl ShowKey for AdministrativeUnitMember {
    fn show_key(&self) -> String {
        format!("{}{}", self.administrative_unit_id, self.resource)
    }
}

impl Declarable for Resource {
    type Key = (String, String);
    fn key(&self) -> (String, String) {
        (self.resource_type.clone(), self.id.clone())
    }
    fn settle(&mut self, current: &Self) {
        self.created_date_time = current.created_date_time;
        self.last_modified_date_time = current.last_modified_date_time;
    }
    fn touch(&mut self, now: Timestamp) {
        self.last_modified_date_time = now;
    }
}

impl ShowKey for Resource {
    fn show_key(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

/// One kind's diff.
fn diff<T: Declarable>(current: &[T], declared: Vec<T>, prune: bool, now: Timestamp) -> Changes<T> {
    let mut standing: HashMap<T::Key, &T> = current.iter().map(|c| (c.key(), c)).collect();
    let mut changes = Changes {
        create: Vec::new(),
        update: Vec::new(),
        delete: Vec::new(),
        unchanged: 0,
    };
    for mut object in declared {
        match standing.remove(&object.key()) {
            None => changes.create.push(object),
            Some(before) => {
                object.settle(before);
                if object == *before {
                    changes.unchanged += 1;
                } else {
                    object.touch(now);
                    changes.update.push((before.clone(), object));
                }
            }
        }
    }
    if prune {
        let mut gone: Vec<&T> = standing.into_values().collect();
        gone.sort_by_key(|t| t.key());
        changes.delete = gone.into_iter().cloned().collect();
    }
    changes
}

/// What it takes to make `current` stand as `declared` says (see the module's doc), or
/// every reason the result would not be a valid directory, each at its place in the file.
pub fn plan(
    current: &TenantDump,
    declared: Declared,
    prune: bool,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<Plan, ValidationErrors> {
    let Declared { dump, origins } = declared;
    check_whole(current, &dump, &origins, prune, catalog)?;
    Ok(Plan {
        role_definitions: diff(&current.role_definitions, dump.role_definitions, prune, now),
        role_assignments: diff(&current.role_assignments, dump.role_assignments, prune, now),
        deny_assignments: diff(&current.deny_assignments, dump.deny_assignments, prune, now),
        groups: diff(&current.groups, dump.groups, prune, now),
        group_members: diff(&current.group_members, dump.group_members, prune, now),
        administrative_units: diff(
            &current.administrative_units,
            dump.administrative_units,
            prune,
            now,
        ),
        administrative_unit_members: diff(
            &current.administrative_unit_members,
            dump.administrative_unit_members,
            prune,
            now,
        ),
        principals: diff(&current.principals, dump.principals, prune, now),
        resources: diff(&current.resources, dump.resources, prune, now),
    })
}

/// The objects of one kind the directory holds after the import: the declared ones, then
/// (without prune) the standing ones the file does not replace.
fn after<'a, T: Declarable>(
    current: &'a [T],
    declared: &'a [T],
    prune: bool,
) -> impl Iterator<Item = (&'a T, bool)> {
    let keys: HashSet<T::Key> = if prune {
        HashSet::new()
    } else {
        declared.iter().map(Declarable::key).collect()
    };
    declared.iter().map(|t| (t, true)).chain(
        current
            .iter()
            .filter(move |c| !prune && !keys.contains(&c.key()))
            .map(|t| (t, false)),
    )
}

/// The checks of the directory as a whole after the import. Two standing objects never
/// conflict (the directory is valid now), so every conflict involves a declared one and is
/// reported where it is declared.
fn check_whole(
    current: &TenantDump,
    declared: &TenantDump,
    origins: &Origins,
    prune: bool,
    catalog: &Catalog,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let at = |index: Option<&usize>, kind: &str| {
        index.map_or_else(|| format!("/{kind}"), |i| format!("/{kind}/{i}"))
    };

    // Role names are unique per tenant, ignoring case, and built-in names are taken.
    let mut roles: HashMap<Uuid, &RoleDefinition> = HashMap::new();
    let mut names: HashMap<String, Uuid> = catalog
        .roles()
        .iter()
        .map(|r| (r.display_name.to_lowercase(), r.id))
        .collect();
    for (role, is_declared) in after(&current.role_definitions, &declared.role_definitions, prune) {
        roles.insert(role.id, role);
        if let Some(other) = names.insert(role.display_name.to_lowercase(), role.id) {
            if other != role.id && is_declared {
                errors.push(
                    format!(
                        "{}/displayName",
                        at(origins.roles.get(&role.id), "roleDefinitions")
                    ),
                    format!(
                        "role `{other}` is also named `{}` (names are unique ignoring case)",
                        role.display_name
                    ),
                );
            } else if other != role.id {
                // A standing role whose name a declared one takes.
                if let Some(i) = origins.roles.get(&other) {
                    errors.push(
                        format!("/roleDefinitions/{i}/displayName"),
                        format!(
                            "role `{}` is already named `{}` (names are unique ignoring case)",
                            role.id, role.display_name
                        ),
                    );
                }
            }
        }
    }

    // Assignments name a role that exists and is assignable at their scope, and hold a
    // (principal, role, scope) no other assignment holds.
    let mut natural: HashMap<(Uuid, Uuid, &Scope), Uuid> = HashMap::new();
    for (assignment, is_declared) in
        after(&current.role_assignments, &declared.role_assignments, prune)
    {
        let key = (
            assignment.principal_id,
            assignment.role_definition_id,
            &assignment.directory_scope_id,
        );
        let pointer = at(origins.assignments.get(&assignment.id), "roleAssignments");
        if let Some(other) = natural.insert(key, assignment.id) {
            let (here, there) = if is_declared {
                (pointer.clone(), other)
            } else {
                (
                    at(origins.assignments.get(&other), "roleAssignments"),
                    assignment.id,
                )
            };
            errors.push(
                here,
                format!(
                    "assignment `{there}` already gives this principal this role at this scope"
                ),
            );
        }
        if !is_declared {
            continue;
        }
        let role = roles
            .get(&assignment.role_definition_id)
            .copied()
            .or_else(|| catalog.get(assignment.role_definition_id));
        match role {
            None => errors.push(
                format!("{pointer}/roleDefinitionId"),
                format!(
                    "role definition `{}` is neither a built-in role nor a custom role of \
                     this directory",
                    assignment.role_definition_id
                ),
            ),
            Some(role) if !role.assignable_at(&assignment.directory_scope_id) => errors.push(
                format!("{pointer}/directoryScopeId"),
                format!(
                    "role `{}` is not assignable at `{}`",
                    role.display_name, assignment.directory_scope_id
                ),
            ),
            Some(_) => {}
        }
    }

    // A member group exists.
    let groups: HashSet<Uuid> = after(&current.groups, &declared.groups, prune)
        .map(|(g, _)| g.id)
        .collect();
    for member in &declared.group_members {
        if member.member_type == PrincipalType::Group && !groups.contains(&member.id) {
            errors.push(
                format!(
                    "{}/members",
                    at(origins.groups.get(&member.group_id), "groups")
                ),
                format!(
                    "member group `{}` is not a group of this directory",
                    member.id
                ),
            );
        }
    }

    // Aliases are unique per tenant, ignoring case.
    let mut aliases: HashMap<String, Uuid> = HashMap::new();
    for (principal, is_declared) in after(&current.principals, &declared.principals, prune) {
        for alias in &principal.aliases {
            let Some(other) = aliases.insert(alias_key(alias), principal.id) else {
                continue;
            };
            if other == principal.id {
                continue;
            }
            let (here, holder) = if is_declared {
                (origins.principals.get(&principal.id), other)
            } else {
                (origins.principals.get(&other), principal.id)
            };
            errors.push(
                format!("{}/aliases", at(here, "principals")),
                format!("alias `{alias}` is also held by principal `{holder}`"),
            );
        }
    }
    errors.finish(|| ())
}

impl Plan {
    /// Objects changed in all.
    pub fn len(&self) -> usize {
        self.role_definitions.len()
            + self.role_assignments.len()
            + self.deny_assignments.len()
            + self.groups.len()
            + self.group_members.len()
            + self.administrative_units.len()
            + self.administrative_unit_members.len()
            + self.principals.len()
            + self.resources.len()
    }

    /// True when the import changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts and (the first) keys per kind.
    pub fn report(&self) -> PlanReport {
        let kinds = vec![
            kind_report("roleDefinitions", &self.role_definitions),
            kind_report("roleAssignments", &self.role_assignments),
            kind_report("denyAssignments", &self.deny_assignments),
            kind_report("groups", &self.groups),
            kind_report("groupMembers", &self.group_members),
            kind_report("administrativeUnits", &self.administrative_units),
            kind_report(
                "administrativeUnitMembers",
                &self.administrative_unit_members,
            ),
            kind_report("principals", &self.principals),
            kind_report("resources", &self.resources),
        ];
        PlanReport {
            kinds,
            total: self.len(),
        }
    }
}

fn kind_report<T: ShowKey>(kind: &'static str, changes: &Changes<T>) -> KindReport {
    let keys = |items: &mut dyn Iterator<Item = &T>| -> Vec<String> {
        items.take(LISTED_KEYS).map(ShowKey::show_key).collect()
    };
    KindReport {
        kind,
        counts: KindCounts {
            created: changes.create.len(),
            updated: changes.update.len(),
            deleted: changes.delete.len(),
            unchanged: changes.unchanged,
        },
        create: keys(&mut changes.create.iter()),
        update: keys(&mut changes.update.iter().map(|(_, after)| after)),
        delete: keys(&mut changes.delete.iter()),
    }
}
