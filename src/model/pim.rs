//! Just-in-time elevation, as Entra's Privileged Identity Management does it: a principal
//! is *eligible* for a role at a scope ([`RoleEligibilitySchedule`], which grants nothing),
//! and *activates* it for a while by a request ([`RoleAssignmentScheduleRequest`]), under
//! the role's [`RoleManagementPolicy`]. An activation is an ordinary, time-bound role
//! assignment that names the request it came from; it ends by itself.
//!
//! What is judged here is pure: [`admit_activation`] says whether a request may become an
//! activation, and when it would start and end. The store runs it inside the write.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::input::{scope, uuid, window};
use super::{PrincipalType, Scope, Timestamp, ValidationErrors};

/// The longest justification, ticket number or ticket system kept.
pub const MAX_JUSTIFICATION_LEN: usize = 1_000;
/// The longest activation a policy may allow (Entra's bound: 24 hours).
pub const MAX_ACTIVATION_HOURS: i64 = 24;
/// The shortest maximum a policy may set.
pub const MIN_ACTIVATION_MINUTES: i64 = 5;
/// The maximum activation duration of a role without a stored policy.
pub const DEFAULT_ACTIVATION_HOURS: i64 = 8;

/// A principal may activate a role at a scope, optionally only within a window. It grants
/// nothing by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleEligibilitySchedule {
    /// Unique id.
    pub id: Uuid,
    /// Who may activate.
    pub principal_id: Uuid,
    /// A user or a service principal.
    pub principal_type: PrincipalType,
    /// Which role.
    pub role_definition_id: Uuid,
    /// Where an activation applies.
    pub directory_scope_id: Scope,
    /// No activation may start before this instant.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// No activation may last past this instant.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
    /// Why the principal was made eligible.
    #[serde(default)]
    pub justification: Option<String>,
    /// Always `Direct`: eligibility is held by the principal itself.
    pub member_type: String,
    /// When it was created.
    pub created_date_time: Timestamp,
}

impl RoleEligibilitySchedule {
    /// A new eligibility with id `id`, created at `now`.
    pub fn new(id: Uuid, new: NewRoleEligibility, now: Timestamp) -> RoleEligibilitySchedule {
        RoleEligibilitySchedule {
            id,
            principal_id: new.principal_id,
            principal_type: new.principal_type,
            role_definition_id: new.role_definition_id,
            directory_scope_id: new.directory_scope_id,
            start_date_time: new.start_date_time,
            end_date_time: new.end_date_time,
            justification: new.justification,
            member_type: "Direct".to_owned(),
            created_date_time: now,
        }
    }
}

/// `POST /v1/roleEligibilitySchedules` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleEligibilityInput {
    /// Who becomes eligible.
    pub principal_id: String,
    /// `user` or `servicePrincipal`.
    pub principal_type: PrincipalType,
    /// Which role.
    pub role_definition_id: String,
    /// Where.
    pub directory_scope_id: String,
    /// Optional start of the window.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// Optional end of the window.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
    /// Optional reason, kept in the change log.
    #[serde(default)]
    pub justification: Option<String>,
}

/// A validated new eligibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoleEligibility {
    /// Who.
    pub principal_id: Uuid,
    /// A user or a service principal.
    pub principal_type: PrincipalType,
    /// Which role.
    pub role_definition_id: Uuid,
    /// Where.
    pub directory_scope_id: Scope,
    /// From when.
    pub start_date_time: Option<Timestamp>,
    /// Until when.
    pub end_date_time: Option<Timestamp>,
    /// Why.
    pub justification: Option<String>,
}

