//! The decision log: one JSON line per sampled decision, written off the request path.
//!
//! The hook ([`DecisionLog::record`]) decides whether a decision is sampled (an exact rate:
//! of every `n` decisions, `round(n × rate)` are kept), copies what the line needs (the
//! question and a reference-counted snapshot), and queues it on a bounded channel. When the
//! queue is full the decision is dropped and counted, never waited for. A writer thread takes
//! the queue: it explains each decision against the snapshot it was answered from (so the
//! line names the granting or denying assignment without the request paying for an
//! explanation), and appends the line to the file or stdout. When decisions were dropped,
//! the next line written is `{"kind": "dropped", "count": n}` before the decision's own.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use std::sync::mpsc;

use super::record::{DecisionHook, DecisionRecord, Purpose};
use crate::engine::{CheckRequest, GrantSource, Reason, Snapshot};
use crate::model::{Revision, TenantId, Timestamp};

/// Where decision lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// The process's standard output.
    Stdout,
    /// Appended to this file (created when absent).
    File(PathBuf),
}

/// The `[decision_log]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionLogSettings {
    /// Where lines go.
    pub target: LogTarget,
    /// The fraction of decisions logged, from 0 to 1.
    pub sample_rate: f64,
    /// Also log Rolecall's authorization of its own admin API (not only client checks).
    pub admin: bool,
    /// Decisions queued for the writer at most; beyond, they are dropped and counted.
    pub capacity: usize,
}

/// One sampled decision on its way to the writer.
struct Entry {
    at: Timestamp,
    request_id: String,
    tenant: TenantId,
    caller: String,
    purpose: Purpose,
    allowed: bool,
    revision: Revision,
    latency_us: u64,
    request: CheckRequest,
    /// The snapshot it was answered from, to explain it again off the request path.
    snapshot: Snapshot,
}

/// The hook that feeds the decision log.
pub struct DecisionLog {
    queue: mpsc::SyncSender<Entry>,
    rate: f64,
    admin: bool,
    seen: AtomicU64,
    dropped: Arc<AtomicU64>,
}

impl DecisionLog {
    /// Opens the target and starts the writer thread (it ends when the log is dropped).
    pub fn start(settings: &DecisionLogSettings) -> std::io::Result<DecisionLog> {
        let out: Box<dyn Write + Send> = match &settings.target {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (queue, entries) = mpsc::sync_channel(settings.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        std::thread::Builder::new()
            .name("decision-log".to_owned())
            .spawn(move || write_lines(&entries, out, &counted))?;
        Ok(DecisionLog {
            queue,
            rate: settings.sample_rate.clamp(0.0, 1.0),
            admin: settings.admin,
            seen: AtomicU64::new(0),
            dropped,
        })
    }

    /// Whether the `n`-th decision (from 0) is sampled: exactly `floor(n × rate)` of the
    /// first `n`.
    fn sampled(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.rate).floor() > (n * self.rate).floor()
    }

    /// Decisions dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl DecisionHook for DecisionLog {
    fn record(&self, record: &DecisionRecord<'_>) {
        if record.purpose == Purpose::Admin && !self.admin {
            return;
        }
        if !self.sampled() {
            return;
        }
        let entry = Entry {
            at: record.now,
            request_id: record.request_id.to_owned(),
            tenant: record.tenant,
            caller: record.caller.id().to_owned(),
            purpose: record.purpose,
            allowed: record.allowed,
            revision: record.revision,
            latency_us: u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
            request: record.question.request.clone(),
            snapshot: record.snapshot.clone(),
        };
        if self.queue.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Two hooks told of every decision, in order.
pub struct Both(pub Arc<dyn DecisionHook>, pub Arc<dyn DecisionHook>);

impl DecisionHook for Both {
    fn record(&self, record: &DecisionRecord<'_>) {
        self.0.record(record);
        self.1.record(record);
    }
}

/// The line for one decision: the question, the answer, and the assignment behind it.
fn line(entry: &Entry) -> Value {
    let decision = entry
        .snapshot
        .check(entry.tenant, &entry.request, entry.at, true);
    let grant = decision.reasons.iter().find_map(|r| match r {
        Reason::Grant(g) => Some(json!({
            "assignmentId": g.assignment_id,
            "roleDefinitionId": g.role_definition_id,
            "scope": g.scope,
            "source": match g.source {
                GrantSource::Assignment => "assignment",
                GrantSource::WidsClaim => "widsClaim",
            },
        })),
        _ => None,
    });
    let deny = decision.reasons.iter().find_map(|r| match r {
        Reason::Deny(d) => Some(json!({
            "denyAssignmentId": d.deny_assignment_id,
            "scope": d.scope,
        })),
        _ => None,
    });
    let request = &entry.request;
    json!({
        "kind": "decision",
        "time": entry.at,
        "requestId": entry.request_id,
        "tenantId": entry.tenant,
        "caller": entry.caller,
        "purpose": match entry.purpose {
            Purpose::Check => "check",
            Purpose::Admin => "admin",
        },
        "subject": request.subject.id,
        "action": request.action.as_str(),
        "resource": request.resource.as_str(),
        "decision": if entry.allowed { "allow" } else { "deny" },
        "revision": entry.revision,
        "grantedBy": if entry.allowed { grant } else { None },
        "deniedBy": deny,
        "latencyMicros": entry.latency_us,
    })
}

fn write_lines(
    entries: &mpsc::Receiver<Entry>,
    mut out: Box<dyn Write + Send>,
    dropped: &AtomicU64,
) {
    let mut reported = 0u64;
    // Blocks until a decision arrives; ends when every sender is gone.
    while let Ok(first) = entries.recv() {
        let mut text = String::new();
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            text.push_str(&json!({"kind": "dropped", "count": lost - reported}).to_string());
            text.push('\n');
            reported = lost;
        }
        // Whatever else is queued goes out in the same write.
        for entry in std::iter::once(first).chain(entries.try_iter().take(255)) {
            text.push_str(&line(&entry).to_string());
            text.push('\n');
        }
        if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(%error, "cannot write the decision log");
        }
    }
}
