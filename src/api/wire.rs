//! How decisions look on the wire. The engine's types are plain Rust (DESIGN §3: no
//! serde-wire types in the engine); these are their JSON forms, camelCase with a `kind` (or
//! `code`) tag, as `openapi.yaml` describes them. Each takes the engine's value apart, moving its strings rather than copying them.

use serde::Serialize;
use uuid::Uuid;

use crate::decide::Verdict;
use crate::engine::{
    self, Access, DenyReason, EffectiveDeny, EffectivePermission, EffectivePermissions,
    GrantReason, GrantSource, Miss, MissReason,
};
use crate::model::{ActionPattern, PrincipalType, Timestamp};

/// One line of an explanation.
#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Reason {
    /// A grant that allows.
    Grant(Grant),
    /// A deny assignment that matched.
    Deny(Deny),
    /// A candidate grant that does not allow.
    NotGranted(NotGranted),
    /// No assignments at all.
    NoAssignments {
        /// The principals considered.
        principals: Vec<Uuid>,
    },
    /// Group expansion stopped at the bound.
    GroupDepthLimit {
        /// The bound.
        max_depth: usize,
    },
    /// More candidates failed than are listed.
    MoreNotGranted {
        /// How many were left out.
        omitted: usize,
    },
    /// The token had a groups overage; only stored memberships counted.
    GroupsOverage {},
    /// Reasons left out because the caller may not read their scopes.
    Withheld {
        /// How many.
        count: usize,
    },
}

/// Where a grant comes from.
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A stored role assignment.
    Assignment,
    /// A `wids` claim.
    WidsClaim,
}

impl From<GrantSource> for Source {
    fn from(source: GrantSource) -> Self {
        match source {
            GrantSource::Assignment => Source::Assignment,
            GrantSource::WidsClaim => Source::WidsClaim,
        }
    }
}

/// A grant that allows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    assignment_id: Option<Uuid>,
    source: Source,
    principal_id: Uuid,
    role_definition_id: Uuid,
    role_display_name: String,
    matched_pattern: String,
    scope: String,
    via: Vec<Uuid>,
    via_token_groups: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_request_id: Option<Uuid>,
}

impl From<GrantReason> for Grant {
    fn from(r: GrantReason) -> Self {
        Grant {
            assignment_id: r.assignment_id,
            source: r.source.into(),
            principal_id: r.principal_id,
            role_definition_id: r.role_definition_id,
            role_display_name: r.role_display_name,
            matched_pattern: r.matched_pattern,
            scope: r.scope,
            via: r.via,
            via_token_groups: r.via_token_groups,
            end_date_time: r.end_date_time,
            activation_request_id: r.activation_request_id,
        }
    }
}

/// A deny assignment that matched.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deny {
    deny_assignment_id: Uuid,
    display_name: String,
    principal_id: Uuid,
    matched_pattern: String,
    scope: String,
    via: Vec<Uuid>,
    via_token_groups: bool,
}

impl From<DenyReason> for Deny {
    fn from(r: DenyReason) -> Self {
        Deny {
            deny_assignment_id: r.deny_assignment_id,
            display_name: r.display_name,
            principal_id: r.principal_id,
            matched_pattern: r.matched_pattern,
            scope: r.scope,
            via: r.via,
            via_token_groups: r.via_token_groups,
        }
    }
}

/// A candidate grant that does not allow, and why.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotGranted {
    assignment_id: Option<Uuid>,
    source: Source,
    principal_id: Uuid,
    role_definition_id: Uuid,
    role_display_name: Option<String>,
    scope: String,
    via: Vec<Uuid>,
    via_token_groups: bool,
    why: Why,
}

impl From<MissReason> for NotGranted {
    fn from(r: MissReason) -> Self {
        NotGranted {
            assignment_id: r.assignment_id,
            source: r.source.into(),
            principal_id: r.principal_id,
            role_definition_id: r.role_definition_id,
            role_display_name: r.role_display_name,
            scope: r.scope,
            via: r.via,
            via_token_groups: r.via_token_groups,
            why: r.why.into(),
        }
    }
}