impl RoleEligibilityInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewRoleEligibility, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let principal_id = uuid(&mut errors, "/principalId", &self.principal_id);
        let role_definition_id = uuid(&mut errors, "/roleDefinitionId", &self.role_definition_id);
        let directory_scope_id = scope(&mut errors, "/directoryScopeId", &self.directory_scope_id);
        window(&mut errors, self.start_date_time, self.end_date_time);
        if self.principal_type == PrincipalType::Group {
            errors.push(
                "/principalType",
                "eligibility is held by a user or a service principal, who activates it \
                 themselves; make each member eligible, or assign the role to the group",
            );
        }
        let justification = text(&mut errors, "/justification", self.justification);
        errors.finish(|| NewRoleEligibility {
            principal_id: principal_id.unwrap_or_default(),
            principal_type: self.principal_type,
            role_definition_id: role_definition_id.unwrap_or_default(),
            directory_scope_id: directory_scope_id.unwrap_or_else(Scope::root),
            start_date_time: self.start_date_time,
            end_date_time: self.end_date_time,
            justification,
        })
    }
}

/// Optional free text: trimmed, absent when blank, at most [`MAX_JUSTIFICATION_LEN`].
fn text(errors: &mut ValidationErrors, pointer: &str, raw: Option<String>) -> Option<String> {
    let raw = raw?;
    let trimmed = raw.trim();
    if trimmed.len() > MAX_JUSTIFICATION_LEN {
        errors.push(pointer, format!("at most {MAX_JUSTIFICATION_LEN} bytes"));
    }
    if trimmed.chars().any(char::is_control) {
        errors.push(pointer, "no control characters");
    }
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// How activations of one role are governed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleManagementPolicy {
    /// The role it governs (also the policy's id).
    pub role_definition_id: Uuid,
    /// The longest activation, as an ISO 8601 duration (`PT8H`).
    pub maximum_activation_duration: String,
    /// An activation request must say why.
    pub is_justification_required: bool,
    /// An activation request must name a ticket.
    pub is_ticketing_required: bool,
    /// An activation starts only when someone who may assign the role approves it.
    pub is_approval_required: bool,
    /// When it last changed; absent for the default policy.
    #[serde(default)]
    pub last_modified_date_time: Option<Timestamp>,
}

impl RoleManagementPolicy {
    /// What governs a role nobody configured: eight hours at most, justification required,
    /// no ticket, no approval.
    pub fn default_for(role_definition_id: Uuid) -> RoleManagementPolicy {
        RoleManagementPolicy {
            role_definition_id,
            maximum_activation_duration: format!("PT{DEFAULT_ACTIVATION_HOURS}H"),
            is_justification_required: true,
            is_ticketing_required: false,
            is_approval_required: false,
            last_modified_date_time: None,
        }
    }

    /// The maximum as a duration (the stored text was validated when written).
    pub fn maximum(&self) -> chrono::Duration {
        parse_duration(&self.maximum_activation_duration)
            .unwrap_or_else(|_| chrono::Duration::hours(DEFAULT_ACTIVATION_HOURS))
    }
}

/// `PUT /v1/roleManagementPolicies/{roleDefinitionId}` body: omitted fields take the
/// default policy's values.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleManagementPolicyInput {
    /// ISO 8601 duration, from `PT5M` to `PT24H`.
    #[serde(default)]
    pub maximum_activation_duration: Option<String>,
    /// Default true.
    #[serde(default)]
    pub is_justification_required: Option<bool>,
    /// Default false.
    #[serde(default)]
    pub is_ticketing_required: Option<bool>,
    /// Default false.
    #[serde(default)]
    pub is_approval_required: Option<bool>,
}

