//! The decision engine: pure, synchronous, no IO.
//!
//! A [`Snapshot`] holds every tenant's directory at one [`Revision`], indexed so that a check
//! costs about (principals of the subject) × (depth of the resource path) hash lookups,
//! whatever the number of assignments. Snapshots are immutable and cheap to derive from one
//! another: [`Snapshot::apply`] shares every untouched part of the previous snapshot (see
//! `cow.rs`), so sync can swap a new one in after each write without copying a tenant.
//!
//! Semantics (DESIGN §2): the principals of a subject are its id, the groups reachable from
//! it through stored memberships and from its token `groups`, transitively, at most
//! [`MAX_GROUP_DEPTH`] memberships away. Its candidate grants are their role assignments plus
//! one virtual assignment at `/` per `wids` template id naming a built-in role. A matching
//! deny assignment denies; otherwise any grant whose role is enabled, whose time window holds
//! `now`, whose scope covers the resource and whose role allows the action (exclusions apply
//! within their own permission entry) allows; otherwise the answer is deny. A permission
//! entry's `condition` and an assignment's `condition` (see `model::condition`) are
//! evaluated per check against the request's [`Facts`], the principal directory's stored
//! attributes and built-ins; an entry or assignment whose condition is false grants
//! nothing. Roles without conditions never build the condition environment.
//!
//! Scopes cover by whole segments, compared as text: a `Scope` is already canonical (its
//! uuid segments are lowercase, see `model::Scope::parse`). An assignment at a unit's scope
//! also covers every member resource of the unit and what lies below it.
//!
//! Layout: `snapshot.rs` builds a snapshot from a dump and derives the next one from typed
//! [`Delta`]s (sync decodes the change log into them). `tenant.rs` holds one tenant's index
//! and applies each edit to it, keeping role assignments in `grants.rs` and scopes and
//! administrative units in `units.rs`. `principals.rs` expands a subject into its groups,
//! `check.rs` answers and explains a check, `queries.rs` the other questions (effective
//! permissions, who-can) and `escalation.rs` those the admin plane asks before a change.
//! `cow.rs`, `role.rs` and `pattern.rs` are the structures under them; `describe.rs` lets
//! tests compare two snapshots.

mod check;
mod cow;
mod delta;
mod describe;
mod directory;
pub mod escalation;
mod grants;
pub(crate) mod pattern;
mod principals;
mod queries;
mod resources;
mod role;
mod search;
mod snapshot;
mod tenant;
mod units;

use uuid::Uuid;

use crate::model::{Action, ActionPattern, PrincipalType, Revision, Scope, Timestamp};

/// The engine's subject is the model's (re-exported so engine callers need one import).
pub use crate::model::Subject;
pub use delta::{Delta, Edit, Versions};
pub use directory::PrincipalInfo;
pub use resources::ResourceInfo;
pub use search::{Page, SearchAction};
pub use snapshot::{Snapshot, SnapshotBuilder};

/// How many memberships away from the subject group expansion goes by default. Deeper
/// groups are not considered, and the explanation says so.
pub const MAX_GROUP_DEPTH: usize = 32;

/// At most this many failed candidates are explained one by one; the rest are counted in
/// [`Reason::MoreNotGranted`].
pub const MAX_EXPLAINED_MISSES: usize = 64;

/// One question: may `subject` perform `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    /// Who.
    pub subject: Subject,
    /// What, e.g. `microsoft.directory/applications/credentials/update`.
    pub action: Action,
    /// On what, e.g. `/applications/{id}`.
    pub resource: Scope,
    /// What conditions may read besides the directory: empty for a plain check.
    pub facts: Facts,
}

impl CheckRequest {
    /// A question with no request attributes.
    pub fn new(subject: Subject, action: Action, resource: Scope) -> CheckRequest {
        CheckRequest {
            subject,
            action,
            resource,
            facts: Facts::default(),
        }
    }
}

/// Attributes a question carries for conditions to read (`@Subject[...]` and the rest).
/// Request attributes take precedence over the attributes the principal directory stores.
/// Empty maps allocate nothing, so a plain check pays nothing for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `@Subject[...]` (AuthZEN `subject.properties`, `/v1/check` `subjectAttributes`).
    pub subject: serde_json::Map<String, serde_json::Value>,
    /// `@Resource[...]`.
    pub resource: serde_json::Map<String, serde_json::Value>,
    /// `@Action[...]`.
    pub action: serde_json::Map<String, serde_json::Value>,
    /// `@Environment[...]` (AuthZEN `context`).
    pub context: serde_json::Map<String, serde_json::Value>,
    /// `@Resource[id]`: the resource's own id (AuthZEN `resource.id`), when the question
    /// named one; otherwise the last segment of the resource path.
    pub resource_id: Option<String>,
    /// `@Resource[type]`: the resource's type (AuthZEN `resource.type`), when given;
    /// otherwise the second-to-last segment of the resource path.
    pub resource_type: Option<String>,
    /// `@Action[name]`: the action's name as the caller gave it (AuthZEN `action.name`);
    /// otherwise the checked action.
    pub action_name: Option<String>,
}

