//! One hook where every decision is reported: metrics and the decision log attach here.

use std::time::Duration;

use super::Question;
use crate::engine::{Reason, Snapshot};
use crate::model::{Revision, TenantId, Timestamp};
use crate::store::Actor;

/// Why a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A decision a client asked for (`/v1/check`, batch).
    Check,
    /// Rolecall authorizing its own admin API (or a decision endpoint's caller).
    Admin,
}

/// Everything about one decision, borrowed for the duration of the report: a hook copies
/// what it keeps.
#[derive(Debug)]
pub struct DecisionRecord<'a> {
    /// The request's id (`x-request-id`).
    pub request_id: &'a str,
    /// The route template of the request it was taken for (`/v1/check`).
    pub endpoint: &'static str,
    /// The tenant it was taken in.
    pub tenant: TenantId,
    /// Who asked.
    pub caller: &'a Actor,
    /// What was asked.
    pub question: &'a Question,
    /// Check or admin authorization.
    pub purpose: Purpose,
    /// The answer.
    pub allowed: bool,
    /// The explanation, when one was asked for (empty otherwise).
    pub reasons: &'a [Reason],
    /// The snapshot revision it was answered at.
    pub revision: Revision,
    /// Time spent in the engine and the layer around it.
    pub latency: Duration,
    /// The instant it was decided at (what time windows were judged against).
    pub now: Timestamp,
    /// The snapshot it was answered from (cloning it is a few reference counts).
    pub snapshot: &'a Snapshot,
}

/// Receives every decision. Called on the request path, so it must be cheap and must not
/// block: queue work, don't do it.
pub trait DecisionHook: Send + Sync + 'static {
    /// One decision was taken.
    fn record(&self, record: &DecisionRecord<'_>);
}

/// The default hook: a `debug` event on the `rolecall::decision` target (free when that
/// level is off).
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingHook;

impl DecisionHook for TracingHook {
    fn record(&self, record: &DecisionRecord<'_>) {
        tracing::debug!(
            target: "rolecall::decision",
            request_id = record.request_id,
            tenant = %record.tenant,
            caller = record.caller.id(),
            subject = %record.question.request.subject.id,
            action = record.question.request.action.as_str(),
            resource = record.question.request.resource.as_str(),
            purpose = ?record.purpose,
            allowed = record.allowed,
            revision = %record.revision,
            latency_us = record.latency.as_micros() as u64,
            "decision"
        );
    }
}
