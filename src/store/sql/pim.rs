//! [`PimStore`] in SQL: `role_eligibility_schedules` (unique per principal, role and scope),
//! `role_assignment_schedule_requests` and `role_management_policies`. An activation is a
//! row of `role_assignments` whose body names its request; each step is one write, logged.

use async_trait::async_trait;
use sqlx::Row as _;
use uuid::Uuid;

use super::assignments::{filters_of, natural_key};
use super::rows::{
    parse_tenant, time_text, unprocessable, Arg, Filter, ELIGIBILITIES, POLICIES, ROLE_ASSIGNMENTS,
    SCHEDULE_REQUESTS,
};
use super::write::{check_if_match, Done, WriteTx};
use super::SqlStore;
use crate::model::pim::admit_activation;
use crate::model::{
    NewRoleEligibility, NewScheduleRequest, Refusal, RequestStatus, Revision, RoleAssignment,
    RoleAssignmentScheduleRequest, RoleEligibilitySchedule, RoleManagementPolicy, ScheduleAction,
    TenantId, Timestamp,
};
use crate::store::{
    Actor, Page, PageRequest, PimStore, Review, RoleAssignmentFilter, ScheduleRequestFilter,
    StoreError, StoreResult, Stored, Written,
};

#[async_trait]
impl PimStore for SqlStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_eligibilities(
        &self,
        tenant: TenantId,
        filter: &RoleAssignmentFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleEligibilitySchedule>>> {
        self.list_by_id(ELIGIBILITIES, tenant, &filters_of(filter), page)
            .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_eligibility(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleEligibilitySchedule>> {
        self.get_by_id(ELIGIBILITIES, tenant, id).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_eligibility(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleEligibility,
    ) -> StoreResult<Written<RoleEligibilitySchedule>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let key = natural_key(
                new.principal_id,
                new.role_definition_id,
                &new.directory_scope_id,
            );
            if let Some(existing) = w.get(ELIGIBILITIES, &key).await? {
                let same = (existing.value.start_date_time, existing.value.end_date_time)
                    == (new.start_date_time, new.end_date_time);
                if !same {
                    return Err(StoreError::Conflict(
                        "this principal is already eligible for this role at this scope, \
                         with another window; delete that eligibility first"
                            .to_owned(),
                    ));
                }
                return Ok(Done::Found(existing.value, existing.revision));
            }
            let role = self
                .find_role(w.conn(), tenant, new.role_definition_id)
                .await?
                .ok_or_else(|| {
                    unprocessable(
                        "/roleDefinitionId",
                        format!(
                            "role definition `{}` does not exist in this tenant",
                            new.role_definition_id
                        ),
                    )
                })?;
            if !role.value.assignable_at(&new.directory_scope_id) {
                return Err(unprocessable(
                    "/directoryScopeId",
                    format!(
                        "role `{}` is not assignable at `{}`",
                        role.value.display_name, new.directory_scope_id
                    ),
                ));
            }
            let eligibility = RoleEligibilitySchedule::new(Uuid::new_v4(), new, w.now);
            let mut columns = vec![("id", Arg::id(eligibility.id))];
            columns.extend(key);
            w.insert(ELIGIBILITIES, &columns, &eligibility).await?;
            w.log_created(ELIGIBILITIES, eligibility.id.to_string(), &eligibility)
                .await?;
            Ok(Done::Created(eligibility))
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_eligibility(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleEligibilitySchedule>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = w.delete_checked(ELIGIBILITIES, id, if_match).await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_policy(
        &self,
        tenant: TenantId,
        role: Uuid,
    ) -> StoreResult<Stored<RoleManagementPolicy>> {
        let mut conn = self.conn().await?;
        if self.find_role(&mut conn, tenant, role).await?.is_none() {
            return Err(StoreError::NotFound {
                kind: "roleDefinition",
                id: role.to_string(),
            });
        }
        let stored =
            super::rows::get_row(&mut conn, POLICIES, tenant, &[("id", Arg::id(role))]).await?;
        Ok(stored.unwrap_or_else(|| Stored {
            value: RoleManagementPolicy::default_for(role),
            revision: Revision(0),
        }))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn put_policy(
        &self,
        tenant: TenantId,
        actor: &Actor,
        policy: RoleManagementPolicy,
        if_match: Option<Revision>,
    ) -> StoreResult<Written<RoleManagementPolicy>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let role = policy.role_definition_id;
            if self.find_role(w.conn(), tenant, role).await?.is_none() {
                return Err(StoreError::NotFound {
                    kind: "roleDefinition",
                    id: role.to_string(),
                });
            }
            let key = [("id", Arg::id(role))];
            match w.get(POLICIES, &key).await? {
                Some(before) => {
                    check_if_match(if_match, before.revision)?;
                    w.update(POLICIES, role, &[], &policy).await?;
                    w.log_updated(POLICIES, role.to_string(), &before.value, &policy)
                        .await?;
                    Ok(Done::Changed(policy))
                }
                None => {
                    check_if_match(if_match, Revision(0))?;
                    w.insert(POLICIES, &key, &policy).await?;
                    w.log_created(POLICIES, role.to_string(), &policy).await?;
                    Ok(Done::Created(policy))
                }
            }
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_schedule_requests(
        &self,
        tenant: TenantId,
        filter: &ScheduleRequestFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Stored<RoleAssignmentScheduleRequest>>> {
        let mut filters: Vec<Filter> = Vec::new();
        if let Some(principal) = filter.principal_id {
            filters.push(Filter::Eq("principal_id", Arg::id(principal)));
        }
        if let Some(status) = filter.status {
            filters.push(Filter::Eq("status", Arg::Text(status.as_str().to_owned())));
        }
        self.list_by_id(SCHEDULE_REQUESTS, tenant, &filters, page)
            .await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_schedule_request(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Stored<RoleAssignmentScheduleRequest>> {
        self.get_by_id(SCHEDULE_REQUESTS, tenant, id).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn submit_schedule_request(
        &self,
        tenant: TenantId,
        actor: &Actor,
        request: NewScheduleRequest,
        now: Timestamp,
    ) -> StoreResult<Written<RoleAssignmentScheduleRequest>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = match request.action {
            ScheduleAction::SelfActivate => self.activate(&mut w, request, now).await,
            ScheduleAction::SelfDeactivate => deactivate(&mut w, request, now).await,
        };
        w.finish(result).await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn review_schedule_request(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: Uuid,
        review: Review,
        justification: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Written<RoleAssignmentScheduleRequest>> {
        let mut w = self.begin_write(tenant, actor).await?;
        let result = async {
            let before = w.get_for_write(SCHEDULE_REQUESTS, id, None).await?;
            if before.status != RequestStatus::PendingApproval {
                return Err(StoreError::Refused(Refusal::NotPending {
                    id,
                    status: before.status.as_str(),
                }));
            }
            let is_requester = actor.id() == before.principal_id.to_string();
            if review != Review::Cancel && is_requester {
                return Err(StoreError::Refused(Refusal::SelfReview));
            }
            let mut after = RoleAssignmentScheduleRequest {
                reviewed_by: Some(actor.id().to_owned()),
                review_justification: justification,
                completed_date_time: Some(now),
                ..before.clone()
            };
            match review {
                Review::Deny => after.status = RequestStatus::Denied,
                Review::Cancel => after.status = RequestStatus::Canceled,
                Review::Approve => {
                    // The eligibility as it stands now; the length as asked.
                    let eligibility = w
                        .get(
                            ELIGIBILITIES,
                            &natural_key(
                                before.principal_id,
                                before.role_definition_id,
                                &before.directory_scope_id,
                            ),
                        )
                        .await?;
                    let (start, end) = window_of(&before)?;
                    let start_now = start.max(now);
                    let end_now = start_now + (end - start);
                    if let Some(e) = &eligibility {
                        check_window(e, start_now, end_now)?;
                    }
                    let eligibility = eligibility
                        .ok_or(Refusal::NotEligible {
                            principal: before.principal_id,
                            role: before.role_definition_id,
                            scope: before.directory_scope_id.to_string(),
                        })
                        .map_err(StoreError::Refused)?;
                    let assignment = provision(
                        &mut w,
                        &eligibility.value,
                        before.id,
                        start_now,
                        end_now,
                        now,
                    )
                    .await?;
                    after.status = RequestStatus::Provisioned;
                    after.start_date_time = Some(start_now);
                    after.end_date_time = Some(end_now);
                    after.target_schedule_id = Some(assignment);
                }
            }
            save_request(&mut w, Some(&before), &after).await?;
            Ok(Done::Changed(after))
        }
        .await;
        w.finish(result).await
    }

    #[tracing::instrument(skip_all)]
    async fn expire_activations(&self, actor: &Actor, now: Timestamp) -> StoreResult<usize> {
        let tenants: Vec<String> = {
            let mut conn = self.conn().await?;
            sqlx::query(
                "SELECT DISTINCT tenant_id FROM role_assignment_schedule_requests \
                 WHERE status = $1 AND end_date_time <= $2",
            )
            .bind(RequestStatus::Provisioned.as_str())
            .bind(time_text(now))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?
        };
        let mut ended = 0;
        for tenant in tenants {
            let tenant = parse_tenant(&tenant)?;
            let mut w = self.begin_write(tenant, actor).await?;
            let result = expire_in(&mut w, now).await;
            match result {
                Ok(0) => w.rollback().await,
                Ok(n) => {
                    w.commit().await?;
                    ended += n;
                }
                Err(error) => {
                    w.rollback().await;
                    return Err(error);
                }
            }
        }
        Ok(ended)
    }
}

impl SqlStore {
    /// An activation request: refused, left pending, or provisioned.
    async fn activate(
        &self,
        w: &mut WriteTx,
        request: NewScheduleRequest,
        now: Timestamp,
    ) -> StoreResult<Done<RoleAssignmentScheduleRequest>> {
        let tenant = w.tenant;
        let key = natural_key(
            request.principal_id,
            request.role_definition_id,
            &request.directory_scope_id,
        );
        let eligibility = w.get(ELIGIBILITIES, &key).await?;
        if self
            .find_role(w.conn(), tenant, request.role_definition_id)
            .await?
            .is_none()
        {
            return Err(unprocessable(
                "/roleDefinitionId",
                format!(
                    "role definition `{}` does not exist in this tenant",
                    request.role_definition_id
                ),
            ));
        }
        let policy = super::rows::get_row(
            w.conn(),
            POLICIES,
            tenant,
            &[("id", Arg::id(request.role_definition_id))],
        )
        .await?
        .map_or_else(
            || RoleManagementPolicy::default_for(request.role_definition_id),
            |s| s.value,
        );
        let (start, end) = admit_activation(
            &request,
            eligibility.as_ref().map(|e| &e.value),
            &policy,
            now,
        )
        .map_err(StoreError::Refused)?;
        let mut record = RoleAssignmentScheduleRequest {
            id: Uuid::new_v4(),
            action: ScheduleAction::SelfActivate,
            principal_id: request.principal_id,
            role_definition_id: request.role_definition_id,
            directory_scope_id: request.directory_scope_id,
            justification: request.justification,
            schedule_info: request.schedule_info,
            ticket_info: request.ticket_info,
            status: RequestStatus::PendingApproval,
            start_date_time: Some(start),
            end_date_time: Some(end),
            target_schedule_id: None,
            reviewed_by: None,
            review_justification: None,
            created_date_time: now,
            completed_date_time: None,
        };
        if !policy.is_approval_required {
            let eligibility = eligibility.ok_or(StoreError::Refused(Refusal::NotEligible {
                principal: record.principal_id,
                role: record.role_definition_id,
                scope: record.directory_scope_id.to_string(),
            }))?;
            let assignment = provision(w, &eligibility.value, record.id, start, end, now).await?;
            record.status = RequestStatus::Provisioned;
            record.target_schedule_id = Some(assignment);
            record.completed_date_time = Some(now);
        }
        save_request(w, None, &record).await?;
        Ok(Done::Created(record))
    }
}

/// A deactivation request: ends the principal's running activation of the role at the scope.
async fn deactivate(
    w: &mut WriteTx,
    request: NewScheduleRequest,
    now: Timestamp,
) -> StoreResult<Done<RoleAssignmentScheduleRequest>> {
    let not_active = || {
        StoreError::Refused(Refusal::NotActive {
            principal: request.principal_id,
            role: request.role_definition_id,
            scope: request.directory_scope_id.to_string(),
        })
    };
    let key = natural_key(
        request.principal_id,
        request.role_definition_id,
        &request.directory_scope_id,
    );
    let assignment = w
        .get(ROLE_ASSIGNMENTS, &key)
        .await?
        .filter(|a| {
            // Running, or scheduled to start later: either may be ended now.
            a.value.activation_request_id.is_some()
                && a.value.end_date_time.is_none_or(|end| now < end)
        })
        .ok_or_else(not_active)?
        .value;
    w.delete_by_id(ROLE_ASSIGNMENTS, assignment.id, &assignment)
        .await?;
    if let Some(origin) = assignment.activation_request_id {
        if let Some(before) = w.get(SCHEDULE_REQUESTS, &[("id", Arg::id(origin))]).await? {
            let after = RoleAssignmentScheduleRequest {
                status: RequestStatus::Revoked,
                end_date_time: Some(now),
                completed_date_time: Some(now),
                ..before.value.clone()
            };
            save_request(w, Some(&before.value), &after).await?;
        }
    }
    let record = RoleAssignmentScheduleRequest {
        id: Uuid::new_v4(),
        action: ScheduleAction::SelfDeactivate,
        principal_id: request.principal_id,
        role_definition_id: request.role_definition_id,
        directory_scope_id: request.directory_scope_id,
        justification: request.justification,
        schedule_info: None,
        ticket_info: None,
        status: RequestStatus::Provisioned,
        start_date_time: None,
        end_date_time: None,
        target_schedule_id: Some(assignment.id),
        reviewed_by: None,
        review_justification: None,
        created_date_time: now,
        completed_date_time: Some(now),
    };
    save_request(w, None, &record).await?;
    Ok(Done::Created(record))
}

/// Creates the activation's role assignment (from `start` to `end`, naming `request`),
/// first clearing an ended activation still stored under the same key. Refused when the
/// principal already holds the role at the scope, by assignment or a running activation.
async fn provision(
    w: &mut WriteTx,
    eligibility: &RoleEligibilitySchedule,
    request: Uuid,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> StoreResult<Uuid> {
    let key = natural_key(
        eligibility.principal_id,
        eligibility.role_definition_id,
        &eligibility.directory_scope_id,
    );
    if let Some(existing) = w.get(ROLE_ASSIGNMENTS, &key).await? {
        let existing = existing.value;
        match existing.activation_request_id {
            Some(origin) if existing.end_date_time.is_some_and(|e| e <= now) => {
                end_activation(w, &existing, origin, RequestStatus::Expired).await?;
            }
            Some(_) => {
                return Err(StoreError::Refused(Refusal::AlreadyActive(format!(
                    "an activation of this role at this scope runs until {}; deactivate it first",
                    existing
                        .end_date_time
                        .map_or_else(|| "it is removed".to_owned(), |e| e.to_rfc3339())
                ))))
            }
            None if existing.end_date_time.is_some_and(|e| e <= now) => {
                return Err(StoreError::Refused(Refusal::AlreadyActive(format!(
                    "assignment `{}` of this role at this scope ended at {} but is still \
                     stored; an administrator deletes it before this role can be activated here",
                    existing.id,
                    existing
                        .end_date_time
                        .map_or_else(String::new, |e| e.to_rfc3339())
                ))))
            }
            None => {
                return Err(StoreError::Refused(Refusal::AlreadyActive(format!(
                    "the principal already holds this role at this scope by assignment `{}`",
                    existing.id
                ))))
            }
        }
    }
    let assignment = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: eligibility.principal_id,
        principal_type: eligibility.principal_type,
        role_definition_id: eligibility.role_definition_id,
        directory_scope_id: eligibility.directory_scope_id.clone(),
        start_date_time: Some(start),
        end_date_time: Some(end),
        condition: None,
        condition_version: None,
        created_date_time: now,
        activation_request_id: Some(request),
    };
    let mut columns = vec![("id", Arg::id(assignment.id))];
    columns.extend(key);
    w.insert(ROLE_ASSIGNMENTS, &columns, &assignment).await?;
    w.log_created(ROLE_ASSIGNMENTS, assignment.id.to_string(), &assignment)
        .await?;
    Ok(assignment.id)
}

/// Deletes an activation's assignment and marks the request it came from `status`.
async fn end_activation(
    w: &mut WriteTx,
    assignment: &RoleAssignment,
    origin: Uuid,
    status: RequestStatus,
) -> StoreResult<()> {
    w.delete_by_id(ROLE_ASSIGNMENTS, assignment.id, assignment)
        .await?;
    if let Some(before) = w.get(SCHEDULE_REQUESTS, &[("id", Arg::id(origin))]).await? {
        if before.value.status == RequestStatus::Provisioned {
            let after = RoleAssignmentScheduleRequest {
                status,
                completed_date_time: assignment.end_date_time,
                ..before.value.clone()
            };
            save_request(w, Some(&before.value), &after).await?;
        }
    }
    Ok(())
}

/// An activation's assignment was deleted directly (`DELETE /v1/roleAssignments/{id}`):
/// its request, if still running, is `Revoked` in the same write.
pub(super) async fn revoke_deleted(
    w: &mut WriteTx,
    assignment: &RoleAssignment,
) -> StoreResult<()> {
    let Some(origin) = assignment.activation_request_id else {
        return Ok(());
    };
    if let Some(before) = w.get(SCHEDULE_REQUESTS, &[("id", Arg::id(origin))]).await? {
        if before.value.status == RequestStatus::Provisioned {
            let now = w.now;
            let after = RoleAssignmentScheduleRequest {
                status: RequestStatus::Revoked,
                end_date_time: Some(now),
                completed_date_time: Some(now),
                ..before.value.clone()
            };
            save_request(w, Some(&before.value), &after).await?;
        }
    }
    Ok(())
}

/// Ends this tenant's activations whose end is at or before `now`.
async fn expire_in(w: &mut WriteTx, now: Timestamp) -> StoreResult<usize> {
    let mut sql = super::rows::Sql::select_stored(SCHEDULE_REQUESTS, None, w.tenant);
    sql.push(" AND status = ")
        .push_bind(Arg::Text(RequestStatus::Provisioned.as_str().to_owned()))
        .push(" AND end_date_time <= ")
        .push_bind(Arg::Text(time_text(now)))
        .push(" ORDER BY id");
    let rows = sql.query().fetch_all(w.conn()).await?;
    let requests = rows
        .iter()
        .map(|row| super::rows::stored_from_row(SCHEDULE_REQUESTS, row, 0).map(|s| s.value))
        .collect::<StoreResult<Vec<_>>>()?;
    let mut ended = 0;
    for request in requests {
        let assignment = match request.target_schedule_id {
            Some(id) => w.get(ROLE_ASSIGNMENTS, &[("id", Arg::id(id))]).await?,
            None => None,
        };
        match assignment {
            Some(a) if a.value.activation_request_id == Some(request.id) => {
                end_activation(w, &a.value, request.id, RequestStatus::Expired).await?;
            }
            // Its assignment is gone (removed by an administrator): the request ends too.
            _ => {
                let after = RoleAssignmentScheduleRequest {
                    status: RequestStatus::Expired,
                    completed_date_time: request.end_date_time,
                    ..request.clone()
                };
                save_request(w, Some(&request), &after).await?;
            }
        }
        ended += 1;
    }
    Ok(ended)
}

/// Inserts (`before` is `None`) or rewrites a request, with its filter columns, and logs it.
async fn save_request(
    w: &mut WriteTx,
    before: Option<&RoleAssignmentScheduleRequest>,
    after: &RoleAssignmentScheduleRequest,
) -> StoreResult<()> {
    // Only a running activation has an end the expiry looks at.
    let end = (after.status == RequestStatus::Provisioned
        && after.action == ScheduleAction::SelfActivate)
        .then_some(after.end_date_time)
        .flatten()
        .map(time_text);
    let columns = [
        ("status", Arg::Text(after.status.as_str().to_owned())),
        ("end_date_time", Arg::OptText(end)),
    ];
    match before {
        None => {
            let mut all = vec![
                ("id", Arg::id(after.id)),
                ("principal_id", Arg::id(after.principal_id)),
            ];
            all.extend(columns);
            w.insert(SCHEDULE_REQUESTS, &all, after).await?;
            w.log_created(SCHEDULE_REQUESTS, after.id.to_string(), after)
                .await
        }
        Some(before) => {
            w.update(SCHEDULE_REQUESTS, after.id, &columns, after)
                .await?;
            w.log_updated(SCHEDULE_REQUESTS, after.id.to_string(), before, after)
                .await
        }
    }
}

/// The activation window a pending request asked for.
fn window_of(request: &RoleAssignmentScheduleRequest) -> StoreResult<(Timestamp, Timestamp)> {
    match (request.start_date_time, request.end_date_time) {
        (Some(start), Some(end)) if start < end => Ok((start, end)),
        _ => Err(StoreError::Corrupt(format!(
            "schedule request `{}` has no activation window",
            request.id
        ))),
    }
}

/// Refuses an activation from `start` to `end` outside `eligibility`'s window.
fn check_window(
    eligibility: &Stored<RoleEligibilitySchedule>,
    start: Timestamp,
    end: Timestamp,
) -> StoreResult<()> {
    let e = &eligibility.value;
    let outside = e.start_date_time.is_some_and(|from| start < from)
        || e.end_date_time.is_some_and(|until| end > until);
    if outside {
        return Err(StoreError::Refused(Refusal::OutsideEligibilityWindow(
            format!(
                "approved now, the activation would run from {start} to {end}, outside the \
                 eligibility's window"
            ),
        )));
    }
    Ok(())
}
