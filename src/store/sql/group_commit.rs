//! Group commit of role assignment creation.
//!
//! Bulk provisioning creates assignments from many clients at once. One transaction each
//! serializes them on the revision lock and pays a commit (a WAL flush on PostgreSQL) per
//! assignment. Instead, every `create_role_assignment` is handed to one writer task, which
//! takes whatever queued while its previous transaction committed and writes it as one
//! transaction at one revision:
//!
//! - requests of the same tenant and actor share a transaction (a write records one actor
//!   in the change log); the others go in the next one, in arrival order;
//! - each request is judged on its own ([`admit_assignment`]: the role exists and is
//!   assignable at the scope; an assignment with the same key is found, or is a conflict
//!   when its condition differs) against the database and the batch's earlier requests, so
//!   errors stay per request and a refused request takes nothing from the others;
//! - the new rows and their `changes` rows go in with one statement on PostgreSQL (two on
//!   SQLite), then one commit: every caller whose assignment was created gets that
//!   revision, which includes its write, and read-your-writes waits for it as before;
//! - a batch that creates nothing rolls back and consumes no revision, as a lone idempotent
//!   create does;
//! - when the batch's statements fail (the database, not a request), each request is
//!   written again alone in its own transaction, so every caller gets its own outcome.
//!
//! A request that finds the writer idle is a batch of one, written exactly as before: the
//! latency of a lone write does not change.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::assignments::{admit_assignment, natural_key, NATURAL_KEY_COLUMNS};
use super::rows::{stored_from_row, to_json, Arg, Key, Sql, ROLE_ASSIGNMENTS};
use super::write::{LogRow, WriteTx};
use super::SqlStore;
use crate::model::{
    ChangeOp, EntityType, NewRoleAssignment, Revision, RoleAssignment, RoleDefinition, TenantId,
};
use crate::store::{Actor, StoreError, StoreResult, Stored, Written};

/// The most requests one transaction takes: the lookup is one `SELECT` arm per request
/// (SQLite allows 500 in a compound statement) with four bound arguments each.
const MAX_BATCH: usize = 256;

/// How many requests may wait for the writer; beyond it, callers wait to be queued.
const QUEUE: usize = 1024;

/// One queued request and where its outcome goes.
pub(super) struct Job {
    tenant: TenantId,
    actor: Actor,
    new: NewRoleAssignment,
    reply: oneshot::Sender<StoreResult<Written<RoleAssignment>>>,
}

/// The writer task's queue.
pub(super) type Queue = mpsc::Sender<Job>;

/// What the batch decided for one request, before the commit.
enum Outcome {
    Created(RoleAssignment),
    Found(RoleAssignment, Revision),
    Refused(StoreError),
}

/// (principal, role, scope): an assignment's natural key, as the lookup compares it.
type NaturalKey = (Uuid, Uuid, String);

fn key_of(principal_id: Uuid, role_definition_id: Uuid, scope: &impl ToString) -> NaturalKey {
    (principal_id, role_definition_id, scope.to_string())
}

