//! The rules of the workflow, step by step, on a fixed clock.

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

#[test]
fn a_step_not_yet_due_waits_without_spending_an_attempt() {
    let (_, now) = run();
    let mut run = Run::new(
        Uuid::now_v7(),
        Uuid::now_v7(),
        "r".into(),
        RunKind::Offboard,
        now,
    );
    assert!(run.reported, "an offboarding is told to no one");
    run.start_step(0, now);
    run.end_step(0, Ok(()), now, 1);
    let due = now + chrono::Duration::days(7);
    run.start_step(1, now);
    run.end_step(1, Err(Failure::NotUntil(due, "kept".into())), now, 1);
    assert_eq!((run.state, run.not_before), (RunState::Running, due));
    assert_eq!(
        (run.steps[1].state, run.steps[1].attempts),
        (StepState::Pending, 0)
    );
    assert_eq!(run.steps[1].error, "kept");
    assert_eq!(run.next_step(), Some(1));
    run.start_step(1, due);
    run.end_step(1, Ok(()), due, 1);
    run.start_step(2, due);
    run.end_step(2, Err(Failure::Permanent("refused".into())), due, 1);
    assert_eq!(run.state, RunState::Failed);
    assert!(!run.roll_back(due), "an offboarding is never rolled back");
    assert!(run.retry(due));
}
