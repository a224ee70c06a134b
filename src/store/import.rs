//! Declarative imports: a tenant's directory read whole, and a [`Plan`] applied in one
//! transaction and one revision.

use async_trait::async_trait;
use serde::Serialize;

use super::{Actor, StoreResult};
use crate::model::import_plan::{Plan, PlanReport};
use crate::model::{Revision, TenantDump, TenantId};

/// An import with at most this many object changes logs one change row per object (as
/// separate writes would, and replicas apply them in place); a larger one logs only its
/// summary row, and replicas reload.
pub const DETAILED_CHANGES_LIMIT: usize = 10_000;

/// The `import` change row every applied import logs (last in its revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRecord {
    /// `sha256:` and the hex SHA-256 of the file as received.
    pub digest: String,
    /// Whether objects the file does not list were removed.
    pub prune: bool,
    /// Whether the revision also holds one change row per object (see
    /// [`DETAILED_CHANGES_LIMIT`]); when false, followers must reload.
    pub detailed: bool,
    /// What the import changed.
    pub report: PlanReport,
}

/// Whole-tenant reads and writes for `GET /v1/export` and `POST /v1/import`.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// One tenant's objects read in one consistent snapshot, with the newest revision that
    /// changed this tenant (what [`ImportStore::apply_import`] checks against).
    async fn tenant_dump(&self, tenant: TenantId) -> StoreResult<(TenantDump, Revision)>;

    /// Applies `plan` in one transaction and one revision, logging `record` (and, when it
    /// says so, a change row per object). A `Conflict` when another write changed the
    /// tenant after `based_on` (the plan was made against an older directory).
    async fn apply_import(
        &self,
        tenant: TenantId,
        actor: &Actor,
        plan: &Plan,
        record: &ImportRecord,
        based_on: Revision,
    ) -> StoreResult<Revision>;
}