impl SqlStore {
    /// Creates `new` through the writer task (started on first use), in a transaction it
    /// may share with concurrent creates.
    pub(super) async fn create_assignment_grouped(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewRoleAssignment,
    ) -> StoreResult<Written<RoleAssignment>> {
        let Some(queue) = self.writer_queue() else {
            return self.create_assignment_alone(tenant, actor, new).await;
        };
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            tenant,
            actor: actor.clone(),
            new,
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = queue.send(job).await {
            // The writer is gone (the runtime that ran it ended, and this store outlived
            // it): write alone.
            return self
                .create_assignment_alone(job.tenant, &job.actor, job.new)
                .await;
        }
        outcome
            .await
            .unwrap_or(Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)))
    }

    /// The writer task's queue, starting the task on first use (`None` outside a tokio
    /// runtime, where requests are written alone).
    fn writer_queue(&self) -> Option<&Queue> {
        if let Some(queue) = self.writer.get() {
            return Some(queue);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (queue, jobs) = mpsc::channel(QUEUE);
        if self.writer.set(queue).is_ok() {
            // The task holds a store without a queue of its own, so it ends when this
            // store (the last sender) is dropped.
            runtime.spawn(writer(self.sibling(), jobs));
        }
        self.writer.get()
    }

    /// Writes `jobs` (one tenant, one actor) and answers each.
    async fn write_batch(&self, tenant: TenantId, actor: &Actor, jobs: Vec<Job>) {
        if jobs.len() == 1 {
            for job in jobs {
                let written = self.create_assignment_alone(tenant, actor, job.new).await;
                // The caller may have gone away; its write stands.
                let _ = job.reply.send(written);
            }
            return;
        }
        let news: Vec<&NewRoleAssignment> = jobs.iter().map(|job| &job.new).collect();
        match self.try_batch(tenant, actor, &news).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, requests = jobs.len(),
                    "a grouped write failed; writing each of its requests alone");
                for job in jobs {
                    let written = self.create_assignment_alone(tenant, actor, job.new).await;
                    let _ = job.reply.send(written);
                }
            }
        }
    }

    /// One transaction for every request in `news`: each request's outcome, or the error
    /// that failed the transaction as a whole (nothing committed).
    async fn try_batch(
        &self,
        tenant: TenantId,
        actor: &Actor,
        news: &[&NewRoleAssignment],
    ) -> StoreResult<Vec<StoreResult<Written<RoleAssignment>>>> {
        let started = std::time::Instant::now();
        let mut w = self.begin_write(tenant, actor).await?;
        let outcomes = match self.judge(&mut w, news).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                w.rollback().await;
                return Err(error);
            }
        };
        let created: Vec<&RoleAssignment> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Created(assignment) => Some(assignment),
                _ => None,
            })
            .collect();
        let revision = if created.is_empty() {
            // Nothing written: consume no revision.
            w.rollback().await;
            None
        } else if w.logs_with_insert() {
            // `judge`'s insert logged them.
            Some(w.commit().await?)
        } else {
            match log_created(&mut w, &created).await {
                Ok(()) => Some(w.commit().await?),
                Err(error) => {
                    w.rollback().await;
                    return Err(error);
                }
            }
        };
        tracing::debug!(
            requests = news.len(),
            created = created.len(),
            micros = started.elapsed().as_micros() as u64,
            "grouped assignment write"
        );
        Ok(outcomes
            .into_iter()
            .map(|outcome| match (outcome, revision) {
                (Outcome::Created(value), Some(revision)) => Ok(Written {
                    value,
                    revision,
                    created: true,
                }),
                (Outcome::Found(value, revision), _) => Ok(Written {
                    value,
                    revision,
                    created: false,
                }),
                (Outcome::Refused(error), _) => Err(error),
                // A creation always has a revision: `created` was not empty.
                (Outcome::Created(_), None) => Err(StoreError::Unavailable(sqlx::Error::Protocol(
                    "a created assignment was not committed".to_owned(),
                ))),
            })
            .collect())
    }

    /// Judges each request in order against the database and the requests before it, and
    /// inserts the assignments it creates (not yet logged).
    ///
    /// The first request of each key that its role admits is inserted, in one statement
    /// that skips a key already stored; only the keys it skipped, and those of refused
    /// requests (an identical assignment already stored is found even when the role would
    /// now refuse it), are read back. A batch of new assignments, bulk provisioning's
    /// case, is one statement and no lookup.
    async fn judge(
        &self,
        w: &mut WriteTx,
        news: &[&NewRoleAssignment],
    ) -> StoreResult<Vec<Outcome>> {
        let tenant = w.tenant;
        let mut roles: HashMap<Uuid, Option<Stored<RoleDefinition>>> = HashMap::new();
        for new in news {
            if let Entry::Vacant(slot) = roles.entry(new.role_definition_id) {
                slot.insert(
                    self.find_role(w.conn(), tenant, new.role_definition_id)
                        .await?,
                );
            }
        }
        let role_of =
            |new: &NewRoleAssignment| roles.get(&new.role_definition_id).and_then(Option::as_ref);
        let keys: Vec<NaturalKey> = news
            .iter()
            .map(|new| {
                key_of(
                    new.principal_id,
                    new.role_definition_id,
                    &new.directory_scope_id,
                )
            })
            .collect();
        // The first request of each key; what it would create, when its role admits it.
        let mut first_of: HashMap<&NaturalKey, usize> = HashMap::with_capacity(news.len());
        let mut planned: Vec<Option<RoleAssignment>> = Vec::with_capacity(news.len());
        for (i, (new, key)) in news.iter().zip(&keys).enumerate() {
            let first = *first_of.entry(key).or_insert(i) == i;
            let admitted = first && matches!(admit_assignment(new, None, role_of(new)), Ok(None));
            planned
                .push(admitted.then(|| RoleAssignment::new(Uuid::new_v4(), (*new).clone(), w.now)));
        }
        let rows: Vec<(Vec<Key>, &RoleAssignment)> = planned
            .iter()
            .flatten()
            .map(|assignment| (columns(assignment), assignment))
            .collect();
        // On PostgreSQL the same statement logs each row it inserts (`try_batch` then logs
        // nothing more); on SQLite `try_batch` logs them after.
        let inserted = if w.logs_with_insert() {
            w.insert_many_absent_logged(
                ROLE_ASSIGNMENTS,
                &rows,
                &NATURAL_KEY_COLUMNS,
                EntityType::RoleAssignment,
            )
            .await?
        } else {
            w.insert_many_absent(ROLE_ASSIGNMENTS, &rows, &NATURAL_KEY_COLUMNS)
                .await?
        };
        let inserted: HashSet<String> = inserted.into_iter().collect();
        drop(rows);
        let mut created = vec![false; news.len()];
        let mut stored: HashMap<NaturalKey, Stored<RoleAssignment>> = HashMap::new();
        let mut unknown: Vec<&NewRoleAssignment> = Vec::new();
        for (&key, &i) in &first_of {
            match &planned[i] {
                Some(assignment) if inserted.contains(&assignment.id.to_string()) => {
                    created[i] = true;
                    // A later request for the same key finds this one, at this revision.
                    stored.insert(
                        key.clone(),
                        Stored {
                            value: assignment.clone(),
                            revision: w.revision,
                        },
                    );
                }
                _ => unknown.push(news[i]),
            }
        }
        if !unknown.is_empty() {
            stored.extend(existing(w, &unknown).await?);
        }
        let mut outcomes = Vec::with_capacity(news.len());
        for (i, new) in news.iter().enumerate() {
            let outcome = match planned[i].take() {
                Some(assignment) if created[i] => Outcome::Created(assignment),
                _ => match admit_assignment(new, stored.get(&keys[i]).cloned(), role_of(new)) {
                    Err(error) => Outcome::Refused(error),
                    Ok(Some(found)) => Outcome::Found(found.value, found.revision),
                    // The insert skipped this key, yet nothing is stored under it: no
                    // other write can run while this one holds the revision lock.
                    Ok(None) => {
                        return Err(StoreError::Corrupt(format!(
                            "the assignment of principal {} to role {} at {} was neither \
                             inserted nor found",
                            new.principal_id, new.role_definition_id, new.directory_scope_id
                        )))
                    }
                },
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// A store on the same pool and catalog, without a writer queue.
    fn sibling(&self) -> SqlStore {
        SqlStore {
            pool: self.pool.clone(),
            url: self.url.clone(),
            catalog: self.catalog.clone(),
            settings: self.settings,
            writer: std::sync::OnceLock::new(),
            commits: self.commits.clone(),
        }
    }
}

/// The writer task: takes the queued requests, groups them by (tenant, actor) in arrival
/// order, and writes one group per transaction until every sender is gone.
async fn writer(store: SqlStore, mut queue: mpsc::Receiver<Job>) {
    let mut waiting: Vec<Job> = Vec::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push(job),
                None => return,
            }
        }
        while waiting.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => waiting.push(job),
                Err(_) => break,
            }
        }
        let tenant = waiting[0].tenant;
        let actor = waiting[0].actor.clone();
        let mut batch = Vec::new();
        let mut rest = Vec::new();
        for job in waiting.drain(..) {
            if batch.len() < MAX_BATCH && job.tenant == tenant && job.actor == actor {
                batch.push(job);
            } else {
                rest.push(job);
            }
        }
        waiting = rest;
        store.write_batch(tenant, &actor, batch).await;
    }
}

