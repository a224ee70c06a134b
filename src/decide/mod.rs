//! The decision layer (DESIGN §3): the one place where a question becomes a decision, for
//! every front door (`/v1/check` and batch, effective permissions, who-can, and the admin
//! API's own authorization).
//!
//! A front door parses its wire format into a [`Question`] and a [`Consistency`], then asks
//! the [`Decider`], which owns everything around the engine call: subject resolution
//! (tokens, vouched claims), waiting for a revision, the caller's right to ask, the clock,
//! explanation filtering, and reporting each decision to one [`DecisionHook`]. Handlers stay
//! wire adapters: parse, call, render.

pub mod actions;
mod caller;
mod clock;
mod log;
mod record;
mod subject;

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

pub use caller::{Caller, CallerInfo, CallerKind};
pub use clock::{Clock, SystemClock};
pub use log::{Both, DecisionLog, DecisionLogSettings, LogTarget};
pub use record::{DecisionHook, DecisionRecord, Purpose, TracingHook};
pub use subject::{ResolvedSubject, SubjectError, SubjectSpec};

use self::actions::{CHECK_OTHERS, READ_ASSIGNMENTS};
use crate::auth::Verifier;
use crate::engine::{Access, CheckRequest, EffectivePermissions, Reason, Snapshot, Subject};
use crate::model::{Action, Revision, Scope, Timestamp};
use crate::store::{Store, StoreError};
use crate::sync::{Health, NotYet, Published, SyncCounts};

/// One question: may the subject perform the action on the resource?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Subject, action and resource, as the engine takes them.
    pub request: CheckRequest,
    /// The subject's token had a groups overage.
    pub groups_overage: bool,
    /// The caller vouched for the subject's `groups` or `wids`.
    pub vouched: bool,
}

impl Question {
    /// A question about a resolved subject.
    pub fn new(subject: ResolvedSubject, action: Action, resource: Scope) -> Question {
        Question {
            request: CheckRequest::new(subject.subject, action, resource),
            groups_overage: subject.groups_overage,
            vouched: subject.vouched,
        }
    }
}

/// Which snapshot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// This replica's current snapshot (the default: no waiting).
    #[default]
    Local,
    /// A snapshot at or after this revision (read-your-writes), waited for up to the
    /// configured bound.
    AtLeast(Revision),
    /// A snapshot at or after the store's latest revision.
    Full,
}

/// An answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// True only when some grant allows and no deny assignment matches.
    pub allowed: bool,
    /// The explanation the caller may see (empty unless asked for).
    pub reasons: Vec<Reason>,
    /// The subject's token had a groups overage (said first in an explanation).
    pub groups_overage: bool,
    /// How many reasons were left out because the caller may not read their scopes.
    pub withheld: usize,
}