/// The answer to a [`CheckRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// True only when some grant allows and no deny assignment matches.
    pub allowed: bool,
    /// Why, when an explanation was asked for (empty otherwise). For an allow: every grant
    /// that allows. For a deny: the deny assignments that matched, or else every candidate
    /// assignment with the reason it does not allow (or [`Reason::NoAssignments`]).
    pub reasons: Vec<Reason>,
}

/// Where a grant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSource {
    /// A stored role assignment.
    Assignment,
    /// A `wids` claim naming a built-in role (a virtual assignment at `/`).
    WidsClaim,
}

/// One line of an explanation (its wire form is `api::wire::Reason`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// A grant that allows the action.
    Grant(GrantReason),
    /// A deny assignment that matched: it wins over every grant.
    Deny(DenyReason),
    /// A candidate grant that does not allow the action, and why.
    NotGranted(MissReason),
    /// Neither the subject nor any of its groups holds an assignment, and no `wids` claim
    /// names a built-in role.
    NoAssignments {
        /// The principals that were considered: the subject, then its groups.
        principals: Vec<Uuid>,
    },
    /// Group expansion stopped at the depth bound; groups further away were not considered.
    GroupDepthLimit {
        /// The bound, in memberships.
        max_depth: usize,
    },
    /// More candidates failed than are listed (see [`MAX_EXPLAINED_MISSES`]).
    MoreNotGranted {
        /// How many were left out.
        omitted: usize,
    },
}

/// A grant that allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantReason {
    /// The role assignment; `None` for a `wids` claim.
    pub assignment_id: Option<Uuid>,
    /// A stored assignment or a `wids` claim.
    pub source: GrantSource,
    /// Who holds the assignment: the subject or one of its groups.
    pub principal_id: Uuid,
    /// The role.
    pub role_definition_id: Uuid,
    /// The role's name.
    pub role_display_name: String,
    /// The role's allowed pattern that matched the action, as written.
    pub matched_pattern: String,
    /// The assignment's scope (`/` for a `wids` claim).
    pub scope: String,
    /// The groups from the subject to `principal_id` (inclusive), in membership order;
    /// empty when the subject holds the grant itself.
    pub via: Vec<Uuid>,
    /// True when `via` starts at a group from the token's `groups` claim.
    pub via_token_groups: bool,
    /// When the assignment stops granting (a time-bound assignment or an activation).
    pub end_date_time: Option<Timestamp>,
    /// The PIM activation request the assignment came from, when it is an activation.
    pub activation_request_id: Option<Uuid>,
}

/// A deny assignment that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyReason {
    /// The deny assignment.
    pub deny_assignment_id: Uuid,
    /// Its name.
    pub display_name: String,
    /// Who it names: the subject or one of its groups.
    pub principal_id: Uuid,
    /// The denied pattern that matched the action, as written.
    pub matched_pattern: String,
    /// Its scope.
    pub scope: String,
    /// The groups from the subject to `principal_id` (inclusive).
    pub via: Vec<Uuid>,
    /// True when `via` starts at a group from the token's `groups` claim.
    pub via_token_groups: bool,
}

/// A candidate grant that does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissReason {
    /// The role assignment; `None` for a `wids` claim.
    pub assignment_id: Option<Uuid>,
    /// A stored assignment or a `wids` claim.
    pub source: GrantSource,
    /// Who holds it.
    pub principal_id: Uuid,
    /// The role it names (for a `wids` claim, the claimed template id).
    pub role_definition_id: Uuid,
    /// The role's name, when the role exists.
    pub role_display_name: Option<String>,
    /// The assignment's scope.
    pub scope: String,
    /// The groups from the subject to `principal_id` (inclusive).
    pub via: Vec<Uuid>,
    /// True when `via` starts at a group from the token's `groups` claim.
    pub via_token_groups: bool,
    /// The first check it failed, in the order scope, time window, role, action.
    pub why: Miss,
}

