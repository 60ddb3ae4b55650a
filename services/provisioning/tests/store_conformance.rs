//! The provisioning store behaves the same on both backends: a run starts once per request id,
//! is listed newest first, and is worked by one owner at a time under a lease that a dead
//! owner loses, and whose writes it can no longer make. The onboarding template is kept whole,
//! and a change of it replaces only the one it was made from.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_proto::storage::v1::AlertRule;
use mfg_provisioning::{
    domain::{
        audit::{AuditEvent, AuditFilter},
        run::{Failure, Run, RunKind, RunState},
        template::Template,
    },
    store::{self, ProvisioningStore},
};
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn ProvisioningStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn ProvisioningStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn new_run(tenant: Uuid, request_id: &str, at: DateTime<Utc>) -> Run {
    Run::new(
        Uuid::now_v7(),
        tenant,
        request_id.to_owned(),
        RunKind::Onboard,
        at,
    )
}

async fn a_request_id_starts_one_run(store: Arc<dyn ProvisioningStore>) {
    let tenant = Uuid::now_v7();
    let first = new_run(tenant, &format!("{tenant}/a"), t0());
    let stored = store.start(&first, None).await.unwrap();
    assert_eq!(stored, first, "stored as given");
    let again = new_run(tenant, &format!("{tenant}/a"), t0() + Duration::seconds(1));
    assert_eq!(
        store.start(&again, None).await.unwrap(),
        first,
        "the first run"
    );
    assert_eq!(
        store.run(tenant, first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.run(Uuid::now_v7(), first.id).await.unwrap(), None);
    assert_eq!(store.run(tenant, again.id).await.unwrap(), None);
}

async fn runs_are_listed_newest_first_by_page(store: Arc<dyn ProvisioningStore>) {
    let tenant = Uuid::now_v7();
    let mut ids = Vec::new();
    for n in 0..5 {
        let run = new_run(tenant, &format!("{tenant}/{n}"), t0());
        ids.push(store.start(&run, None).await.unwrap().id);
    }
    ids.reverse();
    let page = store.runs(tenant, 2, None).await.unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), ids[..2]);
    let next = store.runs(tenant, 10, Some(ids[1])).await.unwrap();
    assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), ids[2..]);
    assert!(
        store
            .runs(Uuid::now_v7(), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_run_is_worked_by_one_owner_at_a_time(store: Arc<dyn ProvisioningStore>) {
    // Each test database is its own: the only runs to claim are this test's.
    let tenant = Uuid::now_v7();
    let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
    let lease = Duration::seconds(30);
    let started = store
        .start(&new_run(tenant, "lease", t0()), None)
        .await
        .unwrap();

    let mut run = store.claim(one, t0(), t0() + lease).await.unwrap().unwrap();
    assert_eq!(run.id, started.id);
    assert!(
        store
            .claim(two, t0(), t0() + lease)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );

    // The owner stores the first step's start, then dies mid-step.
    run.start_step(0, t0());
    assert!(store.save(&run, one, t0() + lease).await.unwrap());

    // Its lease runs out: the other owner takes the run over where it was.
    let later = t0() + lease + Duration::seconds(1);
    let mut taken = store
        .claim(two, later, later + lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.next_step(), Some(0));
    assert_eq!(taken.steps[0].attempts, 1);
    assert!(
        !store.save(&run, one, later + lease).await.unwrap(),
        "fenced"
    );

    // A retryable failure waits for its backoff before the run is claimed again.
    taken.start_step(0, later);
    taken.end_step(0, Err(Failure::Retryable("unavailable".into())), later, 8);
    assert!(store.save(&taken, two, later + lease).await.unwrap());
    store.release(taken.id, two).await.unwrap();
    assert!(
        store
            .claim(one, later, later + lease)
            .await
            .unwrap()
            .is_none()
    );
    let due = taken.not_before;
    let again = store.claim(one, due, due + lease).await.unwrap().unwrap();
    assert_eq!(again, taken, "everything stored came back");
}

async fn a_failed_run_is_resumed_only_as_it_was_read(store: Arc<dyn ProvisioningStore>) {
    let tenant = Uuid::now_v7();
    let owner = Uuid::now_v7();
    let lease = Duration::seconds(30);
    store
        .start(&new_run(tenant, "fail", t0()), None)
        .await
        .unwrap();
    let mut run = store
        .claim(owner, t0(), t0() + lease)
        .await
        .unwrap()
        .unwrap();
    run.start_step(0, t0());
    run.end_step(0, Err(Failure::Permanent("refused".into())), t0(), 8);
    assert!(store.save(&run, owner, t0() + lease).await.unwrap());
    assert!(
        store
            .claim(owner, t0(), t0() + lease)
            .await
            .unwrap()
            .is_none(),
        "a failed run has no work until it is retried"
    );
    store.release(run.id, owner).await.unwrap();

    let mut retried = store.run(tenant, run.id).await.unwrap().unwrap();
    assert_eq!(retried.state, RunState::Failed);
    assert!(retried.retry(t0()));
    assert!(
        store
            .update_unleased(&retried, RunState::Failed, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_unleased(&retried, RunState::Failed, None)
            .await
            .unwrap(),
        "a second retry of the same read changes nothing"
    );
    let claimed = store
        .claim(owner, t0(), t0() + lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.next_step(), Some(0));
}

async fn a_template_change_replaces_the_one_it_was_made_from(store: Arc<dyn ProvisioningStore>) {
    assert_eq!(store.template().await.unwrap(), Template::default());
    let rule = |metric: &str| AlertRule {
        metric: metric.to_owned(),
        ..Default::default()
    };
    let first = Template {
        shared: vec![rule("a"), rule("b")],
        dedicated: vec![rule("c")],
        update_time: None,
    };
    assert!(store.set_template(&first, None, t0(), None).await.unwrap());
    assert!(
        !store.set_template(&first, None, t0(), None).await.unwrap(),
        "a second first template, made from none, lost the race"
    );
    let kept = store.template().await.unwrap();
    assert_eq!(
        kept,
        Template {
            update_time: Some(t0()),
            ..first.clone()
        }
    );

    let later = t0() + Duration::seconds(1);
    let second = Template {
        dedicated: Vec::new(),
        ..first.clone()
    };
    assert!(
        store
            .set_template(&second, Some(t0()), later, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_template(&first, Some(t0()), later, None)
            .await
            .unwrap(),
        "a change made from the first template lost the race"
    );
    assert_eq!(store.template().await.unwrap().dedicated, Vec::new());
}

/// Each change a client asks for appends its audit event in its transaction: a run started
/// once under its request id, a retry of the run as it was read, a template change that came
/// first; the changes that did nothing append none.
async fn changes_append_their_audit_events(store: Arc<dyn ProvisioningStore>) {
    let tenant = Uuid::now_v7();
    let event = |action: &str| AuditEvent {
        id: Uuid::now_v7(),
        tenant: Some(tenant),
        actor: "operator".to_owned(),
        action: action.to_owned(),
        resource: format!("tenants/{tenant}"),
        time: t0(),
        request_id: String::new(),
        trace_id: String::new(),
        service: "provisioning".to_owned(),
    };
    let (started, again) = (
        event("provisioning_run.start"),
        event("provisioning_run.start"),
    );
    let run = new_run(tenant, &format!("{tenant}/audited"), t0());
    store.start(&run, Some(&started)).await.unwrap();
    let repeat = new_run(tenant, &format!("{tenant}/audited"), t0());
    store.start(&repeat, Some(&again)).await.unwrap();
    let (retried, stale) = (
        event("provisioning_run.retry"),
        event("provisioning_run.retry"),
    );
    let mut changed = run.clone();
    changed.update_time += Duration::seconds(1);
    let was = RunState::Pending;
    assert!(
        store
            .update_unleased(&changed, was, Some(&retried))
            .await
            .unwrap()
    );
    let lost = store.update_unleased(&changed, RunState::Failed, Some(&stale));
    assert!(!lost.await.unwrap(), "not in the state it was read in");
    let (first, second) = (
        event("onboarding_template.update"),
        event("onboarding_template.update"),
    );
    let template = Template::default();
    assert!(
        store
            .set_template(&template, None, t0(), Some(&first))
            .await
            .unwrap()
    );
    let late = store.set_template(&template, None, t0(), Some(&second));
    assert!(!late.await.unwrap(), "another change came first");

    let filter = AuditFilter {
        tenant: Some(tenant),
        ..AuditFilter::default()
    };
    let mut events = store.audit_events(&filter, None, 10).await.unwrap();
    events.reverse();
    assert_eq!(events, [started, retried, first]);
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        a_request_id_starts_one_run,
        runs_are_listed_newest_first_by_page,
        a_run_is_worked_by_one_owner_at_a_time,
        a_failed_run_is_resumed_only_as_it_was_read,
        a_template_change_replaces_the_one_it_was_made_from,
        changes_append_their_audit_events,
    ],
);
