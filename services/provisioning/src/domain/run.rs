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
}

impl RunKind {
    /// Its steps, in order.
    pub const fn steps(self) -> &'static [StepName] {
        match self {
            Self::Onboard => ONBOARDING,
            Self::Reconcile => RECONCILE,
        }
    }
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
}

/// The steps of an onboarding, in order (decision 0014).
pub const ONBOARDING: &[StepName] = &[
    StepName::StorageNamespace,
    StepName::Archive,
    StepName::DefaultAlertRules,
    StepName::FirstApiKey,
    StepName::Budget,
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
    /// Whether the tenant service was told how it ended (a reconcile has nothing to tell).
    pub reported: bool,
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
            reported: kind == RunKind::Reconcile,
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
        self.reported = self.kind == RunKind::Reconcile;
        true
    }

    /// Starts undoing a failed run: its steps that ran are undone newest first. Returns false,
    /// changing nothing, when the run has not failed.
    pub fn roll_back(&mut self, now: DateTime<Utc>) -> bool {
        if self.state != RunState::Failed || self.kind == RunKind::Reconcile {
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
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn run() -> (Run, DateTime<Utc>) {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let run = Run::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "r".into(),
            RunKind::Onboard,
            now,
        );
        (run, now)
    }

    #[test]
    fn steps_run_in_order_and_the_last_success_ends_the_run() {
        let (mut run, now) = run();
        assert_eq!(run.next_step(), Some(0));
        run.start_step(0, now);
        assert_eq!((run.state, run.steps[0].attempts), (RunState::Running, 1));
        // A worker that died here leaves the step running: it is the next again.
        assert_eq!(run.next_step(), Some(0));
        run.end_step(0, Ok(()), now, MAX_ATTEMPTS);
        for at in 1..ONBOARDING.len() {
            assert_eq!(run.next_step(), Some(at));
            run.start_step(at, now);
            run.end_step(at, Ok(()), now, MAX_ATTEMPTS);
        }
        assert_eq!((run.state, run.next_step()), (RunState::Succeeded, None));
    }

    #[test]
    fn a_retryable_failure_waits_its_backoff_then_fails_the_run_after_the_last_attempt() {
        let (mut run, now) = run();
        for attempt in 1..MAX_ATTEMPTS {
            run.start_step(0, now);
            run.end_step(
                0,
                Err(Failure::Retryable("unavailable".into())),
                now,
                MAX_ATTEMPTS,
            );
            assert_eq!(run.steps[0].state, StepState::Pending);
            assert_eq!(run.state, RunState::Running);
            let wait = chrono::Duration::from_std(backoff(attempt)).unwrap();
            assert_eq!(run.not_before, now + wait);
        }
        run.start_step(0, now);
        run.end_step(
            0,
            Err(Failure::Retryable("unavailable".into())),
            now,
            MAX_ATTEMPTS,
        );
        assert_eq!(run.state, RunState::Failed);
        assert_eq!(
            run.failure().as_deref(),
            Some("storage_namespace: unavailable")
        );
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(20), Duration::from_secs(30));
    }

    #[test]
    fn a_permanent_failure_fails_the_run_and_a_retry_resumes_at_that_step() {
        let (mut run, now) = run();
        run.start_step(0, now);
        run.end_step(0, Ok(()), now, MAX_ATTEMPTS);
        run.start_step(1, now);
        run.end_step(
            1,
            Err(Failure::Permanent("no such tenant".into())),
            now,
            MAX_ATTEMPTS,
        );
        assert_eq!((run.state, run.next_step()), (RunState::Failed, None));
        assert!(run.retry(now));
        assert_eq!((run.state, run.next_step()), (RunState::Pending, Some(1)));
        assert_eq!(run.steps[1].attempts, 1, "attempts are kept");
        assert!(!run.retry(now), "only a failed run is retried");
    }

    #[test]
    fn a_rollback_undoes_the_steps_that_ran_newest_first() {
        let (mut run, now) = run();
        assert!(!run.roll_back(now), "only a failed run is rolled back");
        run.start_step(0, now);
        run.end_step(0, Ok(()), now, MAX_ATTEMPTS);
        run.start_step(1, now);
        run.end_step(
            1,
            Err(Failure::Permanent("refused".into())),
            now,
            MAX_ATTEMPTS,
        );
        assert!(run.roll_back(now));
        assert_eq!((run.state, run.next_step()), (RunState::RollingBack, None));
        assert_eq!(run.next_undo(), Some(1), "the failed step first");
        run.end_undo(1, Err(Failure::Retryable("busy".into())), now);
        assert_eq!(run.next_undo(), Some(1));
        assert_eq!(run.not_before, now + chrono::Duration::seconds(1));
        run.end_undo(1, Ok(()), now);
        assert_eq!(run.next_undo(), Some(0));
        run.end_undo(0, Ok(()), now);
        assert_eq!((run.state, run.next_undo()), (RunState::RolledBack, None));
        let states: Vec<_> = run.steps.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                StepState::RolledBack,
                StepState::RolledBack,
                StepState::Pending,
                StepState::Pending,
                StepState::Pending
            ],
            "a step that never ran stays as it was"
        );
    }

    #[test]
    fn a_step_that_never_ran_is_not_undone() {
        let (mut run, now) = run();
        run.start_step(0, now);
        run.end_step(
            0,
            Err(Failure::Permanent("refused".into())),
            now,
            MAX_ATTEMPTS,
        );
        assert!(run.roll_back(now));
        assert_eq!(run.next_undo(), Some(0));
        run.end_undo(0, Err(Failure::Permanent("still refused".into())), now);
        assert_eq!(run.state, RunState::Failed);
        assert_eq!(run.steps[0].error, "undoing: still refused");
        assert_eq!(run.steps[1].state, StepState::Pending);
    }

    #[test]
    fn a_reconcile_applies_storage_and_budget_reports_nothing_and_is_not_rolled_back() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let mut run = Run::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "r".into(),
            RunKind::Reconcile,
            now,
        );
        let names: Vec<_> = run.steps.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                StepName::StorageNamespace,
                StepName::Archive,
                StepName::Budget
            ]
        );
        run.start_step(0, now);
        run.end_step(0, Err(Failure::Permanent("refused".into())), now, 8);
        assert_eq!((run.state, run.to_report()), (RunState::Failed, None));
        assert!(!run.roll_back(now), "retried, never rolled back");
        assert!(run.retry(now));
        assert_eq!(run.to_report(), None);
    }

    #[test]
    fn names_round_trip() {
        for state in [
            RunState::Pending,
            RunState::RolledBack,
            RunState::RollingBack,
        ] {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
        for state in [StepState::Running, StepState::RolledBack] {
            assert_eq!(StepState::parse(state.as_str()), Some(state));
        }
        for name in ONBOARDING {
            assert_eq!(StepName::parse(name.as_str()), Some(*name));
        }
        for kind in [RunKind::Onboard, RunKind::Reconcile] {
            assert_eq!(RunKind::parse(kind.as_str()), Some(kind));
        }
        let (run, _) = run();
        assert_eq!(run.step_key(1), format!("{}/archive", run.id));
    }
}