impl RoleManagementPolicyInput {
    /// The policy for `role` this body describes, changed at `now`.
    pub fn validate(
        self,
        role: Uuid,
        now: Timestamp,
    ) -> Result<RoleManagementPolicy, ValidationErrors> {
        let default = RoleManagementPolicy::default_for(role);
        let mut errors = ValidationErrors::new();
        let maximum = match self.maximum_activation_duration {
            None => default.maximum_activation_duration.clone(),
            Some(raw) => {
                match parse_duration(&raw) {
                    Ok(d)
                        if d < chrono::Duration::minutes(MIN_ACTIVATION_MINUTES)
                            || d > chrono::Duration::hours(MAX_ACTIVATION_HOURS) =>
                    {
                        errors.push(
                            "/maximumActivationDuration",
                            format!(
                                "from PT{MIN_ACTIVATION_MINUTES}M to PT{MAX_ACTIVATION_HOURS}H"
                            ),
                        );
                    }
                    Ok(_) => {}
                    Err(message) => errors.push("/maximumActivationDuration", message),
                }
                raw
            }
        };
        errors.finish(|| RoleManagementPolicy {
            role_definition_id: role,
            maximum_activation_duration: maximum,
            is_justification_required: self
                .is_justification_required
                .unwrap_or(default.is_justification_required),
            is_ticketing_required: self
                .is_ticketing_required
                .unwrap_or(default.is_ticketing_required),
            is_approval_required: self
                .is_approval_required
                .unwrap_or(default.is_approval_required),
            last_modified_date_time: Some(now),
        })
    }
}

/// Parses an ISO 8601 duration of fixed length: weeks, days, hours, minutes and seconds.
/// Years and months are refused (they have no fixed length), as is anything after the
/// duration.
pub fn parse_duration(raw: &str) -> Result<chrono::Duration, String> {
    let refused = || format!("`{raw}` is not an ISO 8601 duration such as `PT8H` or `PT30M`");
    let (rest, parsed) = iso8601::parsers::parse_duration(raw.as_bytes()).map_err(|_| refused())?;
    if !rest.is_empty() {
        return Err(refused());
    }
    let duration = match parsed {
        iso8601::Duration::Weeks(w) => chrono::Duration::weeks(i64::from(w)),
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => {
            if year != 0 || month != 0 {
                return Err(format!(
                    "`{raw}` counts years or months, which have no fixed length; use days or hours"
                ));
            }
            chrono::Duration::days(i64::from(day))
                + chrono::Duration::hours(i64::from(hour))
                + chrono::Duration::minutes(i64::from(minute))
                + chrono::Duration::seconds(i64::from(second))
                + chrono::Duration::milliseconds(i64::from(millisecond))
        }
    };
    if duration <= chrono::Duration::zero() {
        return Err(format!("`{raw}` is not longer than zero"));
    }
    Ok(duration)
}

/// What a schedule request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScheduleAction {
    /// Activate an eligibility for a while.
    SelfActivate,
    /// End one's own activation early.
    SelfDeactivate,
}

/// Where a schedule request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    /// Waiting for an approver.
    PendingApproval,
    /// Done: an activation is running (or, for a deactivation, has ended).
    Provisioned,
    /// An approver refused it.
    Denied,
    /// The requester withdrew it before a decision.
    Canceled,
    /// The activation it started was ended early by a deactivation.
    Revoked,
    /// The activation it started ran to its end.
    Expired,
}

impl RequestStatus {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::PendingApproval => "PendingApproval",
            RequestStatus::Provisioned => "Provisioned",
            RequestStatus::Denied => "Denied",
            RequestStatus::Canceled => "Canceled",
            RequestStatus::Revoked => "Revoked",
            RequestStatus::Expired => "Expired",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<RequestStatus> {
        [
            RequestStatus::PendingApproval,
            RequestStatus::Provisioned,
            RequestStatus::Denied,
            RequestStatus::Canceled,
            RequestStatus::Revoked,
            RequestStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// When an activation ends, as Graph's `expiration` says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expiration {
    /// `afterDuration`, `afterDateTime` or `noExpiration` (any case).
    #[serde(rename = "type")]
    pub kind: String,
    /// For `afterDuration`: an ISO 8601 duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// For `afterDateTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<Timestamp>,
}

/// When an activation starts and ends, as Graph's `scheduleInfo` says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInfo {
    /// Absent or past: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<Timestamp>,
    /// Absent: the policy's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Expiration>,
}

/// A ticket the request cites.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketInfo {
    /// The ticket's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_number: Option<String>,
    /// The ticketing system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_system: Option<String>,
}