/// Why the decision layer could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The caller may not ask this (403).
    #[error("the caller may not perform `{action}` at `{scope}`")]
    Forbidden {
        /// The action it lacks.
        action: &'static str,
        /// Where.
        scope: Scope,
    },
    /// The snapshot did not reach the wanted revision in time (503).
    #[error(transparent)]
    NotYet(#[from] NotYet),
    /// The store could not say what its latest revision is.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the decision layer is wired to: where `now` comes from and who hears of each
/// decision. The default is the system clock and [`TracingHook`].
#[derive(Clone)]
pub struct Wiring {
    /// Read for every time-dependent decision.
    pub clock: Arc<dyn Clock>,
    /// Told of every decision.
    pub hook: Arc<dyn DecisionHook>,
}

impl Default for Wiring {
    fn default() -> Self {
        Wiring {
            clock: Arc::new(SystemClock),
            hook: Arc::new(TracingHook),
        }
    }
}

/// Answers questions from the published snapshot. One per app; shared by every request.
pub struct Decider {
    published: Arc<Published>,
    store: Arc<dyn Store>,
    verifier: Arc<Verifier>,
    clock: Arc<dyn Clock>,
    hook: Arc<dyn DecisionHook>,
    consistency_timeout: Duration,
}

impl Decider {
    /// A decider over `published`, reading `now` from the wiring's clock and reporting to
    /// its hook.
    pub fn new(
        published: Arc<Published>,
        store: Arc<dyn Store>,
        verifier: Arc<Verifier>,
        wiring: Wiring,
        consistency_timeout: Duration,
    ) -> Decider {
        Decider {
            published,
            store,
            verifier,
            clock: wiring.clock,
            hook: wiring.hook,
            consistency_timeout,
        }
    }

    /// The current instant, from the injected clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// This replica's current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.snapshot()
    }

    /// Whether the snapshot is loaded, how stale it may be, and whether sync reaches the
    /// store: no I/O, two atomic loads.
    pub fn health(&self) -> Health {
        self.published.health()
    }

    /// How often sync has reloaded the snapshot in full and failed: two atomic loads.
    pub fn sync_counts(&self) -> SyncCounts {
        self.published.sync_counts()
    }

    /// Returns once this replica's snapshot includes `revision`, or [`NotYet`] after the
    /// configured bound.
    pub async fn wait_for(&self, revision: Revision) -> Result<Arc<Snapshot>, NotYet> {
        self.published
            .at_least(revision, self.consistency_timeout)
            .await
    }

    /// As [`Decider::wait_for`], waiting up to `timeout` (a bulk import's reload takes
    /// seconds).
    pub async fn wait_for_within(
        &self,
        revision: Revision,
        timeout: std::time::Duration,
    ) -> Result<Arc<Snapshot>, NotYet> {
        self.published.at_least(revision, timeout).await
    }

    /// The snapshot `consistency` asks for.
    pub async fn snapshot_at(
        &self,
        consistency: Consistency,
    ) -> Result<Arc<Snapshot>, DecideError> {
        match consistency {
            Consistency::Local => Ok(self.snapshot()),
            Consistency::AtLeast(revision) => Ok(self.wait_for(revision).await?),
            Consistency::Full => {
                let revision = self.store.current_revision().await?;
                Ok(self.wait_for(revision).await?)
            }
        }
    }

    /// Whether `caller` holds `action` at `scope`, reported as an admin decision (the admin
    /// key holds everything). A malformed action is held by no one.
    pub fn holds(&self, caller: &Caller, action: &str, scope: &Scope) -> bool {
        let Some(identity) = caller.identity() else {
            return true;
        };
        let Ok(action) = Action::parse(action) else {
            return false;
        };
        let question = Question {
            request: CheckRequest::new(identity.subject(), action, scope.clone()),
            groups_overage: identity.groups_overage,
            vouched: false,
        };
        let snapshot = self.snapshot();
        self.judge(caller, &snapshot, &question, false, Purpose::Admin)
            .allowed
    }

    /// `Forbidden` unless `caller` holds `action` at `scope`.
    pub fn require(
        &self,
        caller: &Caller,
        action: &'static str,
        scope: &Scope,
    ) -> Result<(), DecideError> {
        if self.holds(caller, action, scope) {
            Ok(())
        } else {
            Err(DecideError::Forbidden {
                action,
                scope: scope.clone(),
            })
        }
    }

    /// The caller's right to ask about `subject` at `resource`: about oneself always (with
    /// nothing vouched for), about anyone else, or vouching for claims, only with
    /// [`CHECK_OTHERS`] there.
    pub fn may_ask(
        &self,
        caller: &Caller,
        subject: &Subject,
        vouched: bool,
        resource: &Scope,
    ) -> Result<(), DecideError> {
        if !vouched && caller.principal_id() == Some(subject.id) {
            return Ok(());
        }
        self.require(caller, CHECK_OTHERS, resource)
    }

    /// Answers `question` from `snapshot` (the caller's right to ask is the front door's to
    /// check first, with [`Decider::may_ask`]). With `explain`, the reasons the caller may
    /// not see are withheld and counted.
    pub fn decide(
        &self,
        caller: &Caller,
        snapshot: &Snapshot,
        question: &Question,
        explain: bool,
    ) -> Verdict {
        self.judge(caller, snapshot, question, explain, Purpose::Check)
    }

    fn judge(
        &self,
        caller: &Caller,
        snapshot: &Snapshot,
        question: &Question,
        explain: bool,
        purpose: Purpose,
    ) -> Verdict {
        let started = Instant::now();
        let now = self.now();
        let decision = snapshot.check(caller.tenant, &question.request, now, explain);
        let latency = started.elapsed();
        self.hook.record(&DecisionRecord {
            request_id: caller.request_id(),
            endpoint: caller.endpoint,
            tenant: caller.tenant,
            caller: &caller.actor,
            question,
            purpose,
            allowed: decision.allowed,
            reasons: &decision.reasons,
            revision: snapshot.revision(),
            latency,
            now,
            snapshot,
        });
        let mut verdict = Verdict {
            allowed: decision.allowed,
            reasons: decision.reasons,
            groups_overage: question.groups_overage,
            withheld: 0,
        };
        if explain && caller.principal_id() != Some(question.request.subject.id) {
            self.withhold_unreadable(caller, &mut verdict);
        }
        verdict
    }

    /// Keeps the reasons at scopes where the caller may read assignments or ask about
    /// others; counts the rest.
    fn withhold_unreadable(&self, caller: &Caller, verdict: &mut Verdict) {
        let mut withheld = 0usize;
        verdict.reasons.retain(|reason| {
            let scope = match reason {
                Reason::Grant(r) => &r.scope,
                Reason::Deny(r) => &r.scope,
                Reason::NotGranted(r) => &r.scope,
                _ => return true,
            };
            let readable = Scope::parse(scope).is_ok_and(|scope| {
                self.holds(caller, READ_ASSIGNMENTS, &scope)
                    || self.holds(caller, CHECK_OTHERS, &scope)
            });
            if !readable {
                withheld += 1;
            }
            readable
        });
        verdict.withheld = withheld;
    }

    /// Everything `principal` may do at `scope`, if the caller may ask.
    pub fn effective_permissions(
        &self,
        caller: &Caller,
        snapshot: &Snapshot,
        principal: Uuid,
        scope: &Scope,
    ) -> Result<EffectivePermissions, DecideError> {
        let subject = Subject::new(principal);
        self.may_ask(caller, &subject, false, scope)?;
        Ok(snapshot.effective_permissions(caller.tenant, &subject, scope, self.now()))
    }

    /// Every stored principal that may perform `action` on `resource`, if the caller may
    /// ask about others there.
    pub fn who_can(
        &self,
        caller: &Caller,
        snapshot: &Snapshot,
        action: &Action,
        resource: &Scope,
    ) -> Result<Vec<Access>, DecideError> {
        self.require(caller, CHECK_OTHERS, resource)?;
        Ok(snapshot.who_can(caller.tenant, action, resource, self.now()))
    }
}