/// Why a candidate does not allow.
#[derive(Serialize)]
#[serde(
    tag = "code",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Why {
    /// Scope does not cover the resource.
    ScopeDoesNotCover,
    /// Outside the time window.
    OutsideTimeWindow {
        /// Window start.
        start_date_time: Option<Timestamp>,
        /// Window end.
        end_date_time: Option<Timestamp>,
    },
    /// The role does not exist.
    RoleNotFound,
    /// The role is disabled.
    RoleDisabled,
    /// No pattern matches.
    ActionNotInRole,
    /// Matched, then excluded.
    ActionExcluded {
        /// The allowed pattern.
        allowed_pattern: String,
        /// The exclusion.
        excluded_pattern: String,
    },
    /// Matched, but the permission entry's condition is false.
    ConditionNotMet {
        /// The allowed pattern.
        allowed_pattern: String,
        /// The condition, as written.
        condition: String,
    },
    /// The role allows, but the assignment's condition is false.
    AssignmentConditionNotMet {
        /// The condition, as written.
        condition: String,
    },
}

impl From<Miss> for Why {
    fn from(miss: Miss) -> Self {
        match miss {
            Miss::ScopeDoesNotCover => Why::ScopeDoesNotCover,
            Miss::OutsideTimeWindow {
                start_date_time,
                end_date_time,
            } => Why::OutsideTimeWindow {
                start_date_time,
                end_date_time,
            },
            Miss::RoleNotFound => Why::RoleNotFound,
            Miss::RoleDisabled => Why::RoleDisabled,
            Miss::ActionNotInRole => Why::ActionNotInRole,
            Miss::ActionExcluded {
                allowed_pattern,
                excluded_pattern,
            } => Why::ActionExcluded {
                allowed_pattern,
                excluded_pattern,
            },
            Miss::ConditionNotMet {
                allowed_pattern,
                condition,
            } => Why::ConditionNotMet {
                allowed_pattern,
                condition,
            },
            Miss::AssignmentConditionNotMet { condition } => {
                Why::AssignmentConditionNotMet { condition }
            }
        }
    }
}

impl From<engine::Reason> for Reason {
    fn from(reason: engine::Reason) -> Self {
        match reason {
            engine::Reason::Grant(r) => Reason::Grant(r.into()),
            engine::Reason::Deny(r) => Reason::Deny(r.into()),
            engine::Reason::NotGranted(r) => Reason::NotGranted(r.into()),
            engine::Reason::NoAssignments { principals } => Reason::NoAssignments { principals },
            engine::Reason::GroupDepthLimit { max_depth } => Reason::GroupDepthLimit { max_depth },
            engine::Reason::MoreNotGranted { omitted } => Reason::MoreNotGranted { omitted },
        }
    }
}

/// An explanation on the wire: a groups overage first (when explaining), the engine's
/// reasons, then the count of withheld ones.
pub fn reasons(verdict: Verdict, explain: bool) -> Vec<Reason> {
    let mut out = Vec::with_capacity(verdict.reasons.len() + 2);
    if explain && verdict.groups_overage {
        out.push(Reason::GroupsOverage {});
    }
    out.extend(verdict.reasons.into_iter().map(Reason::from));
    if verdict.withheld > 0 {
        out.push(Reason::Withheld {
            count: verdict.withheld,
        });
    }
    out
}

/// What a subject may do at a scope.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effective {
    permissions: Vec<Permission>,
    denies: Vec<DenyInForce>,
    group_depth_limited: bool,
}

impl From<EffectivePermissions> for Effective {
    fn from(e: EffectivePermissions) -> Self {
        Effective {
            permissions: e.permissions.into_iter().map(Permission::from).collect(),
            denies: e.denies.into_iter().map(DenyInForce::from).collect(),
            group_depth_limited: e.group_depth_limited,
        }
    }
}

/// One permission entry a grant gives.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    allowed_resource_actions: Vec<ActionPattern>,
    excluded_resource_actions: Vec<ActionPattern>,
    assignment_id: Option<Uuid>,
    source: Source,
    principal_id: Uuid,
    role_definition_id: Uuid,
    role_display_name: String,
    scope: String,
    via: Vec<Uuid>,
    via_token_groups: bool,
    condition: Option<String>,
    assignment_condition: Option<String>,
}

