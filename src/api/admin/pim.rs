//! Privileged Identity Management under `/v1`: `roleEligibilitySchedules`,
//! `roleManagementPolicies/{roleDefinitionId}` and `roleAssignmentScheduleRequests` (with
//! `approve`, `deny` and `cancel`). The Graph-compatible paths reuse these functions.
//!
//! Who may do what:
//! - making someone eligible, or removing it, is granting the role: the same rules as a role
//!   assignment (manage assignments at the scope, no escalation, no fence);
//! - a role's policy is changed by whoever may grant the role at `/`; anyone signed in to
//!   the tenant may read it (a requester needs to know its rules);
//! - a principal activates and deactivates only for itself, with a token;
//! - an approver must be able to grant the role at the scope and is not the requester;
//! - a requester sees its own eligibilities and requests; anyone else needs to read
//!   assignments there.

use axum::extract::{OriginalUri, State};
use serde::Deserialize;
use uuid::Uuid;

use super::parse_uuid;
use crate::api::admin::assignments::{authorize_listing, not_found, scope_query};
use crate::api::authz::{Caller, READ_ASSIGNMENTS};
use crate::api::extract::{page_request, ApiJson, ApiQuery, IdPath, IfMatch, Tenant};
use crate::api::respond::{Created, Deleted, List, One, Updated};
use crate::api::{ApiError, AppState};
use crate::model::{
    EntityType, RequestStatus, RoleAssignmentScheduleRequest, RoleEligibilityInput,
    RoleEligibilitySchedule, RoleManagementPolicy, RoleManagementPolicyInput, ScheduleRequestInput,
    Scope, TenantId, ValidationErrors,
};
use crate::store::{Review, RoleAssignmentFilter, ScheduleRequestFilter, Stored, Written};

/// Query of `GET /v1/roleEligibilitySchedules`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EligibilityQuery {
    principal_id: Option<String>,
    role_definition_id: Option<String>,
    directory_scope_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The caller's own principal id, when it is a token holder.
pub(crate) fn own_id(caller: &Caller) -> Option<Uuid> {
    caller.identity().map(|i| i.principal_id)
}

/// True when a listing is filtered to the caller itself: a principal lists its own PIM
/// objects without further rights.
pub(crate) fn lists_own(caller: &Caller, principal_filter: Option<Uuid>) -> bool {
    principal_filter.is_some() && principal_filter == own_id(caller)
}

/// True when the caller may see a PIM object of `principal` at `scope`: its own, or one
/// where it reads assignments.
fn visible(app: &AppState, caller: &Caller, principal: Uuid, scope: &Scope) -> bool {
    Some(principal) == own_id(caller) || caller.holds(app, READ_ASSIGNMENTS, scope)
}

