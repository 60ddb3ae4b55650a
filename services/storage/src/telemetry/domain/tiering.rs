//! Tiering jobs as the API and the store see them: what a job did, where it stands, and why a
//! tenant's work failed.

use uuid::Uuid;

use crate::micros::Micros;

/// What tiering did, summed over tenants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Rollup buckets written or rewritten.
    pub rollup_buckets_written: u64,
    /// Readings copied to the cold tier.
    pub readings_archived: u64,
    /// Objects written and verified.
    pub objects_written: u32,
    /// Tenants' hot days removed after archiving.
    pub hot_partitions_dropped: u32,
    /// Rollup rows removed past the warm retention.
    pub warm_rows_expired: u64,
    /// Objects removed past the cold retention.
    pub cold_objects_expired: u32,
    /// Alert events removed past the hot retention.
    pub alert_events_expired: u64,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for the running job to end.
    Queued,
    /// Running (or its runner stopped, and another takes it over once its lease runs out).
    Running,
    /// Ended; every tenant's work succeeded.
    Succeeded,
    /// Ended; at least one tenant's work failed.
    Failed,
}

impl JobState {
    /// The name the store keeps.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The state of a stored name.
    pub fn of_name(name: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|state| state.name() == name)
    }

    /// Whether the job has ended.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// A tiering job and its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: Uuid,
    /// Where it stands.
    pub state: JobState,
    /// The time it runs as if it were.
    pub as_of: Micros,
    /// When it was started.
    pub created_at: Micros,
    /// When it began to run.
    pub started_at: Option<Micros>,
    /// When it ended.
    pub finished_at: Option<Micros>,
    /// Tenants to do (0 until it runs).
    pub tenants_total: u32,
    /// Tenants done, failed ones included.
    pub tenants_done: u32,
    /// Tenants whose work failed.
    pub tenants_failed: u32,
    /// What it did, summed over the tenants done.
    pub report: Report,
}

/// Why a tenant's work failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The tenant.
    pub tenant: Uuid,
    /// The error's gRPC code.
    pub code: i32,
    /// The error.
    pub message: String,
}
