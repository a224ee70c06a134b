//! The engine against its semantics: one named test per rule of DESIGN §2, then property
//! tests holding the engine equal to a naive reference evaluator (`engine/reference.rs`) on
//! random directories, and `apply(changes)` equal to `build(dump after the changes)`.
//! Changes are written as the store logs them and decoded as sync decodes them. Random
//! directories carry conditions on permission entries and assignments, a principal
//! directory with aliases and attributes, and checks carry random facts.

#[path = "../../benches/support/dataset.rs"]
#[allow(dead_code)] // tested here; the benches use the rest
mod dataset;
#[path = "engine/reference.rs"]
mod reference;

use reference::Conditions;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use rolecall::engine::{
    ApplyError, CheckRequest, Decision, Delta, Facts, GrantSource, Miss, Reason, SearchAction,
    Snapshot, Subject, MAX_GROUP_DEPTH,
};
use rolecall::model::{
    Action, ActionPattern, AdministrativeUnit, AdministrativeUnitMember, Catalog, Change, ChangeOp,
    DenyAssignment, Dump, EntityType, Group, GroupMember, Principal, PrincipalType, Resource,
    Revision, RoleAssignment, RoleDefinition, RolePermission, Scope, TenantDump, TenantId,
    Timestamp,
};
use rolecall::sync::{decode, DecodeError};
use serde_json::{json, Map, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const APPS_READER: &str = "b0000000-0000-0000-0000-000000000001";
const MIXED: &str = "b0000000-0000-0000-0000-000000000002";

fn catalog() -> Catalog {
    Catalog::parse(&format!(
        r#"{{"roles":[
        {{"id":"{GLOBAL_ADMIN}","templateId":"{GLOBAL_ADMIN}","displayName":"Global Administrator",
          "rolePermissions":[{{"allowedResourceActions":["*"]}}]}},
        {{"id":"{APPS_READER}","templateId":"{APPS_READER}","displayName":"Apps Reader",
          "rolePermissions":[{{"allowedResourceActions":["ns/apps/allProperties/read"]}}]}},
        {{"id":"{MIXED}","templateId":"{MIXED}","displayName":"Mixed",
          "rolePermissions":[
            {{"allowedResourceActions":["ns/*"],"excludedResourceActions":["ns/users/*"]}},
            {{"allowedResourceActions":["ns/users/read"]}}]}}
    ]}}"#
    ))
    .expect("test catalog parses")
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0xabcd_0000_0000_0000_0000_0000_0000_0000 + n)
}

fn tenant_id(n: u128) -> TenantId {
    TenantId(Uuid::from_u128(
        0x7e7e_0000_0000_0000_0000_0000_0000_0000 + n,
    ))
}

fn base() -> Timestamp {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

fn pattern(s: &str) -> ActionPattern {
    ActionPattern::parse(s).unwrap()
}

fn empty_tenant(tenant: TenantId) -> TenantDump {
    TenantDump {
        tenant,
        role_definitions: vec![],
        role_assignments: vec![],
        deny_assignments: vec![],
        groups: vec![],
        group_members: vec![],
        administrative_units: vec![],
        administrative_unit_members: vec![],
        principals: vec![],
        resources: vec![],
    }
}

/// `entries`: (allowed, excluded) per permission entry.
fn role(role_id: Uuid, name: &str, entries: &[(&[&str], &[&str])]) -> RoleDefinition {
    RoleDefinition {
        id: role_id,
        display_name: name.to_owned(),
        description: String::new(),
        is_built_in: false,
        is_enabled: true,
        template_id: role_id,
        version: 1,
        role_permissions: entries
            .iter()
            .map(|(allowed, excluded)| RolePermission {
                allowed_resource_actions: allowed.iter().map(|p| pattern(p)).collect(),
                excluded_resource_actions: excluded.iter().map(|p| pattern(p)).collect(),
                condition: None,
            })
            .collect(),
        assignable_scopes: vec![Scope::root()],
        created_date_time: Some(base()),
        last_modified_date_time: Some(base()),
    }
}

fn assignment(assignment_id: Uuid, principal: Uuid, role_id: Uuid, at: &str) -> RoleAssignment {
    RoleAssignment {
        id: assignment_id,
        principal_id: principal,
        principal_type: PrincipalType::User,
        role_definition_id: role_id,
        directory_scope_id: scope(at),
        start_date_time: None,
        end_date_time: None,
        condition: None,
        condition_version: None,
        created_date_time: base(),
        activation_request_id: None,
    }
}

fn deny(
    deny_id: Uuid,
    principal: Uuid,
    actions: &[&str],
    excluded: &[&str],
    at: &str,
) -> DenyAssignment {
    DenyAssignment {
        id: deny_id,
        display_name: format!("deny {deny_id}"),
        description: String::new(),
        principal_id: principal,
        principal_type: PrincipalType::User,
        actions: actions.iter().map(|p| pattern(p)).collect(),
        excluded_actions: excluded.iter().map(|p| pattern(p)).collect(),
        directory_scope_id: scope(at),
        created_date_time: base(),
        last_modified_date_time: base(),
    }
}

fn member(group: Uuid, member_id: Uuid, kind: PrincipalType) -> GroupMember {
    GroupMember {
        group_id: group,
        id: member_id,
        member_type: kind,
        created_date_time: base(),
    }
}

fn group(group_id: Uuid) -> Group {
    Group {
        id: group_id,
        display_name: format!("group {group_id}"),
        description: String::new(),
        created_date_time: base(),
        last_modified_date_time: base(),
    }
}

fn unit(unit_id: Uuid) -> AdministrativeUnit {
    AdministrativeUnit {
        id: unit_id,
        display_name: format!("unit {unit_id}"),
        description: String::new(),
        created_date_time: base(),
        last_modified_date_time: base(),
    }
}

fn unit_member(unit_id: Uuid, resource: &str) -> AdministrativeUnitMember {
    AdministrativeUnitMember {
        administrative_unit_id: unit_id,
        resource: scope(resource),
        created_date_time: base(),
    }
}

fn dump_of(tenants: Vec<TenantDump>) -> Dump {
    Dump {
        revision: Revision(1),
        tenants,
    }
}

fn request(subject: Subject, action: &str, resource: &str) -> CheckRequest {
    CheckRequest::new(subject, Action::parse(action).unwrap(), scope(resource))
}

/// A JSON object literal as an attribute map.
fn attrs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Facts with only resource attributes.
fn resource_facts(v: Value) -> Facts {
    Facts {
        resource: attrs(v),
        ..Facts::default()
    }
}

/// Facts with only subject attributes.
fn subject_facts(v: Value) -> Facts {
    Facts {
        subject: attrs(v),
        ..Facts::default()
    }
}

fn directory_principal(principal_id: Uuid, aliases: &[&str], attributes: Value) -> Principal {
    Principal {
        id: principal_id,
        principal_type: PrincipalType::User,
        display_name: format!("principal {principal_id}"),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        attributes: attrs(attributes),
        created_date_time: base(),
        last_modified_date_time: base(),
    }
}

/// A one-tenant directory under construction.
struct Dir {
    t: TenantDump,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            t: empty_tenant(tenant_id(0)),
        }
    }
    fn role(mut self, r: RoleDefinition) -> Dir {
        self.t.role_definitions.push(r);
        self
    }
    fn assign(mut self, a: RoleAssignment) -> Dir {
        self.t.role_assignments.push(a);
        self
    }
    fn deny(mut self, d: DenyAssignment) -> Dir {
        self.t.deny_assignments.push(d);
        self
    }
    fn member(mut self, g: Uuid, m: Uuid) -> Dir {
        let kind = if m.as_u128() & 0xf00 == 0x100 {
            PrincipalType::Group
        } else {
            PrincipalType::User
        };
        self.t.group_members.push(member(g, m, kind));
        self
    }
    fn unit_member(mut self, u: Uuid, resource: &str) -> Dir {
        self.t
            .administrative_unit_members
            .push(unit_member(u, resource));
        self
    }
    fn principal(mut self, p: Principal) -> Dir {
        self.t.principals.push(p);
        self
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot::build(&dump_of(vec![self.t.clone()]), &catalog())
    }
    fn allows(&self, subject: Uuid, action: &str, resource: &str) -> bool {
        self.decide(Subject::new(subject), action, resource, false)
            .allowed
    }
    fn allows_with(&self, subject: Uuid, action: &str, resource: &str, facts: Facts) -> bool {
        self.decide_with(Subject::new(subject), action, resource, facts, false)
            .allowed
    }
    fn decide(&self, subject: Subject, action: &str, resource: &str, explain: bool) -> Decision {
        self.decide_with(subject, action, resource, Facts::default(), explain)
    }
    fn decide_with(
        &self,
        subject: Subject,
        action: &str,
        resource: &str,
        facts: Facts,
        explain: bool,
    ) -> Decision {
        let snapshot = self.snapshot();
        let expected = reference::check(
            &dump_of(vec![self.t.clone()]),
            &catalog(),
            self.t.tenant,
            &subject,
            action,
            resource,
            &facts,
            base(),
            MAX_GROUP_DEPTH,
        );
        let decision = snapshot.check(
            self.t.tenant,
            &CheckRequest {
                facts,
                ..request(subject, action, resource)
            },
            base(),
            explain,
        );
        assert_eq!(
            decision.allowed, expected.allowed,
            "engine and reference disagree"
        );
        decision
    }
}

// Principals: users 0x0NN, groups 0x1NN, roles 0x2NN, assignments 0x3NN, denies 0x4NN,
// units 0x5NN.
const ALICE: u128 = 0x001;
const BOB: u128 = 0x002;
const G1: u128 = 0x101;
const G2: u128 = 0x102;
const G3: u128 = 0x103;
const READER: u128 = 0x201;
const WRITER: u128 = 0x202;
const AU: u128 = 0x501;

fn reader() -> RoleDefinition {
    role(
        id(READER),
        "App Reader",
        &[(&["ns/apps/allProperties/read"], &[])],
    )
}

fn grants_of(decision: &Decision) -> Vec<&rolecall::engine::GrantReason> {
    decision
        .reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Grant(g) => Some(g),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Rule 1: principals
// ---------------------------------------------------------------------------------------

#[test]
fn a_grant_to_a_nested_group_reaches_its_transitive_members() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G1), id(ALICE))
        .member(id(G2), id(G1))
        .member(id(G3), id(G2))
        .assign(assignment(id(0x301), id(G3), id(READER), "/"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
    assert!(!dir.allows(id(BOB), "ns/apps/read", "/apps/a1"));
}

#[test]
fn membership_cycles_terminate() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G1), id(ALICE))
        .member(id(G2), id(G1))
        .member(id(G1), id(G2))
        .member(id(G3), id(G3))
        .assign(assignment(id(0x301), id(G2), id(READER), "/"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
    assert!(!dir.allows(id(G3), "ns/apps/read", "/apps/a1"));
}

#[test]
fn group_expansion_stops_at_the_depth_bound_and_says_so() {
    // alice -> g0 -> g1 -> ... -> g39, role on g39.
    let mut dir = Dir::new().role(reader()).member(id(0x100), id(ALICE));
    for i in 0..39 {
        dir = dir.member(id(0x100 + i + 1), id(0x100 + i));
    }
    let dir = dir.assign(assignment(id(0x301), id(0x100 + 39), id(READER), "/"));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    assert!(!decision.allowed);
    assert!(decision.reasons.contains(&Reason::GroupDepthLimit {
        max_depth: MAX_GROUP_DEPTH
    }));
    // Within the bound (g31 is 32 memberships away) it still works.
    let near = Dir {
        t: TenantDump {
            role_assignments: vec![],
            ..dir.t.clone()
        },
    }
    .assign(assignment(id(0x301), id(0x100 + 31), id(READER), "/"));
    assert!(near.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
    let far = Dir {
        t: TenantDump {
            role_assignments: vec![],
            ..dir.t.clone()
        },
    }
    .assign(assignment(id(0x301), id(0x100 + 32), id(READER), "/"));
    assert!(!far.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
}

#[test]
fn token_groups_count_as_memberships_and_expand_through_stored_ones() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G2), id(G1))
        .assign(assignment(id(0x301), id(G2), id(READER), "/"));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
    let subject = Subject {
        id: id(ALICE),
        groups: vec![id(G1)],
        wids: vec![],
    };
    let decision = dir.decide(subject, "ns/apps/read", "/apps/a1", true);
    assert!(decision.allowed);
    let grant = grants_of(&decision)[0];
    assert_eq!(grant.via, vec![id(G1), id(G2)]);
    assert!(grant.via_token_groups);
}

// ---------------------------------------------------------------------------------------
// Rule 2: candidate grants, wids
// ---------------------------------------------------------------------------------------

#[test]
fn wids_claim_grants_the_named_built_in_role_at_the_root() {
    let dir = Dir::new();
    let subject = Subject {
        id: id(ALICE),
        groups: vec![],
        wids: vec![uuid(APPS_READER)],
    };
    let decision = dir.decide(subject.clone(), "ns/apps/owners/read", "/apps/a1/x", true);
    assert!(decision.allowed);
    let grant = grants_of(&decision)[0];
    assert_eq!(grant.source, GrantSource::WidsClaim);
    assert_eq!(grant.assignment_id, None);
    assert_eq!(grant.scope, "/");
    assert_eq!(grant.role_display_name, "Apps Reader");
    assert!(
        !dir.decide(subject, "ns/apps/update", "/apps/a1", false)
            .allowed
    );
}

#[test]
fn wids_claim_naming_no_built_in_role_grants_nothing() {
    let dir = Dir::new().role(role(id(WRITER), "Custom", &[(&["*"], &[])]));
    // A custom role's id in `wids` is not a built-in template: nothing.
    let subject = Subject {
        id: id(ALICE),
        groups: vec![],
        wids: vec![id(WRITER), id(0x999)],
    };
    let decision = dir.decide(subject, "ns/apps/read", "/", true);
    assert!(!decision.allowed);
    assert!(decision
        .reasons
        .iter()
        .all(|r| matches!(r, Reason::NotGranted(m) if m.why == Miss::RoleNotFound)));
}

// ---------------------------------------------------------------------------------------
// Rule 3: when a grant allows
// ---------------------------------------------------------------------------------------

#[test]
fn disabled_role_grants_nothing() {
    let mut r = reader();
    r.is_enabled = false;
    let dir = Dir::new()
        .role(r)
        .assign(assignment(id(0x301), id(ALICE), id(READER), "/"));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    assert!(!decision.allowed);
    assert!(matches!(&decision.reasons[0], Reason::NotGranted(m) if m.why == Miss::RoleDisabled));
}

