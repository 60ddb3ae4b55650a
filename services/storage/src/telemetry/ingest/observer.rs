//! The seam between ingest and what watches it. Ingest owns the trait and knows nothing of its
//! observers: alerting implements it today, the cost service's usage meter next.

use std::collections::HashMap;

use uuid::Uuid;

use crate::telemetry::ingest::Outcome;
use crate::{directory::MachineLabels, telemetry::domain::ingest::Reading};

/// A batch whose readings passed their checks, as observers see it.
#[derive(Debug)]
pub struct AcceptedBatch<'a> {
    /// The tenant.
    pub tenant: Uuid,
    /// The readings that will be written (repeats inside the batch included).
    pub readings: &'a [Reading],
    /// The labels of the readings' machines, by machine id.
    pub machines: &'a HashMap<String, Option<MachineLabels>>,
}

/// What watches ingest. Both calls run in the ingesting caller's task and must not wait: an
/// observer that does work hands it to its own tasks.
pub trait IngestObserver: Send + Sync + std::fmt::Debug {
    /// A batch's readings passed their checks and are queued for their commit. Alerting
    /// evaluates here, so that an alert does not wait for the write; a reading seen here may
    /// still fail to commit (the database failed), and its batch is then answered with an
    /// error and resent.
    fn accepted(&self, _batch: &AcceptedBatch<'_>) {}

    /// A batch is durable: `outcome` says how many of its readings were new. What counts
    /// stored data (usage metering) counts here.
    fn committed(&self, _tenant: Uuid, _outcome: &Outcome) {}
}