/// A request to activate or deactivate a role, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentScheduleRequest {
    /// Unique id.
    pub id: Uuid,
    /// What was asked.
    pub action: ScheduleAction,
    /// Who asked, for themselves.
    pub principal_id: Uuid,
    /// Which role.
    pub role_definition_id: Uuid,
    /// Where.
    pub directory_scope_id: Scope,
    /// Why.
    #[serde(default)]
    pub justification: Option<String>,
    /// As sent.
    #[serde(default)]
    pub schedule_info: Option<ScheduleInfo>,
    /// As sent.
    #[serde(default)]
    pub ticket_info: Option<TicketInfo>,
    /// Where it stands.
    pub status: RequestStatus,
    /// When the activation starts (or started); for an activation request only.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// When the activation ends (or ended); for an activation request only.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
    /// The role assignment the activation created (Graph's `targetScheduleId`).
    #[serde(default)]
    pub target_schedule_id: Option<Uuid>,
    /// Who approved, denied or canceled it.
    #[serde(default)]
    pub reviewed_by: Option<String>,
    /// Why they did.
    #[serde(default)]
    pub review_justification: Option<String>,
    /// When it was made.
    pub created_date_time: Timestamp,
    /// When it reached its present status, if it is not pending.
    #[serde(default)]
    pub completed_date_time: Option<Timestamp>,
}

/// `POST /v1/roleAssignmentScheduleRequests` body (Graph's shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleRequestInput {
    /// `selfActivate` or `selfDeactivate`.
    pub action: String,
    /// The caller's own principal id.
    pub principal_id: String,
    /// Which role.
    pub role_definition_id: String,
    /// Where.
    pub directory_scope_id: String,
    /// Why (required by policy for activations).
    #[serde(default)]
    pub justification: Option<String>,
    /// When and for how long (activations only).
    #[serde(default)]
    pub schedule_info: Option<ScheduleInfo>,
    /// A ticket (activations only).
    #[serde(default)]
    pub ticket_info: Option<TicketInfo>,
}

/// How long an activation asks to last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// The policy's maximum.
    PolicyMaximum,
    /// This long after its start.
    For(chrono::Duration),
    /// Until this instant.
    Until(Timestamp),
}

/// A validated schedule request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScheduleRequest {
    /// What is asked.
    pub action: ScheduleAction,
    /// Who.
    pub principal_id: Uuid,
    /// Which role.
    pub role_definition_id: Uuid,
    /// Where.
    pub directory_scope_id: Scope,
    /// Why.
    pub justification: Option<String>,
    /// The requested start (activations).
    pub start: Option<Timestamp>,
    /// The requested length (activations).
    pub length: Length,
    /// As sent, for the record.
    pub schedule_info: Option<ScheduleInfo>,
    /// As sent, for the record.
    pub ticket_info: Option<TicketInfo>,
}