/// The stored assignments with the natural key of any of `news`, by that key: one lookup
/// of the unique index per request, all in one statement (`UNION ALL`, so each arm is
/// planned alone; an `OR` of the keys made PostgreSQL scan the table).
async fn existing(
    w: &mut WriteTx,
    news: &[&NewRoleAssignment],
) -> StoreResult<HashMap<NaturalKey, Stored<RoleAssignment>>> {
    let mut sql = Sql::new("");
    for (i, new) in news.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("SELECT revision, body FROM ")
            .push(ROLE_ASSIGNMENTS.name)
            .push(" WHERE tenant_id = ")
            .push_bind(Arg::tenant(w.tenant))
            .push_keys(&natural_key(
                new.principal_id,
                new.role_definition_id,
                &new.directory_scope_id,
            ));
    }
    let rows = sql.query().fetch_all(w.conn()).await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let stored = stored_from_row(ROLE_ASSIGNMENTS, row, 0)?;
        let value = &stored.value;
        found.insert(
            key_of(
                value.principal_id,
                value.role_definition_id,
                &value.directory_scope_id,
            ),
            stored,
        );
    }
    Ok(found)
}

/// The columns of `assignment`'s row: its id, then its natural key.
fn columns(assignment: &RoleAssignment) -> Vec<Key> {
    let mut columns = vec![("id", Arg::id(assignment.id))];
    columns.extend(natural_key(
        assignment.principal_id,
        assignment.role_definition_id,
        &assignment.directory_scope_id,
    ));
    columns
}

/// Logs the creation of the assignments `judge` inserted, in one statement.
async fn log_created(w: &mut WriteTx, created: &[&RoleAssignment]) -> StoreResult<()> {
    let mut log: Vec<LogRow> = Vec::with_capacity(created.len());
    for assignment in created {
        log.push((
            EntityType::RoleAssignment,
            assignment.id.to_string(),
            ChangeOp::Create,
            None,
            Some(to_json(*assignment)?),
        ));
    }
    w.log_many(log).await
}
