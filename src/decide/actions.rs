//! Rolecall's own administrative actions. Each admin operation is an action: Entra's name
//! where Entra has one, Rolecall's own namespace (`rolecall/...`) where not. This is the
//! whole list; the README documents it and the contract test reads it from here.

/// Read role definitions (at `/`).
pub const READ_ROLES: &str = "microsoft.directory/roleDefinitions/standard/read";
/// Create, change, clone and delete custom role definitions (at `/`).
pub const MANAGE_ROLES: &str = "microsoft.directory/roleDefinitions/allProperties/allTasks";
/// Read role and deny assignments (at their scope, or `/` for an unfiltered list).
pub const READ_ASSIGNMENTS: &str = "microsoft.directory/roleAssignments/standard/read";
/// Create and delete role and deny assignments (at their scope).
pub const MANAGE_ASSIGNMENTS: &str = "microsoft.directory/roleAssignments/allProperties/allTasks";
/// Read groups (`/groups/{id}`, or `/` to list).
pub const READ_GROUPS: &str = "microsoft.directory/groups/standard/read";
/// Create groups (at `/`).
pub const CREATE_GROUPS: &str = "microsoft.directory/groups/create";
/// Rename or describe a group (`/groups/{id}`).
pub const UPDATE_GROUPS: &str = "microsoft.directory/groups/basic/update";
/// Delete a group (`/groups/{id}`).
pub const DELETE_GROUPS: &str = "microsoft.directory/groups/delete";
/// List a group's members (`/groups/{id}`).
pub const READ_GROUP_MEMBERS: &str = "microsoft.directory/groups/members/read";
/// Add or remove a group's members (`/groups/{id}`).
pub const UPDATE_GROUP_MEMBERS: &str = "microsoft.directory/groups/members/update";
/// Read administrative units (`/administrativeUnits/{id}`, or `/` to list).
pub const READ_UNITS: &str = "microsoft.directory/administrativeUnits/standard/read";
/// List a unit's members (`/administrativeUnits/{id}`).
pub const READ_UNIT_MEMBERS: &str = "microsoft.directory/administrativeUnits/members/read";
/// Create, change and delete units, and change their members (`/administrativeUnits/{id}`;
/// adding or removing a member also needs it at the member resource).
pub const MANAGE_UNITS: &str = "microsoft.directory/administrativeUnits/allProperties/allTasks";
/// Read users of the principal directory (`/users/{id}`, or `/` to list).
pub const READ_USERS: &str = "microsoft.directory/users/standard/read";
/// Create users in the principal directory (at `/`).
pub const CREATE_USERS: &str = "microsoft.directory/users/create";
/// Change a user's name, aliases or attributes (`/users/{id}`).
pub const UPDATE_USERS: &str = "microsoft.directory/users/basic/update";
/// Delete a user's directory record (`/users/{id}`).
pub const DELETE_USERS: &str = "microsoft.directory/users/delete";
/// Read service principals of the principal directory (`/servicePrincipals/{id}`, or `/`
/// to list).
pub const READ_SERVICE_PRINCIPALS: &str = "microsoft.directory/servicePrincipals/standard/read";
/// Create service principals in the principal directory (at `/`).
pub const CREATE_SERVICE_PRINCIPALS: &str = "microsoft.directory/servicePrincipals/create";
/// Change a service principal's name, aliases or attributes (`/servicePrincipals/{id}`).
pub const UPDATE_SERVICE_PRINCIPALS: &str = "microsoft.directory/servicePrincipals/basic/update";
/// Delete a service principal's directory record (`/servicePrincipals/{id}`).
pub const DELETE_SERVICE_PRINCIPALS: &str = "microsoft.directory/servicePrincipals/delete";
/// Read resources of the resource directory (at the resource's path; to list, at the
/// `pathPrefix` asked for, else `/`).
pub const READ_RESOURCES: &str = "rolecall/resources/standard/read";
/// Create resources in the resource directory (at the new resource's path).
pub const CREATE_RESOURCES: &str = "rolecall/resources/create";
/// Change a resource's path, name or attributes (at its path, and at the new path when it
/// moves).
pub const UPDATE_RESOURCES: &str = "rolecall/resources/basic/update";
/// Delete a resource's record (at its path).
pub const DELETE_RESOURCES: &str = "rolecall/resources/delete";
/// Read the change log (at `/`).
pub const READ_CHANGES: &str = "rolecall/changes/read";
/// Ask for decisions about principals other than oneself (at the resource or scope asked
/// about).
pub const CHECK_OTHERS: &str = "rolecall/decisions/check";

/// Every administrative action above: a deny assignment matching one of them fences
/// Rolecall's own administration, so creating, changing or lifting it needs assignment
/// management at `/`.
pub const ADMIN_ACTIONS: &[&str] = &[
    READ_ROLES,
    MANAGE_ROLES,
    READ_ASSIGNMENTS,
    MANAGE_ASSIGNMENTS,
    READ_GROUPS,
    CREATE_GROUPS,
    UPDATE_GROUPS,
    DELETE_GROUPS,
    READ_GROUP_MEMBERS,
    UPDATE_GROUP_MEMBERS,
    READ_UNITS,
    READ_UNIT_MEMBERS,
    MANAGE_UNITS,
    READ_USERS,
    CREATE_USERS,
    UPDATE_USERS,
    DELETE_USERS,
    READ_SERVICE_PRINCIPALS,
    CREATE_SERVICE_PRINCIPALS,
    UPDATE_SERVICE_PRINCIPALS,
    DELETE_SERVICE_PRINCIPALS,
    READ_RESOURCES,
    CREATE_RESOURCES,
    UPDATE_RESOURCES,
    DELETE_RESOURCES,
    READ_CHANGES,
    CHECK_OTHERS,
];
