//! Synthetic directories for benchmarks, deterministic for a given seed. Not part of the
//! library (so `rand` is only a dev-dependency): each bench includes it with
//! `#[path = "support/dataset.rs"]`, and `tests/engine_reference.rs` tests it.
//!
//! Shape (for [`DatasetSize::L`]): one tenant with 1M role assignments, 200k users (each in
//! 1 to 3 groups), 20k service principals, 50k groups nested up to 6 levels (40% of groups
//! sit inside another), 500 custom roles over 5k distinct
//! actions (10% of roles use wildcards or Entra keywords, some with exclusions, 2% disabled),
//! resources in a tree of depth 4 (`/{kind}/{id}/{sub}/{subid}`), 1k administrative units,
//! about 1k deny assignments and 5% of assignments with a time window. S and M scale every
//! count down by 1000 and 10.

use chrono::{Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use rolecall::engine::{CheckRequest, Subject};
use rolecall::model::{
    Action, ActionPattern, AdministrativeUnit, AdministrativeUnitMember, DenyAssignment, Dump,
    Group, GroupMember, PrincipalType, Revision, RoleAssignment, RoleDefinition, RolePermission,
    Scope, TenantDump, TenantId, Timestamp,
};

/// How big a directory to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetSize {
    /// 1k assignments.
    S,
    /// 100k assignments.
    M,
    /// 1M assignments.
    L,
}

impl DatasetSize {
    /// Parses `S`, `M` or `L` (any case).
    pub fn parse(raw: &str) -> Option<DatasetSize> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "S" => Some(DatasetSize::S),
            "M" => Some(DatasetSize::M),
            "L" => Some(DatasetSize::L),
            _ => None,
        }
    }

    /// `S`, `M` or `L`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetSize::S => "S",
            DatasetSize::M => "M",
            DatasetSize::L => "L",
        }
    }

    fn params(self) -> Params {
        match self {
            DatasetSize::S => Params {
                assignments: 1_000,
                users: 200,
                groups: 50,
                roles: 20,
                actions: 200,
                objects: 200,
                units: 5,
            },
            DatasetSize::M => Params {
                assignments: 100_000,
                users: 20_000,
                groups: 5_000,
                roles: 200,
                actions: 2_000,
                objects: 20_000,
                units: 100,
            },
            DatasetSize::L => Params {
                assignments: 1_000_000,
                users: 200_000,
                groups: 50_000,
                roles: 500,
                actions: 5_000,
                objects: 200_000,
                units: 1_000,
            },
        }
    }
}

struct Params {
    assignments: usize,
    users: usize,
    groups: usize,
    roles: usize,
    actions: usize,
    /// Top-level resources (`/{kind}/{id}`).
    objects: usize,
    units: usize,
}

/// A generated directory and requests to ask of it.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The directory (one tenant), at revision 1.
    pub dump: Dump,
    /// The tenant to check in.
    pub tenant: TenantId,
    /// The instant to check at (time windows are placed around it).
    pub now: Timestamp,
    /// Requests built from an assignment (a holder, an action of its role, a resource under
    /// its scope): mostly allowed.
    pub likely_allowed: Vec<CheckRequest>,
    /// Random subject, action and resource: mostly denied.
    pub likely_denied: Vec<CheckRequest>,
}

const KINDS: [&str; 4] = ["applications", "servicePrincipals", "devices", "teams"];
const SUBS: [&str; 2] = ["credentials", "owners"];
const TASKS: [&str; 5] = ["read", "update", "delete", "create", "approve"];

/// Action `i` of the vocabulary: 100 per namespace, 20 per entity, 5 per property.
fn action_name(i: usize) -> String {
    format!(
        "contoso.ns{}/entity{}/prop{}/{}",
        i / 100,
        (i / 20) % 5,
        (i / 5) % 4,
        TASKS[i % 5]
    )
}

fn new_id(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

/// The path of top-level object `i` (`/{kind}/o{i}`).
pub fn object_path(i: usize) -> String {
    format!("/{}/o{}", KINDS[i % KINDS.len()], i)
}

fn sub_path(i: usize, sub: usize) -> String {
    format!("{}/{}/s{}", object_path(i), SUBS[sub % 2], sub)
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).expect("generated scopes are valid")
}

fn pattern(s: &str) -> ActionPattern {
    ActionPattern::parse(s).expect("generated patterns are valid")
}

