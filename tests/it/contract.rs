//! The contract (`openapi.yaml`) held against the code, with no server: every route is
//! documented and every documented operation is routed; the document is well-formed
//! OpenAPI 3.1 whose schemas compile; and what `ApiError` and the response types actually
//! write (status, headers, body) is what the contract says they write.
//!
//! The HTTP-level checks (the served `/openapi.yaml`, real handlers against real stores)
//! live in the integration tests, which check every reply with the same helper.

use crate::common::spec;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use chrono::Utc;
use rolecall::api::error::PROBLEM_BASE;
use rolecall::api::respond::{Created, Deleted, List, One, Updated};
use rolecall::api::{wire, ApiError};
use rolecall::decide::Verdict;
use rolecall::engine::{
    Access, DenyReason, EffectiveDeny, EffectivePermission, EffectivePermissions, GrantReason,
    GrantSource, Miss, MissReason, Reason,
};
use rolecall::model::pim::{Expiration, ScheduleInfo, TicketInfo};
use rolecall::model::{
    ActionPattern, AdministrativeUnit, AdministrativeUnitMember, Catalog, Change, ChangeOp,
    DenyAssignment, EntityType, Group, GroupMember, PrincipalType, Refusal, RequestStatus,
    Revision, RoleAssignment, RoleAssignmentScheduleRequest, RoleDefinition,
    RoleEligibilitySchedule, RoleManagementPolicy, ScheduleAction, Scope, TenantId,
    ValidationErrors,
};
use rolecall::store::{Page, Stored, Written};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use spec::{
    assert_response_matches, check_response, compile_schema, resolve, response_object, spec,
    validator_for,
};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation in the spec as (METHOD, path template, operation object).
fn operations() -> Vec<(String, String, &'static Value)> {
    let paths = spec()["paths"].as_object().expect("`paths` is a map");
    let mut all = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((method.to_ascii_uppercase(), path.clone(), operation));
            }
        }
    }
    all
}

