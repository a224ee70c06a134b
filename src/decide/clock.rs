//! Time as the decision layer sees it: injected, so a test can move it instead of sleeping.

use crate::model::Timestamp;

/// Where `now` comes from. Every time-dependent decision (assignment windows, an
/// administrator's own term) reads this, never the system clock directly.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system clock: what production uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}