pub async fn list_eligibilities(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<EligibilityQuery>,
) -> Result<List<RoleEligibilitySchedule>, ApiError> {
    let directory_scope_id = scope_query(q.directory_scope_id)?;
    let filter = RoleAssignmentFilter {
        principal_id: parse_uuid("principalId", q.principal_id.as_deref())?,
        role_definition_id: parse_uuid("roleDefinitionId", q.role_definition_id.as_deref())?,
        directory_scope_id,
    };
    if !lists_own(&caller, filter.principal_id) {
        authorize_listing(&app, &caller, filter.directory_scope_id.as_ref())?;
    }
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app
        .store()
        .list_eligibilities(tenant, &filter, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get_eligibility(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<RoleEligibilitySchedule>, ApiError> {
    Ok(One(read_eligibility(&app, &caller, tenant, id).await?))
}

/// One eligibility; 404, as for an unknown id, when it is neither the caller's own nor at a
/// scope where the caller reads assignments.
pub(crate) async fn read_eligibility(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
) -> Result<Stored<RoleEligibilitySchedule>, ApiError> {
    let stored = app.store().get_eligibility(tenant, id).await?;
    let e = &stored.value;
    if !visible(app, caller, e.principal_id, &e.directory_scope_id) {
        return Err(not_found(EntityType::RoleEligibilitySchedule, id));
    }
    Ok(stored)
}

pub async fn create_eligibility(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<RoleEligibilityInput>,
) -> Result<Created<RoleEligibilitySchedule>, ApiError> {
    let new = body.validate()?;
    // An eligibility is a grant its holder may take up: granted as an assignment would be,
    // for as long as the eligibility lasts.
    caller
        .authorize_role_grant(
            &app,
            new.role_definition_id,
            &new.directory_scope_id,
            new.end_date_time,
        )
        .await?;
    let written = app
        .store()
        .create_eligibility(tenant, &caller.actor, new)
        .await?;
    app.wait_for(written.revision).await?;
    let location = format!("/v1/roleEligibilitySchedules/{}", written.value.id);
    Ok(Created { written, location })
}

pub async fn delete_eligibility(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
) -> Result<Deleted, ApiError> {
    let stored = read_eligibility(&app, &caller, tenant, id).await?;
    caller.authorize(
        &app,
        crate::api::authz::MANAGE_ASSIGNMENTS,
        &stored.value.directory_scope_id,
    )?;
    let written = app
        .store()
        .delete_eligibility(tenant, &caller.actor, id, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written.into())
}

pub async fn get_policy(
    State(app): State<AppState>,
    _caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(role): IdPath,
) -> Result<One<RoleManagementPolicy>, ApiError> {
    Ok(One(app.store().get_policy(tenant, role).await?))
}

pub async fn put_policy(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(role): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<RoleManagementPolicyInput>,
) -> Result<Updated<RoleManagementPolicy>, ApiError> {
    let policy = body.validate(role, app.decider().now())?;
    caller
        .authorize_role_grant(&app, role, &Scope::root(), None)
        .await?;
    let written = app
        .store()
        .put_policy(tenant, &caller.actor, policy, if_match)
        .await?;
    app.wait_for(written.revision).await?;
    Ok(Updated(written))
}

/// Query of `GET /v1/roleAssignmentScheduleRequests`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestQuery {
    principal_id: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list_requests(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<RequestQuery>,
) -> Result<List<RoleAssignmentScheduleRequest>, ApiError> {
    let status = q
        .status
        .map(|raw| {
            RequestStatus::parse(&raw).ok_or_else(|| {
                ApiError::invalid(
                    "?status",
                    format!(
                        "`{raw}` is not a status: PendingApproval, Provisioned, Denied, \
                         Canceled, Revoked or Expired"
                    ),
                )
            })
        })
        .transpose()?;
    let filter = ScheduleRequestFilter {
        principal_id: parse_uuid("principalId", q.principal_id.as_deref())?,
        status,
    };
    if !lists_own(&caller, filter.principal_id) {
        caller.authorize(&app, READ_ASSIGNMENTS, &Scope::root())?;
    }
    let page = page_request(q.limit.as_deref(), q.cursor)?;
    let page = app
        .store()
        .list_schedule_requests(tenant, &filter, &page)
        .await?;
    Ok(List::of_stored(&uri, page))
}

pub async fn get_request(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<One<RoleAssignmentScheduleRequest>, ApiError> {
    Ok(One(read_request(&app, &caller, tenant, id).await?))
}

/// One schedule request; 404 unless it is the caller's own or at a scope where the caller
/// reads assignments.
pub(crate) async fn read_request(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
) -> Result<Stored<RoleAssignmentScheduleRequest>, ApiError> {
    let stored = app.store().get_schedule_request(tenant, id).await?;
    let r = &stored.value;
    if !visible(app, caller, r.principal_id, &r.directory_scope_id) {
        return Err(not_found(EntityType::RoleAssignmentScheduleRequest, id));
    }
    Ok(stored)
}

pub async fn submit_request(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<ScheduleRequestInput>,
) -> Result<Created<RoleAssignmentScheduleRequest>, ApiError> {
    let written = submit(&app, &caller, tenant, body).await?;
    let location = format!("/v1/roleAssignmentScheduleRequests/{}", written.value.id);
    Ok(Created { written, location })
}

/// Validates a schedule request, checks the caller asks for itself, and records and acts on
/// it; the activation (or its end) is in this replica's snapshot when it returns.
pub(crate) async fn submit(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    body: ScheduleRequestInput,
) -> Result<Written<RoleAssignmentScheduleRequest>, ApiError> {
    let request = body.validate()?;
    let Some(me) = own_id(caller) else {
        return Err(ApiError::ForbiddenOther(
            "only a signed-in principal activates or deactivates, for itself; the admin \
             key has every right already"
                .to_owned(),
        ));
    };
    if request.principal_id != me {
        return Err(ApiError::ForbiddenOther(format!(
            "principalId must be the caller's own id (`{me}`): activation is self-service"
        )));
    }
    let written = app
        .store()
        .submit_schedule_request(tenant, &caller.actor, request, app.decider().now())
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

/// `POST .../{id}/approve` and `.../{id}/deny` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewInput {
    /// Why (kept with the request and in the change log).
    #[serde(default)]
    justification: Option<String>,
}

impl ReviewInput {
    fn justification(self) -> Result<Option<String>, ApiError> {
        let Some(raw) = self.justification else {
            return Ok(None);
        };
        let trimmed = raw.trim();
        if trimmed.len() > crate::model::pim::MAX_JUSTIFICATION_LEN
            || trimmed.chars().any(char::is_control)
        {
            return Err(ValidationErrors::single(
                "/justification",
                format!(
                    "at most {} bytes, no control characters",
                    crate::model::pim::MAX_JUSTIFICATION_LEN
                ),
            )
            .into());
        }
        Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
    }
}

pub async fn approve(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ReviewInput>,
) -> Result<Updated<RoleAssignmentScheduleRequest>, ApiError> {
    Ok(Updated(
        review(&app, &caller, tenant, id, Review::Approve, body).await?,
    ))
}

pub async fn deny(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ReviewInput>,
) -> Result<Updated<RoleAssignmentScheduleRequest>, ApiError> {
    Ok(Updated(
        review(&app, &caller, tenant, id, Review::Deny, body).await?,
    ))
}

pub async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    IdPath(id): IdPath,
) -> Result<Updated<RoleAssignmentScheduleRequest>, ApiError> {
    Ok(Updated(
        review(
            &app,
            &caller,
            tenant,
            id,
            Review::Cancel,
            ReviewInput::default(),
        )
        .await?,
    ))
}

/// Approves, denies or cancels a pending request: an approver (or denier) may grant the role
/// at the request's scope for the activation's length; only the requester cancels.
pub(crate) async fn review(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: Uuid,
    review: Review,
    body: ReviewInput,
) -> Result<Written<RoleAssignmentScheduleRequest>, ApiError> {
    let justification = body.justification()?;
    let stored = read_request(app, caller, tenant, id).await?;
    let r = &stored.value;
    match review {
        Review::Cancel => {
            if own_id(caller) != Some(r.principal_id) {
                return Err(ApiError::ForbiddenOther(
                    "only the requester cancels a request".to_owned(),
                ));
            }
        }
        Review::Approve | Review::Deny => {
            caller
                .authorize_role_grant(
                    app,
                    r.role_definition_id,
                    &r.directory_scope_id,
                    r.end_date_time,
                )
                .await?;
        }
    }
    let written = app
        .store()
        .review_schedule_request(
            tenant,
            &caller.actor,
            id,
            review,
            justification,
            app.decider().now(),
        )
        .await?;
    app.wait_for(written.revision).await?;
    Ok(written)
}

/// How often each replica ends activations that have run out. An activation stops granting
/// at its end whatever this does (the decision reads the assignment's window); this only
/// removes the assignment and logs the expiry.
pub const EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The change log's actor for expiries.
pub const EXPIRY_ACTOR: &str = "rolecall-expiry";

/// Ends run-out activations every [`EXPIRY_INTERVAL`], on the decision clock, until aborted.
/// Every replica runs it; each tenant's expiry is one write that finds nothing to do on all
/// but the first.
pub async fn expire_activations(app: AppState) {
    let actor = crate::store::Actor::new(EXPIRY_ACTOR);
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app
            .store()
            .expire_activations(&actor, app.decider().now())
            .await
        {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "activations expired"),
            Err(error) if error.is_outage() => {
                tracing::debug!(%error, "activation expiry waits for the store");
            }
            Err(error) => tracing::warn!(%error, "activation expiry failed"),
        }
    }
}
