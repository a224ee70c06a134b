//! Privileged Identity Management over real HTTP, on both stores: eligibilities, per-role
//! activation policy, self-activation and deactivation, approval, and expiry; what a check
//! says while an activation runs, and what the change log keeps.
//!
//! Activation is self-service, so these tests act with real tokens from the fake identity
//! provider. Tokens are minted on the app's clock, so they stay valid when a test moves
//! that clock forward.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use rolecall::decide::Clock as _;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::env::{assign, create_role, merge, send_as, Env, MANAGE_ASSIGNMENTS, PRA};

const ELIGIBILITIES: &str = "/v1/roleEligibilitySchedules";
const POLICIES: &str = "/v1/roleManagementPolicies";
const REQUESTS: &str = "/v1/roleAssignmentScheduleRequests";
const ASSIGNMENTS: &str = "/v1/roleAssignments";

/// What the roles under test allow, where they are held, and a resource there.
const ACTION: &str = "contoso.payroll/runs/approve";
const SCOPE: &str = "/payroll";
const RESOURCE: &str = "/payroll/runs/2026-06";

/// Runs each `async fn(&Env)` twice, as `sqlite::name` and `postgres::name`: an app on a
/// fresh database of that store, trusting a fake identity provider.
macro_rules! on_both_stores_with_tokens {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = $crate::common::env::env_on(
                        rolecall::store::Backend::Sqlite,
                        |_, _, _| {},
                    )
                    .await;
                    super::$name(&env).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = $crate::common::env::env_on(
                        rolecall::store::Backend::Postgres,
                        |_, _, _| {},
                    )
                    .await;
                    super::$name(&env).await;
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A token for `oid`, valid for an hour from the app's current (possibly advanced) time,
/// with `extra` claims merged in.
fn token_with(env: &Env, oid: Uuid, extra: Value) -> String {
    let now = env.app.clock.now().timestamp();
    let mut claims = json!({"iat": now, "nbf": now, "exp": now + 3600});
    merge(&mut claims, extra);
    env.token_with(oid, claims)
}

fn token(env: &Env, oid: Uuid) -> String {
    token_with(env, oid, json!({}))
}

/// A token of a Privileged Role Administrator (by its `wids` claim): an approver anywhere.
fn approver_token(env: &Env, oid: Uuid) -> String {
    token_with(env, oid, json!({"wids": [PRA]}))
}

/// An RFC 3339 instant in a body.
#[track_caller]
fn at(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("`{value}` is not an RFC 3339 instant"))
        .with_timezone(&Utc)
}

fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body:#}"))
        .to_owned()
}

/// Makes `principal` (a user) eligible for `role` at `scope`, with the admin key.
async fn make_eligible(app: &TestApp, principal: Uuid, role: &str, scope: &str) -> Value {
    make_eligible_with(app, principal, role, scope, json!({})).await
}

async fn make_eligible_with(
    app: &TestApp,
    principal: Uuid,
    role: &str,
    scope: &str,
    extra: Value,
) -> Value {
    let mut body = json!({
        "principalId": principal,
        "principalType": "user",
        "roleDefinitionId": role,
        "directoryScopeId": scope,
        "justification": "member of the payroll on-call rota",
    });
    merge(&mut body, extra);
    let reply = app.post(ELIGIBILITIES, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    reply.body
}

/// A `selfActivate` body (justified, no schedule: the policy's maximum) with `extra`
/// merged in (a `null` member removes that member).
fn activation(principal: Uuid, role: &str, extra: Value) -> Value {
    let mut body = json!({
        "action": "selfActivate",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": SCOPE,
        "justification": "INC-4711: the June payroll run is stuck",
    });
    merge(&mut body, extra);
    body
}

fn lasting(duration: &str) -> Value {
    json!({"scheduleInfo": {"expiration": {"type": "afterDuration", "duration": duration}}})
}

fn deactivation(principal: Uuid, role: &str) -> Value {
    json!({
        "action": "selfDeactivate",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": SCOPE,
        "justification": "done",
    })
}

/// Submits a schedule request as `token`.
async fn submit(env: &Env, token: &str, body: Value) -> Reply {
    send_as(&env.app, token, Method::POST, REQUESTS, Some(body)).await
}

/// Submits a schedule request that must be accepted (201) with `status`.
async fn submit_ok(env: &Env, token: &str, body: Value, status: &str) -> Value {
    let reply = submit(env, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:#?}");
    assert_eq!(reply.body["status"], status, "{reply:#?}");
    reply.body
}

/// `approve`, `deny` or `cancel` on a request, as `token`.
async fn review(env: &Env, token: &str, id: &str, verb: &str, body: Option<Value>) -> Reply {
    send_as(
        &env.app,
        token,
        Method::POST,
        format!("{REQUESTS}/{id}/{verb}"),
        body,
    )
    .await
}

/// Asserts a 422 `activation-refused` with `reason`.
#[track_caller]
fn assert_refused(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:#?}");
    assert_eq!(reply.problem(), "activation-refused", "{reply:#?}");
    assert_eq!(reply.body["reason"], reason, "{reply:#?}");
}

/// Asserts a 400 `validation` naming `pointer`.
#[track_caller]
fn assert_invalid(reply: &Reply, pointer: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:#?}");
    assert_eq!(reply.problem(), "validation", "{reply:#?}");
    let pointers: Vec<&str> = reply.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["pointer"].as_str()).collect())
        .unwrap_or_default();
    assert!(pointers.contains(&pointer), "{pointer} in {reply:#?}");
}

