//! A provisioning run and its steps, and how a step's outcome moves them: the rules of the
//! workflow, apart from storing and calling (decision 0014).

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Onboards a new tenant ([`ONBOARDING`]); its outcome is the tenant's onboarding state.
    Onboard,
    /// Applies a change of an onboarded tenant's retention or budget again ([`RECONCILE`]).
    /// The tenant's state does not follow it, and it is retried, never rolled back: undoing
    /// its steps would take storage from a tenant in service.
    Reconcile,
    /// Offboards a deleted tenant ([`OFFBOARDING`]): its data exported, then deleted after the
    /// grace period. Told to no one, retried, never rolled back: a deletion is not undone.
    Offboard,
}

impl RunKind {
    /// Its steps, in order.
    pub const fn steps(self) -> &'static [StepName] {
        match self {
            Self::Onboard => ONBOARDING,
            Self::Reconcile => RECONCILE,
            Self::Offboard => OFFBOARDING,
        }
    }

    /// Whether its outcome is the tenant's onboarding state, told to the tenant service, and it
    /// may be rolled back: an onboarding's alone.
    pub fn onboards(self) -> bool {
        self == Self::Onboard
    }
}

/// How an offboarding run deletes, as `DeleteTenant` asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offboarding {
    /// Deletes as soon as the export is verified, without the grace period.
    pub force: bool,
    /// Deletes the tenant's objects in the cold tier too.
    pub purge_archive: bool,
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Waiting for a worker.
    Pending,
    /// Its steps are running.
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed; the run may be retried.
    Failed,
    /// Its completed steps are being undone.
    RollingBack,
    /// Its completed steps were undone.
    RolledBack,
}

/// The state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// Not started.
    Pending,
    /// Started, and not known to have ended: a worker is running it, or died running it.
    Running,
    /// Done.
    Succeeded,
    /// Failed for good, or out of attempts.
    Failed,
    /// Undone by a rollback.
    RolledBack,
}

/// A step of onboarding, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepName {
    /// The tenant's storage: registered with the storage service, and its hot partitions for
    /// today and the days ahead.
    StorageNamespace,
    /// The tenant's archive: the lifecycle rule of its prefix in the cold tier, from its
    /// retention.
    Archive,
    /// The alert rules of the onboarding template for the tenant's plan, in the storage
    /// service.
    DefaultAlertRules,
    /// An admin key of the tenant, whose secret the tenant service keeps sealed until the
    /// operator claims it.
    FirstApiKey,
    /// Its budget thresholds in the cost service, for the limit the tenant carries. Last, so
    /// that a run rolled back never has it done (it has no undo).
    Budget,
    /// Offboarding: what the hot tier holds of the tenant moved to the cold tier, and a
    /// manifest of its objects written and verified.
    Export,
    /// Offboarding: the wait from the tenant's deletion to the deletion of its data, unless
    /// forced.
    GracePeriod,
    /// Offboarding: the tenant's data deleted in the storage and cost services.
    DeleteData,
}

/// The steps of an onboarding, in order (decision 0014).
pub const ONBOARDING: &[StepName] = &[
    StepName::StorageNamespace,
    StepName::Archive,
    StepName::DefaultAlertRules,
    StepName::FirstApiKey,
    StepName::Budget,
];

/// The steps of an offboarding, in order: nothing is deleted before the export is verified.
pub const OFFBOARDING: &[StepName] = &[
    StepName::Export,
    StepName::GracePeriod,
    StepName::DeleteData,
];

/// The steps that apply a tenant's retention and budget again.
pub const RECONCILE: &[StepName] = &[
    StepName::StorageNamespace,
    StepName::Archive,
    StepName::Budget,
];

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it does.
    pub name: StepName,
    /// Its state.
    pub state: StepState,
    /// How many times it was started.
    pub attempts: u32,
    /// Why it last failed; empty when it did not.
    pub error: String,
    /// When it last started.
    pub start_time: Option<DateTime<Utc>>,
    /// When it last ended.
    pub end_time: Option<DateTime<Utc>>,
}

/// One provisioning run of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Its id (a UUID v7: runs sort by creation).
    pub id: Uuid,
    /// The tenant.
    pub tenant: Uuid,
    /// The request that started it: starting again with the same id returns this run.
    pub request_id: String,
    /// What it does.
    pub kind: RunKind,
    /// Its state.
    pub state: RunState,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// When a worker may next take it up.
    pub not_before: DateTime<Utc>,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it last changed.
    pub update_time: DateTime<Utc>,
    /// Whether the tenant service was told how it ended (only an onboarding has to).
    pub reported: bool,
    /// How it deletes, when it offboards.
    pub offboarding: Offboarding,
}

/// How a step's call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It may succeed later (a service unavailable, a deadline): the step is tried again
    /// after a backoff.
    Retryable(String),
    /// It will not succeed as asked (an invalid request, a tenant that does not exist): the
    /// run fails with it.
    Permanent(String),
    /// It is not due before a time (a grace period): the step waits until then, why shown,
    /// without counting an attempt.
    NotUntil(DateTime<Utc>, String),
}

/// How many times a step is started, by default, before a retryable failure fails the run:
/// about 25 s of backoff ([`backoff`]).
pub const MAX_ATTEMPTS: u32 = 8;

/// The wait before attempt `attempts + 1` of a step whose attempt `attempts` failed and may be
/// retried: 200 ms, doubling, at most 30 s.
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(8);
    Duration::from_millis(200 << doublings).min(Duration::from_secs(30))
}