#[test]
fn an_activation_grants_within_its_window_and_the_explanation_says_so() {
    let request = id(0x9001);
    let mut a = assignment(id(0x301), id(ALICE), id(READER), "/");
    a.start_date_time = Some(base() - Duration::hours(1));
    a.end_date_time = Some(base() + Duration::hours(1));
    a.activation_request_id = Some(request);
    let dir = Dir::new().role(reader()).assign(a.clone());
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    assert!(decision.allowed);
    let grant = grants_of(&decision)[0];
    assert_eq!(grant.activation_request_id, Some(request));
    assert_eq!(grant.end_date_time, a.end_date_time);
    // Ended: it grants nothing, and the miss names its window.
    a.end_date_time = Some(base());
    let dir = Dir::new().role(reader()).assign(a);
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    assert!(!decision.allowed);
    assert!(
        matches!(&decision.reasons[0], Reason::NotGranted(m) if matches!(m.why, Miss::OutsideTimeWindow { .. }))
    );
    // A standing assignment's allow names no activation and no end.
    let dir = Dir::new()
        .role(reader())
        .assign(assignment(id(0x302), id(ALICE), id(READER), "/"));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    let grant = grants_of(&decision)[0];
    assert_eq!(
        (grant.activation_request_id, grant.end_date_time),
        (None, None)
    );
}

#[test]
fn assignment_outside_its_time_window_grants_nothing_and_the_end_is_exclusive() {
    let mut a = assignment(id(0x301), id(ALICE), id(READER), "/");
    a.start_date_time = Some(base() - Duration::days(2));
    a.end_date_time = Some(base());
    let dir = Dir::new().role(reader()).assign(a.clone());
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    assert!(!decision.allowed, "now == end is outside");
    assert!(
        matches!(&decision.reasons[0], Reason::NotGranted(m) if matches!(m.why, Miss::OutsideTimeWindow { .. }))
    );
    a.end_date_time = Some(base() + Duration::seconds(1));
    assert!(Dir::new().role(reader()).assign(a.clone()).allows(
        id(ALICE),
        "ns/apps/read",
        "/apps/a1"
    ));
    a.start_date_time = Some(base() + Duration::seconds(1));
    a.end_date_time = None;
    assert!(!Dir::new()
        .role(reader())
        .assign(a)
        .allows(id(ALICE), "ns/apps/read", "/apps/a1"));
}