#[track_caller]
fn assert_forbidden(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:#?}");
    assert_eq!(reply.problem(), "forbidden", "{reply:#?}");
}

/// The store's newest revision: unchanged when nothing was written.
async fn revision(app: &TestApp) -> String {
    let reply = app.get("/v1/changes?since=0&limit=1").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    reply.body["revision"].as_str().unwrap().to_owned()
}

/// Submits a request as `token` that must be refused for `reason`, and checks that the
/// refusal wrote nothing: no change-log row, no assignment for the principal.
async fn refused(env: &Env, token: &str, body: Value, reason: &str) {
    let app = &env.app;
    let principal = body["principalId"].as_str().unwrap().to_owned();
    let assignments_before = assignments_of(app, &principal).await;
    let before = revision(app).await;
    let reply = submit(env, token, body).await;
    assert_refused(&reply, reason);
    assert_eq!(
        revision(app).await,
        before,
        "a request refused for {reason} wrote something"
    );
    let changes = app.get(&format!("/v1/changes?since={before}")).await;
    assert_eq!(changes.body["value"], json!([]), "{changes:#?}");
    assert_eq!(assignments_of(app, &principal).await, assignments_before);
}

/// The ids of `principal`'s role assignments.
async fn assignments_of(app: &TestApp, principal: &str) -> Vec<String> {
    let reply = app
        .get(&format!("{ASSIGNMENTS}?principalId={principal}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

/// A check of `principal` with an explanation, asked with the admin key.
async fn check(app: &TestApp, principal: Uuid) -> Value {
    let reply = app
        .post(
            "/v1/check",
            &json!({
                "subject": {"principalId": principal},
                "action": ACTION,
                "resource": RESOURCE,
                "explain": true,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    reply.body
}

async fn allowed(app: &TestApp, principal: Uuid) -> bool {
    check(app, principal).await["allowed"].as_bool().unwrap()
}

/// The change-log rows about `entity_id`, oldest first.
async fn changes_of(app: &TestApp, entity_id: &str) -> Vec<Value> {
    let reply = app.get(&format!("/v1/changes?entityId={entity_id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:#?}");
    reply.body["value"].as_array().unwrap().clone()
}

/// `(entityType, op, actor)` of each change-log row about `entity_id`.
async fn history(app: &TestApp, entity_id: &str) -> Vec<(String, String, String)> {
    changes_of(app, entity_id)
        .await
        .iter()
        .map(|c| {
            (
                c["entityType"].as_str().unwrap().to_owned(),
                c["op"].as_str().unwrap().to_owned(),
                c["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(entity: &str, op: &str, actor: impl ToString) -> (String, String, String) {
    (entity.to_owned(), op.to_owned(), actor.to_string())
}

/// Polls `GET path` (admin key) until `done` holds of the reply, for at most 20 s.
async fn eventually(app: &TestApp, path: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = app.get(path).await;
        if done(&reply) {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} did not reach the expected state in 20 s: {reply:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The explanation's grant.
#[track_caller]
fn grant_of(check: &Value) -> &Value {
    check["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["kind"] == "grant"))
        .unwrap_or_else(|| panic!("no grant in {check:#}"))
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// Eligible → activate → allowed at once → deactivate → denied at once; what the requests,
/// the assignment, the explanation and the change log say along the way.
async fn an_activation_grants_until_its_holder_deactivates_it(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let user = Uuid::new_v4();
    let me = token(env, user);

    let eligibility = make_eligible(app, user, &role, SCOPE).await;
    let eligibility_id = id_of(&eligibility);
    assert_eq!(eligibility["principalId"], user.to_string());
    assert_eq!(eligibility["principalType"], "user");
    assert_eq!(eligibility["roleDefinitionId"], role);
    assert_eq!(eligibility["directoryScopeId"], SCOPE);
    assert_eq!(eligibility["memberType"], "Direct");
    // Making the same principal eligible again finds the same eligibility.
    let again = app
        .post(
            ELIGIBILITIES,
            &json!({"principalId": user, "principalType": "user", "roleDefinitionId": role, "directoryScopeId": SCOPE}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{again:#?}");
    assert_eq!(id_of(&again.body), eligibility_id);
    // ...but with another window it is a conflict.
    let in_a_week = (app.clock.now() + chrono::Duration::weeks(1)).to_rfc3339();
    let conflict = app
        .post(
            ELIGIBILITIES,
            &json!({"principalId": user, "principalType": "user", "roleDefinitionId": role, "directoryScopeId": SCOPE, "endDateTime": in_a_week}),
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{conflict:#?}");
    assert_eq!(conflict.problem(), "conflict");
    // Being eligible grants nothing.
    assert!(!allowed(app, user).await);

    // The principal sees its own eligibility and the role's policy (the default).
    let mine = send_as(
        app,
        &me,
        Method::GET,
        format!("{ELIGIBILITIES}?principalId={user}"),
        None,
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{mine:#?}");
    let listed: Vec<String> = mine.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&eligibility_id));
    assert!(mine.body["nextLink"].is_null(), "{mine:#?}");
    let one = send_as(
        app,
        &me,
        Method::GET,
        format!("{ELIGIBILITIES}/{eligibility_id}"),
        None,
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{one:#?}");
    assert_eq!(one.body["roleDefinitionId"], role);
    let policy = send_as(app, &me, Method::GET, format!("{POLICIES}/{role}"), None).await;
    assert_eq!(policy.status, StatusCode::OK, "{policy:#?}");
    for (field, value) in [
        ("roleDefinitionId", json!(role)),
        ("maximumActivationDuration", json!("PT8H")),
        ("isJustificationRequired", json!(true)),
        ("isTicketingRequired", json!(false)),
        ("isApprovalRequired", json!(false)),
        ("lastModifiedDateTime", Value::Null),
    ] {
        assert_eq!(policy.body[field], value, "{field}: {policy:#?}");
    }

    // Activate for two hours: provisioned at once, as a time-bound assignment.
    let justification = "INC-4711: the June payroll run is stuck";
    let request = submit_ok(
        env,
        &me,
        activation(user, &role, lasting("PT2H")),
        "Provisioned",
    )
    .await;
    let request_id = id_of(&request);
    assert_eq!(request["action"], "selfActivate");
    assert_eq!(request["principalId"], user.to_string());
    assert_eq!(request["roleDefinitionId"], role);
    assert_eq!(request["directoryScopeId"], SCOPE);
    assert_eq!(request["justification"], justification);
    assert_eq!(
        request["scheduleInfo"]["expiration"],
        json!({"type": "afterDuration", "duration": "PT2H"})
    );
    let (start, end) = (at(&request["startDateTime"]), at(&request["endDateTime"]));
    assert_eq!(end - start, chrono::Duration::hours(2));
    let assignment_id = request["targetScheduleId"].as_str().unwrap().to_owned();
    assert!(request["completedDateTime"].is_string(), "{request:#}");
    assert!(request["reviewedBy"].is_null(), "{request:#}");

    let assignment = app.get(&format!("{ASSIGNMENTS}/{assignment_id}")).await;
    assert_eq!(assignment.status, StatusCode::OK, "{assignment:#?}");
    assert_eq!(assignment.body["activationRequestId"], request_id.as_str());
    assert_eq!(assignment.body["principalId"], user.to_string());
    assert_eq!(assignment.body["roleDefinitionId"], role);
    assert_eq!(assignment.body["directoryScopeId"], SCOPE);
    assert_eq!(at(&assignment.body["startDateTime"]), start);
    assert_eq!(at(&assignment.body["endDateTime"]), end);

    // Read your writes: the very next check is allowed, and says why and until when.
    let allowed_now = check(app, user).await;
    assert_eq!(allowed_now["allowed"], true, "{allowed_now:#}");
    let grant = grant_of(&allowed_now);
    assert_eq!(grant["assignmentId"], assignment_id.as_str());
    assert_eq!(grant["activationRequestId"], request_id.as_str());
    assert_eq!(at(&grant["endDateTime"]), end);

    // The change log: who made the principal eligible and why, who activated and why.
    let eligibility_log = changes_of(app, &eligibility_id).await;
    assert_eq!(
        history(app, &eligibility_id).await,
        [row("roleEligibilitySchedule", "create", "admin-key")]
    );
    assert_eq!(
        eligibility_log[0]["after"]["justification"],
        "member of the payroll on-call rota"
    );
    let request_log = changes_of(app, &request_id).await;
    assert_eq!(
        history(app, &request_id).await,
        [row("roleAssignmentScheduleRequest", "create", user)]
    );
    assert_eq!(request_log[0]["after"]["justification"], justification);
    assert_eq!(request_log[0]["after"]["status"], "Provisioned");
    assert_eq!(
        history(app, &assignment_id).await,
        [row("roleAssignment", "create", user)]
    );

    // Deactivate: the assignment goes, the activation's request is revoked, and the next
    // check is denied.
    let ended = submit_ok(env, &me, deactivation(user, &role), "Provisioned").await;
    let ended_id = id_of(&ended);
    assert_eq!(ended["action"], "selfDeactivate");
    assert_eq!(ended["targetScheduleId"], assignment_id.as_str());
    assert!(!allowed(app, user).await);
    let gone = app.get(&format!("{ASSIGNMENTS}/{assignment_id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{gone:#?}");
    let revoked = send_as(
        app,
        &me,
        Method::GET,
        format!("{REQUESTS}/{request_id}"),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:#?}");
    assert_eq!(revoked.body["status"], "Revoked");
    assert!(at(&revoked.body["endDateTime"]) < end, "{revoked:#?}");
    assert_eq!(
        history(app, &request_id).await,
        [
            row("roleAssignmentScheduleRequest", "create", user),
            row("roleAssignmentScheduleRequest", "update", user),
        ]
    );
    let request_log = changes_of(app, &request_id).await;
    assert_eq!(request_log[1]["before"]["status"], "Provisioned");
    assert_eq!(request_log[1]["after"]["status"], "Revoked");
    assert_eq!(
        history(app, &assignment_id).await,
        [
            row("roleAssignment", "create", user),
            row("roleAssignment", "delete", user),
        ]
    );
    assert_eq!(
        history(app, &ended_id).await,
        [row("roleAssignmentScheduleRequest", "create", user)]
    );
    assert_eq!(
        changes_of(app, &ended_id).await[0]["after"]["justification"],
        "done"
    );

    // The principal lists its own requests, filtered by status.
    let own = |query: &str| {
        send_as(
            app,
            &me,
            Method::GET,
            format!("{REQUESTS}?principalId={user}{query}"),
            None,
        )
    };
    let all = own("").await;
    assert_eq!(all.status, StatusCode::OK, "{all:#?}");
    let mut ids: Vec<String> = all.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    ids.sort();
    let mut expected = vec![request_id.clone(), ended_id];
    expected.sort();
    assert_eq!(ids, expected);
    let revoked = own("&status=Revoked").await;
    let revoked: Vec<String> = revoked.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(revoked, [request_id]);

    // Once the eligibility is removed, there is nothing to activate.
    let removed = app
        .delete(&format!("{ELIGIBILITIES}/{eligibility_id}"))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:#?}");
    assert_eq!(
        history(app, &eligibility_id).await,
        [
            row("roleEligibilitySchedule", "create", "admin-key"),
            row("roleEligibilitySchedule", "delete", "admin-key"),
        ]
    );
    refused(env, &me, activation(user, &role, json!({})), "not-eligible").await;
}

/// An activation stops granting the moment its end passes, before anything is cleaned up;
/// the expiry task then removes its assignment and marks it `Expired`, as
/// `rolecall-expiry`; and the principal can activate again.
async fn an_activation_expires_at_its_end_and_can_be_taken_up_again(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let user = Uuid::new_v4();
    make_eligible(app, user, &role, SCOPE).await;

    let first = submit_ok(
        env,
        &token(env, user),
        activation(user, &role, lasting("PT1H")),
        "Provisioned",
    )
    .await;
    let first_id = id_of(&first);
    let assignment_id = first["targetScheduleId"].as_str().unwrap().to_owned();
    assert!(allowed(app, user).await);

    // One minute past its end the check is denied, whatever the expiry task has done.
    app.clock.advance(chrono::Duration::minutes(61));
    let denied = check(app, user).await;
    assert_eq!(denied["allowed"], false, "{denied:#}");

    // The expiry task ends it: request `Expired`, assignment deleted, both by the task.
    let expired = eventually(app, &format!("{REQUESTS}/{first_id}"), |r| {
        r.body["status"] == "Expired"
    })
    .await;
    assert_eq!(at(&expired.body["endDateTime"]), at(&first["endDateTime"]));
    let gone = app.get(&format!("{ASSIGNMENTS}/{assignment_id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{gone:#?}");
    assert_eq!(
        history(app, &assignment_id).await,
        [
            row("roleAssignment", "create", user),
            row("roleAssignment", "delete", "rolecall-expiry"),
        ]
    );
    assert_eq!(
        history(app, &first_id).await,
        [
            row("roleAssignmentScheduleRequest", "create", user),
            row("roleAssignmentScheduleRequest", "update", "rolecall-expiry"),
        ]
    );
    let request_log = changes_of(app, &first_id).await;
    assert_eq!(request_log[1]["after"]["status"], "Expired");
    let by_task = app.get("/v1/changes?actor=rolecall-expiry").await;
    assert_eq!(
        by_task.body["value"].as_array().unwrap().len(),
        2,
        "{by_task:#?}"
    );

    // Activating again works, and grants again.
    let second = submit_ok(
        env,
        &token(env, user),
        activation(user, &role, lasting("PT1H")),
        "Provisioned",
    )
    .await;
    assert_ne!(second["targetScheduleId"], first["targetScheduleId"]);
    assert!(allowed(app, user).await);

    // An ended activation whose assignment is still stored does not block the next one
    // either (right after a sweep, the next is two seconds away).
    app.clock.advance(chrono::Duration::minutes(61));
    assert!(!allowed(app, user).await);
    let third = submit_ok(
        env,
        &token(env, user),
        activation(user, &role, lasting("PT1H")),
        "Provisioned",
    )
    .await;
    assert!(allowed(app, user).await);
    let second_ended = app.get(&format!("{REQUESTS}/{}", id_of(&second))).await;
    assert_eq!(second_ended.body["status"], "Expired", "{second_ended:#?}");
    assert_eq!(
        assignments_of(app, &user.to_string()).await,
        [third["targetScheduleId"].as_str().unwrap().to_owned()]
    );
}

/// Every reason an activation, deactivation or review is refused, each answered 422 with
/// its `reason`; a refused request writes nothing. Malformed bodies are 400s.
async fn each_refusal_names_its_reason_and_changes_nothing(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let user = Uuid::new_v4();
    let me = token(env, user);
    let justified = || activation(user, &role, json!({}));

    // Not eligible (yet).
    refused(env, &me, justified(), "not-eligible").await;
    make_eligible(app, user, &role, SCOPE).await;
    // Eligible for the role at another scope only is not eligible here.
    refused(
        env,
        &me,
        activation(user, &role, json!({"directoryScopeId": "/payroll/eu"})),
        "not-eligible",
    )
    .await;

    // The default policy: a justification, at most eight hours.
    refused(
        env,
        &me,
        activation(user, &role, json!({"justification": null})),
        "justification-required",
    )
    .await;
    refused(
        env,
        &me,
        activation(user, &role, json!({"justification": "   "})),
        "justification-required",
    )
    .await;
    refused(
        env,
        &me,
        activation(user, &role, lasting("PT9H")),
        "duration-exceeds-maximum",
    )
    .await;
    let nine_hours = (app.clock.now() + chrono::Duration::hours(9)).to_rfc3339();
    refused(
        env,
        &me,
        activation(
            user,
            &role,
            json!({"scheduleInfo": {"expiration": {"type": "afterDateTime", "endDateTime": nine_hours}}}),
        ),
        "duration-exceeds-maximum",
    )
    .await;

    // A stricter policy: a ticket, at most an hour.
    let put = app
        .call(
            Method::PUT,
            &format!("{POLICIES}/{role}"),
            Some(&json!({"maximumActivationDuration": "PT1H", "isTicketingRequired": true})),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:#?}");
    assert_eq!(put.body["maximumActivationDuration"], "PT1H");
    assert_eq!(put.body["isTicketingRequired"], true);
    assert_eq!(put.body["isJustificationRequired"], true);
    assert_eq!(put.body["isApprovalRequired"], false);
    assert!(put.body["lastModifiedDateTime"].is_string(), "{put:#?}");
    let read = send_as(app, &me, Method::GET, format!("{POLICIES}/{role}"), None).await;
    assert_eq!(read.body["maximumActivationDuration"], "PT1H", "{read:#?}");
    assert_eq!(
        history(app, &role).await.last(),
        Some(&row("roleManagementPolicy", "create", "admin-key"))
    );
    refused(env, &me, justified(), "ticket-required").await;
    refused(
        env,
        &me,
        activation(
            user,
            &role,
            json!({"ticketInfo": {"ticketSystem": "ServiceNow"}}),
        ),
        "ticket-required",
    )
    .await;
    let ticket = json!({"ticketInfo": {"ticketNumber": "INC-4711", "ticketSystem": "ServiceNow"}});
    let mut too_long = activation(user, &role, ticket.clone());
    merge(&mut too_long, lasting("PT2H"));
    refused(env, &me, too_long, "duration-exceeds-maximum").await;

    // Nothing to deactivate.
    refused(env, &me, deactivation(user, &role), "not-active").await;

    // Eligibility windows: not started yet; ending before the activation would.
    let later_role = create_role(app, "Payroll Auditor", &[ACTION]).await;
    let tomorrow = app.clock.now() + chrono::Duration::days(1);
    make_eligible_with(
        app,
        user,
        &later_role,
        SCOPE,
        json!({"startDateTime": tomorrow.to_rfc3339()}),
    )
    .await;
    refused(
        env,
        &me,
        activation(user, &later_role, lasting("PT1H")),
        "outside-eligibility-window",
    )
    .await;
    let ending_role = create_role(app, "Payroll Clerk", &[ACTION]).await;
    let in_an_hour = app.clock.now() + chrono::Duration::hours(1);
    make_eligible_with(
        app,
        user,
        &ending_role,
        SCOPE,
        json!({"endDateTime": in_an_hour.to_rfc3339()}),
    )
    .await;
    refused(
        env,
        &me,
        activation(user, &ending_role, lasting("PT2H")),
        "outside-eligibility-window",
    )
    .await;

    // Already active: by a standing assignment...
    let holder = Uuid::new_v4();
    make_eligible(app, holder, &role, SCOPE).await;
    let standing = assign(app, holder, "user", &role, SCOPE).await;
    let mut asked = activation(holder, &role, ticket.clone());
    merge(&mut asked, lasting("PT30M"));
    refused(env, &token(env, holder), asked, "already-active").await;
    // (and a standing assignment is not the holder's to end)
    refused(
        env,
        &token(env, holder),
        deactivation(holder, &role),
        "not-active",
    )
    .await;
    assert_eq!(assignments_of(app, &holder.to_string()).await, [standing]);

    // ...or by a running activation.
    assert!(assignments_of(app, &user.to_string()).await.is_empty());
    let mut asked = activation(user, &role, ticket.clone());
    merge(&mut asked, lasting("PT30M"));
    let running = submit_ok(env, &me, asked.clone(), "Provisioned").await;
    assert_eq!(running["ticketInfo"]["ticketNumber"], "INC-4711");
    refused(env, &me, asked, "already-active").await;
    assert_eq!(
        assignments_of(app, &user.to_string()).await,
        [running["targetScheduleId"].as_str().unwrap().to_owned()]
    );

    // Only a pending request is reviewed.
    let before = revision(app).await;
    for verb in ["approve", "deny"] {
        let reply = review(
            env,
            &approver_token(env, Uuid::new_v4()),
            &id_of(&running),
            verb,
            Some(json!({})),
        )
        .await;
        assert_refused(&reply, "not-pending");
    }
    let reply = review(env, &me, &id_of(&running), "cancel", None).await;
    assert_refused(&reply, "not-pending");
    assert_eq!(revision(app).await, before);

    // Malformed bodies are 400s, before any rule is judged.
    for (body, pointer) in [
        (
            activation(user, &role, json!({"action": "adminAssign"})),
            "/action",
        ),
        (
            activation(user, &role, json!({"principalId": "me"})),
            "/principalId",
        ),
        (
            activation(user, &role, json!({"directoryScopeId": "payroll"})),
            "/directoryScopeId",
        ),
        (
            activation(
                user,
                &role,
                json!({"scheduleInfo": {"expiration": {"type": "noExpiration"}}}),
            ),
            "/scheduleInfo/expiration/type",
        ),
        (
            activation(user, &role, lasting("8 hours")),
            "/scheduleInfo/expiration/duration",
        ),
        (
            activation(
                user,
                &role,
                json!({"scheduleInfo": {"expiration": {"type": "afterDuration"}}}),
            ),
            "/scheduleInfo/expiration/duration",
        ),
        (
            activation(
                user,
                &role,
                json!({"scheduleInfo": {"expiration": {"type": "afterDateTime"}}}),
            ),
            "/scheduleInfo/expiration/endDateTime",
        ),
    ] {
        assert_invalid(&submit(env, &me, body).await, pointer);
    }
    let group = app
        .post(
            ELIGIBILITIES,
            &json!({"principalId": Uuid::new_v4(), "principalType": "group", "roleDefinitionId": role, "directoryScopeId": SCOPE}),
        )
        .await;
    assert_invalid(&group, "/principalType");
    for maximum in ["PT1M", "PT25H", "P1M", "eight hours"] {
        let reply = app
            .call(
                Method::PUT,
                &format!("{POLICIES}/{role}"),
                Some(&json!({"maximumActivationDuration": maximum})),
                &[],
            )
            .await;
        assert_invalid(&reply, "/maximumActivationDuration");
    }
    assert_eq!(revision(app).await, before);

    // An eligibility that has ended: end the running activation first, so that nothing
    // expires (and writes) while the refusal is checked.
    submit_ok(env, &me, deactivation(user, &role), "Provisioned").await;
    app.clock.advance(chrono::Duration::hours(2));
    refused(
        env,
        &token(env, user),
        activation(user, &ending_role, lasting("PT30M")),
        "outside-eligibility-window",
    )
    .await;
}

/// Under a policy that requires approval, a request waits (and grants nothing) until an
/// approver approves it; the requester cannot approve it, and only the requester cancels.
async fn an_approval_policy_holds_activations_until_an_approver_decides(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let put = app
        .call(
            Method::PUT,
            &format!("{POLICIES}/{role}"),
            Some(&json!({"isApprovalRequired": true})),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:#?}");
    assert_eq!(put.body["isApprovalRequired"], true);
    let approver = Uuid::new_v4();
    let approver = (approver, approver_token(env, approver));

    // Alice asks: pending, nothing granted, no assignment.
    let alice = Uuid::new_v4();
    let alice_token = token(env, alice);
    make_eligible(app, alice, &role, SCOPE).await;
    let pending = submit_ok(
        env,
        &alice_token,
        activation(alice, &role, lasting("PT2H")),
        "PendingApproval",
    )
    .await;
    let pending_id = id_of(&pending);
    assert!(pending["targetScheduleId"].is_null(), "{pending:#}");
    assert!(pending["completedDateTime"].is_null(), "{pending:#}");
    assert!(!allowed(app, alice).await);
    assert!(assignments_of(app, &alice.to_string()).await.is_empty());
    let waiting = send_as(
        app,
        &alice_token,
        Method::GET,
        format!("{REQUESTS}?principalId={alice}&status=PendingApproval"),
        None,
    )
    .await;
    assert_eq!(waiting.status, StatusCode::OK, "{waiting:#?}");
    assert_eq!(waiting.body["value"].as_array().unwrap().len(), 1);

    // Alice may not approve her own request: without rights it is forbidden, and even as
    // a Privileged Role Administrator it is a self-review.
    let reply = review(env, &alice_token, &pending_id, "approve", Some(json!({}))).await;
    assert_forbidden(&reply);
    let alice_as_approver = approver_token(env, alice);
    let before = revision(app).await;
    for verb in ["approve", "deny"] {
        let reply = review(env, &alice_as_approver, &pending_id, verb, Some(json!({}))).await;
        assert_refused(&reply, "self-review");
    }
    assert_eq!(revision(app).await, before);
    assert!(!allowed(app, alice).await);

    // An approver approves: provisioned, granting at once, until two hours from now.
    let approved = review(
        env,
        &approver.1,
        &pending_id,
        "approve",
        Some(json!({"justification": "confirmed with the payroll lead"})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{approved:#?}");
    let approved = approved.body;
    assert_eq!(approved["status"], "Provisioned");
    assert_eq!(approved["reviewedBy"], approver.0.to_string());
    assert_eq!(
        approved["reviewJustification"],
        "confirmed with the payroll lead"
    );
    assert!(approved["completedDateTime"].is_string(), "{approved:#}");
    assert_eq!(
        at(&approved["endDateTime"]) - at(&approved["startDateTime"]),
        chrono::Duration::hours(2)
    );
    let assignment_id = approved["targetScheduleId"].as_str().unwrap().to_owned();
    let granted = check(app, alice).await;
    assert_eq!(granted["allowed"], true, "{granted:#}");
    assert_eq!(
        grant_of(&granted)["activationRequestId"],
        pending_id.as_str()
    );
    assert_eq!(
        at(&grant_of(&granted)["endDateTime"]),
        at(&approved["endDateTime"])
    );
    assert_eq!(
        history(app, &pending_id).await,
        [
            row("roleAssignmentScheduleRequest", "create", alice),
            row("roleAssignmentScheduleRequest", "update", approver.0),
        ]
    );
    assert_eq!(
        history(app, &assignment_id).await,
        [row("roleAssignment", "create", approver.0)]
    );
    let reply = review(env, &approver.1, &pending_id, "approve", Some(json!({}))).await;
    assert_refused(&reply, "not-pending");

    // Bob asks; the approver (here the admin key) denies: Bob stays denied.
    let bob = Uuid::new_v4();
    let bob_token = token(env, bob);
    make_eligible(app, bob, &role, SCOPE).await;
    let asked = submit_ok(
        env,
        &bob_token,
        activation(bob, &role, json!({})),
        "PendingApproval",
    )
    .await;
    let denied = app
        .post(
            &format!("{REQUESTS}/{}/deny", id_of(&asked)),
            &json!({"justification": "no incident open"}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{denied:#?}");
    assert_eq!(denied.body["status"], "Denied");
    assert_eq!(denied.body["reviewedBy"], "admin-key");
    assert_eq!(denied.body["reviewJustification"], "no incident open");
    assert!(denied.body["targetScheduleId"].is_null(), "{denied:#?}");
    assert!(!allowed(app, bob).await);
    assert!(assignments_of(app, &bob.to_string()).await.is_empty());
    let reply = review(env, &approver.1, &id_of(&asked), "approve", Some(json!({}))).await;
    assert_refused(&reply, "not-pending");
    assert!(!allowed(app, bob).await);

    // Bob asks again and withdraws: nobody else may cancel for him.
    let asked = submit_ok(
        env,
        &bob_token,
        activation(bob, &role, json!({})),
        "PendingApproval",
    )
    .await;
    let asked_id = id_of(&asked);
    let by_admin_key = app
        .call(
            Method::POST,
            &format!("{REQUESTS}/{asked_id}/cancel"),
            None,
            &[],
        )
        .await;
    assert_forbidden(&by_admin_key);
    assert_forbidden(&review(env, &approver.1, &asked_id, "cancel", None).await);
    // Someone who may not even read it is not told it exists.
    let stranger = token(env, Uuid::new_v4());
    let reply = review(env, &stranger, &asked_id, "cancel", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:#?}");
    let still = app.get(&format!("{REQUESTS}/{asked_id}")).await;
    assert_eq!(still.body["status"], "PendingApproval", "{still:#?}");

    let canceled = review(env, &bob_token, &asked_id, "cancel", None).await;
    assert_eq!(canceled.status, StatusCode::OK, "{canceled:#?}");
    assert_eq!(canceled.body["status"], "Canceled");
    assert_eq!(canceled.body["reviewedBy"], bob.to_string());
    assert!(!allowed(app, bob).await);
    let reply = review(env, &approver.1, &asked_id, "approve", Some(json!({}))).await;
    assert_refused(&reply, "not-pending");
    assert!(!allowed(app, bob).await);
    assert!(assignments_of(app, &bob.to_string()).await.is_empty());
    assert_eq!(
        history(app, &asked_id).await,
        [
            row("roleAssignmentScheduleRequest", "create", bob),
            row("roleAssignmentScheduleRequest", "update", bob),
        ]
    );
}

/// Activation is self-service: nobody activates for someone else, not even with the admin
/// key. Making someone eligible is granting the role, with the rights that takes.
async fn only_the_principal_activates_and_only_a_granter_makes_eligible(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let user = Uuid::new_v4();
    let eligibility_id = id_of(&make_eligible(app, user, &role, SCOPE).await);
    let other = Uuid::new_v4();
    let other_token = token(env, other);

    let before = revision(app).await;
    let for_someone_else = submit(env, &other_token, activation(user, &role, json!({}))).await;
    assert_forbidden(&for_someone_else);
    let by_approver = submit(
        env,
        &approver_token(env, other),
        activation(user, &role, json!({})),
    )
    .await;
    assert_forbidden(&by_approver);
    let by_admin_key = app
        .post(REQUESTS, &activation(user, &role, json!({})))
        .await;
    assert_forbidden(&by_admin_key);
    let deactivate_for_someone_else = submit(env, &other_token, deactivation(user, &role)).await;
    assert_forbidden(&deactivate_for_someone_else);
    assert_eq!(revision(app).await, before);
    assert!(!allowed(app, user).await);

    // A token without rights makes nobody eligible (not even itself), changes no policy,
    // and does not see others' eligibilities.
    for principal in [user, other] {
        let reply = send_as(
            app,
            &other_token,
            Method::POST,
            ELIGIBILITIES,
            Some(json!({"principalId": principal, "principalType": "user", "roleDefinitionId": role, "directoryScopeId": SCOPE})),
        )
        .await;
        assert_forbidden(&reply);
    }
    let policy = send_as(
        app,
        &other_token,
        Method::PUT,
        format!("{POLICIES}/{role}"),
        Some(json!({"isApprovalRequired": false})),
    )
    .await;
    assert_forbidden(&policy);
    for path in [
        ELIGIBILITIES.to_owned(),
        format!("{ELIGIBILITIES}?principalId={user}"),
    ] {
        assert_forbidden(&send_as(app, &other_token, Method::GET, &path, None).await);
    }
    let hidden = send_as(
        app,
        &other_token,
        Method::GET,
        format!("{ELIGIBILITIES}/{eligibility_id}"),
        None,
    )
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{hidden:#?}");
    let hidden = send_as(
        app,
        &other_token,
        Method::DELETE,
        format!("{ELIGIBILITIES}/{eligibility_id}"),
        None,
    )
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{hidden:#?}");
    assert_eq!(revision(app).await, before);

    // An administrator of payroll's assignments who holds the role's permissions makes
    // people eligible there, not elsewhere, and not for a role wider than its own.
    let admin_role = create_role(
        app,
        "Payroll Assignment Admin",
        &[MANAGE_ASSIGNMENTS, ACTION],
    )
    .await;
    let wider = create_role(
        app,
        "Payroll Owner",
        &[ACTION, "contoso.payroll/runs/delete"],
    )
    .await;
    let admin = Uuid::new_v4();
    assign(app, admin, "user", &admin_role, SCOPE).await;
    let admin_token = token(env, admin);
    let eligible_body = |role: &str, scope: &str| {
        Some(
            json!({"principalId": other, "principalType": "user", "roleDefinitionId": role, "directoryScopeId": scope}),
        )
    };
    let made = send_as(
        app,
        &admin_token,
        Method::POST,
        ELIGIBILITIES,
        eligible_body(&role, SCOPE),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:#?}");
    assert_eq!(
        history(app, &id_of(&made.body)).await,
        [row("roleEligibilitySchedule", "create", admin)]
    );
    let elsewhere = send_as(
        app,
        &admin_token,
        Method::POST,
        ELIGIBILITIES,
        eligible_body(&role, "/"),
    )
    .await;
    assert_forbidden(&elsewhere);
    let escalation = send_as(
        app,
        &admin_token,
        Method::POST,
        ELIGIBILITIES,
        eligible_body(&wider, SCOPE),
    )
    .await;
    assert_eq!(escalation.status, StatusCode::FORBIDDEN, "{escalation:#?}");
    assert_eq!(
        escalation.problem(),
        "escalation-refused",
        "{escalation:#?}"
    );

    // The newly eligible principal activates for itself.
    submit_ok(
        env,
        &other_token,
        activation(other, &role, lasting("PT1H")),
        "Provisioned",
    )
    .await;
    assert!(allowed(app, other).await);
    assert!(!allowed(app, user).await);
}

/// An activation asked to start later grants from its start, not before, and its holder
/// can end it before it starts.
async fn a_scheduled_activation_grants_from_its_start(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let user = Uuid::new_v4();
    make_eligible(app, user, &role, SCOPE).await;
    let me = token(env, user);
    let starting = |start: DateTime<Utc>| {
        activation(
            user,
            &role,
            json!({"scheduleInfo": {
                "startDateTime": start.to_rfc3339(),
                "expiration": {"type": "afterDuration", "duration": "PT1H"},
            }}),
        )
    };

    // Scheduled, then withdrawn before it starts.
    let in_three_hours = app.clock.now() + chrono::Duration::hours(3);
    let withdrawn = submit_ok(env, &me, starting(in_three_hours), "Provisioned").await;
    assert_eq!(at(&withdrawn["startDateTime"]), in_three_hours);
    assert_eq!(
        at(&withdrawn["endDateTime"]),
        in_three_hours + chrono::Duration::hours(1)
    );
    assert!(!allowed(app, user).await);
    submit_ok(env, &me, deactivation(user, &role), "Provisioned").await;
    let revoked = app.get(&format!("{REQUESTS}/{}", id_of(&withdrawn))).await;
    assert_eq!(revoked.body["status"], "Revoked", "{revoked:#?}");
    assert!(assignments_of(app, &user.to_string()).await.is_empty());

    // Scheduled again: it grants once the clock reaches its start.
    let scheduled = submit_ok(env, &me, starting(in_three_hours), "Provisioned").await;
    assert!(!allowed(app, user).await);
    app.clock
        .advance(chrono::Duration::hours(3) + chrono::Duration::minutes(1));
    let granted = check(app, user).await;
    assert_eq!(granted["allowed"], true, "{granted:#}");
    assert_eq!(
        grant_of(&granted)["activationRequestId"],
        id_of(&scheduled).as_str()
    );
}

/// Requests sent at the same time are judged one after the other: of simultaneous
/// activations exactly one is provisioned, and of simultaneous deactivations exactly one
/// ends it.
async fn simultaneous_requests_activate_and_deactivate_once(env: &Env) {
    let app = &env.app;
    let role = create_role(app, "Payroll Approver", &[ACTION]).await;
    let user = Uuid::new_v4();
    make_eligible(app, user, &role, SCOPE).await;
    let me = token(env, user);

    let outcomes = |replies: Vec<Reply>| {
        let mut outcomes: Vec<String> = replies
            .iter()
            .map(|r| match r.status {
                StatusCode::CREATED => r.body["status"].as_str().unwrap().to_owned(),
                _ => {
                    assert_eq!(r.problem(), "activation-refused", "{r:#?}");
                    r.body["reason"].as_str().unwrap().to_owned()
                }
            })
            .collect();
        outcomes.sort();
        outcomes
    };
    let activations = futures::future::join_all(
        (0..6).map(|_| submit(env, &me, activation(user, &role, lasting("PT1H")))),
    )
    .await;
    let mut expected = vec!["already-active"; 5];
    expected.push("Provisioned");
    expected.sort();
    assert_eq!(outcomes(activations), expected);
    assert_eq!(assignments_of(app, &user.to_string()).await.len(), 1);
    assert!(allowed(app, user).await);

    let deactivations =
        futures::future::join_all((0..4).map(|_| submit(env, &me, deactivation(user, &role))))
            .await;
    let mut expected = vec!["not-active"; 3];
    expected.push("Provisioned");
    expected.sort();
    assert_eq!(outcomes(deactivations), expected);
    assert!(assignments_of(app, &user.to_string()).await.is_empty());
    assert!(!allowed(app, user).await);
}

on_both_stores_with_tokens!(
    an_activation_grants_until_its_holder_deactivates_it,
    an_activation_expires_at_its_end_and_can_be_taken_up_again,
    each_refusal_names_its_reason_and_changes_nothing,
    an_approval_policy_holds_activations_until_an_approver_decides,
    only_the_principal_activates_and_only_a_granter_makes_eligible,
    a_scheduled_activation_grants_from_its_start,
    simultaneous_requests_activate_and_deactivate_once,
);