impl ScheduleRequestInput {
    /// Checks every field.
    pub fn validate(self) -> Result<NewScheduleRequest, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let action = match self.action.as_str() {
            "selfActivate" => Some(ScheduleAction::SelfActivate),
            "selfDeactivate" => Some(ScheduleAction::SelfDeactivate),
            other => {
                errors.push(
                    "/action",
                    format!("`{other}` is not an action here: `selfActivate` or `selfDeactivate`"),
                );
                None
            }
        };
        let principal_id = uuid(&mut errors, "/principalId", &self.principal_id);
        let role_definition_id = uuid(&mut errors, "/roleDefinitionId", &self.role_definition_id);
        let directory_scope_id = scope(&mut errors, "/directoryScopeId", &self.directory_scope_id);
        let justification = text(&mut errors, "/justification", self.justification);
        let ticket_info = self.ticket_info.map(|t| TicketInfo {
            ticket_number: text(&mut errors, "/ticketInfo/ticketNumber", t.ticket_number),
            ticket_system: text(&mut errors, "/ticketInfo/ticketSystem", t.ticket_system),
        });
        let start = self.schedule_info.as_ref().and_then(|s| s.start_date_time);
        let length = match self
            .schedule_info
            .as_ref()
            .and_then(|s| s.expiration.as_ref())
        {
            None => Length::PolicyMaximum,
            Some(e) => expiration(&mut errors, e, start),
        };
        errors.finish(|| NewScheduleRequest {
            action: action.unwrap_or(ScheduleAction::SelfActivate),
            principal_id: principal_id.unwrap_or_default(),
            role_definition_id: role_definition_id.unwrap_or_default(),
            directory_scope_id: directory_scope_id.unwrap_or_else(Scope::root),
            justification,
            start,
            length,
            schedule_info: self.schedule_info,
            ticket_info,
        })
    }
}

fn expiration(errors: &mut ValidationErrors, e: &Expiration, start: Option<Timestamp>) -> Length {
    const POINTER: &str = "/scheduleInfo/expiration";
    match e.kind.to_ascii_lowercase().as_str() {
        "afterduration" => match e.duration.as_deref() {
            None => {
                errors.push(
                    format!("{POINTER}/duration"),
                    "`afterDuration` needs a duration",
                );
                Length::PolicyMaximum
            }
            Some(raw) => match parse_duration(raw) {
                Ok(d) => Length::For(d),
                Err(message) => {
                    errors.push(format!("{POINTER}/duration"), message);
                    Length::PolicyMaximum
                }
            },
        },
        "afterdatetime" => match e.end_date_time {
            None => {
                errors.push(
                    format!("{POINTER}/endDateTime"),
                    "`afterDateTime` needs an endDateTime",
                );
                Length::PolicyMaximum
            }
            Some(end) => {
                if start.is_some_and(|s| end <= s) {
                    errors.push(
                        format!("{POINTER}/endDateTime"),
                        "endDateTime is after startDateTime",
                    );
                }
                Length::Until(end)
            }
        },
        "noexpiration" => {
            errors.push(
                format!("{POINTER}/type"),
                "an activation always ends: `afterDuration` or `afterDateTime`",
            );
            Length::PolicyMaximum
        }
        other => {
            errors.push(
                format!("{POINTER}/type"),
                format!("`{other}` is not `afterDuration`, `afterDateTime` or `noExpiration`"),
            );
            Length::PolicyMaximum
        }
    }
}

/// Why a schedule request, review or eligibility use is refused: each has a stable name,
/// answered as the problem's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The principal holds no eligibility for the role at the scope.
    #[error("principal `{principal}` is not eligible for role `{role}` at `{scope}`")]
    NotEligible {
        /// Who asked.
        principal: Uuid,
        /// The role.
        role: Uuid,
        /// The scope.
        scope: String,
    },
    /// The activation would start before the eligibility does, or last past its end.
    #[error("{0}")]
    OutsideEligibilityWindow(String),
    /// The activation would last longer than the role's policy allows.
    #[error("an activation of this role lasts at most {maximum}; {asked} was asked")]
    DurationExceedsMaximum {
        /// The policy's maximum (ISO 8601).
        maximum: String,
        /// What was asked, in minutes.
        asked: String,
    },
    /// The role's policy requires a justification and none was given.
    #[error("this role's policy requires a justification")]
    JustificationRequired,
    /// The role's policy requires a ticket number and none was given.
    #[error("this role's policy requires ticketInfo.ticketNumber")]
    TicketRequired,
    /// The principal already holds the role at the scope.
    #[error("{0}")]
    AlreadyActive(String),
    /// There is no activation to end.
    #[error("principal `{principal}` has no activation of role `{role}` at `{scope}` to end")]
    NotActive {
        /// Who asked.
        principal: Uuid,
        /// The role.
        role: Uuid,
        /// The scope.
        scope: String,
    },
    /// The request is not waiting for a decision.
    #[error("request `{id}` is {status}, not PendingApproval")]
    NotPending {
        /// The request.
        id: Uuid,
        /// Where it stands.
        status: &'static str,
    },
    /// A requester may not approve or deny their own request.
    #[error("a requester cannot approve or deny their own request")]
    SelfReview,
}