impl From<EffectivePermission> for Permission {
    fn from(p: EffectivePermission) -> Self {
        Permission {
            allowed_resource_actions: p.allowed_resource_actions,
            excluded_resource_actions: p.excluded_resource_actions,
            assignment_id: p.assignment_id,
            source: p.source.into(),
            principal_id: p.principal_id,
            role_definition_id: p.role_definition_id,
            role_display_name: p.role_display_name,
            scope: p.scope,
            via: p.via,
            via_token_groups: p.via_token_groups,
            condition: p.condition,
            assignment_condition: p.assignment_condition,
        }
    }
}

/// A deny assignment in force.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DenyInForce {
    deny_assignment_id: Uuid,
    display_name: String,
    principal_id: Uuid,
    actions: Vec<ActionPattern>,
    excluded_actions: Vec<ActionPattern>,
    scope: String,
    via: Vec<Uuid>,
    via_token_groups: bool,
}

impl From<EffectiveDeny> for DenyInForce {
    fn from(d: EffectiveDeny) -> Self {
        DenyInForce {
            deny_assignment_id: d.deny_assignment_id,
            display_name: d.display_name,
            principal_id: d.principal_id,
            actions: d.actions,
            excluded_actions: d.excluded_actions,
            scope: d.scope,
            via: d.via,
            via_token_groups: d.via_token_groups,
        }
    }
}

/// A principal that may act, and the grant that lets it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    principal_id: Uuid,
    principal_type: PrincipalType,
    assignment_id: Uuid,
    role_definition_id: Uuid,
    role_display_name: String,
    matched_pattern: String,
    scope: String,
    via: Vec<Uuid>,
    conditions: Vec<String>,
}

impl From<Access> for Holder {
    fn from(a: Access) -> Self {
        Holder {
            principal_id: a.principal_id,
            principal_type: a.principal_type,
            assignment_id: a.assignment_id,
            role_definition_id: a.role_definition_id,
            role_display_name: a.role_display_name,
            matched_pattern: a.matched_pattern,
            scope: a.scope,
            via: a.via,
            conditions: a.conditions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialize_as_camel_case_objects_with_a_kind() {
        let grant = engine::Reason::Grant(GrantReason {
            assignment_id: Some(Uuid::nil()),
            source: GrantSource::Assignment,
            principal_id: Uuid::nil(),
            role_definition_id: Uuid::nil(),
            role_display_name: "Reader".to_owned(),
            matched_pattern: "ns/apps/read".to_owned(),
            scope: "/apps".to_owned(),
            via: vec![Uuid::nil()],
            via_token_groups: false,
            end_date_time: None,
            activation_request_id: None,
        });
        let miss = engine::Reason::NotGranted(MissReason {
            assignment_id: None,
            source: GrantSource::WidsClaim,
            principal_id: Uuid::nil(),
            role_definition_id: Uuid::nil(),
            role_display_name: None,
            scope: "/".to_owned(),
            via: Vec::new(),
            via_token_groups: false,
            why: Miss::ActionExcluded {
                allowed_pattern: "ns/*".to_owned(),
                excluded_pattern: "ns/users/*".to_owned(),
            },
        });
        let verdict = Verdict {
            allowed: false,
            reasons: vec![grant, miss],
            groups_overage: true,
            withheld: 2,
        };
        let json = serde_json::to_value(reasons(verdict, true)).expect("serializes");
        assert_eq!(json[0], serde_json::json!({"kind": "groupsOverage"}));
        let first = &json[1];
        assert_eq!(first["kind"], "grant");
        for field in [
            "assignmentId",
            "roleDefinitionId",
            "roleDisplayName",
            "matchedPattern",
            "scope",
            "via",
            "principalId",
            "source",
            "viaTokenGroups",
        ] {
            assert!(first.get(field).is_some(), "{field} in {first}");
        }
        assert_eq!(json[2]["kind"], "notGranted");
        assert_eq!(json[2]["source"], "widsClaim");
        assert_eq!(json[2]["why"]["code"], "actionExcluded");
        assert_eq!(json[2]["why"]["excludedPattern"], "ns/users/*");
        assert_eq!(json[3], serde_json::json!({"kind": "withheld", "count": 2}));
    }
}