/// The parameters that apply to an operation (path-level and its own), resolved.
fn parameters(path: &str, operation: &'static Value) -> Vec<&'static Value> {
    let item = &spec()["paths"][path];
    [item.get("parameters"), operation.get("parameters")]
        .into_iter()
        .flatten()
        .flat_map(|list| list.as_array().expect("`parameters` is a list"))
        .map(|p| resolve(p).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// Every `$ref` anywhere in `value`, with where it was found.
fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    if let Some(target) = child.as_str() {
                        out.push((at.to_owned(), target.to_owned()));
                    }
                } else {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    refs(child, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_route_is_in_the_spec_and_every_spec_operation_is_routed() {
    let routed: BTreeSet<(String, String)> = rolecall::api::routes()
        .iter()
        // axum's catch-all `{*path}` is OpenAPI's `{path}` (documented as holding `/`).
        .map(|r| (r.method.as_str().to_owned(), r.path.replace("{*", "{")))
        .collect();
    let documented: BTreeSet<(String, String)> =
        operations().into_iter().map(|(m, p, _)| (m, p)).collect();
    let undocumented: Vec<String> = routed
        .difference(&documented)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let unrouted: Vec<String> = documented
        .difference(&routed)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes() and openapi.yaml disagree\n  routed but not in openapi.yaml: {undocumented:#?}\n  in openapi.yaml but not routed: {unrouted:#?}"
    );
}

#[test]
fn the_spec_is_valid_openapi_3_1() {
    let spec = spec();
    let version = spec["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3.1."),
        "`openapi` is `{version}`, not 3.1.x"
    );
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
    let schemes = &spec["components"]["securitySchemes"];
    assert!(schemes["adminKey"]["scheme"] == "bearer");
    assert!(schemes["bearerToken"]["scheme"] == "bearer");
    assert!(schemes["bearerToken"]["bearerFormat"] == "JWT");

    let mut all_refs = Vec::new();
    refs(spec, "#", &mut all_refs);
    let broken: Vec<String> = all_refs
        .iter()
        .filter(|(_, target)| !target.starts_with("#/") || spec.pointer(&target[1..]).is_none())
        .map(|(at, target)| format!("{at}: `{target}`"))
        .collect();
    assert!(broken.is_empty(), "unresolved `$ref`s: {broken:#?}");

    let mut problems = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (method, path, operation) in operations() {
        let name = format!("{method} {path}");
        match operation["operationId"].as_str() {
            None => problems.push(format!("{name}: no operationId")),
            Some(id) => {
                if let Some(other) = ids.insert(id.to_owned(), name.clone()) {
                    problems.push(format!("{name}: operationId `{id}` is also {other}'s"));
                }
            }
        }
        if !operation["summary"].is_string() {
            problems.push(format!("{name}: no summary"));
        }
        let responses = operation["responses"].as_object();
        if responses.is_none_or(|r| r.is_empty()) {
            problems.push(format!("{name}: no responses"));
        }
        for (status, response) in responses.into_iter().flatten() {
            let valid_key = status == "default"
                || (status.len() == 3
                    && status.starts_with(['1', '2', '3', '4', '5'])
                    && (status[1..].chars().all(|c| c.is_ascii_digit()) || &status[1..] == "XX"));
            if !valid_key {
                problems.push(format!("{name}: `{status}` is not a status code"));
            }
            match resolve(response) {
                Ok(r) if r["description"].is_string() => {}
                Ok(_) => problems.push(format!("{name} {status}: no description")),
                Err(e) => problems.push(format!("{name} {status}: {e}")),
            }
        }

        // Path parameters: exactly the template's, each required.
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = parameters(&path, operation)
            .into_iter()
            .filter(|p| p["in"] == "path")
            .inspect(|p| {
                if p["required"] != true {
                    problems.push(format!(
                        "{name}: path parameter {} is not required",
                        p["name"]
                    ));
                }
            })
            .filter_map(|p| p["name"].as_str())
            .collect();
        if in_template != declared {
            problems.push(format!(
                "{name}: the template has path parameters {in_template:?} but declares {declared:?}"
            ));
        }

        // `/v1` and AuthZEN need a token or the admin key and say what happens without it;
        // operations and discovery don't.
        let security = operation.get("security").unwrap_or(&spec["security"]);
        let secured = security.as_array().is_some_and(|s| !s.is_empty());
        if authenticated(&path) {
            if !secured {
                problems.push(format!("{name}: not secured"));
            }
            match response_object(&method, &path, 401) {
                Ok(r) if r["headers"].get("WWW-Authenticate").is_some() => {}
                Ok(_) => problems.push(format!("{name}: its 401 has no WWW-Authenticate header")),
                Err(_) => problems.push(format!("{name}: declares no 401")),
            }
        } else if secured {
            problems.push(format!(
                "{name}: an operations route should need no credentials"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "openapi.yaml is not valid:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_operation_follows_the_conventions_of_the_contract() {
    let mut problems = Vec::new();
    for (method, path, operation) in operations() {
        let name = format!("{method} {path}");
        let responses = operation["responses"].as_object().expect("responses");
        let declares = |status: u16| responses.contains_key(&status.to_string());

        // A JSON body can be malformed, too large or of the wrong media type.
        if let Some(body) = operation.get("requestBody") {
            let body = resolve(body).expect("request body resolves");
            if body["content"]["application/json"]["schema"].is_null() {
                problems.push(format!(
                    "{name}: its request body is not `application/json`"
                ));
            }
            // AuthZEN answers a wrong media type with 400, as its specification requires.
            let statuses: &[u16] = if path.starts_with("/access/") {
                &[400, 413]
            } else {
                &[400, 413, 415]
            };
            for &status in statuses {
                if !declares(status) {
                    problems.push(format!("{name}: takes a body but declares no {status}"));
                }
            }
        }

        // `If-Match` and 412 go together.
        let if_match = parameters(&path, operation)
            .iter()
            .any(|p| p["in"] == "header" && p["name"] == "If-Match");
        if if_match != declares(412) {
            problems.push(format!(
                "{name}: If-Match {if_match}, 412 {}",
                declares(412)
            ));
        }
        if authenticated(&path)
            && !parameters(&path, operation)
                .iter()
                .any(|p| p["in"] == "header" && p["name"] == "Rolecall-Tenant")
        {
            problems.push(format!("{name}: does not take Rolecall-Tenant"));
        }
        // Forward-auth answers every method a gateway may send and changes nothing.
        if ["PATCH", "DELETE"].contains(&method.as_str())
            && !path.contains("/members/")
            && !path.starts_with("/v1/gateway/")
            && !if_match
        {
            problems.push(format!("{name}: changes an object but takes no If-Match"));
        }

        for (status, response) in responses {
            let response = resolve(response).expect("response resolves");
            let headers = &response["headers"];
            if headers.get("x-request-id").is_none() {
                problems.push(format!("{name} {status}: no x-request-id header"));
            }
            if status == "503" && headers.get("Retry-After").is_none() {
                problems.push(format!("{name} {status}: no Retry-After header"));
            }
            let content = response["content"].as_object();
            let is_problem = content.is_some_and(|c| c.contains_key("application/problem+json"));
            // The Graph-compatible paths answer errors in Graph's envelope, as JSON.
            let is_graph_error = graph(&path)
                && content.is_some_and(|c| {
                    c.get("application/json").is_some_and(|media| {
                        resolve(&media["schema"]).is_ok_and(|schema| {
                            schema == &spec()["components"]["schemas"]["GraphError"]
                        })
                    })
                });
            if graph(&path) {
                if status.starts_with(['4', '5']) != is_graph_error {
                    problems.push(format!(
                        "{name} {status}: errors, and only errors, are Graph's `GraphError`"
                    ));
                }
            } else if status.starts_with(['4', '5']) != is_problem {
                problems.push(format!(
                    "{name} {status}: errors, and only errors, are `application/problem+json`"
                ));
            }
            if method == "POST" && status == "201" && headers.get("Location").is_none() {
                problems.push(format!("{name} {status}: no Location header"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_schema_in_the_spec_compiles_as_json_schema_2020_12() {
    let mut problems = Vec::new();
    for name in spec()["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        let reference = json!({ "$ref": format!("#/components/schemas/{name}") });
        if let Err(e) = compile_schema(&reference) {
            problems.push(format!("{name}: {e}"));
        }
    }
    for (method, path, operation) in operations() {
        for status in operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
        {
            let Ok(code) = status.parse::<u16>() else {
                continue;
            };
            let response = response_object(&method, &path, code).expect("documented");
            let is_json = response["content"]
                .as_object()
                .is_some_and(|c| c.keys().any(|m| m.ends_with("json")));
            if is_json {
                if let Err(e) = validator_for(&method, &path, code) {
                    problems.push(e);
                }
            }
        }
        if let Some(body) = operation.get("requestBody") {
            let schema = &resolve(body).expect("resolves")["content"]["application/json"]["schema"];
            if let Err(e) = compile_schema(schema) {
                problems.push(format!("{method} {path} request body: {e}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// --- what the code writes ---

/// A rendered response: status, headers, JSON body (`Null` when empty).
struct Rendered {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

fn render(response: impl IntoResponse) -> Rendered {
    let response = response.into_response();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("the body is readable");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("the body is JSON")
    };
    Rendered {
        status,
        headers,
        body,
    }
}

/// The headers the response writes itself (middleware adds `x-request-id`), checked both
/// ways against the documented ones, each value against its schema.
const OWN_HEADERS: [&str; 5] = [
    "etag",
    "location",
    "rolecall-revision",
    "www-authenticate",
    "retry-after",
];

fn check_headers(method: &str, path: &str, rendered: &Rendered) -> Result<(), String> {
    let response = response_object(method, path, rendered.status)?;
    let documented: BTreeMap<String, &Value> = response["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, header)| {
            (
                name.to_ascii_lowercase(),
                resolve(header).expect("header resolves"),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (name, header) in &documented {
        if name == "x-request-id" {
            continue;
        }
        let Some(value) = rendered
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
        else {
            problems.push(format!("documented header `{name}` is missing"));
            continue;
        };
        let schema = &header["schema"];
        let value = if resolve(schema).expect("resolves")["type"] == "integer" {
            value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(value))
        } else {
            Value::from(value)
        };
        let validator = compile_schema(schema)?;
        if let Err(e) = validator.validate(&value) {
            problems.push(format!(
                "header `{name}: {value}` does not match its schema: {e}"
            ));
        }
    }
    for name in OWN_HEADERS {
        if rendered.headers.contains_key(name) && !documented.contains_key(name) {
            problems.push(format!("header `{name}` is written but not documented"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {path} {}: {}\nheaders: {:?}",
            rendered.status,
            problems.join("; "),
            rendered.headers
        ))
    }
}

/// Asserts that a rendered response is documented, body and headers.
#[track_caller]
fn assert_documented(method: &str, path: &str, rendered: &Rendered) {
    assert_response_matches(method, path, rendered.status, &rendered.body);
    if let Err(e) = check_headers(method, path, rendered) {
        panic!("{e}");
    }
}

fn json_of<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

fn scope(raw: &str) -> Scope {
    Scope::parse(raw).expect("a scope")
}

fn patterns(raw: &[&str]) -> Vec<ActionPattern> {
    raw.iter()
        .map(|p| ActionPattern::parse(p).expect("a pattern"))
        .collect()
}

fn stored<T>(value: T) -> Stored<T> {
    Stored {
        value,
        revision: Revision(7),
    }
}

fn written<T>(value: T, created: bool) -> Written<T> {
    Written {
        value,
        revision: Revision(8),
        created,
    }
}

/// `GET` of one, the list (with a next page), create, update and delete of one kind.
struct Kind<T> {
    collection: &'static str,
    item: &'static str,
    value: T,
    can_patch: bool,
    idempotent_create: bool,
}

impl<T: Serialize + Clone> Kind<T> {
    fn check(self) {
        let id = Uuid::new_v4();
        let one = render(One(stored(self.value.clone())));
        assert_eq!(one.headers["etag"], "\"7\"");
        if !self.item.ends_with("{memberId}") {
            assert_documented("GET", self.item, &one);
        }
        let uri: Uri = format!(
            "{}?limit=1",
            self.collection.replace("{id}", &id.to_string())
        )
        .parse()
        .expect("a uri");
        let page = Page {
            items: vec![stored(self.value.clone())],
            next: Some("opaque".to_owned()),
        };
        let list = render(List::of_stored(&uri, page));
        assert_documented("GET", self.collection, &list);
        let next = list.body["nextLink"].as_str().expect("a next link");
        assert!(
            next.starts_with(uri.path()) && next.contains("cursor=opaque"),
            "{next}"
        );
        let last = render(List::of_stored(
            &uri,
            Page {
                items: Vec::<Stored<T>>::new(),
                next: None,
            },
        ));
        assert_documented("GET", self.collection, &last);

        let created = render(Created {
            written: written(self.value.clone(), true),
            location: format!("{}/{id}", uri.path()),
        });
        assert_eq!(created.status, 201);
        assert_eq!(created.body["revision"], "8");
        assert_eq!(created.headers["rolecall-revision"], "8");
        assert_documented("POST", self.collection, &created);
        let found = render(Created {
            written: written(self.value.clone(), false),
            location: format!("{}/{id}", uri.path()),
        });
        assert_eq!(found.status, 200);
        if self.idempotent_create {
            assert_documented("POST", self.collection, &found);
        } else {
            assert!(response_object("POST", self.collection, 200).is_err());
        }
        if self.can_patch {
            let updated = render(Updated(written(self.value.clone(), false)));
            assert_documented("PATCH", self.item, &updated);
        }
        let deleted = render(Deleted(Revision(9)));
        assert_eq!(deleted.body, json!({"revision": "9"}));
        assert_documented("DELETE", self.item, &deleted);
    }
}

fn custom_role() -> RoleDefinition {
    let mut role = Catalog::builtin().expect("catalog").roles()[0].clone();
    role.id = Uuid::new_v4();
    role.template_id = role.id;
    role.is_built_in = false;
    role.version = 3;
    role.assignable_scopes = vec![scope("/applications/a1"), scope("/")];
    role.created_date_time = Some(now());
    role.last_modified_date_time = Some(now());
    role
}

/// With `full`, every optional field is set (a window and a condition); else none is.
fn role_assignment(full: bool) -> RoleAssignment {
    RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: Uuid::new_v4(),
        principal_type: PrincipalType::ServicePrincipal,
        role_definition_id: Uuid::new_v4(),
        directory_scope_id: scope("/applications/0b6e3b57-4c0d-4a7b-8d33-0f8f3f9e2d10"),
        start_date_time: full.then(now),
        end_date_time: full.then(|| now() + chrono::Duration::days(1)),
        condition: full.then(|| {
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] \
             StringEquals 'logs'"
                .to_owned()
        }),
        condition_version: full.then(|| "2.0".to_owned()),
        created_date_time: now(),
        activation_request_id: None,
    }
}

fn deny_assignment() -> DenyAssignment {
    DenyAssignment {
        id: Uuid::new_v4(),
        display_name: "No secrets".to_owned(),
        description: String::new(),
        principal_id: Uuid::new_v4(),
        principal_type: PrincipalType::Group,
        actions: patterns(&["microsoft.directory/applications/credentials/*"]),
        excluded_actions: patterns(&["microsoft.directory/applications/credentials/read"]),
        directory_scope_id: scope("/applications"),
        created_date_time: now(),
        last_modified_date_time: now(),
    }
}

fn group() -> Group {
    Group {
        id: Uuid::new_v4(),
        display_name: "Finance".to_owned(),
        description: "all of finance".to_owned(),
        created_date_time: now(),
        last_modified_date_time: now(),
    }
}

fn group_member() -> GroupMember {
    GroupMember {
        group_id: Uuid::new_v4(),
        id: Uuid::new_v4(),
        member_type: PrincipalType::User,
        created_date_time: now(),
    }
}

fn unit() -> AdministrativeUnit {
    AdministrativeUnit {
        id: Uuid::new_v4(),
        display_name: "Finance apps".to_owned(),
        description: String::new(),
        created_date_time: now(),
        last_modified_date_time: now(),
    }
}

fn unit_member() -> AdministrativeUnitMember {
    AdministrativeUnitMember {
        administrative_unit_id: Uuid::new_v4(),
        resource: scope("/applications/a1"),
        created_date_time: now(),
    }
}

#[test]
fn built_in_and_custom_roles_are_written_as_the_spec_says() {
    let catalog = Catalog::builtin().expect("catalog");
    for role in catalog.roles() {
        let got = render(One(Stored {
            value: role.clone(),
            revision: Revision(0),
        }));
        assert_eq!(got.headers["etag"], "\"0\"");
        assert_documented("GET", "/v1/roleDefinitions/{id}", &got);
    }
    let uri = Uri::from_static("/v1/roleDefinitions?isBuiltIn=true&limit=1000");
    let page = Page {
        items: catalog.roles().iter().cloned().map(stored).collect(),
        next: None,
    };
    assert_documented(
        "GET",
        "/v1/roleDefinitions",
        &render(List::of_stored(&uri, page)),
    );

    Kind {
        collection: "/v1/roleDefinitions",
        item: "/v1/roleDefinitions/{id}",
        value: custom_role(),
        can_patch: true,
        idempotent_create: false,
    }
    .check();
    let clone = render(Created {
        written: written(custom_role(), true),
        location: "/v1/roleDefinitions/x".to_owned(),
    });
    assert_documented("POST", "/v1/roleDefinitions/{id}/clone", &clone);
    let uri =
        Uri::from_static("/v1/roleDefinitions/9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3/assignments");
    let page = Page {
        items: vec![stored(role_assignment(false))],
        next: Some("c".to_owned()),
    };
    assert_documented(
        "GET",
        "/v1/roleDefinitions/{id}/assignments",
        &render(List::of_stored(&uri, page)),
    );
}

#[test]
fn assignments_groups_and_units_are_written_as_the_spec_says() {
    for window in [false, true] {
        Kind {
            collection: "/v1/roleAssignments",
            item: "/v1/roleAssignments/{id}",
            value: role_assignment(window),
            can_patch: false,
            idempotent_create: true,
        }
        .check();
    }
    Kind {
        collection: "/v1/denyAssignments",
        item: "/v1/denyAssignments/{id}",
        value: deny_assignment(),
        can_patch: true,
        idempotent_create: false,
    }
    .check();
    Kind {
        collection: "/v1/groups",
        item: "/v1/groups/{id}",
        value: group(),
        can_patch: true,
        idempotent_create: false,
    }
    .check();
    Kind {
        collection: "/v1/groups/{id}/members",
        item: "/v1/groups/{id}/members/{memberId}",
        value: group_member(),
        can_patch: false,
        idempotent_create: true,
    }
    .check();
    Kind {
        collection: "/v1/administrativeUnits",
        item: "/v1/administrativeUnits/{id}",
        value: unit(),
        can_patch: true,
        idempotent_create: false,
    }
    .check();
    Kind {
        collection: "/v1/administrativeUnits/{id}/members",
        item: "/v1/administrativeUnits/{id}/members/{memberId}",
        value: unit_member(),
        can_patch: false,
        idempotent_create: true,
    }
    .check();
}

fn principal() -> rolecall::model::Principal {
    rolecall::model::Principal {
        id: Uuid::new_v4(),
        principal_type: PrincipalType::ServicePrincipal,
        display_name: "Billing worker".to_owned(),
        aliases: vec![
            "billing-worker".to_owned(),
            "Billing@Contoso.com".to_owned(),
        ],
        attributes: json!({"tier": "gold", "cores": 4, "active": true, "regions": ["eu", "us"]})
            .as_object()
            .cloned()
            .expect("an object"),
        created_date_time: now(),
        last_modified_date_time: now(),
    }
}

#[test]
fn principals_and_their_changes_are_written_as_the_spec_says() {
    Kind {
        collection: "/v1/principals",
        item: "/v1/principals/{id}",
        value: principal(),
        can_patch: true,
        idempotent_create: true,
    }
    .check();
    let p = principal();
    let row = |sequence, op, before: Option<Value>, after: Option<Value>| Change {
        revision: Revision(3),
        sequence,
        tenant_id: TenantId(Uuid::new_v4()),
        entity_type: EntityType::Principal,
        entity_id: p.id.to_string(),
        op,
        before,
        after,
        actor: "admin-key".to_owned(),
        at: now(),
    };
    let changes = vec![
        row(0, ChangeOp::Create, None, Some(json_of(&p))),
        row(1, ChangeOp::Delete, Some(json_of(&p)), None),
    ];
    let uri = Uri::from_static("/v1/changes");
    let list = List::new(
        &uri,
        Page {
            items: changes,
            next: None,
        },
        |c| c,
    );
    let mut body = serde_json::to_value(&list).expect("serializes");
    body["revision"] = json!(Revision(3));
    assert_response_matches("GET", "/v1/changes", 200, &body);
    // A principal's body is closed: a field the contract does not name is refused.
    let mut extra = json_of(&p);
    extra["secret"] = json!("x");
    assert!(check_response("GET", "/v1/principals/{id}", 200, &extra).is_err());
}

fn resource() -> rolecall::model::Resource {
    rolecall::model::Resource {
        resource_type: "record".to_owned(),
        id: "Q3 report/2024".to_owned(),
        path: scope("/records/Q3%20report%2F2024"),
        display_name: Some("Q3 report".to_owned()),
        attributes: json!({"department": "finance", "owners": ["alice@contoso.com"], "pages": 12})
            .as_object()
            .cloned()
            .expect("an object"),
        created_date_time: now(),
        last_modified_date_time: now(),
    }
}

#[test]
fn resources_and_their_changes_are_written_as_the_spec_says() {
    Kind {
        collection: "/v1/resources",
        item: "/v1/resources/{type}/{id}",
        value: resource(),
        can_patch: true,
        idempotent_create: false,
    }
    .check();
    // Without a display name the field is left out, never null.
    let nameless = rolecall::model::Resource {
        display_name: None,
        ..resource()
    };
    let one = render(One(stored(nameless.clone())));
    assert!(one.body.get("displayName").is_none());
    assert_documented("GET", "/v1/resources/{type}/{id}", &one);
    let r = resource();
    let change = Change {
        revision: Revision(3),
        sequence: 0,
        tenant_id: TenantId(Uuid::new_v4()),
        entity_type: EntityType::Resource,
        entity_id: "record/Q3%20report%2F2024".to_owned(),
        op: ChangeOp::Update,
        before: Some(json_of(&nameless)),
        after: Some(json_of(&r)),
        actor: "admin-key".to_owned(),
        at: now(),
    };
    let uri = Uri::from_static("/v1/changes");
    let list = List::new(
        &uri,
        Page {
            items: vec![change],
            next: None,
        },
        |c| c,
    );
    let mut body = serde_json::to_value(&list).expect("serializes");
    body["revision"] = json!(Revision(3));
    assert_response_matches("GET", "/v1/changes", 200, &body);
    let mut extra = json_of(&r);
    extra["secret"] = json!("x");
    assert!(check_response("GET", "/v1/resources/{type}/{id}", 200, &extra).is_err());
}

#[test]
fn change_log_rows_are_written_as_the_spec_says() {
    let group = group();
    let member = group_member();
    let row = |sequence, entity_type, op, before: Option<Value>, after: Option<Value>| Change {
        revision: Revision(12),
        sequence,
        tenant_id: TenantId(Uuid::new_v4()),
        entity_type,
        entity_id: group.id.to_string(),
        op,
        before,
        after,
        actor: "admin-key".to_owned(),
        at: now(),
    };
    let changes = vec![
        row(
            0,
            EntityType::Group,
            ChangeOp::Create,
            None,
            Some(json_of(&group)),
        ),
        row(
            1,
            EntityType::Group,
            ChangeOp::Update,
            Some(json_of(&group)),
            Some(json_of(&group)),
        ),
        row(
            2,
            EntityType::GroupMember,
            ChangeOp::Delete,
            Some(json_of(&member)),
            None,
        ),
        row(
            3,
            EntityType::RoleDefinition,
            ChangeOp::Create,
            None,
            Some(json_of(&custom_role())),
        ),
        row(
            4,
            EntityType::RoleAssignment,
            ChangeOp::Delete,
            Some(json_of(&role_assignment(true))),
            None,
        ),
        row(
            5,
            EntityType::DenyAssignment,
            ChangeOp::Create,
            None,
            Some(json_of(&deny_assignment())),
        ),
        row(
            6,
            EntityType::AdministrativeUnit,
            ChangeOp::Create,
            None,
            Some(json_of(&unit())),
        ),
        row(
            7,
            EntityType::AdministrativeUnitMember,
            ChangeOp::Create,
            None,
            Some(json_of(&unit_member())),
        ),
    ];
    // The handler's envelope is private; it is the list envelope plus `revision`.
    let uri = Uri::from_static("/v1/changes?since=11&limit=8");
    let list = List::new(
        &uri,
        Page {
            items: changes,
            next: Some("12.7".to_owned()),
        },
        |c| c,
    );
    let mut body = serde_json::to_value(&list).expect("serializes");
    body["revision"] = json!(Revision(12));
    assert_response_matches("GET", "/v1/changes", 200, &body);
}

#[test]
fn decision_explanations_are_written_as_the_spec_says() {
    let schema = |name: &str| {
        compile_schema(&json!({ "$ref": format!("#/components/schemas/{name}") }))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let assert_valid = |name: &str, value: &Value| {
        let validator = schema(name);
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}\n{value:#}");
    };
    let grant = GrantReason {
        assignment_id: None,
        source: GrantSource::WidsClaim,
        principal_id: Uuid::new_v4(),
        role_definition_id: Uuid::new_v4(),
        role_display_name: "Global Administrator".to_owned(),
        matched_pattern: "microsoft.directory/*".to_owned(),
        scope: "/".to_owned(),
        via: vec![],
        via_token_groups: false,
        end_date_time: None,
        activation_request_id: None,
    };
    let miss = |why: Miss| MissReason {
        assignment_id: Some(Uuid::new_v4()),
        source: GrantSource::Assignment,
        principal_id: Uuid::new_v4(),
        role_definition_id: Uuid::new_v4(),
        role_display_name: None,
        scope: "/applications/a1".to_owned(),
        via: vec![Uuid::new_v4()],
        via_token_groups: true,
        why,
    };
    let reasons = vec![
        Reason::Grant(grant),
        Reason::Deny(DenyReason {
            deny_assignment_id: Uuid::new_v4(),
            display_name: "No secrets".to_owned(),
            principal_id: Uuid::new_v4(),
            matched_pattern: "a.b/*".to_owned(),
            scope: "/applications".to_owned(),
            via: vec![],
            via_token_groups: false,
        }),
        Reason::NotGranted(miss(Miss::ScopeDoesNotCover)),
        Reason::NotGranted(miss(Miss::OutsideTimeWindow {
            start_date_time: Some(now()),
            end_date_time: None,
        })),
        Reason::NotGranted(miss(Miss::RoleNotFound)),
        Reason::NotGranted(miss(Miss::RoleDisabled)),
        Reason::NotGranted(miss(Miss::ActionNotInRole)),
        Reason::NotGranted(miss(Miss::ActionExcluded {
            allowed_pattern: "a.b/*".to_owned(),
            excluded_pattern: "a.b/delete".to_owned(),
        })),
        Reason::NoAssignments {
            principals: vec![Uuid::new_v4()],
        },
        Reason::GroupDepthLimit { max_depth: 32 },
        Reason::MoreNotGranted { omitted: 3 },
    ];
    // A token subject with a groups overage marker: said first; withheld reasons: counted
    // last.
    let verdict = Verdict {
        allowed: false,
        reasons,
        groups_overage: true,
        withheld: 2,
    };
    let reasons = serde_json::to_value(wire::reasons(verdict, true)).expect("serializes");
    for reason in reasons.as_array().expect("a list") {
        assert_valid("Reason", reason);
    }
    assert_eq!(reasons[0], json!({"kind": "groupsOverage"}));
    assert_eq!(
        reasons.as_array().and_then(|r| r.last()),
        Some(&json!({"kind": "withheld", "count": 2}))
    );
    let check = json!({"allowed": false, "decision": "deny", "revision": "3", "reasons": reasons});
    assert_response_matches("POST", "/v1/check", 200, &check);
    let overage = json!({"allowed": true, "decision": "allow", "revision": "3", "reasons": [
        {"kind": "groupsOverage"},
        reasons[1].clone(),
    ]});
    assert_response_matches("POST", "/v1/check", 200, &overage);
    let batch = json!({"revision": "3", "results": [{"allowed": true, "decision": "allow", "reasons": overage["reasons"]}]});
    assert_response_matches("POST", "/v1/check/batch", 200, &batch);
    assert!(
        check_response(
            "POST",
            "/v1/check",
            200,
            &json!({"allowed": true, "decision": "allow", "revision": "3", "reasons": [{"kind": "groupsOverage", "groups": 200}]})
        )
        .is_err(),
        "groupsOverage carries nothing but its kind"
    );
    let batch = json!({"revision": "3", "results": [{"allowed": true, "decision": "allow", "reasons": []}]});
    assert_response_matches("POST", "/v1/check/batch", 200, &batch);
    assert!(check_response(
        "POST",
        "/v1/check/batch",
        200,
        &json!({"revision": "3", "results": [check]})
    )
    .is_err());

    let effective = EffectivePermissions {
        permissions: vec![EffectivePermission {
            allowed_resource_actions: patterns(&["contoso.p/*"]),
            excluded_resource_actions: patterns(&["contoso.p/delete"]),
            assignment_id: Some(Uuid::new_v4()),
            source: GrantSource::Assignment,
            principal_id: Uuid::new_v4(),
            role_definition_id: Uuid::new_v4(),
            role_display_name: "P".to_owned(),
            scope: "/projects".to_owned(),
            via: vec![Uuid::new_v4()],
            via_token_groups: false,
            condition: Some("$ResourceIsSelf".to_owned()),
            assignment_condition: None,
        }],
        denies: vec![EffectiveDeny {
            deny_assignment_id: Uuid::new_v4(),
            display_name: "D".to_owned(),
            principal_id: Uuid::new_v4(),
            actions: patterns(&["contoso.p/delete"]),
            excluded_actions: vec![],
            scope: "/".to_owned(),
            via: vec![],
            via_token_groups: false,
        }],
        group_depth_limited: false,
    };
    // The handler flattens this into its body next to the principal, scope and revision.
    let mut body = serde_json::to_value(wire::Effective::from(effective)).expect("serializes");
    body["principalId"] = json!(Uuid::new_v4());
    body["scope"] = json!("/projects/p1");
    body["revision"] = json!(Revision(4));
    assert_response_matches("GET", "/v1/principals/{id}/permissions", 200, &body);

    let access = Access {
        principal_id: Uuid::new_v4(),
        principal_type: PrincipalType::User,
        assignment_id: Uuid::new_v4(),
        role_definition_id: Uuid::new_v4(),
        role_display_name: "W".to_owned(),
        matched_pattern: "contoso.w/read".to_owned(),
        scope: "/".to_owned(),
        via: vec![Uuid::new_v4()],
        conditions: vec!["$SubjectIsOwner".to_owned()],
    };
    let body = json!({"value": [wire::Holder::from(access)], "nextLink": "/v1/access?resource=%2Fw&action=contoso.w%2Fread&cursor=x", "revision": "4"});
    assert_response_matches("GET", "/v1/access", 200, &body);
}

// --- PIM ---

fn eligibility(window: bool) -> RoleEligibilitySchedule {
    RoleEligibilitySchedule {
        id: Uuid::new_v4(),
        principal_id: Uuid::new_v4(),
        principal_type: PrincipalType::User,
        role_definition_id: Uuid::new_v4(),
        directory_scope_id: scope("/applications/a1"),
        start_date_time: window.then(now),
        end_date_time: window.then(|| now() + chrono::Duration::days(30)),
        justification: window.then(|| "on call for Q3".to_owned()),
        member_type: "Direct".to_owned(),
        created_date_time: now(),
    }
}

/// An activation request in `status`; with `full`, every optional field it can carry is set.
fn activation_request(status: RequestStatus, full: bool) -> RoleAssignmentScheduleRequest {
    let start = now();
    let end = start + chrono::Duration::hours(2);
    let decided = status != RequestStatus::PendingApproval;
    let ran = matches!(
        status,
        RequestStatus::Provisioned | RequestStatus::Revoked | RequestStatus::Expired
    );
    RoleAssignmentScheduleRequest {
        id: Uuid::new_v4(),
        action: ScheduleAction::SelfActivate,
        principal_id: Uuid::new_v4(),
        role_definition_id: Uuid::new_v4(),
        directory_scope_id: scope("/applications/a1"),
        justification: full.then(|| "incident 42".to_owned()),
        schedule_info: full.then(|| ScheduleInfo {
            start_date_time: Some(start),
            expiration: Some(Expiration {
                kind: "AfterDuration".to_owned(),
                duration: Some("PT2H".to_owned()),
                end_date_time: None,
            }),
        }),
        ticket_info: full.then(|| TicketInfo {
            ticket_number: Some("INC-42".to_owned()),
            ticket_system: None,
        }),
        status,
        start_date_time: Some(start),
        end_date_time: Some(end),
        target_schedule_id: ran.then(Uuid::new_v4),
        reviewed_by: (full && decided).then(|| "admin-key".to_owned()),
        review_justification: (full && decided).then(|| "approved for the incident".to_owned()),
        created_date_time: start,
        completed_date_time: decided.then_some(end),
    }
}

fn deactivation_request() -> RoleAssignmentScheduleRequest {
    RoleAssignmentScheduleRequest {
        id: Uuid::new_v4(),
        action: ScheduleAction::SelfDeactivate,
        principal_id: Uuid::new_v4(),
        role_definition_id: Uuid::new_v4(),
        directory_scope_id: scope("/applications/a1"),
        justification: None,
        schedule_info: None,
        ticket_info: None,
        status: RequestStatus::Provisioned,
        start_date_time: None,
        end_date_time: None,
        target_schedule_id: Some(Uuid::new_v4()),
        reviewed_by: None,
        review_justification: None,
        created_date_time: now(),
        completed_date_time: Some(now()),
    }
}

/// A `/v1` object as the Graph-compatible paths answer it, one object on its own.
fn graph_entity<T: Serialize>(value: &T, entity_set: &str) -> Value {
    let mut object = json_of(value);
    object["@odata.context"] = json!(format!(
        "http://localhost/v1.0/$metadata#roleManagement/directory/{entity_set}/$entity"
    ));
    object
}

#[test]
fn pim_objects_are_written_as_the_spec_says() {
    const REQUESTS: &str = "/v1/roleAssignmentScheduleRequests";
    const GRAPH_ELIGIBILITIES: &str = "/v1.0/roleManagement/directory/roleEligibilitySchedules";
    const GRAPH_REQUESTS: &str = "/v1.0/roleManagement/directory/roleAssignmentScheduleRequests";
    for window in [false, true] {
        let e = eligibility(window);
        Kind {
            collection: "/v1/roleEligibilitySchedules",
            item: "/v1/roleEligibilitySchedules/{id}",
            value: e.clone(),
            can_patch: false,
            idempotent_create: true,
        }
        .check();
        let entity = graph_entity(&e, "roleEligibilitySchedules");
        assert_response_matches(
            "GET",
            &format!("{GRAPH_ELIGIBILITIES}/{{id}}"),
            200,
            &entity,
        );
        let page = json!({"@odata.context": "http://localhost/v1.0/$metadata#roleManagement/directory/roleEligibilitySchedules", "value": [json_of(&e)]});
        assert_response_matches("GET", GRAPH_ELIGIBILITIES, 200, &page);
    }

    // A role's policy: the default (revision 0) until one is set.
    let default = RoleManagementPolicy::default_for(Uuid::new_v4());
    let got = render(One(Stored {
        value: default.clone(),
        revision: Revision(0),
    }));
    assert_eq!(got.headers["etag"], "\"0\"");
    assert_eq!(got.body["lastModifiedDateTime"], Value::Null);
    assert_documented("GET", "/v1/roleManagementPolicies/{id}", &got);
    let set = RoleManagementPolicy {
        maximum_activation_duration: "PT2H".to_owned(),
        is_ticketing_required: true,
        is_approval_required: true,
        last_modified_date_time: Some(now()),
        ..default.clone()
    };
    assert_documented(
        "GET",
        "/v1/roleManagementPolicies/{id}",
        &render(One(stored(set.clone()))),
    );
    assert_documented(
        "PUT",
        "/v1/roleManagementPolicies/{id}",
        &render(Updated(written(set.clone(), true))),
    );

    // Requests, in every status, bare and with every optional field; and a deactivation.
    let mut requests = vec![deactivation_request()];
    for status in [
        RequestStatus::PendingApproval,
        RequestStatus::Provisioned,
        RequestStatus::Denied,
        RequestStatus::Canceled,
        RequestStatus::Revoked,
        RequestStatus::Expired,
    ] {
        for full in [false, true] {
            requests.push(activation_request(status, full));
        }
    }
    for r in &requests {
        assert_documented(
            "GET",
            &format!("{REQUESTS}/{{id}}"),
            &render(One(stored(r.clone()))),
        );
        let created = render(Created {
            written: written(r.clone(), true),
            location: format!("{REQUESTS}/{}", r.id),
        });
        assert_eq!(created.status, 201);
        assert_documented("POST", REQUESTS, &created);
        for review in ["approve", "deny", "cancel"] {
            assert_documented(
                "POST",
                &format!("{REQUESTS}/{{id}}/{review}"),
                &render(Updated(written(r.clone(), false))),
            );
        }
        let entity = graph_entity(r, "roleAssignmentScheduleRequests");
        assert_response_matches("POST", GRAPH_REQUESTS, 201, &entity);
        assert_response_matches("GET", &format!("{GRAPH_REQUESTS}/{{id}}"), 200, &entity);
        let mut with_revision = entity.clone();
        with_revision["revision"] = json!("8");
        assert!(
            check_response("POST", GRAPH_REQUESTS, 201, &with_revision).is_err(),
            "Graph's request has no revision"
        );
    }
    assert!(
        response_object("POST", REQUESTS, 200).is_err(),
        "a request is recorded anew each time"
    );
    let uri: Uri = format!("{REQUESTS}?status=PendingApproval&limit=2")
        .parse()
        .expect("a uri");
    let list = render(List::of_stored(
        &uri,
        Page {
            items: requests.iter().cloned().map(stored).collect(),
            next: Some("opaque".to_owned()),
        },
    ));
    assert_documented("GET", REQUESTS, &list);
    let page = json!({
        "@odata.context": "http://localhost/v1.0/$metadata#roleManagement/directory/roleAssignmentScheduleRequests(id,status)",
        "@odata.nextLink": "http://localhost/v1.0/roleManagement/directory/roleAssignmentScheduleRequests?%24select=id%2Cstatus&%24skiptoken=x",
        "value": [{"id": requests[0].id, "status": "Provisioned"}]});
    assert_response_matches("GET", GRAPH_REQUESTS, 200, &page);

    // An activation is a time-bound role assignment naming its request; explanations say so.
    let activation = RoleAssignment {
        start_date_time: Some(now()),
        end_date_time: Some(now() + chrono::Duration::hours(2)),
        activation_request_id: Some(requests[1].id),
        ..role_assignment(false)
    };
    assert_documented(
        "GET",
        "/v1/roleAssignments/{id}",
        &render(One(stored(activation.clone()))),
    );
    let verdict = Verdict {
        allowed: true,
        reasons: vec![Reason::Grant(GrantReason {
            assignment_id: Some(activation.id),
            source: GrantSource::Assignment,
            principal_id: activation.principal_id,
            role_definition_id: activation.role_definition_id,
            role_display_name: "Application credential manager".to_owned(),
            matched_pattern: "microsoft.directory/applications/credentials/update".to_owned(),
            scope: "/applications/a1".to_owned(),
            via: vec![],
            via_token_groups: false,
            end_date_time: activation.end_date_time,
            activation_request_id: activation.activation_request_id,
        })],
        groups_overage: false,
        withheld: 0,
    };
    let reasons = serde_json::to_value(wire::reasons(verdict, true)).expect("serializes");
    assert!(
        reasons[0].get("endDateTime").is_some() && reasons[0].get("activationRequestId").is_some()
    );
    let check = json!({"allowed": true, "decision": "allow", "revision": "3", "reasons": reasons});
    assert_response_matches("POST", "/v1/check", 200, &check);

    // The change log: each PIM kind, and the expiry ending an activation.
    let mut expired = requests[1].clone();
    expired.status = RequestStatus::Expired;
    let row =
        |sequence, entity_type, op, before: Option<Value>, after: Option<Value>, actor: &str| {
            Change {
                revision: Revision(21),
                sequence,
                tenant_id: TenantId(Uuid::new_v4()),
                entity_type,
                entity_id: Uuid::new_v4().to_string(),
                op,
                before,
                after,
                actor: actor.to_owned(),
                at: now(),
            }
        };
    let changes = vec![
        row(
            0,
            EntityType::RoleEligibilitySchedule,
            ChangeOp::Create,
            None,
            Some(json_of(&eligibility(true))),
            "admin-key",
        ),
        row(
            1,
            EntityType::RoleManagementPolicy,
            ChangeOp::Create,
            None,
            Some(json_of(&set)),
            "admin-key",
        ),
        row(
            2,
            EntityType::RoleAssignment,
            ChangeOp::Delete,
            Some(json_of(&activation)),
            None,
            "rolecall-expiry",
        ),
        row(
            3,
            EntityType::RoleAssignmentScheduleRequest,
            ChangeOp::Update,
            Some(json_of(&requests[1])),
            Some(json_of(&expired)),
            "rolecall-expiry",
        ),
    ];
    let uri = Uri::from_static("/v1/changes?since=20");
    let list = List::new(
        &uri,
        Page {
            items: changes,
            next: None,
        },
        |c| c,
    );
    let mut body = serde_json::to_value(&list).expect("serializes");
    body["revision"] = json!(Revision(21));
    assert_response_matches("GET", "/v1/changes", 200, &body);

    // `activation-refused` carries its rule, and only it does.
    let refused = render(ApiError::Refused(Refusal::NotPending {
        id: Uuid::new_v4(),
        status: "Denied",
    }));
    assert_eq!(refused.status, 422);
    assert_eq!(refused.body["reason"], "not-pending");
    for path in ["", "/{id}/approve", "/{id}/deny", "/{id}/cancel"] {
        assert_documented("POST", &format!("{REQUESTS}{path}"), &refused);
    }
    let mut without_reason = refused.body.clone();
    without_reason.as_object_mut().unwrap().remove("reason");
    assert!(check_response("POST", REQUESTS, 422, &without_reason).is_err());
    let mut unprocessable = render(ApiError::Unprocessable(ValidationErrors::single(
        "/roleDefinitionId",
        "no such role",
    )))
    .body;
    assert_response_matches("POST", REQUESTS, 422, &unprocessable);
    unprocessable["reason"] = json!("not-eligible");
    assert!(check_response("POST", REQUESTS, 422, &unprocessable).is_err());
    assert!(
        check_response("POST", "/v1/roleEligibilitySchedules", 422, &refused.body).is_err(),
        "making someone eligible is not refused by PIM's rules"
    );
}

// --- errors ---

/// One of every `ApiError` variant, with the (status, problem kind) the contract's table
/// gives it. The `match` is exhaustive: a new variant does not compile until it is added
/// here and to the contract.
fn every_error() -> Vec<(ApiError, u16, &'static str)> {
    let fields = || ValidationErrors::single("/displayName", "a display name is not empty");
    let all = vec![
        ApiError::Validation(fields()),
        ApiError::MalformedBody("the body is not valid JSON".to_owned()),
        ApiError::Unauthorized("send `Authorization: Bearer <token>`"),
        ApiError::InvalidToken("the token has expired".to_owned()),
        ApiError::Forbidden {
            action: "microsoft.directory/groups/create".to_owned(),
            scope: "/".to_owned(),
        },
        ApiError::ForbiddenOther("a token acts only in its own tenant".to_owned()),
        ApiError::EscalationRefused {
            role: "Global Administrator".to_owned(),
            scope: "/applications/a".to_owned(),
            missing: vec!["microsoft.directory/users/delete".to_owned()],
        },
        ApiError::NotFound("group `x` not found".to_owned()),
        ApiError::NoRoute("/v1/nowhere".to_owned()),
        ApiError::MethodNotAllowed,
        ApiError::Conflict("display name in use".to_owned()),
        ApiError::BuiltinImmutable("built-in".to_owned()),
        ApiError::PreconditionFailed("changed".to_owned()),
        ApiError::RequestTimeout("the request body did not arrive within 10s".to_owned()),
        ApiError::PayloadTooLarge("too large".to_owned()),
        ApiError::UnsupportedMediaType("send json".to_owned()),
        ApiError::Unprocessable(ValidationErrors::single(
            "/roleDefinitionId",
            "no such role",
        )),
        ApiError::Refused(rolecall::model::Refusal::JustificationRequired),
        ApiError::ConsistencyTimeout("behind".to_owned()),
        ApiError::IssuerUnavailable("no current signing keys for issuer `x`".to_owned()),
        ApiError::NotReady {
            reason: "this replica has not loaded its decision snapshot yet".to_owned(),
            readiness: Box::new(rolecall::api::Readiness {
                status: "not-ready",
                store: "postgres",
                store_reachable: false,
                snapshot_loaded: false,
                snapshot_revision: None,
                staleness_seconds: None,
                max_staleness_seconds: None,
            }),
        },
        ApiError::Unavailable(anyhow::anyhow!("connection refused: secret-host:5432")),
        ApiError::Internal(anyhow::anyhow!("secret stack trace")),
    ];
    all.into_iter()
        .map(|error| {
            let (status, kind) = match &error {
                ApiError::Validation(_) => (400, "validation"),
                ApiError::MalformedBody(_) => (400, "malformed-body"),
                ApiError::Unauthorized(_) => (401, "unauthorized"),
                ApiError::InvalidToken(_) => (401, "invalid-token"),
                ApiError::Forbidden { .. } | ApiError::ForbiddenOther(_) => (403, "forbidden"),
                ApiError::EscalationRefused { .. } => (403, "escalation-refused"),
                ApiError::IssuerUnavailable(_) => (503, "issuer-unavailable"),
                ApiError::NotFound(_) | ApiError::NoRoute(_) => (404, "not-found"),
                ApiError::MethodNotAllowed => (405, "method-not-allowed"),
                ApiError::Conflict(_) => (409, "conflict"),
                ApiError::BuiltinImmutable(_) => (409, "builtin-role-immutable"),
                ApiError::PreconditionFailed(_) => (412, "precondition-failed"),
                ApiError::RequestTimeout(_) => (408, "request-timeout"),
                ApiError::PayloadTooLarge(_) => (413, "payload-too-large"),
                ApiError::UnsupportedMediaType(_) => (415, "unsupported-media-type"),
                ApiError::Unprocessable(_) => (422, "unprocessable"),
                ApiError::Refused(_) => (422, "activation-refused"),
                ApiError::ConsistencyTimeout(_) => (503, "consistency-timeout"),
                ApiError::NotReady { .. } => (503, "not-ready"),
                ApiError::Unavailable(_) => (503, "store-unavailable"),
                ApiError::Internal(_) => (500, "internal"),
            };
            (error, status, kind)
        })
        .collect()
}

#[test]
fn every_api_error_is_a_documented_problem_document() {
    let problem =
        compile_schema(&json!({"$ref": "#/components/schemas/Problem"})).expect("compiles");
    let spec_types: BTreeSet<String> = spec()["components"]["schemas"]["Problem"]["properties"]
        ["type"]["enum"]
        .as_array()
        .expect("Problem.type is an enum")
        .iter()
        .map(|t| t.as_str().expect("a string").to_owned())
        .collect();
    let table = spec()["info"]["description"]
        .as_str()
        .expect("info.description");
    let mut rendered_types = BTreeSet::new();
    for (error, status, kind) in every_error() {
        let label = format!("{error:?}");
        let rendered = render(error);
        let expected_type = format!("{PROBLEM_BASE}{kind}");
        assert_eq!(rendered.status, status, "{label}");
        assert_eq!(
            rendered.headers["content-type"], "application/problem+json",
            "{label}"
        );
        assert_eq!(rendered.body["type"], expected_type, "{label}");
        assert_eq!(rendered.body["status"], status, "{label}");
        let errors: Vec<String> = problem
            .iter_errors(&rendered.body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{label}: {errors:?}\n{:#}",
            rendered.body
        );
        assert!(
            table.contains(&format!("| `{expected_type}` | {status} |")),
            "the table in info.description does not give `{expected_type}` status {status}"
        );
        if status >= 500 {
            assert!(
                !rendered.body.to_string().contains("secret"),
                "a 5xx leaks its cause: {}",
                rendered.body
            );
        }
        assert_eq!(
            rendered.headers.contains_key("www-authenticate"),
            status == 401,
            "{label}"
        );
        assert_eq!(
            rendered.headers.contains_key("retry-after"),
            status == 503,
            "{label}"
        );
        rendered_types.insert(expected_type);

        // Some operation documents exactly this (405 is the router's, for every path).
        if status != 405 {
            let documented_by = operations().into_iter().find(|(method, path, _)| {
                check_response(method, path, status, &rendered.body).is_ok()
                    && check_headers(method, path, &rendered).is_ok()
            });
            assert!(
                documented_by.is_some(),
                "no operation documents {label} as rendered: {:#}",
                rendered.body
            );
        }
    }
    assert_eq!(
        rendered_types, spec_types,
        "the problem types ApiError writes vs the spec's `Problem.type` enum"
    );
}

// --- authentication and authorization ---

/// Routes that need a credential: `/v1`, the Graph-compatible `/v1.0` and AuthZEN's
/// evaluation routes.
fn authenticated(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/v1.0/") || path.starts_with("/access/")
}

/// The Graph-compatible routes, whose errors are Graph's envelope (checked in `graph.rs`).
fn graph(path: &str) -> bool {
    path.starts_with("/v1.0/")
}

/// The authenticated operations that answer problem documents, each as (METHOD, path,
/// operation).
fn v1_operations() -> Vec<(String, String, &'static Value)> {
    operations()
        .into_iter()
        .filter(|(_, path, _)| authenticated(path) && !graph(path))
        .collect()
}

/// The problem types a documented response allows (`const` or `enum` on `type`).
fn documented_types(method: &str, path: &str, status: u16) -> BTreeSet<String> {
    let response = response_object(method, path, status).expect("documented");
    let ty = &response["content"]["application/problem+json"]["schema"]["properties"]["type"];
    let listed = match (&ty["const"], &ty["enum"]) {
        (Value::String(one), _) => vec![one.clone()],
        (_, Value::Array(all)) => all
            .iter()
            .map(|t| t.as_str().expect("a string").to_owned())
            .collect(),
        _ => panic!("{method} {path} {status}: no `type` const or enum"),
    };
    listed.into_iter().collect()
}

#[test]
fn every_v1_operation_may_answer_401_and_403_and_operations_routes_need_no_credentials() {
    let problem = |kind: &str| format!("{PROBLEM_BASE}{kind}");
    let global: Vec<&Value> = spec()["security"]
        .as_array()
        .expect("a global `security`")
        .iter()
        .collect();
    assert_eq!(
        global,
        [&json!({"bearerToken": []}), &json!({"adminKey": []})],
        "`/v1` takes a bearer token or the admin key, either one"
    );
    let mut problems = Vec::new();
    for (method, path, operation) in operations() {
        let name = format!("{method} {path}");
        if !authenticated(&path) {
            if operation.get("security") != Some(&json!([])) {
                problems.push(format!("{name}: does not say `security: []`"));
            }
            for status in [401, 403] {
                if operation["responses"].get(status.to_string()).is_some() {
                    problems.push(format!(
                        "{name}: needs no credentials, yet declares {status}"
                    ));
                }
            }
            continue;
        }
        if operation.get("security").is_some() {
            problems.push(format!("{name}: overrides the global `security`"));
        }
        if graph(&path) {
            continue;
        }
        for (status, kinds) in [
            (401, vec!["unauthorized", "invalid-token"]),
            (403, vec!["forbidden"]),
            (503, vec!["issuer-unavailable"]),
        ] {
            if operation["responses"].get(status.to_string()).is_none() {
                problems.push(format!("{name}: declares no {status}"));
                continue;
            }
            let documented = documented_types(&method, &path, status);
            for kind in kinds {
                if !documented.contains(&problem(kind)) {
                    problems.push(format!("{name}: its {status} does not allow `{kind}`"));
                }
            }
        }
        // Escalation is refused exactly where assignments are handed out, directly,
        // through a group's membership, or through PIM (an eligibility, a role's activation
        // policy, a review of an activation).
        let escalates = matches!(
            (method.as_str(), path.as_str()),
            ("POST", "/v1/roleAssignments")
                | ("PATCH", "/v1/roleDefinitions/{id}")
                | ("POST", "/v1/groups/{id}/members")
                | ("DELETE", "/v1/groups/{id}/members/{memberId}")
                | ("POST", "/v1/roleEligibilitySchedules")
                | ("PUT", "/v1/roleManagementPolicies/{id}")
                | ("POST", "/v1/roleAssignmentScheduleRequests/{id}/approve")
                | ("POST", "/v1/roleAssignmentScheduleRequests/{id}/deny")
        );
        if documented_types(&method, &path, 403).contains(&problem("escalation-refused"))
            != escalates
        {
            problems.push(format!(
                "{name}: 403 escalation-refused should be documented: {escalates}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_authorization_table_names_every_action_and_every_v1_operation() {
    use rolecall::decide::actions::ADMIN_ACTIONS;
    let description = spec()["info"]["description"]
        .as_str()
        .expect("info.description");
    let (_, authorization) = description
        .split_once("## Authorization")
        .expect("an `## Authorization` section in info.description");
    for action in ADMIN_ACTIONS {
        assert!(
            authorization.contains(&format!("`{action}`")),
            "the Authorization section does not name `{action}`"
        );
    }
    let rows: Vec<&str> = authorization
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| `"))
        .collect();
    let missing: Vec<String> = v1_operations()
        .into_iter()
        .filter(|(method, path, _)| {
            !rows.iter().any(|row| {
                let operations = row.split(" | ").next().unwrap_or_default();
                operations.contains(&format!(" {path}`")) && operations.contains(method.as_str())
            })
        })
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a row in the Authorization table: {missing:#?}"
    );
}

#[test]
fn authorization_problems_are_written_as_the_spec_says() {
    let forbidden = render(ApiError::Forbidden {
        action: "microsoft.directory/groups/standard/read".to_owned(),
        scope: "/".to_owned(),
    });
    assert_eq!(
        forbidden.body["action"],
        "microsoft.directory/groups/standard/read"
    );
    assert_eq!(forbidden.body["scope"], "/");
    for (method, path, _) in v1_operations() {
        assert_documented(&method, &path, &forbidden);
    }
    // The tenant mismatch names no action or scope.
    let other_tenant = render(ApiError::ForbiddenOther(
        "a token acts only in its own tenant".to_owned(),
    ));
    assert!(other_tenant.body.get("action").is_none() && other_tenant.body.get("scope").is_none());
    assert_documented("GET", "/v1/groups", &other_tenant);

    let escalation = render(ApiError::EscalationRefused {
        role: "App Writer".to_owned(),
        scope: "/applications/a".to_owned(),
        missing: vec!["contoso.apps/settings/update".to_owned()],
    });
    assert_eq!(escalation.status, 403);
    assert_eq!(
        escalation.body["missing"],
        json!(["contoso.apps/settings/update"])
    );
    assert_eq!(escalation.body["scope"], "/applications/a");
    for (method, path) in [
        ("POST", "/v1/roleAssignments"),
        ("PATCH", "/v1/roleDefinitions/{id}"),
        ("POST", "/v1/groups/{id}/members"),
        ("DELETE", "/v1/groups/{id}/members/{memberId}"),
        ("POST", "/v1/roleEligibilitySchedules"),
        ("PUT", "/v1/roleManagementPolicies/{id}"),
        ("POST", "/v1/roleAssignmentScheduleRequests/{id}/approve"),
        ("POST", "/v1/roleAssignmentScheduleRequests/{id}/deny"),
    ] {
        assert_documented(method, path, &escalation);
    }
    assert!(
        check_response("POST", "/v1/denyAssignments", 403, &escalation.body).is_err(),
        "deny assignments are not refused as escalation"
    );

    // The extension members belong where the table puts them, and only there.
    let mut without_missing = escalation.body.clone();
    without_missing.as_object_mut().unwrap().remove("missing");
    assert!(check_response("POST", "/v1/roleAssignments", 403, &without_missing).is_err());
    let mut forbidden_with_missing = forbidden.body.clone();
    forbidden_with_missing["missing"] = json!(["a.b/c"]);
    assert!(check_response("POST", "/v1/roleAssignments", 403, &forbidden_with_missing).is_err());
    let mut scope_only = forbidden.body.clone();
    scope_only.as_object_mut().unwrap().remove("action");
    assert!(check_response("GET", "/v1/groups", 403, &scope_only).is_err());
    let mut not_found_with_scope = json!({"type": format!("{PROBLEM_BASE}not-found"), "title": "Not found", "status": 404, "detail": "x"});
    check_response("GET", "/v1/groups/{id}", 404, &not_found_with_scope).expect("a 404");
    not_found_with_scope["action"] = json!("a.b/c");
    not_found_with_scope["scope"] = json!("/");
    assert!(check_response("GET", "/v1/groups/{id}", 404, &not_found_with_scope).is_err());

    // 401: no credentials, or a bad one (RFC 6750 challenge); both documented everywhere.
    let none = render(ApiError::Unauthorized(
        "send `Authorization: Bearer <token>`",
    ));
    assert_eq!(
        none.headers["www-authenticate"],
        "Bearer realm=\"rolecall\""
    );
    let bad = render(ApiError::InvalidToken(
        "the token has expired (\"exp\" is in the past)".to_owned(),
    ));
    assert_eq!(
        bad.headers["www-authenticate"],
        "Bearer realm=\"rolecall\", error=\"invalid_token\", error_description=\"the token has expired ('exp' is in the past)\""
    );
    // 503: the issuer's keys cannot be had, on any route that authenticates a token.
    let issuer = render(ApiError::IssuerUnavailable(
        "no current signing keys for issuer `x`".to_owned(),
    ));
    assert_eq!(issuer.headers["retry-after"], "1");
    for (method, path, _) in v1_operations() {
        assert_documented(&method, &path, &none);
        assert_documented(&method, &path, &bad);
        assert_documented(&method, &path, &issuer);
    }
    assert!(
        check_response("GET", "/readyz", 503, &issuer.body).is_err(),
        "/readyz authenticates nothing"
    );
}

#[test]
fn check_requests_take_a_subject_token_or_a_principal_id() {
    let body_schema = |path: &str| {
        let operation = &spec()["paths"][path]["post"];
        let body = resolve(&operation["requestBody"]).expect("resolves");
        compile_schema(&body["content"]["application/json"]["schema"])
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let check = body_schema("/v1/check");
    let batch = body_schema("/v1/check/batch");
    let id = Uuid::new_v4();
    let question = |subject: Value| json!({"subject": subject, "action": "contoso.reports/read", "resource": "/reports/1", "explain": true});
    for subject in [
        json!({"token": "x.y.z"}),
        json!({"principalId": id}),
        json!({"principalId": id, "groups": [Uuid::new_v4()], "wids": [Uuid::new_v4()]}),
    ] {
        let single = question(subject.clone());
        assert!(check.is_valid(&single), "{single}");
        let mut item = question(subject);
        item.as_object_mut().unwrap().remove("explain");
        let many = json!({"checks": [item]});
        assert!(batch.is_valid(&many), "{many}");
    }
    for subject in [
        json!({"token": "x.y.z", "principalId": id}),
        json!({"token": "x.y.z", "groups": [id]}),
        json!({"token": ""}),
        json!({"groups": [id]}),
        json!({}),
    ] {
        let single = question(subject.clone());
        assert!(!check.is_valid(&single), "accepted {single}");
        let many = json!({"checks": [{"subject": subject, "action": "a.b/c", "resource": "/"}]});
        assert!(!batch.is_valid(&many), "accepted {many}");
    }
}

// --- the checker itself ---

#[test]
fn the_response_checker_rejects_what_the_spec_does_not_allow() {
    let path = "/v1/groups/{id}";
    let good = serde_json::to_value(group()).expect("serializes");
    check_response("GET", path, 200, &good).expect("a real group matches");
    assert_response_matches("get", path, 200, &good);

    let expect_err = |status: u16, body: Value, needle: &str| {
        let message =
            check_response("GET", path, status, &body).expect_err(&format!("accepted {body}"));
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    };
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("createdDateTime");
    expect_err(200, missing, "createdDateTime");
    let mut extra = good.clone();
    extra["tenantId"] = json!(Uuid::new_v4());
    expect_err(200, extra, "tenantId");
    let mut not_a_uuid = good.clone();
    not_a_uuid["id"] = json!("group-1");
    expect_err(200, not_a_uuid, "/id");
    let mut not_a_time = good.clone();
    not_a_time["lastModifiedDateTime"] = json!("yesterday");
    expect_err(200, not_a_time, "/lastModifiedDateTime");
    let mut with_revision = good.clone();
    with_revision["revision"] = json!("7");
    expect_err(200, with_revision.clone(), "revision");
    check_response("PATCH", path, 200, &with_revision).expect("a write answers its revision");
    with_revision["revision"] = json!(7);
    assert!(
        check_response("PATCH", path, 200, &with_revision).is_err(),
        "revisions are strings"
    );

    // Problems: the type must be the one documented for the status.
    let conflict = json!({"type": format!("{PROBLEM_BASE}conflict"), "title": "Conflict", "status": 409, "detail": "x"});
    expect_err(404, conflict, "/type");
    let not_found = json!({"type": format!("{PROBLEM_BASE}not-found"), "title": "Not found", "status": 404, "detail": "x"});
    check_response("GET", path, 404, &not_found).expect("a real 404");
    expect_err(418, not_found.clone(), "documents no 418");
    assert!(check_response("PUT", path, 200, &good)
        .unwrap_err()
        .contains("no `PUT /v1/groups/{id}` operation"));
    assert!(check_response("GET", "/v1/nowhere", 200, &good)
        .unwrap_err()
        .contains("no path"));

    let panicked =
        std::panic::catch_unwind(|| assert_response_matches("GET", path, 200, &json!({})));
    let message = *panicked
        .expect_err("an empty body must not pass")
        .downcast::<String>()
        .expect("a message");
    assert!(
        message.contains("does not match openapi.yaml") && message.contains("body: {}"),
        "{message}"
    );
}