/// Why a candidate grant does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The assignment's scope does not cover the resource.
    ScopeDoesNotCover,
    /// `now` lies outside the assignment's time window.
    OutsideTimeWindow {
        /// Grants nothing before this instant.
        start_date_time: Option<Timestamp>,
        /// Grants nothing from this instant on.
        end_date_time: Option<Timestamp>,
    },
    /// The role does not exist in this tenant or the catalog.
    RoleNotFound,
    /// The role is disabled.
    RoleDisabled,
    /// No allowed pattern of the role matches the action.
    ActionNotInRole,
    /// An allowed pattern matches, but its permission entry excludes the action.
    ActionExcluded {
        /// The allowed pattern that matched.
        allowed_pattern: String,
        /// The excluded pattern of the same entry that matched.
        excluded_pattern: String,
    },
    /// An allowed pattern matches, but its permission entry's condition is false.
    ConditionNotMet {
        /// The allowed pattern that matched.
        allowed_pattern: String,
        /// The entry's condition, as written.
        condition: String,
    },
    /// The role allows the action, but the assignment's condition is false.
    AssignmentConditionNotMet {
        /// The assignment's condition, as written.
        condition: String,
    },
}

/// What a subject may do at a scope: every permission entry of every grant covering it,
/// and every deny assignment covering it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EffectivePermissions {
    /// One row per permission entry of each active, enabled grant whose scope covers the
    /// asked scope.
    pub permissions: Vec<EffectivePermission>,
    /// Deny assignments naming the subject or its groups whose scope covers the asked scope.
    pub denies: Vec<EffectiveDeny>,
    /// True when group expansion stopped at the depth bound.
    pub group_depth_limited: bool,
}

/// One permission entry that a grant gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePermission {
    /// What the entry allows.
    pub allowed_resource_actions: Vec<ActionPattern>,
    /// What the entry subtracts from its own `allowed_resource_actions`.
    pub excluded_resource_actions: Vec<ActionPattern>,
    /// The role assignment; `None` for a `wids` claim.
    pub assignment_id: Option<Uuid>,
    /// A stored assignment or a `wids` claim.
    pub source: GrantSource,
    /// Who holds it.
    pub principal_id: Uuid,
    /// The role.
    pub role_definition_id: Uuid,
    /// The role's name.
    pub role_display_name: String,
    /// The assignment's scope.
    pub scope: String,
    /// The groups from the subject to `principal_id` (inclusive).
    pub via: Vec<Uuid>,
    /// True when `via` starts at a group from the token's `groups` claim.
    pub via_token_groups: bool,
    /// The entry's condition: the entry grants only when it holds for the check.
    pub condition: Option<String>,
    /// The assignment's condition: it grants only when that holds too.
    pub assignment_condition: Option<String>,
}

/// A deny assignment in force for a subject at a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveDeny {
    /// The deny assignment.
    pub deny_assignment_id: Uuid,
    /// Its name.
    pub display_name: String,
    /// Who it names.
    pub principal_id: Uuid,
    /// Denied patterns.
    pub actions: Vec<ActionPattern>,
    /// Patterns carved out of `actions`.
    pub excluded_actions: Vec<ActionPattern>,
    /// Its scope.
    pub scope: String,
    /// The groups from the subject to `principal_id` (inclusive).
    pub via: Vec<Uuid>,
    /// True when `via` starts at a group from the token's `groups` claim.
    pub via_token_groups: bool,
}

/// A principal that may perform an action on a resource, and the grant that lets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The principal: directly assigned, or a transitive member of an assigned group.
    pub principal_id: Uuid,
    /// Its kind, as recorded on its assignment or membership edge.
    pub principal_type: PrincipalType,
    /// The granting role assignment (the nearest one, by memberships).
    pub assignment_id: Uuid,
    /// The role.
    pub role_definition_id: Uuid,
    /// The role's name.
    pub role_display_name: String,
    /// The role's allowed pattern that matched.
    pub matched_pattern: String,
    /// The assignment's scope.
    pub scope: String,
    /// The groups from `principal_id` to the assigned principal (inclusive); empty when
    /// the principal holds the assignment itself.
    pub via: Vec<Uuid>,
    /// The conditions the grant depends on (its permission entry's, then its assignment's),
    /// not evaluated here: the principal may when they hold. Empty for an unconditional
    /// grant.
    pub conditions: Vec<String>,
}

/// What belonging to a group carries (see [`Snapshot::through_group`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThroughGroup {
    /// Role assignments a member holds through the group: `(role, scope)`.
    pub grants: Vec<(Uuid, String)>,
    /// Deny assignments that reach a member through the group (the group's own and those
    /// of every group it is nested in).
    pub denies: Vec<crate::model::DenyAssignment>,
}

/// Why a batch of changes could not be applied. The caller reloads a full snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Changes arrived out of revision order.
    #[error("change {revision}.{sequence} comes after revision {after}")]
    OutOfOrder {
        /// The change's revision.
        revision: Revision,
        /// Its position within the revision.
        sequence: i64,
        /// The revision already reached.
        after: Revision,
    },
}