/// Generates a directory of `size`; the same seed always gives the same directory.
/// Costs a few seconds and a few hundred megabytes at L.
pub fn generate(size: DatasetSize, seed: u64) -> Dataset {
    let p = size.params();
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc
        .with_ymd_and_hms(2025, 6, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let tenant = TenantId(new_id(&mut rng));

    let users: Vec<Uuid> = (0..p.users).map(|_| new_id(&mut rng)).collect();
    let sps: Vec<Uuid> = (0..p.users / 10).map(|_| new_id(&mut rng)).collect();
    let groups: Vec<Uuid> = (0..p.groups).map(|_| new_id(&mut rng)).collect();

    // Groups on 6 levels (level = index % 6); each below the top joins one or two groups
    // one level up, so chains are up to 6 groups long.
    let mut members: Vec<GroupMember> = Vec::new();
    let mut first_member: Vec<Option<Uuid>> = vec![None; p.groups];
    for (g, &gid) in groups.iter().enumerate() {
        let level = g % 6;
        // Groups of level `level + 1` are the indices `k * 6 + level + 1`.
        let above = (p.groups + 4 - level) / 6;
        if level == 5 || above == 0 {
            continue;
        }
        // Most groups are not nested; 40% join one group a level up, 4% a second one.
        let parents = match rng.gen_range(0..100) {
            0..=3 => 2,
            4..=39 => 1,
            _ => 0,
        };
        for _ in 0..parents {
            let parent = rng.gen_range(0..above) * 6 + level + 1;
            members.push(GroupMember {
                group_id: groups[parent],
                id: gid,
                member_type: PrincipalType::Group,
                created_date_time: now,
            });
        }
    }
    for &u in &users {
        for _ in 0..rng.gen_range(1..=3) {
            let g = rng.gen_range(0..p.groups);
            first_member[g].get_or_insert(u);
            members.push(GroupMember {
                group_id: groups[g],
                id: u,
                member_type: PrincipalType::User,
                created_date_time: now,
            });
        }
    }
    members.sort_by_key(|m| (m.group_id, m.id));
    members.dedup_by_key(|m| (m.group_id, m.id));

    // Roles: each focuses on one or two namespaces.
    let namespaces = p.actions.div_ceil(100);
    let mut roles: Vec<RoleDefinition> = Vec::new();
    let mut role_actions: Vec<Vec<String>> = Vec::new();
    for r in 0..p.roles {
        let id = new_id(&mut rng);
        let ns = rng.gen_range(0..namespaces);
        let mut allowed: Vec<String> = Vec::new();
        let mut samples: Vec<String> = Vec::new();
        for _ in 0..rng.gen_range(10..40) {
            let a = action_name((ns * 100 + rng.gen_range(0..100)).min(p.actions - 1));
            samples.push(a.clone());
            allowed.push(a);
        }
        let mut excluded: Vec<String> = Vec::new();
        if r % 10 == 0 {
            let e = rng.gen_range(0..5);
            let wild = match r % 3 {
                0 => format!("contoso.ns{ns}/entity{e}/allProperties/allTasks"),
                1 => format!("contoso.ns{ns}/entity{e}/allProperties/read"),
                _ => format!("contoso.ns{ns}/*"),
            };
            samples.push(action_name(ns * 100 + e * 20).replace("/update", "/read"));
            allowed.push(wild);
            excluded.push(format!("contoso.ns{ns}/entity{e}/prop3/delete"));
        }
        allowed.sort();
        allowed.dedup();
        roles.push(RoleDefinition {
            id,
            display_name: format!("Role {r}"),
            description: String::new(),
            is_built_in: false,
            is_enabled: r % 50 != 49,
            template_id: id,
            version: 1,
            role_permissions: vec![RolePermission {
                allowed_resource_actions: allowed.iter().map(|a| pattern(a)).collect(),
                excluded_resource_actions: excluded.iter().map(|a| pattern(a)).collect(),
                condition: None,
            }],
            assignable_scopes: vec![Scope::root()],
            created_date_time: Some(now),
            last_modified_date_time: Some(now),
        });
        role_actions.push(samples);
    }

    let units: Vec<Uuid> = (0..p.units).map(|_| new_id(&mut rng)).collect();
    let mut unit_members: Vec<AdministrativeUnitMember> = Vec::new();
    let mut unit_first: Vec<usize> = Vec::new();
    for &u in &units {
        let first = rng.gen_range(0..p.objects);
        unit_first.push(first);
        for k in 0..rng.gen_range(20..50) {
            let o = if k == 0 {
                first
            } else {
                rng.gen_range(0..p.objects)
            };
            unit_members.push(AdministrativeUnitMember {
                administrative_unit_id: u,
                resource: scope(&object_path(o)),
                created_date_time: now,
            });
        }
    }
    unit_members.sort_by(|a, b| {
        (a.administrative_unit_id, a.resource.as_str())
            .cmp(&(b.administrative_unit_id, b.resource.as_str()))
    });
    unit_members.dedup_by(|a, b| {
        a.administrative_unit_id == b.administrative_unit_id && a.resource == b.resource
    });

    let mut assignments: Vec<RoleAssignment> = Vec::with_capacity(p.assignments);
    let mut likely_allowed: Vec<CheckRequest> = Vec::new();
    for n in 0..p.assignments {
        let kind = rng.gen_range(0..100);
        let (principal, principal_type, holder) = if kind < 60 {
            let u = users[rng.gen_range(0..users.len())];
            (u, PrincipalType::User, Some(u))
        } else if kind < 95 {
            let g = rng.gen_range(0..groups.len());
            (groups[g], PrincipalType::Group, first_member[g])
        } else {
            let s = sps[rng.gen_range(0..sps.len())];
            (s, PrincipalType::ServicePrincipal, Some(s))
        };
        let object = rng.gen_range(0..p.objects);
        let sub = rng.gen_range(0..4);
        let placement = rng.gen_range(0..100);
        let (at, resource) = if placement < 10 {
            ("/".to_owned(), sub_path(object, sub))
        } else if placement < 65 {
            (object_path(object), sub_path(object, sub))
        } else if placement < 90 {
            (sub_path(object, sub), sub_path(object, sub))
        } else {
            let u = rng.gen_range(0..units.len());
            (
                format!("/administrativeUnits/{}", units[u]),
                sub_path(unit_first[u], sub),
            )
        };
        let role = rng.gen_range(0..roles.len());
        let window = rng.gen_range(0..100);
        let (start, end) = match window {
            0 => (
                Some(now - Duration::days(30)),
                Some(now - Duration::days(1)),
            ),
            1 => (Some(now + Duration::days(1)), None),
            2..=4 => (
                Some(now - Duration::days(1)),
                Some(now + Duration::days(30)),
            ),
            _ => (None, None),
        };
        assignments.push(RoleAssignment {
            id: new_id(&mut rng),
            principal_id: principal,
            principal_type,
            role_definition_id: roles[role].id,
            directory_scope_id: scope(&at),
            start_date_time: start,
            end_date_time: end,
            condition: None,
            condition_version: None,
            created_date_time: now,
            activation_request_id: None,
        });
        if n % (p.assignments / 1000).max(1) == 0 {
            if let Some(holder) = holder {
                let samples = &role_actions[role];
                let action = &samples[rng.gen_range(0..samples.len())];
                likely_allowed.push(CheckRequest::new(
                    Subject::new(holder),
                    Action::parse(action).expect("generated actions are valid"),
                    scope(&resource),
                ));
            }
        }
    }

    let mut denies: Vec<DenyAssignment> = Vec::new();
    for d in 0..(p.assignments / 1000).max(1) {
        let (principal, principal_type) = if d % 2 == 0 {
            (users[rng.gen_range(0..users.len())], PrincipalType::User)
        } else {
            (groups[rng.gen_range(0..groups.len())], PrincipalType::Group)
        };
        let ns = rng.gen_range(0..namespaces);
        let actions = if d % 3 == 0 {
            vec![format!("contoso.ns{ns}/*")]
        } else {
            vec![action_name(ns * 100 + rng.gen_range(0..100)).replace("/read", "/delete")]
        };
        denies.push(DenyAssignment {
            id: new_id(&mut rng),
            display_name: format!("Deny {d}"),
            description: String::new(),
            principal_id: principal,
            principal_type,
            actions: actions.iter().map(|a| pattern(a)).collect(),
            excluded_actions: Vec::new(),
            directory_scope_id: scope(&object_path(rng.gen_range(0..p.objects))),
            created_date_time: now,
            last_modified_date_time: now,
        });
    }

    let likely_denied: Vec<CheckRequest> = (0..1000)
        .map(|_| {
            CheckRequest::new(
                Subject::new(users[rng.gen_range(0..users.len())]),
                Action::parse(&action_name(rng.gen_range(0..p.actions))).expect("valid"),
                scope(&sub_path(rng.gen_range(0..p.objects), rng.gen_range(0..4))),
            )
        })
        .collect();

    let dump = Dump {
        revision: Revision(1),
        tenants: vec![TenantDump {
            tenant,
            role_definitions: roles,
            role_assignments: assignments,
            deny_assignments: denies,
            groups: groups
                .iter()
                .enumerate()
                .map(|(i, &id)| Group {
                    id,
                    display_name: format!("Group {i}"),
                    description: String::new(),
                    created_date_time: now,
                    last_modified_date_time: now,
                })
                .collect(),
            group_members: members,
            administrative_units: units
                .iter()
                .enumerate()
                .map(|(i, &id)| AdministrativeUnit {
                    id,
                    display_name: format!("Unit {i}"),
                    description: String::new(),
                    created_date_time: now,
                    last_modified_date_time: now,
                })
                .collect(),
            administrative_unit_members: unit_members,
            principals: vec![],
            resources: Vec::new(),
        }],
    };
    Dataset {
        dump,
        tenant,
        now,
        likely_allowed,
        likely_denied,
    }
}