impl Refusal {
    /// The stable name, answered as the problem's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotEligible { .. } => "not-eligible",
            Refusal::OutsideEligibilityWindow(_) => "outside-eligibility-window",
            Refusal::DurationExceedsMaximum { .. } => "duration-exceeds-maximum",
            Refusal::JustificationRequired => "justification-required",
            Refusal::TicketRequired => "ticket-required",
            Refusal::AlreadyActive(_) => "already-active",
            Refusal::NotActive { .. } => "not-active",
            Refusal::NotPending { .. } => "not-pending",
            Refusal::SelfReview => "self-review",
        }
    }
}

/// Whether `request` may become an activation, given the principal's eligibility for the
/// role at the scope (`None`: none) and the role's policy: the activation's start and end,
/// or why not. The start is the requested one, or `now` when absent or past.
pub fn admit_activation(
    request: &NewScheduleRequest,
    eligibility: Option<&RoleEligibilitySchedule>,
    policy: &RoleManagementPolicy,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), Refusal> {
    let eligibility = eligibility.ok_or_else(|| Refusal::NotEligible {
        principal: request.principal_id,
        role: request.role_definition_id,
        scope: request.directory_scope_id.to_string(),
    })?;
    if policy.is_justification_required && request.justification.is_none() {
        return Err(Refusal::JustificationRequired);
    }
    if policy.is_ticketing_required
        && request
            .ticket_info
            .as_ref()
            .and_then(|t| t.ticket_number.as_ref())
            .is_none()
    {
        return Err(Refusal::TicketRequired);
    }
    let start = request.start.map_or(now, |s| s.max(now));
    let maximum = policy.maximum();
    let too_long = |asked: chrono::Duration| Refusal::DurationExceedsMaximum {
        maximum: policy.maximum_activation_duration.clone(),
        asked: format!("{} minutes", asked.num_minutes()),
    };
    let end = match request.length {
        Length::PolicyMaximum => start + maximum,
        // Compared before it is added: a duration of years would overflow the calendar.
        Length::For(d) if d > maximum => return Err(too_long(d)),
        Length::For(d) => start + d,
        Length::Until(end) => end,
    };
    if end <= start {
        return Err(Refusal::OutsideEligibilityWindow(format!(
            "the activation would end ({end}) before it starts ({start})"
        )));
    }
    if end - start > maximum {
        return Err(too_long(end - start));
    }
    if let Some(from) = eligibility.start_date_time.filter(|from| start < *from) {
        return Err(Refusal::OutsideEligibilityWindow(format!(
            "the eligibility starts at {from}; the activation would start at {start}"
        )));
    }
    if let Some(until) = eligibility.end_date_time.filter(|until| end > *until) {
        return Err(Refusal::OutsideEligibilityWindow(if start >= until {
            format!("the eligibility ended at {until}")
        } else {
            format!("the eligibility ends at {until}; the activation would end at {end}")
        }));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    fn request(length: Length, justification: Option<&str>) -> NewScheduleRequest {
        NewScheduleRequest {
            action: ScheduleAction::SelfActivate,
            principal_id: Uuid::from_u128(1),
            role_definition_id: Uuid::from_u128(2),
            directory_scope_id: Scope::root(),
            justification: justification.map(str::to_owned),
            start: None,
            length,
            schedule_info: None,
            ticket_info: None,
        }
    }

    fn eligibility(start: Option<&str>, end: Option<&str>) -> RoleEligibilitySchedule {
        RoleEligibilitySchedule {
            id: Uuid::from_u128(3),
            principal_id: Uuid::from_u128(1),
            principal_type: PrincipalType::User,
            role_definition_id: Uuid::from_u128(2),
            directory_scope_id: Scope::root(),
            start_date_time: start.map(at),
            end_date_time: end.map(at),
            justification: None,
            member_type: "Direct".to_owned(),
            created_date_time: at("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn durations_of_fixed_length_parse_and_others_are_refused() {
        assert_eq!(parse_duration("PT8H"), Ok(chrono::Duration::hours(8)));
        assert_eq!(parse_duration("PT30M"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_duration("P1DT2H"), Ok(chrono::Duration::hours(26)));
        assert_eq!(parse_duration("P1W"), Ok(chrono::Duration::days(7)));
        for bad in ["", "8h", "PT8Hx", "P1M", "P1Y", "PT0S", "PT", "-PT1H"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn an_activation_is_admitted_within_the_policy_and_the_window() {
        let now = at("2026-06-01T10:00:00Z");
        let policy = RoleManagementPolicy::default_for(Uuid::from_u128(2));
        let e = eligibility(Some("2026-05-01T00:00:00Z"), Some("2026-07-01T00:00:00Z"));
        let r = request(Length::For(chrono::Duration::hours(2)), Some("incident 42"));
        assert_eq!(
            admit_activation(&r, Some(&e), &policy, now),
            Ok((now, at("2026-06-01T12:00:00Z")))
        );
        // The policy's maximum when no expiration is given.
        let r = request(Length::PolicyMaximum, Some("incident 42"));
        assert_eq!(
            admit_activation(&r, Some(&e), &policy, now),
            Ok((now, at("2026-06-01T18:00:00Z")))
        );
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let now = at("2026-06-01T10:00:00Z");
        let mut policy = RoleManagementPolicy::default_for(Uuid::from_u128(2));
        let e = eligibility(None, Some("2026-06-01T11:00:00Z"));
        let reason = |r: &NewScheduleRequest,
                      e: Option<&RoleEligibilitySchedule>,
                      p: &RoleManagementPolicy| {
            admit_activation(r, e, p, now).map_err(|refusal| refusal.reason())
        };
        let hour = request(Length::For(chrono::Duration::minutes(30)), Some("why"));
        assert_eq!(reason(&hour, None, &policy), Err("not-eligible"));
        let unjustified = request(Length::For(chrono::Duration::minutes(30)), None);
        assert_eq!(
            reason(&unjustified, Some(&e), &policy),
            Err("justification-required")
        );
        let huge = parse_duration("P4294967295W").expect("parses");
        let huge = request(Length::For(huge), Some("why"));
        assert_eq!(
            reason(&huge, Some(&e), &policy),
            Err("duration-exceeds-maximum")
        );
        let long = request(Length::For(chrono::Duration::hours(9)), Some("why"));
        assert_eq!(
            reason(&long, Some(&e), &policy),
            Err("duration-exceeds-maximum")
        );
        let past_end = request(Length::For(chrono::Duration::hours(2)), Some("why"));
        assert_eq!(
            reason(&past_end, Some(&e), &policy),
            Err("outside-eligibility-window")
        );
        let later = eligibility(Some("2026-06-02T00:00:00Z"), None);
        assert_eq!(
            reason(&hour, Some(&later), &policy),
            Err("outside-eligibility-window")
        );
        assert!(reason(&hour, Some(&e), &policy).is_ok());
        policy.is_ticketing_required = true;
        assert_eq!(reason(&hour, Some(&e), &policy), Err("ticket-required"));
        policy.is_justification_required = false;
        policy.is_ticketing_required = false;
        assert!(reason(&unjustified, Some(&e), &policy).is_ok());
    }
}
