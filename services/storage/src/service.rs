//! What both halves' RPCs work with: the telemetry and alerting operations, ready once the
//! database is reachable and migrated.

use std::sync::{Arc, OnceLock};

use mfg_common::clock::SharedClock;

use crate::{
    alerting::Alerting,
    telemetry::{
        ingest::Ingest,
        query::Queries,
        tiering::{Tiering, TieringJobs},
    },
};

/// What the RPCs work with once the database is reachable and migrated.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The ingest path.
    pub ingest: Ingest,
    /// The queries.
    pub queries: Queries,
    /// The facts of the tenants' usage, and the raw reads of their queries.
    pub usage: crate::usage::Usage,
    /// A tenant's tiering.
    pub tiering: Tiering,
    /// The tiering jobs.
    pub jobs: TieringJobs,
    /// Alert rules and alerts.
    pub alerting: Alerting,
    /// The service's clock.
    pub clock: SharedClock,
    /// Where usage is counted for the cost service, when it is metered.
    pub meter: Option<mfg_common::metering::UsageMeter>,
}

/// The storage operations, once ready.
pub type ReadyStorage = Arc<OnceLock<Storage>>;