#[test]
fn exclusion_subtracts_within_its_entry_only() {
    // Entry 0 allows ns/* but excludes ns/users/*; entry 1 allows ns/users/read again.
    let dir = Dir::new().assign(assignment(id(0x301), id(ALICE), uuid(MIXED), "/"));
    assert!(dir.allows(id(ALICE), "ns/apps/update", "/"));
    assert!(dir.allows(id(ALICE), "ns/users/read", "/"));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/users/update", "/", true);
    assert!(!decision.allowed);
    match &decision.reasons[0] {
        Reason::NotGranted(m) => assert_eq!(
            m.why,
            Miss::ActionExcluded {
                allowed_pattern: "ns/*".into(),
                excluded_pattern: "ns/users/*".into()
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn exclusion_in_one_role_does_not_limit_another_role() {
    let narrow = role(id(WRITER), "Writer", &[(&["ns/users/update"], &[])]);
    let dir = Dir::new()
        .role(narrow)
        .assign(assignment(id(0x301), id(ALICE), uuid(MIXED), "/"))
        .assign(assignment(id(0x302), id(ALICE), id(WRITER), "/users/u1"));
    assert!(dir.allows(id(ALICE), "ns/users/update", "/users/u1"));
    assert!(!dir.allows(id(ALICE), "ns/users/update", "/users/u2"));
}

// ---------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------

const ACTIVE_ONLY: &str = "@Resource[status] StringEquals 'active'";
const ENGINEERS: &str = "@Subject[dept] StringEquals 'eng'";

/// Entry 0 allows `ns/apps/*` under `condition`; entry 1 allows `ns/users/read` always.
fn conditional(condition: &str) -> RoleDefinition {
    let mut r = role(
        id(WRITER),
        "Conditional",
        &[(&["ns/apps/*"], &[]), (&["ns/users/read"], &[])],
    );
    r.role_permissions[0].condition = Some(condition.to_owned());
    r
}

fn conditional_assignment(
    assignment_id: Uuid,
    principal: Uuid,
    role_id: Uuid,
    at: &str,
    condition: &str,
) -> RoleAssignment {
    RoleAssignment {
        condition: Some(condition.to_owned()),
        condition_version: Some("2.0".to_owned()),
        ..assignment(assignment_id, principal, role_id, at)
    }
}

#[test]
fn an_entry_grants_when_its_condition_holds_and_not_when_it_fails() {
    let dir = Dir::new().role(conditional(ACTIVE_ONLY)).assign(assignment(
        id(0x301),
        id(ALICE),
        id(WRITER),
        "/",
    ));
    let active = || resource_facts(json!({"status": "active"}));
    assert!(dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", active()));
    let archived = resource_facts(json!({"status": "archived"}));
    assert!(!dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", archived));
    assert!(!dir.allows(id(ALICE), "ns/apps/update", "/apps/a1"));
    // The condition narrows its own entry only.
    assert!(dir.allows(id(ALICE), "ns/users/read", "/users/u1"));
    assert!(!dir.allows_with(id(BOB), "ns/apps/update", "/apps/a1", active()));
}

#[test]
fn an_assignment_grants_only_where_its_condition_holds() {
    let dir = Dir::new()
        .role(reader())
        .assign(conditional_assignment(
            id(0x301),
            id(ALICE),
            id(READER),
            "/",
            ENGINEERS,
        ))
        .assign(assignment(id(0x302), id(BOB), id(READER), "/"));
    let eng = || subject_facts(json!({"dept": "eng"}));
    assert!(dir.allows_with(id(ALICE), "ns/apps/read", "/apps/a1", eng()));
    let sales = subject_facts(json!({"dept": "sales"}));
    assert!(!dir.allows_with(id(ALICE), "ns/apps/read", "/apps/a1", sales));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
    // It narrows that assignment, not the role: bob's plain assignment still grants.
    assert!(dir.allows(id(BOB), "ns/apps/read", "/apps/a1"));
    // Scope and action still apply first.
    assert!(!dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", eng()));
}

#[test]
fn subject_is_owner_matches_an_alias_stored_in_the_directory() {
    let dir = Dir::new()
        .role(conditional("$SubjectIsOwner"))
        .principal(directory_principal(
            id(ALICE),
            &["alice@contoso.com"],
            json!({}),
        ))
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"))
        .assign(assignment(id(0x302), id(BOB), id(WRITER), "/"));
    let owned_by = |owner: Value| resource_facts(json!({ "owner": owner }));
    let alias = || owned_by(json!("ALICE@contoso.com"));
    assert!(dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", alias()));
    let by_id = owned_by(json!(id(ALICE).to_string().to_uppercase()));
    assert!(dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", by_id));
    let among = owned_by(json!(["carol@contoso.com", "alice@contoso.com"]));
    assert!(dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", among));
    let other = owned_by(json!("bob@contoso.com"));
    assert!(!dir.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", other));
    // Bob has no directory record: alice's alias is not his.
    assert!(!dir.allows_with(id(BOB), "ns/apps/update", "/apps/a1", alias()));
}

#[test]
fn resource_is_self_compares_the_last_path_segment_or_the_named_resource_id() {
    let dir = Dir::new()
        .role(conditional("$ResourceIsSelf"))
        .principal(directory_principal(id(ALICE), &["u1"], json!({})))
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"));
    assert!(dir.allows(id(ALICE), "ns/apps/update", "/users/U1"));
    assert!(!dir.allows(id(ALICE), "ns/apps/update", "/users/u2"));
    let own_id = format!("/users/{}", id(ALICE));
    assert!(dir.allows(id(ALICE), "ns/apps/update", &own_id));
    let named = Facts {
        resource_id: Some("u1".to_owned()),
        ..Facts::default()
    };
    assert!(dir.allows_with(id(ALICE), "ns/apps/update", "/users/u2", named));
}

#[test]
fn request_attributes_override_stored_ones() {
    let stored = |dept: &str| {
        Dir::new()
            .role(conditional(ENGINEERS))
            .principal(directory_principal(id(ALICE), &[], json!({ "dept": dept })))
            .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"))
    };
    let (eng, sales) = (stored("eng"), stored("sales"));
    assert!(eng.allows(id(ALICE), "ns/apps/update", "/"));
    assert!(!sales.allows(id(ALICE), "ns/apps/update", "/"));
    let says = |dept: &str| subject_facts(json!({ "dept": dept }));
    assert!(sales.allows_with(id(ALICE), "ns/apps/update", "/", says("eng")));
    assert!(!eng.allows_with(id(ALICE), "ns/apps/update", "/", says("sales")));
    // A request attribute held as null still wins, and null matches nothing.
    let null = subject_facts(json!({ "dept": null }));
    assert!(!eng.allows_with(id(ALICE), "ns/apps/update", "/", null));
    // Another attribute in the request leaves the stored one visible.
    let unrelated = subject_facts(json!({ "level": 3 }));
    assert!(eng.allows_with(id(ALICE), "ns/apps/update", "/", unrelated));
}

#[test]
fn not_of_a_comparison_with_a_missing_attribute_grants() {
    let not = Dir::new()
        .role(conditional(
            "NOT (@Resource[status] StringEquals 'archived')",
        ))
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"));
    assert!(not.allows(id(ALICE), "ns/apps/update", "/apps/a1"));
    let archived = || resource_facts(json!({"status": "archived"}));
    assert!(!not.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", archived()));
    // The `Not` operator is a comparison: false when the attribute is missing.
    let not_equals = Dir::new()
        .role(conditional("@Resource[status] StringNotEquals 'archived'"))
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"));
    assert!(!not_equals.allows(id(ALICE), "ns/apps/update", "/apps/a1"));
    assert!(!not_equals.allows_with(id(ALICE), "ns/apps/update", "/apps/a1", archived()));
}

#[test]
fn an_explanation_names_the_failed_entry_condition() {
    let dir = Dir::new().role(conditional(ACTIVE_ONLY)).assign(assignment(
        id(0x301),
        id(ALICE),
        id(WRITER),
        "/",
    ));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/update", "/apps/a1", true);
    assert!(!decision.allowed);
    match &decision.reasons[..] {
        [Reason::NotGranted(m)] => assert_eq!(
            m.why,
            Miss::ConditionNotMet {
                allowed_pattern: "ns/apps/*".into(),
                condition: ACTIVE_ONLY.into(),
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
    let facts = resource_facts(json!({"status": "active"}));
    let decision = dir.decide_with(
        Subject::new(id(ALICE)),
        "ns/apps/update",
        "/apps/a1",
        facts,
        true,
    );
    assert!(decision.allowed);
    assert_eq!(grants_of(&decision)[0].matched_pattern, "ns/apps/*");
}

#[test]
fn an_explanation_names_the_failed_assignment_condition() {
    let dir = Dir::new().role(reader()).assign(conditional_assignment(
        id(0x301),
        id(ALICE),
        id(READER),
        "/",
        ENGINEERS,
    ));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a1", true);
    assert!(!decision.allowed);
    match &decision.reasons[..] {
        [Reason::NotGranted(m)] => {
            assert_eq!(m.assignment_id, Some(id(0x301)));
            assert_eq!(
                m.why,
                Miss::AssignmentConditionNotMet {
                    condition: ENGINEERS.into()
                }
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // A role that does not allow the action says so, whatever the assignment's condition.
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/update", "/apps/a1", true);
    assert!(
        matches!(&decision.reasons[0], Reason::NotGranted(m) if m.why == Miss::ActionNotInRole)
    );
}

#[test]
fn effective_permissions_report_entry_and_assignment_conditions() {
    let dir = Dir::new()
        .role(conditional(ACTIVE_ONLY))
        .assign(conditional_assignment(
            id(0x301),
            id(ALICE),
            id(WRITER),
            "/",
            ENGINEERS,
        ))
        .assign(assignment(id(0x302), id(ALICE), id(READER), "/"))
        .role(reader());
    let e = dir.snapshot().effective_permissions(
        tenant_id(0),
        &Subject::new(id(ALICE)),
        &scope("/apps/a1"),
        base(),
    );
    let mut rows: Vec<_> = e
        .permissions
        .iter()
        .map(|p| {
            (
                p.assignment_id,
                p.allowed_resource_actions[0].to_string(),
                p.condition.clone(),
                p.assignment_condition.clone(),
            )
        })
        .collect();
    rows.sort();
    let (apps, users) = ("ns/apps/*".to_owned(), "ns/users/read".to_owned());
    let reader_pattern = "ns/apps/allProperties/read".to_owned();
    let expected = vec![
        (
            Some(id(0x301)),
            apps,
            Some(ACTIVE_ONLY.to_owned()),
            Some(ENGINEERS.to_owned()),
        ),
        (Some(id(0x301)), users, None, Some(ENGINEERS.to_owned())),
        (Some(id(0x302)), reader_pattern, None, None),
    ];
    assert_eq!(rows, expected);
}

#[test]
fn who_can_lists_a_conditional_holder_with_its_entry_then_assignment_condition() {
    let dir = Dir::new()
        .role(conditional(ACTIVE_ONLY))
        .member(id(G1), id(BOB))
        .assign(conditional_assignment(
            id(0x301),
            id(G1),
            id(WRITER),
            "/apps",
            ENGINEERS,
        ));
    let who = dir.snapshot().who_can(
        tenant_id(0),
        &Action::parse("ns/apps/update").unwrap(),
        &scope("/apps/a1"),
        base(),
    );
    let got: Vec<(Uuid, Vec<String>)> = who
        .iter()
        .map(|a| (a.principal_id, a.conditions.clone()))
        .collect();
    let both = vec![ACTIVE_ONLY.to_owned(), ENGINEERS.to_owned()];
    let mut expected = vec![(id(G1), both.clone()), (id(BOB), both)];
    expected.sort();
    assert_eq!(got, expected);
    // The unconditional entry of the same grant carries only the assignment's condition.
    let who = dir.snapshot().who_can(
        tenant_id(0),
        &Action::parse("ns/users/read").unwrap(),
        &scope("/apps/a1"),
        base(),
    );
    assert!(who
        .iter()
        .all(|a| a.conditions == vec![ENGINEERS.to_owned()]));
    assert_eq!(who.len(), 2);
}

#[test]
fn who_can_prefers_an_unconditional_grant() {
    // Within one role: entry 1 allows `ns/apps/read` without the condition of entry 0.
    let mut r = conditional(ACTIVE_ONLY);
    r.role_permissions[1] = RolePermission {
        allowed_resource_actions: vec![pattern("ns/apps/read")],
        excluded_resource_actions: vec![],
        condition: None,
    };
    let dir = Dir::new()
        .role(r)
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"));
    let who = dir.snapshot().who_can(
        tenant_id(0),
        &Action::parse("ns/apps/read").unwrap(),
        &scope("/apps/a1"),
        base(),
    );
    assert_eq!(who.len(), 1);
    assert!(who[0].conditions.is_empty());
    assert_eq!(who[0].matched_pattern, "ns/apps/read");
    // Across assignments: a conditional one and a plain one of the same principal.
    let dir = Dir::new()
        .role(reader())
        .assign(conditional_assignment(
            id(0x301),
            id(ALICE),
            id(READER),
            "/",
            ENGINEERS,
        ))
        .assign(assignment(id(0x302), id(ALICE), id(READER), "/apps"));
    let who = dir.snapshot().who_can(
        tenant_id(0),
        &Action::parse("ns/apps/read").unwrap(),
        &scope("/apps/a1"),
        base(),
    );
    assert_eq!(who.len(), 1);
    assert!(who[0].conditions.is_empty());
    assert_eq!(who[0].assignment_id, id(0x302));
}

// Alice's own grant is conditional; g1, which she belongs to, grants the action without a
// condition: she is listed without one, through g1.
#[test]
fn who_can_lists_a_member_without_conditions_when_its_group_grants_unconditionally() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G1), id(ALICE))
        .assign(conditional_assignment(
            id(0x301),
            id(ALICE),
            id(READER),
            "/",
            ENGINEERS,
        ))
        .assign(assignment(id(0x302), id(G1), id(READER), "/"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/apps/a1"));
    let who = dir.snapshot().who_can(
        tenant_id(0),
        &Action::parse("ns/apps/read").unwrap(),
        &scope("/apps/a1"),
        base(),
    );
    let alice = who.iter().find(|a| a.principal_id == id(ALICE)).unwrap();
    assert_eq!(alice.conditions, Vec::<String>::new());
    assert_eq!(alice.assignment_id, id(0x302));
    assert_eq!(alice.via, vec![id(G1)]);
}

#[test]
fn missing_permissions_counts_a_permission_held_only_conditionally_as_missing() {
    // The condition holds for a check without facts; still not held for escalation.
    let always = "NOT (@Resource[status] StringEquals 'archived')";
    let wanted = |p: &str| RolePermission {
        allowed_resource_actions: vec![pattern(p)],
        excluded_resource_actions: vec![],
        condition: None,
    };
    let entries = [wanted("ns/apps/update"), wanted("ns/apps/*")];
    let missing = |dir: &Dir| {
        dir.snapshot().missing_permissions(
            tenant_id(0),
            &Subject::new(id(ALICE)),
            &entries,
            &scope("/apps/a1"),
            base(),
        )
    };
    let by_entry = Dir::new().role(conditional(always)).assign(assignment(
        id(0x301),
        id(ALICE),
        id(WRITER),
        "/",
    ));
    assert!(by_entry.allows(id(ALICE), "ns/apps/update", "/apps/a1"));
    assert_eq!(missing(&by_entry), vec!["ns/apps/update", "ns/apps/*"]);
    let by_assignment = Dir::new()
        .role(role(id(WRITER), "Apps", &[(&["ns/apps/*"], &[])]))
        .assign(conditional_assignment(
            id(0x301),
            id(ALICE),
            id(WRITER),
            "/",
            always,
        ));
    assert!(by_assignment.allows(id(ALICE), "ns/apps/update", "/apps/a1"));
    assert_eq!(missing(&by_assignment), vec!["ns/apps/update", "ns/apps/*"]);
    let plain = Dir::new()
        .role(role(id(WRITER), "Apps", &[(&["ns/apps/*"], &[])]))
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"));
    assert!(missing(&plain).is_empty());
}

#[test]
fn a_stored_condition_that_does_not_parse_grants_nothing() {
    let bad = "@Resource[status] StringEquals";
    assert!(rolecall::model::Condition::parse(bad).is_err());
    // Written straight into the dump, as an older row or a hand edit would be.
    let dir =
        Dir::new()
            .role(conditional(bad))
            .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"));
    let facts = || resource_facts(json!({"status": "active"}));
    assert!(!dir.allows_with(id(ALICE), "ns/apps/update", "/", facts()));
    assert!(dir.allows(id(ALICE), "ns/users/read", "/"));
    let decision = dir.decide_with(
        Subject::new(id(ALICE)),
        "ns/apps/update",
        "/",
        facts(),
        true,
    );
    assert!(matches!(
        &decision.reasons[0],
        Reason::NotGranted(m) if m.why == Miss::ConditionNotMet {
            allowed_pattern: "ns/apps/*".into(),
            condition: bad.into(),
        }
    ));
    let on_assignment = Dir::new().role(reader()).assign(conditional_assignment(
        id(0x301),
        id(ALICE),
        id(READER),
        "/",
        "NOT (",
    ));
    assert!(!on_assignment.allows(id(ALICE), "ns/apps/read", "/"));
}

// ---------------------------------------------------------------------------------------
// Rule 4: scope coverage
// ---------------------------------------------------------------------------------------

#[test]
fn assignment_at_ab_never_covers_abc() {
    let dir = Dir::new().role(reader()).assign(assignment(
        id(0x301),
        id(ALICE),
        id(READER),
        "/applications/ab",
    ));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/applications/ab"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/applications/ab/credentials/k1"));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/applications/abc"));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/applications"));
    let decision = dir.decide(
        Subject::new(id(ALICE)),
        "ns/apps/read",
        "/applications/abc",
        true,
    );
    assert!(
        matches!(&decision.reasons[0], Reason::NotGranted(m) if m.why == Miss::ScopeDoesNotCover)
    );
}

#[test]
fn root_assignment_covers_everything() {
    let dir = Dir::new()
        .role(reader())
        .assign(assignment(id(0x301), id(ALICE), id(READER), "/"));
    for r in ["/", "/a", "/a/b/c/d/e/f"] {
        assert!(dir.allows(id(ALICE), "ns/apps/read", r), "{r}");
    }
}

#[test]
fn administrative_unit_assignment_covers_its_members_and_their_sub_paths() {
    let au = format!("/administrativeUnits/{}", id(AU));
    let dir = Dir::new()
        .role(reader())
        .unit_member(id(AU), "/users/u1")
        .unit_member(id(AU), "/groups/g9")
        .assign(assignment(id(0x301), id(ALICE), id(READER), &au));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/users/u1"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/users/u1/manager"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/groups/g9"));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/users/u10"));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/users"));
    assert!(dir.allows(id(ALICE), "ns/apps/read", &format!("{au}/anything")));
}

#[test]
fn administrative_unit_ids_compare_as_uuids() {
    let upper = format!("/administrativeUnits/{}", id(AU).to_string().to_uppercase());
    let dir = Dir::new()
        .role(reader())
        .unit_member(id(AU), "/users/u1")
        .assign(assignment(id(0x301), id(ALICE), id(READER), &upper));
    assert!(dir.allows(id(ALICE), "ns/apps/read", "/users/u1"));
    assert!(dir.allows(
        id(ALICE),
        "ns/apps/read",
        &format!("/administrativeUnits/{}", id(AU))
    ));
}

// ---------------------------------------------------------------------------------------
// Rule 5: action patterns
// ---------------------------------------------------------------------------------------

fn with_pattern(p: &str) -> Dir {
    Dir::new()
        .role(role(id(WRITER), "P", &[(&[p], &[])]))
        .assign(assignment(id(0x301), id(ALICE), id(WRITER), "/"))
}

#[test]
fn actions_match_case_insensitively_and_keywords_too() {
    let dir = with_pattern("Microsoft.Directory/Applications/ALLPROPERTIES/allTASKS");
    assert!(dir.allows(
        id(ALICE),
        "microsoft.directory/applications/credentials/update",
        "/"
    ));
    assert!(dir.allows(id(ALICE), "MICROSOFT.DIRECTORY/APPLICATIONS/DELETE", "/"));
    assert!(with_pattern("ns/Apps/Read").allows(id(ALICE), "NS/apps/READ", "/"));
}

#[test]
fn all_properties_all_tasks_covers_every_action_on_the_entity() {
    let dir = with_pattern("microsoft.directory/applications/allProperties/allTasks");
    assert!(dir.allows(id(ALICE), "microsoft.directory/applications/create", "/"));
    assert!(dir.allows(
        id(ALICE),
        "microsoft.directory/applications/owners/update",
        "/"
    ));
    assert!(dir.allows(id(ALICE), "microsoft.directory/applications/a/b/c", "/"));
    assert!(!dir.allows(
        id(ALICE),
        "microsoft.directory/applicationTemplates/create",
        "/"
    ));
    assert!(!dir.allows(id(ALICE), "microsoft.directory/groups/create", "/"));
}

#[test]
fn all_properties_read_covers_only_reads() {
    let dir = with_pattern("microsoft.directory/applications/allProperties/read");
    assert!(dir.allows(id(ALICE), "microsoft.directory/applications/read", "/"));
    assert!(dir.allows(
        id(ALICE),
        "microsoft.directory/applications/owners/read",
        "/"
    ));
    assert!(dir.allows(id(ALICE), "microsoft.directory/applications/a/b/read", "/"));
    assert!(!dir.allows(
        id(ALICE),
        "microsoft.directory/applications/owners/update",
        "/"
    ));
    assert!(!dir.allows(
        id(ALICE),
        "microsoft.directory/applications/owners/readx",
        "/"
    ));
}

#[test]
fn all_entities_is_exactly_one_segment_and_all_tasks_at_least_one() {
    let dir = with_pattern("microsoft.azure.supportTickets/allEntities/allTasks");
    assert!(dir.allows(
        id(ALICE),
        "microsoft.azure.supportTickets/tickets/create",
        "/"
    ));
    assert!(dir.allows(id(ALICE), "microsoft.azure.supportTickets/tickets/a/b", "/"));
    assert!(!dir.allows(id(ALICE), "microsoft.azure.supportTickets/tickets", "/"));
    let one = with_pattern("ns/allEntities/read");
    assert!(one.allows(id(ALICE), "ns/apps/read", "/"));
    assert!(!one.allows(id(ALICE), "ns/apps/owners/read", "/"));
}

#[test]
fn a_star_matches_any_run_of_characters_including_slashes() {
    assert!(with_pattern("contoso.expenses/*").allows(
        id(ALICE),
        "contoso.expenses/reports/approve",
        "/"
    ));
    assert!(!with_pattern("contoso.expenses/*").allows(
        id(ALICE),
        "contoso.expensesx/reports/approve",
        "/"
    ));
    assert!(with_pattern("*/read").allows(id(ALICE), "a/b/c/read", "/"));
    assert!(!with_pattern("*/read").allows(id(ALICE), "a/b/c/unread", "/"));
    assert!(with_pattern("*").allows(id(ALICE), "anything/at/all", "/"));
    assert!(with_pattern("ns/a*s/read").allows(id(ALICE), "ns/apps/x/yes/read", "/"));
}

// ---------------------------------------------------------------------------------------
// Rule 6: deny, default deny, tenants, built-ins
// ---------------------------------------------------------------------------------------

#[test]
fn deny_assignment_beats_global_administrator() {
    let dir = Dir::new()
        .assign(assignment(id(0x301), id(ALICE), uuid(GLOBAL_ADMIN), "/"))
        .deny(deny(id(0x401), id(ALICE), &["ns/apps/*"], &[], "/apps/a1"));
    assert!(dir.allows(id(ALICE), "ns/apps/update", "/apps/a2"));
    let decision = dir.decide(
        Subject::new(id(ALICE)),
        "ns/apps/update",
        "/apps/a1/creds/k",
        true,
    );
    assert!(!decision.allowed);
    match &decision.reasons[0] {
        Reason::Deny(d) => {
            assert_eq!(d.deny_assignment_id, id(0x401));
            assert_eq!(d.matched_pattern, "ns/apps/*");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Also against a wids claim.
    let subject = Subject {
        id: id(ALICE),
        groups: vec![],
        wids: vec![uuid(GLOBAL_ADMIN)],
    };
    assert!(
        !dir.decide(subject, "ns/apps/update", "/apps/a1", false)
            .allowed
    );
}

#[test]
fn deny_assignment_to_a_group_denies_its_transitive_members() {
    let dir = Dir::new()
        .member(id(G1), id(ALICE))
        .member(id(G2), id(G1))
        .assign(assignment(id(0x301), id(ALICE), uuid(GLOBAL_ADMIN), "/"))
        .deny(deny(id(0x401), id(G2), &["*"], &[], "/"));
    assert!(!dir.allows(id(ALICE), "ns/apps/read", "/x"));
}

#[test]
fn deny_excluded_actions_are_carved_out() {
    let dir = Dir::new()
        .assign(assignment(id(0x301), id(ALICE), uuid(GLOBAL_ADMIN), "/"))
        .deny(deny(
            id(0x401),
            id(ALICE),
            &["ns/*"],
            &["ns/apps/allProperties/read"],
            "/",
        ));
    assert!(!dir.allows(id(ALICE), "ns/apps/update", "/"));
    assert!(dir.allows(id(ALICE), "ns/apps/owners/read", "/"));
}

#[test]
fn deny_at_an_administrative_unit_covers_its_members() {
    let dir = Dir::new()
        .unit_member(id(AU), "/users/u1")
        .assign(assignment(id(0x301), id(ALICE), uuid(GLOBAL_ADMIN), "/"))
        .deny(deny(
            id(0x401),
            id(ALICE),
            &["*"],
            &[],
            &format!("/administrativeUnits/{}", id(AU)),
        ));
    assert!(!dir.allows(id(ALICE), "ns/users/update", "/users/u1/x"));
    assert!(dir.allows(id(ALICE), "ns/users/update", "/users/u2"));
}

#[test]
fn default_is_deny_and_says_there_were_no_assignments() {
    let dir = Dir::new().role(reader());
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/", true);
    assert!(!decision.allowed);
    assert_eq!(
        decision.reasons,
        vec![Reason::NoAssignments {
            principals: vec![id(ALICE)]
        }]
    );
}

#[test]
fn tenants_never_see_each_other() {
    let mut other = empty_tenant(tenant_id(1));
    other.role_definitions.push(reader());
    other
        .role_assignments
        .push(assignment(id(0x301), id(ALICE), id(READER), "/"));
    let mut mine = empty_tenant(tenant_id(0));
    // Same role id assigned in tenant 0 but defined only in tenant 1: not found here.
    mine.role_assignments
        .push(assignment(id(0x302), id(BOB), id(READER), "/"));
    let snapshot = Snapshot::build(&dump_of(vec![other, mine]), &catalog());
    let check = |t: TenantId, who: u128| {
        snapshot
            .check(
                t,
                &request(Subject::new(id(who)), "ns/apps/read", "/"),
                base(),
                false,
            )
            .allowed
    };
    assert!(check(tenant_id(1), ALICE));
    assert!(!check(tenant_id(0), ALICE));
    assert!(!check(tenant_id(0), BOB));
    assert!(!check(tenant_id(9), ALICE));
}

#[test]
fn built_in_roles_exist_in_every_tenant() {
    for t in 0..3 {
        let mut td = empty_tenant(tenant_id(t));
        td.role_assignments
            .push(assignment(id(0x301), id(ALICE), uuid(APPS_READER), "/"));
        let snapshot = Snapshot::build(&dump_of(vec![td]), &catalog());
        let r = request(Subject::new(id(ALICE)), "ns/apps/read", "/apps/a");
        assert!(snapshot.check(tenant_id(t), &r, base(), false).allowed);
    }
    // And in a tenant the snapshot has never seen, through wids.
    let snapshot = Snapshot::empty(&catalog());
    let subject = Subject {
        id: id(ALICE),
        groups: vec![],
        wids: vec![uuid(APPS_READER)],
    };
    assert!(
        snapshot
            .check(
                tenant_id(7),
                &request(subject, "ns/apps/read", "/"),
                base(),
                false
            )
            .allowed
    );
}

// ---------------------------------------------------------------------------------------
// Rule 7: explanations
// ---------------------------------------------------------------------------------------

#[test]
fn explained_allow_names_assignment_role_pattern_scope_and_chain() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G1), id(ALICE))
        .member(id(G2), id(G1))
        .assign(assignment(id(0x301), id(G2), id(READER), "/apps/a1"));
    let decision = dir.decide(
        Subject::new(id(ALICE)),
        "ns/apps/owners/read",
        "/apps/a1/owners",
        true,
    );
    assert!(decision.allowed);
    let grant = grants_of(&decision)[0];
    assert_eq!(grant.assignment_id, Some(id(0x301)));
    assert_eq!(grant.role_definition_id, id(READER));
    assert_eq!(grant.role_display_name, "App Reader");
    assert_eq!(grant.matched_pattern, "ns/apps/allProperties/read");
    assert_eq!(grant.scope, "/apps/a1");
    assert_eq!(grant.principal_id, id(G2));
    assert_eq!(grant.via, vec![id(G1), id(G2)]);
    assert!(!grant.via_token_groups);
}

#[test]
fn explained_default_deny_lists_each_candidate_with_its_reason() {
    let mut r = role(id(0x203), "Off", &[(&["*"], &[])]);
    r.is_enabled = false;
    let mut late = assignment(id(0x303), id(ALICE), id(READER), "/");
    late.start_date_time = Some(base() + Duration::days(1));
    let dir = Dir::new()
        .role(reader())
        .role(r)
        .assign(assignment(id(0x301), id(ALICE), id(READER), "/elsewhere"))
        .assign(assignment(id(0x302), id(ALICE), id(0x203), "/"))
        .assign(late)
        .assign(assignment(id(0x304), id(ALICE), id(0x2ff), "/"))
        .assign(assignment(id(0x305), id(ALICE), id(READER), "/"));
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/update", "/apps/a1", true);
    assert!(!decision.allowed);
    let why: BTreeMap<Uuid, Miss> = decision
        .reasons
        .iter()
        .map(|r| match r {
            Reason::NotGranted(m) => (m.assignment_id.unwrap(), m.why.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(why[&id(0x301)], Miss::ScopeDoesNotCover);
    assert_eq!(why[&id(0x302)], Miss::RoleDisabled);
    assert!(matches!(why[&id(0x303)], Miss::OutsideTimeWindow { .. }));
    assert_eq!(why[&id(0x304)], Miss::RoleNotFound);
    assert_eq!(why[&id(0x305)], Miss::ActionNotInRole);
}

#[test]
fn explained_misses_are_capped_and_the_rest_counted() {
    let mut dir = Dir::new().role(reader());
    for n in 0..70 {
        dir = dir.assign(assignment(
            id(0x3000 + n),
            id(ALICE),
            id(READER),
            &format!("/apps/a{n}"),
        ));
    }
    let decision = dir.decide(Subject::new(id(ALICE)), "ns/apps/read", "/users/u1", true);
    assert!(!decision.allowed);
    assert_eq!(
        decision.reasons.len(),
        rolecall::engine::MAX_EXPLAINED_MISSES + 1
    );
    assert_eq!(
        decision.reasons.last(),
        Some(&Reason::MoreNotGranted {
            omitted: 70 - rolecall::engine::MAX_EXPLAINED_MISSES
        })
    );
}

#[test]
fn without_explain_a_decision_carries_no_reasons() {
    let dir = Dir::new()
        .role(reader())
        .assign(assignment(id(0x301), id(ALICE), id(READER), "/"));
    assert!(dir
        .decide(Subject::new(id(ALICE)), "ns/apps/read", "/", false)
        .reasons
        .is_empty());
    assert!(dir
        .decide(Subject::new(id(ALICE)), "ns/apps/update", "/", false)
        .reasons
        .is_empty());
}

// ---------------------------------------------------------------------------------------
// Effective permissions and who-can
// ---------------------------------------------------------------------------------------

#[test]
fn effective_permissions_list_each_entry_of_each_covering_grant_and_the_denies() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G1), id(ALICE))
        .assign(assignment(id(0x301), id(G1), id(READER), "/apps"))
        .assign(assignment(id(0x302), id(ALICE), uuid(MIXED), "/apps/a1"))
        .assign(assignment(
            id(0x303),
            id(ALICE),
            uuid(GLOBAL_ADMIN),
            "/users",
        ))
        .deny(deny(id(0x401), id(G1), &["ns/apps/delete"], &[], "/"));
    let e = dir.snapshot().effective_permissions(
        tenant_id(0),
        &Subject::new(id(ALICE)),
        &scope("/apps/a1"),
        base(),
    );
    let rows: Vec<(Option<Uuid>, Vec<String>)> = e
        .permissions
        .iter()
        .map(|p| {
            (
                p.assignment_id,
                p.allowed_resource_actions
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.contains(&(
        Some(id(0x301)),
        vec!["ns/apps/allProperties/read".to_owned()]
    )));
    assert!(rows.contains(&(Some(id(0x302)), vec!["ns/*".to_owned()])));
    assert!(rows.contains(&(Some(id(0x302)), vec!["ns/users/read".to_owned()])));
    let mixed = e
        .permissions
        .iter()
        .find(|p| p.excluded_resource_actions.len() == 1)
        .unwrap();
    assert_eq!(mixed.excluded_resource_actions[0].as_str(), "ns/users/*");
    assert_eq!(e.denies.len(), 1);
    assert_eq!(e.denies[0].via, vec![id(G1)]);
}

#[test]
fn who_can_lists_assignees_and_transitive_members_minus_denied() {
    let dir = Dir::new()
        .role(reader())
        .member(id(G1), id(ALICE))
        .member(id(G1), id(BOB))
        .member(id(G2), id(G1))
        .member(id(G2), id(0x003))
        .assign(assignment(id(0x301), id(G2), id(READER), "/apps"))
        .deny(deny(id(0x401), id(BOB), &["*"], &[], "/"));
    let who = dir.snapshot().who_can(
        tenant_id(0),
        &Action::parse("ns/apps/read").unwrap(),
        &scope("/apps/a1"),
        base(),
    );
    let got: BTreeMap<Uuid, Vec<Uuid>> = who
        .iter()
        .map(|a| (a.principal_id, a.via.clone()))
        .collect();
    let expected: BTreeMap<Uuid, Vec<Uuid>> = [
        (id(G2), vec![]),
        (id(G1), vec![id(G2)]),
        (id(ALICE), vec![id(G1), id(G2)]),
        (id(0x003), vec![id(G2)]),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected);
    assert!(
        who.iter()
            .all(|a| a.assignment_id == id(0x301)
                && a.matched_pattern == "ns/apps/allProperties/read")
    );
    assert!(dir
        .snapshot()
        .who_can(
            tenant_id(0),
            &Action::parse("ns/apps/update").unwrap(),
            &scope("/apps/a1"),
            base()
        )
        .is_empty());
}

// ---------------------------------------------------------------------------------------
// Applying changes
// ---------------------------------------------------------------------------------------

fn change(
    revision: i64,
    sequence: i64,
    entity: EntityType,
    op: ChangeOp,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change {
    Change {
        revision: Revision(revision),
        sequence,
        tenant_id: tenant_id(0),
        entity_type: entity,
        entity_id: String::new(),
        op,
        before,
        after,
        actor: "test".into(),
        at: base(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    Some(serde_json::to_value(v).unwrap())
}

/// `changes` decoded as sync decodes them.
fn deltas(changes: &[Change]) -> Vec<Delta> {
    changes.iter().map(|c| decode(c).unwrap()).collect()
}

#[test]
fn a_snapshot_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Snapshot>();
}

#[test]
fn applying_a_change_leaves_the_previous_snapshot_untouched() {
    let dir = Dir::new().role(reader());
    let before = dir.snapshot();
    let a = assignment(id(0x301), id(ALICE), id(READER), "/");
    let after = before
        .apply(&deltas(&[change(
            2,
            0,
            EntityType::RoleAssignment,
            ChangeOp::Create,
            None,
            json(&a),
        )]))
        .unwrap();
    let r = request(Subject::new(id(ALICE)), "ns/apps/read", "/x");
    assert!(!before.check(tenant_id(0), &r, base(), false).allowed);
    assert!(after.check(tenant_id(0), &r, base(), false).allowed);
    assert_eq!(after.revision(), Revision(2));
    let removed = after
        .apply(&deltas(&[change(
            3,
            0,
            EntityType::RoleAssignment,
            ChangeOp::Delete,
            json(&a),
            None,
        )]))
        .unwrap();
    assert!(!removed.check(tenant_id(0), &r, base(), false).allowed);
    assert!(after.check(tenant_id(0), &r, base(), false).allowed);
}

#[test]
fn apply_skips_changes_already_in_the_snapshot() {
    let dir = Dir::new().role(reader());
    let snapshot = dir.snapshot(); // revision 1
    let a = assignment(id(0x301), id(ALICE), id(READER), "/");
    let next = snapshot
        .apply(&deltas(&[change(
            1,
            0,
            EntityType::RoleAssignment,
            ChangeOp::Create,
            None,
            json(&a),
        )]))
        .unwrap();
    assert_eq!(next.revision(), Revision(1));
    assert!(
        !next
            .check(
                tenant_id(0),
                &request(Subject::new(id(ALICE)), "ns/apps/read", "/"),
                base(),
                false
            )
            .allowed
    );
}

#[test]
fn undecodable_incomplete_or_disordered_changes_are_errors() {
    let snapshot = Dir::new().snapshot();
    let bad = change(
        2,
        0,
        EntityType::RoleAssignment,
        ChangeOp::Create,
        None,
        Some(serde_json::json!({"id": 1})),
    );
    assert!(matches!(decode(&bad), Err(DecodeError::Undecodable { .. })));
    let missing = change(2, 0, EntityType::GroupMember, ChangeOp::Delete, None, None);
    assert!(matches!(
        decode(&missing),
        Err(DecodeError::MissingObject {
            field: "before",
            ..
        })
    ));
    let a = assignment(id(0x301), id(ALICE), id(READER), "/");
    let out_of_order = [
        change(
            3,
            0,
            EntityType::RoleAssignment,
            ChangeOp::Create,
            None,
            json(&a),
        ),
        change(
            2,
            0,
            EntityType::RoleAssignment,
            ChangeOp::Delete,
            json(&a),
            None,
        ),
    ];
    assert!(matches!(
        snapshot.apply(&deltas(&out_of_order)),
        Err(ApplyError::OutOfOrder { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// The benchmark dataset
// ---------------------------------------------------------------------------------------

#[test]
fn a_small_dataset_is_deterministic_and_mostly_answers_as_labelled() {
    let a = dataset::generate(dataset::DatasetSize::S, 7);
    let b = dataset::generate(dataset::DatasetSize::S, 7);
    assert_eq!(
        a.dump.tenants[0].role_assignments,
        b.dump.tenants[0].role_assignments
    );
    assert_eq!(a.dump.tenants[0].role_assignments.len(), 1_000);
    let snapshot = Snapshot::build(&a.dump, &Catalog::parse(r#"{"roles":[]}"#).unwrap());
    let allowed = a
        .likely_allowed
        .iter()
        .filter(|r| snapshot.check(a.tenant, r, a.now, false).allowed)
        .count();
    let denied = a
        .likely_denied
        .iter()
        .filter(|r| !snapshot.check(a.tenant, r, a.now, false).allowed)
        .count();
    assert!(
        allowed * 10 >= a.likely_allowed.len() * 9,
        "{allowed} of {}",
        a.likely_allowed.len()
    );
    // S is dense (every user reaches many groups), so random requests are often allowed.
    assert!(
        denied * 10 >= a.likely_denied.len() * 3,
        "{denied} of {}",
        a.likely_denied.len()
    );
}

// ---------------------------------------------------------------------------------------
// Property tests: random directories against the reference
// ---------------------------------------------------------------------------------------

const USERS: u128 = 4;
const GROUPS: u128 = 5;

/// Principal pool: users 0..4, groups 4..9, one service principal (9), one stranger (10).
fn principal(i: u8) -> Uuid {
    let i = i as u128 % 11;
    if i < USERS {
        id(0x001 + i)
    } else if i < USERS + GROUPS {
        id(0x101 + i - USERS)
    } else {
        id(0x601 + i)
    }
}

fn principal_type(i: u8) -> PrincipalType {
    match i as u128 % 11 {
        i if i < USERS => PrincipalType::User,
        i if i < USERS + GROUPS => PrincipalType::Group,
        _ => PrincipalType::ServicePrincipal,
    }
}

fn group_id(i: u8) -> Uuid {
    id(0x101 + (i as u128 % GROUPS))
}

fn unit_id(i: u8) -> Uuid {
    id(AU + (i as u128 % 2))
}

fn resource(i: u8) -> String {
    let au0 = unit_id(0);
    match i % 13 {
        0 => "/".into(),
        1 => "/apps".into(),
        2 => "/apps/a1".into(),
        3 => "/apps/a1/creds/k1".into(),
        4 => "/apps/a12".into(),
        5 => "/apps/a2".into(),
        6 => "/users/u1".into(),
        7 => "/users/u1/manager".into(),
        8 => format!("/administrativeUnits/{au0}"),
        9 => format!("/administrativeUnits/{}/x", au0.to_string().to_uppercase()),
        10 => format!("/administrativeUnits/{}", unit_id(1)),
        // A user's own object, spelled in capitals: its canonical last segment is the id.
        11 => format!("/users/{}", principal(0).to_string().to_uppercase()),
        _ => "/users/u2".into(),
    }
}

const NS: [&str; 2] = ["ns", "Ns.Two"];
const ENTITIES: [&str; 2] = ["apps", "users"];
const PROPS: [&str; 3] = ["creds", "owners", ""];
const TASKS: [&str; 3] = ["read", "update", "delete"];

fn action(i: u16) -> String {
    let i = i as usize;
    let ns = NS[i % 2];
    let entity = ENTITIES[(i / 2) % 2];
    let prop = PROPS[(i / 4) % 3];
    let task = TASKS[(i / 12) % 3];
    let raw = if prop.is_empty() {
        format!("{ns}/{entity}/{task}")
    } else {
        format!("{ns}/{entity}/{prop}/{task}")
    };
    if (i / 36) % 2 == 1 {
        raw.to_uppercase()
    } else {
        raw
    }
}

const PATTERN_SHAPES: [&str; 18] = [
    "*",
    "ns/*",
    "*/read",
    "ns/apps/allProperties/allTasks",
    "ns/apps/allProperties/read",
    "ns/allEntities/read",
    "ns/allEntities/allProperties/update",
    "allProperties/read",
    "NS/Apps/*",
    "ns/a*s/creds/*",
    "*s/c*/read",
    "ns.two/allEntities/allTasks",
    "ns/apps/creds/allTasks",
    "ns/users/*",
    "*/owners/*",
    "ns*read",
    "allProperties/allProperties",
    "ns/allEntities/allEntities/allTasks",
];

/// A pattern: one of the shapes, an exact action, or a random segment composition.
fn pattern_strategy() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "ns",
        "Ns.Two",
        "apps",
        "users",
        "creds",
        "owners",
        "read",
        "update",
        "*",
        "a*",
        "*s",
        "allEntities",
        "allProperties",
        "allTasks",
        "ALLTASKS",
        "n*/a*",
    ]);
    prop_oneof![
        prop::sample::select(PATTERN_SHAPES.to_vec()).prop_map(str::to_owned),
        any::<u16>().prop_map(action),
        prop::collection::vec(pieces, 1..5).prop_map(|p| {
            let joined = p.join("/");
            if ActionPattern::parse(&joined).is_ok() {
                joined
            } else {
                "*".to_owned()
            }
        }),
    ]
}

/// Aliases the random principal directory hands out: distinct ignoring case, none shaped
/// like an object id, two of them equal to the last segment of some resource.
const ALIASES: [&str; 5] = ["alice@x.test", "Bob@X.test", "u1", "a1", "svc"];

/// A JSON object of the pairs that are present.
fn object<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}

fn one_of(values: Vec<Value>, present: f64) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(present, prop::sample::select(values))
}

/// Subject attributes, stored or in a request: `dept`, `level`, `roles` (a string array,
/// sometimes a lone string or the wrong type).
fn subject_attrs() -> impl Strategy<Value = Map<String, Value>> {
    (
        one_of(vec![json!("eng"), json!("sales"), json!("Eng")], 0.5),
        one_of(vec![json!(1), json!(3), json!(2.5), json!("1")], 0.4),
        one_of(
            vec![
                json!(["admin"]),
                json!(["dev", "ops"]),
                json!([]),
                json!("admin"),
            ],
            0.4,
        ),
    )
        .prop_map(|(dept, level, roles)| {
            object([("dept", dept), ("level", level), ("roles", roles)])
        })
}

/// Resource attributes: `status` and `owner` (ids, aliases in other cases, arrays).
fn resource_attrs() -> impl Strategy<Value = Map<String, Value>> {
    let owners = vec![
        json!(principal(0).to_string()),
        json!(principal(1).to_string().to_uppercase()),
        json!("ALICE@x.test"),
        json!("bob@x.test"),
        json!("u1"),
        json!(["svc", principal(2).to_string()]),
        json!(7),
    ];
    (
        one_of(vec![json!("active"), json!("archived"), Value::Null], 0.5),
        one_of(owners, 0.5),
    )
        .prop_map(|(status, owner)| object([("status", status), ("owner", owner)]))
}

/// Random facts of a check: each attribute of the vocabulary present or not, sometimes the
/// resource's id and type and the action's name named.
fn facts_strategy() -> impl Strategy<Value = Facts> {
    let opt_str = |values: Vec<String>| prop::option::weighted(0.2, prop::sample::select(values));
    (
        subject_attrs(),
        resource_attrs(),
        one_of(
            vec![json!(true), json!(false), json!("TRUE"), json!(1)],
            0.5,
        ),
        one_of(vec![json!("10.0.0.1"), json!("10.0.0.2")], 0.5),
        opt_str(vec![
            "u1".into(),
            "a1".into(),
            "SVC".into(),
            principal(0).to_string(),
        ]),
        opt_str(vec!["apps".into(), "users".into()]),
        opt_str(vec!["read".into(), "ns/apps/read".into()]),
    )
        .prop_map(
            |(subject, resource, soft, ip, resource_id, resource_type, action_name)| Facts {
                subject,
                resource,
                action: object([("soft", soft)]),
                context: object([("ip", ip)]),
                resource_id,
                resource_type,
                action_name,
            },
        )
}

/// One comparison or atom over the vocabulary.
fn condition_atom() -> impl Strategy<Value = String> {
    let text = |values: &[&'static str]| prop::sample::select(values.to_vec());
    prop_oneof![
        Just("$SubjectIsOwner".to_owned()),
        Just("$ResourceIsSelf".to_owned()),
        text(&["eng", "sales"]).prop_map(|v| format!("@Subject[dept] StringEquals '{v}'")),
        text(&["eng", "sales"]).prop_map(|v| format!("@Principal[dept] StringNotEquals '{v}'")),
        (0u8..4).prop_map(|n| format!("@Subject[level] NumericLessThan {n}")),
        text(&["{'admin'}", "{'ops', 'admin'}", "{'qa'}"])
            .prop_map(|v| format!("@Subject[roles] ForAnyOfAnyValues:StringEquals {v}")),
        text(&["active", "archived"]).prop_map(|v| format!("@Resource[status] StringEquals '{v}'")),
        text(&["active", "archived"])
            .prop_map(|v| format!("@Resource[status] StringNotEquals '{v}'")),
        any::<bool>().prop_map(|b| format!("@Action[soft] BoolEquals {b}")),
        text(&["10.0.0.1", "10.0.0.2"])
            .prop_map(|v| format!("@Environment[ip] StringEquals '{v}'")),
        pattern_strategy().prop_map(|p| format!("ActionMatches{{'{p}'}}")),
        text(&["a1", "u1", "apps"]).prop_map(|v| format!("@Resource[id] StringEquals '{v}'")),
        text(&["apps", "users", "creds"])
            .prop_map(|v| format!("@Resource[type] StringEquals '{v}'")),
        text(&["read", "NS/APPS/READ"])
            .prop_map(|v| format!("@Action[name] StringEqualsIgnoreCase '{v}'")),
        // Case-sensitive: the name is the action as the request spelled it.
        text(&["ns/apps/read", "NS/APPS/READ"])
            .prop_map(|v| format!("@Action[name] StringEquals '{v}'")),
        Just(format!("@Subject[id] StringEquals '{}'", principal(0))),
        // Case-sensitive: the id is the canonical path's, whose uuids are lowercase.
        Just(format!("@Resource[id] StringEquals '{}'", principal(0))),
    ]
}

/// A condition: atoms under `NOT`, `AND` and `OR`, at most three levels deep.
fn condition_strategy() -> impl Strategy<Value = String> {
    condition_atom().prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("NOT ({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("!({a}) || {b}")),
        ]
    })
}

/// Text that fails to parse, as a stored row written before validation might hold.
const BAD_CONDITION: &str = "@Subject[dept] StringEquals";

/// No condition (mostly), a random one, or now and then one that does not parse.
fn maybe_condition(present: f64) -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        present,
        prop_oneof![
            30 => condition_strategy(),
            1 => Just(BAD_CONDITION.to_owned()),
        ],
    )
}

#[derive(Debug, Clone)]
struct RoleRecipe {
    enabled: bool,
    /// (allowed, excluded, condition) per permission entry.
    entries: Vec<(Vec<String>, Vec<String>, Option<String>)>,
}

fn role_recipe() -> impl Strategy<Value = RoleRecipe> {
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(
            (
                prop::collection::vec(pattern_strategy(), 1..4),
                prop::collection::vec(pattern_strategy(), 0..3),
                maybe_condition(0.5),
            ),
            1..4,
        ),
    )
        .prop_map(|(enabled, entries)| RoleRecipe { enabled, entries })
}

fn role_of(n: usize, recipe: &RoleRecipe) -> RoleDefinition {
    let entries: Vec<(Vec<&str>, Vec<&str>)> = recipe
        .entries
        .iter()
        .map(|(a, x, _)| {
            (
                a.iter().map(String::as_str).collect(),
                x.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let borrowed: Vec<(&[&str], &[&str])> = entries.iter().map(|(a, x)| (&a[..], &x[..])).collect();
    let mut def = role(id(0x200 + n as u128), &format!("custom {n}"), &borrowed);
    def.is_enabled = recipe.enabled;
    for (entry, (_, _, condition)) in def.role_permissions.iter_mut().zip(&recipe.entries) {
        entry.condition = condition.clone();
    }
    def
}

fn with_condition(mut a: RoleAssignment, condition: &Option<String>) -> RoleAssignment {
    a.condition = condition.clone();
    a.condition_version = condition.as_ref().map(|_| "2.0".to_owned());
    a
}

/// A record of the principal directory: who (a user or the service principal), which of
/// [`ALIASES`] and which subject attributes.
#[derive(Debug, Clone)]
struct PrincipalRecipe {
    who: u8,
    aliases: Vec<u8>,
    attributes: Map<String, Value>,
}

fn principal_recipe() -> impl Strategy<Value = PrincipalRecipe> {
    (
        prop::sample::select(vec![0u8, 1, 2, 3, 9]),
        prop::collection::vec(0u8..ALIASES.len() as u8, 0..3),
        subject_attrs(),
    )
        .prop_map(|(who, aliases, attributes)| PrincipalRecipe {
            who,
            aliases,
            attributes,
        })
}

/// The record `r` describes, without the aliases `taken` says another principal holds.
fn principal_record(r: &PrincipalRecipe, taken: &dyn Fn(&str) -> bool) -> Principal {
    let mut aliases: Vec<String> = Vec::new();
    for &a in &r.aliases {
        let alias = ALIASES[a as usize];
        if !taken(alias) && !aliases.iter().any(|x| x.eq_ignore_ascii_case(alias)) {
            aliases.push(alias.to_owned());
        }
    }
    Principal {
        principal_type: principal_type(r.who),
        aliases,
        ..directory_principal(principal(r.who), &[], Value::Object(r.attributes.clone()))
    }
}

fn window(kind: u8) -> (Option<Timestamp>, Option<Timestamp>) {
    let d = Duration::days;
    match kind % 8 {
        0..=2 => (None, None),
        3 => (Some(base() - d(20)), Some(base() - d(10))),
        4 => (Some(base() - d(1)), Some(base() + d(1))),
        5 => (Some(base() + d(10)), Some(base() + d(20))),
        6 => (Some(base() - d(1)), None),
        _ => (None, Some(base() + d(1))),
    }
}

fn now_of(i: u8) -> Timestamp {
    match i % 4 {
        0 => base(),
        1 => base() - Duration::days(15),
        2 => base() + Duration::days(15),
        _ => base() + Duration::days(1),
    }
}

/// Role ids: custom 0..5 (0x2NN), built-ins 5..8, a missing one 8.
fn role_ref(i: u8, custom: usize) -> Uuid {
    match i % 9 {
        r @ 0..=4 if (r as usize) < custom => id(0x200 + r as u128),
        0..=4 => id(0x2ff),
        5 => uuid(GLOBAL_ADMIN),
        6 => uuid(APPS_READER),
        7 => uuid(MIXED),
        _ => id(0x2fe),
    }
}

#[derive(Debug, Clone)]
struct DirRecipe {
    roles: Vec<RoleRecipe>,
    /// (principal, role, resource, window, condition)
    assignments: Vec<(u8, u8, u8, u8, Option<String>)>,
    /// (principal, actions, excluded, resource)
    denies: Vec<(u8, Vec<String>, Vec<String>, u8)>,
    /// (member principal, group)
    edges: Vec<(u8, u8)>,
    /// (unit, resource)
    unit_members: Vec<(u8, u8)>,
    /// The principal directory.
    principals: Vec<PrincipalRecipe>,
}

fn dir_recipe() -> impl Strategy<Value = DirRecipe> {
    (
        prop::collection::vec(role_recipe(), 0..5),
        prop::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                maybe_condition(0.4),
            ),
            0..12,
        ),
        prop::collection::vec(
            (
                any::<u8>(),
                prop::collection::vec(pattern_strategy(), 1..3),
                prop::collection::vec(pattern_strategy(), 0..2),
                any::<u8>(),
            ),
            0..3,
        ),
        prop::collection::vec((any::<u8>(), any::<u8>()), 0..12),
        prop::collection::vec((any::<u8>(), 1u8..12), 0..4),
        prop::collection::vec(principal_recipe(), 0..4),
    )
        .prop_map(
            |(roles, assignments, denies, edges, unit_members, principals)| DirRecipe {
                roles,
                assignments,
                denies,
                edges,
                unit_members,
                principals,
            },
        )
}

fn build_tenant(tenant: TenantId, r: &DirRecipe) -> TenantDump {
    let mut t = empty_tenant(tenant);
    for (i, recipe) in r.roles.iter().enumerate() {
        t.role_definitions.push(role_of(i, recipe));
    }
    for g in 0..GROUPS as u8 {
        t.groups.push(group(group_id(g)));
    }
    for u in 0..2 {
        t.administrative_units.push(unit(unit_id(u)));
    }
    let mut seen_edges = BTreeSet::new();
    for &(m, g) in &r.edges {
        if seen_edges.insert((principal(m), group_id(g))) {
            t.group_members
                .push(member(group_id(g), principal(m), principal_type(m)));
        }
    }
    for (i, (p, role_i, res, w, condition)) in r.assignments.iter().enumerate() {
        let (p, role_i, res, w) = (*p, *role_i, *res, *w);
        let a = assignment(
            id(0x300 + i as u128),
            principal(p),
            role_ref(role_i, r.roles.len()),
            &resource(res),
        );
        let mut a = with_condition(a, condition);
        a.principal_type = principal_type(p);
        (a.start_date_time, a.end_date_time) = window(w);
        // Some bounded windows are PIM activations: time-bound assignments that name their
        // request (an eligibility never reaches the engine, so it grants nothing).
        if matches!(w % 8, 3..=5) && i % 2 == 0 {
            a.activation_request_id = Some(id(0x900 + i as u128));
        }
        t.role_assignments.push(a);
    }
    for (i, (p, actions, excluded, res)) in r.denies.iter().enumerate() {
        let a: Vec<&str> = actions.iter().map(String::as_str).collect();
        let x: Vec<&str> = excluded.iter().map(String::as_str).collect();
        let mut d = deny(
            id(0x400 + i as u128),
            principal(*p),
            &a,
            &x,
            &resource(*res),
        );
        d.principal_type = principal_type(*p);
        t.deny_assignments.push(d);
    }
    let mut seen_units = BTreeSet::new();
    for &(u, res) in &r.unit_members {
        let resource = resource(res);
        if resource != "/" && seen_units.insert((unit_id(u), resource.clone())) {
            t.administrative_unit_members
                .push(unit_member(unit_id(u), &resource));
        }
    }
    for recipe in &r.principals {
        if t.principals.iter().any(|p| p.id == principal(recipe.who)) {
            continue;
        }
        let held: Vec<String> = t
            .principals
            .iter()
            .flat_map(|p| p.aliases.clone())
            .collect();
        let record = principal_record(recipe, &|a| held.iter().any(|h| h.eq_ignore_ascii_case(a)));
        t.principals.push(record);
    }
    t
}

#[derive(Debug, Clone)]
struct CheckRecipe {
    tenant: u8,
    subject: u8,
    token_groups: Vec<u8>,
    wids: Vec<u8>,
    action: u16,
    resource: u8,
    now: u8,
    facts: Facts,
}

fn check_recipe() -> impl Strategy<Value = CheckRecipe> {
    (
        prop::sample::select(vec![0u8, 0, 0, 1, 2]),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..2),
        prop::collection::vec(any::<u8>(), 0..2),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        facts_strategy(),
    )
        .prop_map(
            |(tenant, subject, token_groups, wids, action, resource, now, facts)| CheckRecipe {
                tenant,
                subject,
                token_groups,
                wids,
                action,
                resource,
                now,
                facts,
            },
        )
}

fn subject_of(c: &CheckRecipe) -> Subject {
    Subject {
        id: principal(c.subject),
        groups: c
            .token_groups
            .iter()
            .map(|g| if g % 4 == 3 { id(0x1ff) } else { group_id(*g) })
            .collect(),
        wids: c
            .wids
            .iter()
            .map(|w| match w % 4 {
                0 => uuid(GLOBAL_ADMIN),
                1 => uuid(APPS_READER),
                2 => uuid(MIXED),
                _ => id(0x200),
            })
            .collect(),
    }
}

/// Checks that a chain in an explanation is made of real memberships.
fn assert_chain(t: &TenantDump, subject: &Subject, principal_id: Uuid, via: &[Uuid], token: bool) {
    if via.is_empty() {
        assert_eq!(principal_id, subject.id);
        return;
    }
    assert_eq!(*via.last().unwrap(), principal_id);
    let edge = |m: Uuid, g: Uuid| t.group_members.iter().any(|e| e.id == m && e.group_id == g);
    if token {
        assert!(subject.groups.contains(&via[0]));
    } else {
        assert!(
            edge(subject.id, via[0]),
            "first link {} -> {}",
            subject.id,
            via[0]
        );
    }
    for w in via.windows(2) {
        assert!(edge(w[0], w[1]), "link {} -> {}", w[0], w[1]);
    }
}

fn compare(
    dump: &Dump,
    snapshot: &Snapshot,
    depth: usize,
    c: &CheckRecipe,
) -> Result<(), TestCaseError> {
    let tenant = tenant_id(c.tenant as u128);
    let subject = subject_of(c);
    let action = action(c.action);
    let resource = resource(c.resource);
    let now = now_of(c.now);
    let expected = reference::check(
        dump,
        &catalog(),
        tenant,
        &subject,
        &action,
        &resource,
        &c.facts,
        now,
        depth,
    );
    let req = CheckRequest {
        facts: c.facts.clone(),
        ..request(subject.clone(), &action, &resource)
    };
    let fast = snapshot.check(tenant, &req, now, false);
    prop_assert_eq!(
        fast.allowed,
        expected.allowed,
        "fast path: {:?} {} {} {:?}",
        subject,
        action,
        resource,
        c.facts
    );
    prop_assert!(fast.reasons.is_empty());
    let explained = snapshot.check(tenant, &req, now, true);
    prop_assert_eq!(explained.allowed, expected.allowed);
    let fallback = empty_tenant(tenant);
    let t = dump
        .tenants
        .iter()
        .find(|t| t.tenant == tenant)
        .unwrap_or(&fallback);
    let mut grants = BTreeSet::new();
    let mut denies = BTreeSet::new();
    let mut bound = false;
    for r in &explained.reasons {
        match r {
            Reason::Grant(g) => {
                grants.insert((g.assignment_id, g.role_definition_id));
                prop_assert!(reference::pattern_matches(&g.matched_pattern, &action));
                // An allow says when its grant ends and whether it is an activation.
                let assigned = g
                    .assignment_id
                    .and_then(|aid| t.role_assignments.iter().find(|a| a.id == aid));
                prop_assert_eq!(g.end_date_time, assigned.and_then(|a| a.end_date_time));
                prop_assert_eq!(
                    g.activation_request_id,
                    assigned.and_then(|a| a.activation_request_id)
                );
                if g.activation_request_id.is_some() {
                    prop_assert!(g.end_date_time.is_some_and(|end| now < end));
                }
                assert_chain(t, &subject, g.principal_id, &g.via, g.via_token_groups);
            }
            Reason::Deny(d) => {
                denies.insert(d.deny_assignment_id);
                prop_assert!(reference::pattern_matches(&d.matched_pattern, &action));
                assert_chain(t, &subject, d.principal_id, &d.via, d.via_token_groups);
            }
            Reason::NotGranted(m) => {
                prop_assert!(!expected
                    .grants
                    .contains(&(m.assignment_id, m.role_definition_id)));
                let holds = |text: &str| {
                    reference::condition_holds(t, &subject, &action, &resource, &c.facts, now, text)
                };
                let assigned = m
                    .assignment_id
                    .map(|aid| t.role_assignments.iter().find(|a| a.id == aid).unwrap());
                if let Some(a) = assigned {
                    let covers = reference::covers(t, a.directory_scope_id.as_str(), &resource);
                    prop_assert_eq!(m.why == Miss::ScopeDoesNotCover, !covers);
                }
                match &m.why {
                    Miss::ConditionNotMet {
                        allowed_pattern,
                        condition,
                    } => {
                        prop_assert!(reference::pattern_matches(allowed_pattern, &action));
                        prop_assert!(!holds(condition), "{} holds", condition);
                    }
                    Miss::AssignmentConditionNotMet { condition } => {
                        let a = assigned.unwrap();
                        prop_assert_eq!(a.condition.as_ref(), Some(condition));
                        prop_assert!(!holds(condition), "{} holds", condition);
                    }
                    _ => {}
                }
            }
            Reason::GroupDepthLimit { .. } => bound = true,
            Reason::NoAssignments { .. } | Reason::MoreNotGranted { .. } => {}
        }
    }
    prop_assert_eq!(bound, expected.bound_hit);
    if !expected.denies.is_empty() {
        prop_assert_eq!(denies, expected.denies);
    } else if expected.allowed {
        prop_assert_eq!(grants, expected.grants);
    }
    Ok(())
}

fn depth_of(i: u8) -> usize {
    [1, 2, 3, MAX_GROUP_DEPTH][i as usize % 4]
}

/// A broad allowed pattern (most actions match it) or any pattern.
fn broad_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "*",
            "ns/*",
            "NS/Apps/*",
            "*/read",
            "ns/apps/allProperties/allTasks",
            "ns/allEntities/allProperties/allTasks",
            "ns.two/allEntities/allTasks",
        ])
        .prop_map(str::to_owned),
        1 => pattern_strategy(),
    ]
}

/// Directories where conditions decide: custom roles with broad patterns, assignments
/// mostly active at scopes covering the probed resources, most entries and assignments
/// conditional, principals mostly in the directory. [`dir_recipe`] draws sparse
/// directories where most checks are denied or allowed through `wids`.
fn dense_dir_recipe() -> impl Strategy<Value = DirRecipe> {
    let entry = (
        prop::collection::vec(broad_pattern(), 1..3),
        prop::collection::vec(pattern_strategy(), 0..2),
        maybe_condition(0.6),
    );
    let roles = prop::collection::vec(
        (
            prop::bool::weighted(0.95),
            prop::collection::vec(entry, 1..4),
        )
            .prop_map(|(enabled, entries)| RoleRecipe { enabled, entries }),
        1..4,
    );
    // Alice, bob, and the groups they join (principals 4 and 5 are groups 0 and 1).
    let assignment = (
        prop::sample::select(vec![0u8, 1, 4, 5]),
        0u8..4,
        prop::sample::select(vec![0u8, 0, 0, 2, 6, 11]),
        prop::sample::select(vec![0u8, 0, 0, 0, 4, 3]),
        maybe_condition(0.5),
    );
    let deny = (
        any::<u8>(),
        prop::collection::vec(pattern_strategy(), 1..2),
        prop::collection::vec(pattern_strategy(), 0..2),
        any::<u8>(),
    );
    (
        roles,
        prop::collection::vec(assignment, 1..8),
        prop::collection::vec(deny, 0..2),
        prop::collection::vec((prop::sample::select(vec![0u8, 1, 4]), 0u8..2), 0..4),
        prop::collection::vec(principal_recipe(), 1..5),
    )
        .prop_map(
            |(roles, assignments, denies, edges, principals)| DirRecipe {
                roles,
                assignments,
                denies,
                edges,
                unit_members: vec![],
                principals,
            },
        )
}

/// Checks by users and the service principal on the resources [`dense_dir_recipe`]
/// assigns at, with random facts and no `wids`.
fn dense_check_recipe() -> impl Strategy<Value = CheckRecipe> {
    (
        prop::sample::select(vec![0u8, 0, 1, 1, 9]),
        prop::collection::vec(any::<u8>(), 0..2),
        any::<u16>(),
        prop::sample::select(vec![0u8, 2, 3, 6, 7, 11, 12]),
        prop::sample::select(vec![0u8, 0, 0, 3]),
        facts_strategy(),
    )
        .prop_map(
            |(subject, token_groups, action, resource, now, facts)| CheckRecipe {
                tenant: 0,
                subject,
                token_groups,
                wids: vec![],
                action,
                resource,
                now,
                facts,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn engine_agrees_with_the_reference_on_random_directories(
        first in dir_recipe(),
        second in dir_recipe(),
        checks in prop::collection::vec(check_recipe(), 1..12),
        depth in any::<u8>(),
    ) {
        let depth = depth_of(depth);
        let dump = dump_of(vec![build_tenant(tenant_id(0), &first), build_tenant(tenant_id(1), &second)]);
        let snapshot = Snapshot::build(&dump, &catalog()).with_max_group_depth(depth);
        for c in &checks {
            compare(&dump, &snapshot, depth, c)?;
        }
    }

    /// Else every random condition would be one that never holds, and the comparisons
    /// above would test little.
    #[test]
    fn random_conditions_parse(c in condition_strategy()) {
        prop_assert!(rolecall::model::Condition::parse(&c).is_ok(), "{}", c);
    }

    #[test]
    fn conditions_decide_as_in_the_reference_on_dense_directories(
        r in dense_dir_recipe(),
        checks in prop::collection::vec(dense_check_recipe(), 1..12),
    ) {
        let dump = dump_of(vec![build_tenant(tenant_id(0), &r)]);
        let snapshot = Snapshot::build(&dump, &catalog());
        for c in &checks {
            compare(&dump, &snapshot, MAX_GROUP_DEPTH, c)?;
        }
    }

    #[test]
    fn patterns_agree_with_the_reference_matcher(p in pattern_strategy(), a in any::<u16>(), pieces in prop::collection::vec(prop::sample::select(vec!["ns", "apps", "x", "read", "a", "s"]), 1..6)) {
        let random_action = pieces.join("/");
        for act in [action(a), random_action] {
            if Action::parse(&act).is_err() { continue; }
            let dir = with_pattern(&p);
            let got = dir.snapshot().check(tenant_id(0), &request(Subject::new(id(ALICE)), &act, "/"), base(), false).allowed;
            prop_assert_eq!(got, reference::pattern_matches(&p, &act), "pattern {} action {}", p, act);
        }
    }
}

/// Who-can against the reference, on directory `r` with `probes` of (action, resource,
/// now).
fn who_can_agrees(
    r: &DirRecipe,
    probes: &[(u16, u8, u8)],
    depth: usize,
) -> Result<(), TestCaseError> {
    let t = build_tenant(tenant_id(0), r);
    let dump = dump_of(vec![t.clone()]);
    let snapshot = Snapshot::build(&dump, &catalog()).with_max_group_depth(depth);
    let known = reference::known_principals(&t);
    for &(a, res, now) in probes {
        let (act, res, now) = (action(a), resource(res), now_of(now));
        let who = snapshot.who_can(
            tenant_id(0),
            &Action::parse(&act).unwrap(),
            &scope(&res),
            now,
        );
        let listed: BTreeSet<Uuid> = who.iter().map(|x| x.principal_id).collect();
        // Who-can lists a grant that may allow under its conditions: the reference with
        // every condition counted as true.
        let may = |p: Uuid, holds: bool| {
            reference::decide(
                &dump,
                &catalog(),
                tenant_id(0),
                &Subject::new(p),
                &act,
                &res,
                Conditions::Assume(holds),
                now,
                depth,
            )
            .allowed
        };
        let allowed: BTreeSet<Uuid> = known.iter().copied().filter(|p| may(*p, true)).collect();
        prop_assert_eq!(&listed, &allowed, "{} on {}", act, res);
        for access in &who {
            let a = t
                .role_assignments
                .iter()
                .find(|a| a.id == access.assignment_id)
                .unwrap();
            let holder = access.via.last().copied().unwrap_or(access.principal_id);
            prop_assert_eq!(a.principal_id, holder);
            // Listed without conditions exactly when the reference, counting every
            // condition as false, allows.
            prop_assert_eq!(
                access.conditions.is_empty(),
                may(access.principal_id, false),
                "{} on {}: {:?}",
                act,
                res,
                access
            );
            // At most the entry's condition, then the assignment's.
            prop_assert!(access.conditions.len() <= 2);
            if let Some(c) = &a.condition {
                prop_assert_eq!(access.conditions.last(), Some(c));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn who_can_lists_exactly_the_principals_a_check_allows(
        r in dir_recipe(),
        probes in prop::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..6),
        depth in any::<u8>(),
    ) {
        who_can_agrees(&r, &probes, depth_of(depth))?;
    }

    /// Escalation: an exact action is held exactly when the reference, counting every
    /// condition as false, allows it at the scope; a wildcard reported held never covers an
    /// action (of the probed ones) that the reference would refuse.
    #[test]
    fn missing_permissions_never_counts_a_conditional_grant_as_held(
        mut r in dense_dir_recipe(),
        plain in prop::bool::weighted(0.3),
        wanted in prop::collection::vec(
            (
                prop::collection::vec(prop_oneof![broad_pattern(), any::<u16>().prop_map(action)], 1..3),
                prop::collection::vec(pattern_strategy(), 0..2),
            ),
            1..3,
        ),
        probes in prop::collection::vec(
            (prop::sample::select(vec![0u8, 1]), prop::sample::select(vec![0u8, 2, 3, 6, 11]), prop::sample::select(vec![0u8, 0, 3])),
            1..4,
        ),
    ) {
        if plain {
            // Now and then no condition at all, so that more is held.
            for role in &mut r.roles {
                role.entries.iter_mut().for_each(|e| e.2 = None);
            }
            r.assignments.iter_mut().for_each(|a| a.4 = None);
        }
        let dump = dump_of(vec![build_tenant(tenant_id(0), &r)]);
        let snapshot = Snapshot::build(&dump, &catalog());
        let wanted = RoleRecipe { enabled: true, entries: wanted.into_iter().map(|(a, x)| (a, x, None)).collect() };
        let entries = role_of(0, &wanted).role_permissions;
        for (who, res, now) in probes {
            let (subject, res, now) = (Subject::new(principal(who)), resource(res), now_of(now));
            let missing = snapshot.missing_permissions(tenant_id(0), &subject, &entries, &scope(&res), now);
            let held = |act: &str| {
                reference::decide(&dump, &catalog(), tenant_id(0), &subject, act, &res, Conditions::Assume(false), now, MAX_GROUP_DEPTH).allowed
            };
            for entry in &entries {
                for p in &entry.allowed_resource_actions {
                    let p = p.as_str();
                    let exact = !p.contains('*')
                        && !p.split('/').any(|s| ["allentities", "allproperties", "alltasks"].contains(&s.to_lowercase().as_str()));
                    let reported = missing.iter().any(|m| m == p);
                    if exact {
                        let expected = Action::parse(p).is_err() || !held(p);
                        prop_assert_eq!(reported, expected, "{} at {} for {}", p, res, subject.id);
                    } else if !reported {
                        for a in (0..72u16).map(action) {
                            let excluded = entry.excluded_resource_actions.iter().any(|x| reference::pattern_matches(x.as_str(), &a));
                            if reference::pattern_matches(p, &a) && !excluded {
                                prop_assert!(held(&a), "{} reported held at {} for {} but {} is not", p, res, subject.id, a);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn who_can_lists_exactly_the_principals_a_check_allows_on_dense_directories(
        r in dense_dir_recipe(),
        probes in prop::collection::vec(
            (any::<u16>(), prop::sample::select(vec![0u8, 2, 3, 6, 7, 11, 12]), prop::sample::select(vec![0u8, 0, 0, 3])),
            1..6,
        ),
    ) {
        who_can_agrees(&r, &probes, MAX_GROUP_DEPTH)?;
    }
}

// ---------------------------------------------------------------------------------------
// Property tests: apply(changes) == build(dump after changes)
// ---------------------------------------------------------------------------------------

/// A store stand-in: applies operations to a dump and logs them as the store would.
struct Log {
    t: TenantDump,
    changes: Vec<Change>,
    revision: i64,
    sequence: i64,
}

impl Log {
    fn record<T: serde::Serialize>(
        &mut self,
        entity: EntityType,
        op: ChangeOp,
        before: Option<&T>,
        after: Option<&T>,
    ) {
        self.changes.push(Change {
            revision: Revision(self.revision),
            sequence: self.sequence,
            tenant_id: self.t.tenant,
            entity_type: entity,
            entity_id: String::new(),
            op,
            before: before.map(|b| serde_json::to_value(b).unwrap()),
            after: after.map(|a| serde_json::to_value(a).unwrap()),
            actor: "prop".into(),
            at: base(),
        });
        self.sequence += 1;
    }

    fn next_revision(&mut self) {
        self.revision += 1;
        self.sequence = 0;
    }

    fn delete_assignments_of(&mut self, p: Uuid) {
        let (gone, kept): (Vec<_>, Vec<_>) = self
            .t
            .role_assignments
            .drain(..)
            .partition(|a| a.principal_id == p);
        self.t.role_assignments = kept;
        for a in gone {
            self.record(EntityType::RoleAssignment, ChangeOp::Delete, Some(&a), None);
        }
        let (gone, kept): (Vec<_>, Vec<_>) = self
            .t
            .deny_assignments
            .drain(..)
            .partition(|a| a.principal_id == p);
        self.t.deny_assignments = kept;
        for d in gone {
            self.record(EntityType::DenyAssignment, ChangeOp::Delete, Some(&d), None);
        }
    }

    fn apply(&mut self, op: &Op, fresh: u128) {
        self.next_revision();
        let custom = self.t.role_definitions.len();
        match *op {
            Op::Assign(p, r, res, w, ref condition) => {
                let a = assignment(
                    id(0x3000 + fresh),
                    principal(p),
                    role_ref(r, custom.max(1)),
                    &resource(res),
                );
                let mut a = with_condition(a, condition);
                a.principal_type = principal_type(p);
                (a.start_date_time, a.end_date_time) = window(w);
                if matches!(w % 8, 3..=5) && fresh % 2 == 0 {
                    a.activation_request_id = Some(id(0x9000 + fresh));
                }
                self.t.role_assignments.push(a.clone());
                self.record(EntityType::RoleAssignment, ChangeOp::Create, None, Some(&a));
            }
            Op::Unassign(i) | Op::Reassign(i, ..) if self.t.role_assignments.is_empty() => {
                let _ = i;
            }
            Op::Unassign(i) => {
                let a = self
                    .t
                    .role_assignments
                    .remove(i as usize % self.t.role_assignments.len());
                self.record(EntityType::RoleAssignment, ChangeOp::Delete, Some(&a), None);
            }
            Op::Reassign(i, res, w, ref condition) => {
                let n = i as usize % self.t.role_assignments.len();
                let before = self.t.role_assignments[n].clone();
                let mut after = with_condition(before.clone(), condition);
                after.directory_scope_id = scope(&resource(res));
                (after.start_date_time, after.end_date_time) = window(w);
                self.t.role_assignments[n] = after.clone();
                self.record(
                    EntityType::RoleAssignment,
                    ChangeOp::Update,
                    Some(&before),
                    Some(&after),
                );
            }
            Op::Join(m, g) => {
                let (m, g) = (principal(m), group_id(g));
                if !self
                    .t
                    .group_members
                    .iter()
                    .any(|e| e.id == m && e.group_id == g)
                {
                    let e = member(g, m, PrincipalType::User);
                    self.t.group_members.push(e.clone());
                    self.record(EntityType::GroupMember, ChangeOp::Create, None, Some(&e));
                }
            }
            Op::Leave(i) => {
                if !self.t.group_members.is_empty() {
                    let e = self
                        .t
                        .group_members
                        .remove(i as usize % self.t.group_members.len());
                    self.record(EntityType::GroupMember, ChangeOp::Delete, Some(&e), None);
                }
            }
            Op::Deny(p, ref actions, res) => {
                let a: Vec<&str> = actions.iter().map(String::as_str).collect();
                let d = deny(id(0x4000 + fresh), principal(p), &a, &[], &resource(res));
                self.t.deny_assignments.push(d.clone());
                self.record(EntityType::DenyAssignment, ChangeOp::Create, None, Some(&d));
            }
            Op::Undeny(i) => {
                if !self.t.deny_assignments.is_empty() {
                    let d = self
                        .t
                        .deny_assignments
                        .remove(i as usize % self.t.deny_assignments.len());
                    self.record(EntityType::DenyAssignment, ChangeOp::Delete, Some(&d), None);
                }
            }
            Op::Redeny(i, p) => {
                if !self.t.deny_assignments.is_empty() {
                    let n = i as usize % self.t.deny_assignments.len();
                    let before = self.t.deny_assignments[n].clone();
                    self.t.deny_assignments[n].principal_id = principal(p);
                    let after = self.t.deny_assignments[n].clone();
                    self.record(
                        EntityType::DenyAssignment,
                        ChangeOp::Update,
                        Some(&before),
                        Some(&after),
                    );
                }
            }
            Op::Role(ref recipe) => {
                let def = role_of(custom.min(4), recipe);
                match self.t.role_definitions.iter().position(|r| r.id == def.id) {
                    Some(i) => {
                        let before =
                            std::mem::replace(&mut self.t.role_definitions[i], def.clone());
                        self.record(
                            EntityType::RoleDefinition,
                            ChangeOp::Update,
                            Some(&before),
                            Some(&def),
                        );
                    }
                    None => {
                        self.t.role_definitions.push(def.clone());
                        self.record(
                            EntityType::RoleDefinition,
                            ChangeOp::Create,
                            None,
                            Some(&def),
                        );
                    }
                }
            }
            Op::DropRole(i) => {
                if !self.t.role_definitions.is_empty() {
                    let r = self
                        .t
                        .role_definitions
                        .remove(i as usize % self.t.role_definitions.len());
                    self.record(EntityType::RoleDefinition, ChangeOp::Delete, Some(&r), None);
                }
            }
            Op::DropGroup(g, cascade_first) => {
                let g = group_id(g);
                let Some(pos) = self.t.groups.iter().position(|x| x.id == g) else {
                    return;
                };
                let removed = self.t.groups.remove(pos);
                if !cascade_first {
                    self.record(EntityType::Group, ChangeOp::Delete, Some(&removed), None);
                }
                let (gone, kept): (Vec<_>, Vec<_>) = self
                    .t
                    .group_members
                    .drain(..)
                    .partition(|e| e.group_id == g || e.id == g);
                self.t.group_members = kept;
                for e in gone {
                    self.record(EntityType::GroupMember, ChangeOp::Delete, Some(&e), None);
                }
                self.delete_assignments_of(g);
                if cascade_first {
                    self.record(EntityType::Group, ChangeOp::Delete, Some(&removed), None);
                }
            }
            Op::UnitAdd(u, res) => {
                let resource = resource(res);
                let u = unit_id(u);
                // Compared as scopes (canonical), as the store's idempotent add compares them.
                if resource != "/"
                    && !self
                        .t
                        .administrative_unit_members
                        .iter()
                        .any(|m| m.administrative_unit_id == u && m.resource == scope(&resource))
                {
                    let m = unit_member(u, &resource);
                    self.t.administrative_unit_members.push(m.clone());
                    self.record(
                        EntityType::AdministrativeUnitMember,
                        ChangeOp::Create,
                        None,
                        Some(&m),
                    );
                }
            }
            Op::UnitRemove(i) => {
                if !self.t.administrative_unit_members.is_empty() {
                    let m = self
                        .t
                        .administrative_unit_members
                        .remove(i as usize % self.t.administrative_unit_members.len());
                    self.record(
                        EntityType::AdministrativeUnitMember,
                        ChangeOp::Delete,
                        Some(&m),
                        None,
                    );
                }
            }
            Op::PutPrincipal(ref recipe) => {
                let id = principal(recipe.who);
                let held: Vec<String> = self
                    .t
                    .principals
                    .iter()
                    .filter(|p| p.id != id)
                    .flat_map(|p| p.aliases.clone())
                    .collect();
                let record =
                    principal_record(recipe, &|a| held.iter().any(|h| h.eq_ignore_ascii_case(a)));
                match self.t.principals.iter().position(|p| p.id == id) {
                    Some(i) => {
                        let before = std::mem::replace(&mut self.t.principals[i], record.clone());
                        self.record(
                            EntityType::Principal,
                            ChangeOp::Update,
                            Some(&before),
                            Some(&record),
                        );
                    }
                    None => {
                        self.t.principals.push(record.clone());
                        self.record(EntityType::Principal, ChangeOp::Create, None, Some(&record));
                    }
                }
            }
            Op::DropPrincipal(i) => {
                if !self.t.principals.is_empty() {
                    let p = self
                        .t
                        .principals
                        .remove(i as usize % self.t.principals.len());
                    self.record(EntityType::Principal, ChangeOp::Delete, Some(&p), None);
                }
            }
            Op::DropUnit(u, log_members) => {
                let u = unit_id(u);
                let Some(pos) = self.t.administrative_units.iter().position(|x| x.id == u) else {
                    return;
                };
                let removed = self.t.administrative_units.remove(pos);
                let (gone, kept): (Vec<_>, Vec<_>) = self
                    .t
                    .administrative_unit_members
                    .drain(..)
                    .partition(|m| m.administrative_unit_id == u);
                self.t.administrative_unit_members = kept;
                self.record(
                    EntityType::AdministrativeUnit,
                    ChangeOp::Delete,
                    Some(&removed),
                    None,
                );
                if log_members {
                    for m in gone {
                        self.record(
                            EntityType::AdministrativeUnitMember,
                            ChangeOp::Delete,
                            Some(&m),
                            None,
                        );
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Assign(u8, u8, u8, u8, Option<String>),
    Unassign(u8),
    Reassign(u8, u8, u8, Option<String>),
    Join(u8, u8),
    Leave(u8),
    Deny(u8, Vec<String>, u8),
    Undeny(u8),
    Redeny(u8, u8),
    Role(RoleRecipe),
    DropRole(u8),
    DropGroup(u8, bool),
    UnitAdd(u8, u8),
    UnitRemove(u8),
    DropUnit(u8, bool),
    PutPrincipal(PrincipalRecipe),
    DropPrincipal(u8),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), maybe_condition(0.25)).prop_map(|(a, b, c, d, e)| Op::Assign(a, b, c, d, e)),
        2 => any::<u8>().prop_map(Op::Unassign),
        2 => (any::<u8>(), any::<u8>(), any::<u8>(), maybe_condition(0.25)).prop_map(|(a, b, c, d)| Op::Reassign(a, b, c, d)),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Join(a, b)),
        2 => any::<u8>().prop_map(Op::Leave),
        1 => (any::<u8>(), prop::collection::vec(pattern_strategy(), 1..3), any::<u8>()).prop_map(|(a, b, c)| Op::Deny(a, b, c)),
        1 => any::<u8>().prop_map(Op::Undeny),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Redeny(a, b)),
        2 => role_recipe().prop_map(Op::Role),
        1 => any::<u8>().prop_map(Op::DropRole),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::DropGroup(a, b)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::UnitAdd(a, b)),
        1 => any::<u8>().prop_map(Op::UnitRemove),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::DropUnit(a, b)),
        2 => principal_recipe().prop_map(Op::PutPrincipal),
        1 => any::<u8>().prop_map(Op::DropPrincipal),
    ]
}

/// Two requests' facts for the fingerprint: none (stored attributes alone decide), and
/// one that sets every attribute of the vocabulary.
fn probe_facts() -> [Facts; 2] {
    let rich = Facts {
        subject: attrs(json!({"dept": "eng", "level": 1, "roles": ["admin"]})),
        resource: attrs(json!({"status": "active", "owner": ["u1", "alice@x.test"]})),
        action: attrs(json!({"soft": true})),
        context: attrs(json!({"ip": "10.0.0.1"})),
        ..Facts::default()
    };
    [Facts::default(), rich]
}

/// Decisions, then who-can's principals with the conditions it reports.
type Fingerprint = (Vec<bool>, Vec<Vec<(Uuid, Vec<String>)>>);

/// Every decision on a grid of subjects, actions, resources and facts, plus who-can.
fn fingerprint(snapshot: &Snapshot) -> Fingerprint {
    let mut decisions = Vec::new();
    let mut who = Vec::new();
    let facts = probe_facts();
    for a in [0u16, 3, 5, 14, 29, 40] {
        for res in 0..13u8 {
            let act = action(a);
            for p in 0..11u8 {
                for f in &facts {
                    let req = CheckRequest {
                        facts: f.clone(),
                        ..request(Subject::new(principal(p)), &act, &resource(res))
                    };
                    decisions.push(snapshot.check(tenant_id(0), &req, base(), false).allowed);
                }
            }
            let list = snapshot.who_can(
                tenant_id(0),
                &Action::parse(&act).unwrap(),
                &scope(&resource(res)),
                base(),
            );
            who.push(
                list.iter()
                    .map(|x| (x.principal_id, x.conditions.clone()))
                    .collect(),
            );
        }
    }
    (decisions, who)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn applying_changes_equals_building_from_the_dump_after_them(
        start in dir_recipe(),
        ops in prop::collection::vec(op_strategy(), 1..25),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let t0 = build_tenant(tenant_id(0), &start);
        let initial = dump_of(vec![t0.clone()]);
        let mut log = Log { t: t0, changes: Vec::new(), revision: 1, sequence: 0 };
        for (n, op) in ops.iter().enumerate() {
            log.apply(op, n as u128);
        }
        let mut after = dump_of(vec![log.t.clone()]);
        after.revision = log.changes.last().map_or(Revision(1), |c| c.revision);

        let first = Snapshot::build(&initial, &catalog());
        let before_print = fingerprint(&first);
        // Apply in a few batches, cut at random revision boundaries (the store never splits
        // a revision across calls).
        let boundaries: Vec<usize> = (0..=log.changes.len())
            .filter(|&i| i == 0 || i == log.changes.len() || log.changes[i].revision != log.changes[i - 1].revision)
            .collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| boundaries[c.index(boundaries.len())]).collect();
        points.push(0);
        points.push(log.changes.len());
        points.sort_unstable();
        let mut applied = first.clone();
        for w in points.windows(2) {
            applied = applied.apply(&deltas(&log.changes[w[0]..w[1]])).unwrap();
        }
        let built = Snapshot::build(&after, &catalog());
        prop_assert_eq!(applied.revision(), after.revision);
        prop_assert!(fingerprint(&applied) == fingerprint(&built), "applied and built snapshots disagree");
        prop_assert_eq!(applied.describe(), built.describe());
        // Structure sharing never leaks a change into the older snapshot.
        prop_assert!(fingerprint(&first) == before_print, "the first snapshot changed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Past 16 grants a principal's grants (and a scope's holders) are kept by scope; this
    /// drives principals across that line and back through `apply`.
    #[test]
    fn principals_with_many_grants_agree_with_the_reference(
        assigns in prop::collection::vec((0u8..3, any::<u8>(), any::<u8>(), any::<u8>(), maybe_condition(0.2)), 17..60),
        principals in prop::collection::vec(principal_recipe(), 0..3),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..55),
        checks in prop::collection::vec(check_recipe(), 1..10),
    ) {
        // Holders: alice (0), bob (1) and g1 (index 4, which alice is in).
        let who = [0u8, 1, 4];
        let recipe = DirRecipe {
            roles: vec![RoleRecipe { enabled: true, entries: vec![(vec!["ns/apps/*".into()], vec!["ns/apps/delete".into()], None)] }],
            // Half of them at `/`, so that scope's holders pass 16 too.
            assignments: assigns.iter().map(|(p, r, res, w, c)| (who[*p as usize], *r, if *res < 128 { 0 } else { *res }, *w, c.clone())).collect(),
            denies: vec![],
            edges: vec![(0, 0)],
            unit_members: vec![(0, 2), (1, 6)],
            principals,
        };
        let t = build_tenant(tenant_id(0), &recipe);
        let dump = dump_of(vec![t.clone()]);
        let snapshot = Snapshot::build(&dump, &catalog());
        for c in &checks {
            compare(&dump, &snapshot, MAX_GROUP_DEPTH, &CheckRecipe { tenant: 0, ..c.clone() })?;
        }
        let mut remaining = t.role_assignments.clone();
        let mut changes = Vec::new();
        for (n, r) in removals.iter().enumerate() {
            if remaining.is_empty() {
                break;
            }
            let a = remaining.remove(r.index(remaining.len()));
            changes.push(change(2 + n as i64, 0, EntityType::RoleAssignment, ChangeOp::Delete, json(&a), None));
        }
        let applied = snapshot.apply(&deltas(&changes)).unwrap();
        let mut after = dump_of(vec![TenantDump { role_assignments: remaining, ..t }]);
        after.revision = changes.last().map_or(Revision(1), |c| c.revision);
        for c in &checks {
            compare(&after, &applied, MAX_GROUP_DEPTH, &CheckRecipe { tenant: 0, ..c.clone() })?;
        }
        let built = Snapshot::build(&after, &catalog());
        prop_assert!(fingerprint(&applied) == fingerprint(&built));
        prop_assert_eq!(applied.describe(), built.describe());
    }
}

// ---------------------------------------------------------------------------------------
// Property tests: search == checking every candidate
// ---------------------------------------------------------------------------------------

/// Documents of type `doc` at the probed resource paths, with random attributes.
fn docs_strategy() -> impl Strategy<Value = Vec<(u8, Map<String, Value>)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![0u8, 2, 3, 4, 6, 7, 9, 11, 12]),
            resource_attrs(),
        ),
        0..7,
    )
}

fn docs_of(docs: &[(u8, Map<String, Value>)]) -> Vec<Resource> {
    docs.iter()
        .enumerate()
        .map(|(i, (res, attributes))| Resource {
            resource_type: "doc".to_owned(),
            id: format!("d{i}"),
            path: scope(&resource(*res)),
            display_name: None,
            attributes: attributes.clone(),
            created_date_time: base(),
            last_modified_date_time: base(),
        })
        .collect()
}

/// Subject, resource and action search against the reference deciding every candidate:
/// every principal the tenant mentions, every document, every exact action of the tenant's
/// roles and the catalog.
fn search_agrees(
    r: &DirRecipe,
    docs: &[(u8, Map<String, Value>)],
    probes: &[(u16, u8, u8, Facts)],
) -> Result<(), TestCaseError> {
    let mut t = build_tenant(tenant_id(0), r);
    t.resources = docs_of(docs);
    let dump = dump_of(vec![t.clone()]);
    let catalog = catalog();
    let snapshot = Snapshot::build(&dump, &catalog);
    let tenant = tenant_id(0);
    let allowed = |subject: Uuid, act: &str, doc: &Resource, facts: &Facts, now| {
        let mut facts = facts.clone();
        facts.resource_type = Some("doc".to_owned());
        facts.resource_id = Some(doc.id.clone());
        reference::check(
            &dump,
            &catalog,
            tenant,
            &Subject::new(subject),
            act,
            doc.path.as_str(),
            &facts,
            now,
            MAX_GROUP_DEPTH,
        )
        .allowed
    };
    let people: Vec<Uuid> = reference::known_principals(&t)
        .into_iter()
        .filter(|p| !t.groups.iter().any(|g| g.id == *p))
        .collect();
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    for role in t.role_definitions.iter().chain(catalog.roles()) {
        for entry in &role.role_permissions {
            for p in &entry.allowed_resource_actions {
                let lower = p.as_str().to_lowercase();
                let keyword = lower
                    .split('/')
                    .any(|s| ["allentities", "allproperties", "alltasks"].contains(&s));
                if !lower.contains('*') && !keyword {
                    known.entry(lower).or_insert_with(|| p.as_str().to_owned());
                }
            }
        }
    }
    for (a, pick, now, facts) in probes {
        let (act, now) = (action(*a), now_of(*now));
        let parsed = Action::parse(&act).unwrap();
        let mut facts = facts.clone();
        facts.resource_id = None;
        facts.resource_type = None;
        facts.action_name = None;
        for doc in &t.resources {
            let mut named = facts.clone();
            named.resource_type = Some("doc".to_owned());
            named.resource_id = Some(doc.id.clone());
            let found = snapshot.search_subjects(
                tenant,
                &[PrincipalType::User, PrincipalType::ServicePrincipal],
                &parsed,
                &doc.path,
                &named,
                now,
                None,
                usize::MAX,
            );
            let expected: Vec<Uuid> = people
                .iter()
                .copied()
                .filter(|p| allowed(*p, &act, doc, &facts, now))
                .collect();
            prop_assert_eq!(&found.items, &expected, "who may {} {}", act, doc.id);
            // One at a time, the same answer.
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = snapshot.search_subjects(
                    tenant,
                    &[PrincipalType::User, PrincipalType::ServicePrincipal],
                    &parsed,
                    &doc.path,
                    &named,
                    now,
                    after,
                    1,
                );
                paged.extend(page.items.iter().copied());
                if !page.more {
                    break;
                }
                after = page.items.last().copied();
            }
            prop_assert_eq!(&paged, &expected);
        }
        let subject = people
            .get(*pick as usize % people.len().max(1))
            .copied()
            .unwrap_or(principal(0));
        let found = snapshot.search_resources(
            tenant,
            &Subject::new(subject),
            "doc",
            SearchAction::Fixed(&parsed),
            &facts,
            now,
            None,
            usize::MAX,
        );
        let mut expected: Vec<&str> = t
            .resources
            .iter()
            .filter(|d| allowed(subject, &act, d, &facts, now))
            .map(|d| d.id.as_str())
            .collect();
        expected.sort_unstable();
        let ids: Vec<&str> = found.items.iter().map(|r| r.id.as_str()).collect();
        prop_assert_eq!(&ids, &expected, "what {} may {}", subject, act);
        let mut paged: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = snapshot.search_resources(
                tenant,
                &Subject::new(subject),
                "doc",
                SearchAction::Fixed(&parsed),
                &facts,
                now,
                after.as_deref(),
                2,
            );
            paged.extend(page.items.iter().map(|r| r.id.clone()));
            if !page.more {
                break;
            }
            after = page.items.last().map(|r| r.id.clone());
        }
        prop_assert_eq!(&paged, &expected);

        if let Some(doc) = t.resources.get(*pick as usize % t.resources.len().max(1)) {
            let mut named = facts.clone();
            named.resource_type = Some("doc".to_owned());
            named.resource_id = Some(doc.id.clone());
            let found = snapshot.search_actions(
                tenant,
                &Subject::new(subject),
                &doc.path,
                &named,
                now,
                &|a| Some(a.to_lowercase()),
            );
            let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
            let expected: Vec<&str> = known
                .keys()
                .filter(|a| {
                    let mut with_name = facts.clone();
                    with_name.action_name = Some((*a).clone());
                    allowed(subject, a, doc, &with_name, now)
                })
                .map(String::as_str)
                .collect();
            prop_assert_eq!(&names, &expected, "what {} may do to {}", subject, doc.id);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn search_answers_what_checking_every_candidate_answers(
        r in dense_dir_recipe(),
        docs in docs_strategy(),
        probes in prop::collection::vec((any::<u16>(), any::<u8>(), prop::sample::select(vec![0u8, 0, 0, 3]), facts_strategy()), 1..4),
    ) {
        search_agrees(&r, &docs, &probes)?;
    }

    #[test]
    fn search_answers_what_checking_every_candidate_answers_on_random_directories(
        r in dir_recipe(),
        docs in docs_strategy(),
        probes in prop::collection::vec((any::<u16>(), any::<u8>(), any::<u8>(), facts_strategy()), 1..4),
    ) {
        search_agrees(&r, &docs, &probes)?;
    }
}