impl Run {
    /// A new run of `kind` for `tenant`, pending.
    pub fn new(
        id: Uuid,
        tenant: Uuid,
        request_id: String,
        kind: RunKind,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            tenant,
            request_id,
            kind,
            state: RunState::Pending,
            steps: kind
                .steps()
                .iter()
                .map(|&name| Step {
                    name,
                    state: StepState::Pending,
                    attempts: 0,
                    error: String::new(),
                    start_time: None,
                    end_time: None,
                })
                .collect(),
            not_before: now,
            create_time: now,
            update_time: now,
            reported: !kind.onboards(),
            offboarding: Offboarding::default(),
        }
    }

    /// Whether it ended and the tenant service has not been told: the outcome to report.
    pub fn to_report(&self) -> Option<bool> {
        match self.state {
            RunState::Succeeded if !self.reported => Some(true),
            RunState::Failed if !self.reported => Some(false),
            _ => None,
        }
    }

    /// The step to run next: the first not done. A step left running by a worker that died
    /// is run again, under the same key.
    pub fn next_step(&self) -> Option<usize> {
        if !matches!(self.state, RunState::Pending | RunState::Running) {
            return None;
        }
        self.steps
            .iter()
            .position(|s| matches!(s.state, StepState::Pending | StepState::Running))
    }

    /// Marks step `at` started at `now`: stored before its call.
    pub fn start_step(&mut self, at: usize, now: DateTime<Utc>) {
        self.state = RunState::Running;
        let step = &mut self.steps[at];
        step.state = StepState::Running;
        step.attempts += 1;
        step.start_time = Some(now);
        step.end_time = None;
        self.update_time = now;
    }

    /// Records step `at`'s outcome at `now`: stored after its call. A success moves on, and
    /// the last one ends the run; a retryable failure waits for its backoff, unless it was
    /// attempt `max_attempts`; any other failure fails the run.
    pub fn end_step(
        &mut self,
        at: usize,
        outcome: Result<(), Failure>,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) {
        let step = &mut self.steps[at];
        step.end_time = Some(now);
        self.update_time = now;
        match outcome {
            Ok(()) => {
                step.state = StepState::Succeeded;
                step.error.clear();
                if self.steps.iter().all(|s| s.state == StepState::Succeeded) {
                    self.state = RunState::Succeeded;
                }
            }
            Err(Failure::NotUntil(due, why)) => {
                step.state = StepState::Pending;
                step.attempts = step.attempts.saturating_sub(1);
                step.error = why;
                self.not_before = due;
            }
            Err(Failure::Retryable(error)) if step.attempts < max_attempts => {
                let wait = chrono::Duration::from_std(backoff(step.attempts)).unwrap_or_default();
                step.state = StepState::Pending;
                step.error = error;
                self.not_before = now + wait;
            }
            Err(Failure::Retryable(error) | Failure::Permanent(error)) => {
                step.state = StepState::Failed;
                step.error = error;
                self.state = RunState::Failed;
            }
        }
    }

    /// Resumes a failed run: its failed step is pending again, with its attempts kept.
    /// Returns false, changing nothing, when the run has not failed.
    pub fn retry(&mut self, now: DateTime<Utc>) -> bool {
        if self.state != RunState::Failed {
            return false;
        }
        for step in &mut self.steps {
            if step.state == StepState::Failed {
                step.state = StepState::Pending;
            }
        }
        self.state = RunState::Pending;
        self.not_before = now;
        self.update_time = now;
        self.reported = !self.kind.onboards();
        true
    }

    /// Starts undoing a failed run: its steps that ran are undone newest first. Returns false,
    /// changing nothing, when the run has not failed.
    pub fn roll_back(&mut self, now: DateTime<Utc>) -> bool {
        if self.state != RunState::Failed || !self.kind.onboards() {
            return false;
        }
        self.state = RunState::RollingBack;
        self.not_before = now;
        self.update_time = now;
        true
    }

    /// The step to undo next while rolling back: the newest that ran and is not undone. A step
    /// that failed is undone too, in case it did part of its work (every undo is idempotent).
    pub fn next_undo(&self) -> Option<usize> {
        if self.state != RunState::RollingBack {
            return None;
        }
        self.steps.iter().rposition(|s| {
            s.attempts > 0 && s.state != StepState::RolledBack && s.state != StepState::Pending
        })
    }

    /// Records the outcome of undoing step `at` at `now`. The last undo ends the rollback; a
    /// retryable failure waits a second; any other failure fails the run again, with the
    /// step's error, so that the rollback may be asked for again.
    pub fn end_undo(&mut self, at: usize, outcome: Result<(), Failure>, now: DateTime<Utc>) {
        let step = &mut self.steps[at];
        step.end_time = Some(now);
        self.update_time = now;
        match outcome {
            Ok(()) => {
                step.state = StepState::RolledBack;
                step.error.clear();
                if self.next_undo().is_none() {
                    self.state = RunState::RolledBack;
                }
            }
            Err(Failure::Retryable(error)) => {
                step.error = format!("undoing: {error}");
                self.not_before = now + chrono::Duration::seconds(1);
            }
            Err(Failure::NotUntil(due, why)) => {
                step.error = format!("undoing: {why}");
                self.not_before = due;
            }
            Err(Failure::Permanent(error)) => {
                step.state = StepState::Failed;
                step.error = format!("undoing: {error}");
                self.state = RunState::Failed;
            }
        }
    }

    /// The key of step `at`: every call it makes carries it, so running it twice has one
    /// effect.
    pub fn step_key(&self, at: usize) -> String {
        format!("{}/{}", self.id, self.steps[at].name.as_str())
    }

    /// The error of the step that failed the run, with the step's name.
    pub fn failure(&self) -> Option<String> {
        self.steps
            .iter()
            .find(|s| s.state == StepState::Failed)
            .map(|s| format!("{}: {}", s.name.as_str(), s.error))
    }
}

#[cfg(test)]
mod tests;
