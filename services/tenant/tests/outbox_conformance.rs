//! The conformance suite of the tenant store's outboxes, on PostgreSQL and SQLite: the
//! hand-offs to the provisioning service and the audit records (the suite that
//! `mfg_common::audit` gives every service), each claimed by one relay at a time under a lease,
//! and forgotten once sent and old.

mod store_support;

use std::sync::Arc;

use chrono::{Duration, Utc};
use mfg_common::{
    audit::{AuditOutbox, AuditRecord, OutboxTable},
    config::DatabaseArgs,
    db::{self, DbPool},
    testing::TestDatabase,
};
use mfg_tenant::{
    domain::{Offboarding, Tenant, TenantState, timestamp},
    store::{self, HandoffKind, TenantStore},
};
use store_support::{open, tenant};

/// A tenant being onboarded is written with its outbox row; the row is claimed by one relay
/// at a time, claimed again once its lease ran out, and gone once sent, the tenant recording
/// the run that took it.
async fn a_tenant_being_onboarded_is_handed_off_once(store: Arc<dyn TenantStore>) {
    let mut acme = tenant("acme", 5);
    acme.onboarding = mfg_tenant::domain::Onboarding::pending();
    store.insert_tenant(&acme, None).await.unwrap();
    store.insert_tenant(&tenant("done", 5), None).await.unwrap();
    let (one, two) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let now = Utc::now();
    let lease = Duration::seconds(2);

    let claimed = store
        .claim_handoffs(one, now, now + lease, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "only the tenant being onboarded: {claimed:?}"
    );
    assert_eq!(claimed[0].request_id, format!("onboard/{}", acme.id));
    assert_eq!((claimed[0].tenant, claimed[0].attempts), (acme.id, 1));
    assert!(
        store
            .claim_handoffs(two, now, now + lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The relay died: the row is taken over after its lease.
    let later = now + lease + Duration::milliseconds(1);
    let again = store
        .claim_handoffs(two, later, later + lease, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    store.handoff_sent(&again[0], "run-1", later).await.unwrap();
    let much_later = later + Duration::hours(1);
    let none = store
        .claim_handoffs(one, much_later, much_later + lease, 10)
        .await
        .unwrap();
    assert!(none.is_empty(), "sent: {none:?}");
    let stored = store.get_tenant(acme.id).await.unwrap().unwrap();
    assert_eq!(stored.onboarding.run_id, "run-1");
    assert_eq!(
        stored.onboarding.status,
        mfg_tenant::domain::OnboardingStatus::Provisioning
    );

    // Once handed off, a change of its budget is handed off too, as a reconcile, in the
    // change's transaction; a change of anything else is not.
    let rename = |mut t: Tenant| {
        t.display_name = "ACME".to_owned();
        Ok(t)
    };
    store.update_tenant(acme.id, &rename, None).await.unwrap();
    let at = much_later + Duration::seconds(1);
    let budget = move |mut t: Tenant| {
        t.monthly_budget_usd = 2_900.0;
        t.update_time = at;
        Ok(t)
    };
    store.update_tenant(acme.id, &budget, None).await.unwrap();
    let claimed = store
        .claim_handoffs(one, much_later, much_later + lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].kind, HandoffKind::Reconcile, "{claimed:?}");
    assert_eq!(
        claimed[0].request_id,
        format!("reconcile/{}/{}", acme.id, at.timestamp_micros())
    );
    store
        .handoff_sent(&claimed[0], "run-2", much_later)
        .await
        .unwrap();
    let stored = store.get_tenant(acme.id).await.unwrap().unwrap();
    assert_eq!(
        stored.onboarding.run_id, "run-1",
        "the onboarding's run stays"
    );

    // Its deletion is handed off, as an offboarding with how to delete, once: deleting it
    // again changes nothing. A tenant never handed off is deleted without one.
    let options = Offboarding {
        force: true,
        purge_archive: false,
    };
    let gone = timestamp(at.into());
    let deleted = store
        .delete_tenant(acme.id, gone, options, None)
        .await
        .unwrap();
    assert_eq!(
        (deleted.state, deleted.delete_time),
        (TenantState::Deleted, Some(gone))
    );
    let again = store
        .delete_tenant(acme.id, gone + Duration::seconds(1), options, None)
        .await;
    assert_eq!(again.unwrap().delete_time, Some(gone), "deleted once");
    let done = store.list_tenants(None, 10, false).await.unwrap();
    store
        .delete_tenant(done[0].id, gone, options, None)
        .await
        .unwrap();
    let claimed = store
        .claim_handoffs(one, much_later, much_later + lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        claimed[0].kind,
        HandoffKind::Offboard(options),
        "{claimed:?}"
    );
    assert_eq!(claimed[0].request_id, format!("offboard/{}", acme.id));
    store
        .handoff_sent(&claimed[0], "run-3", much_later)
        .await
        .unwrap();

    // Sent rows are forgotten once old enough: the three sent, and no other.
    assert_eq!(store.forget_sent_handoffs(later).await.unwrap(), 0);
    let after = much_later + Duration::milliseconds(1);
    assert_eq!(store.forget_sent_handoffs(after).await.unwrap(), 3);
}

/// Each change is written with its audit record, in its transaction: a change refused, or
/// of nothing (a tenant deleted again, a machine that is not there), writes none.
async fn changes_are_written_with_their_audit_records(pool: DbPool) {
    let store = store::open(pool.clone());
    let acme = tenant("acme", 5);
    let record = |action: &str| AuditRecord {
        id: uuid::Uuid::now_v7(),
        tenant: Some(acme.id.0),
        actor: "operator".to_owned(),
        action: action.to_owned(),
        resource: format!("tenants/{}", acme.id),
        time: timestamp(std::time::SystemTime::now()),
        request_id: "req".to_owned(),
        trace_id: String::new(),
    };
    let created = record("tenant.create");
    store.insert_tenant(&acme, Some(&created)).await.unwrap();
    let mut taken = tenant("acme", 5);
    taken.id = mfg_tenant::domain::TenantId::generate();
    let refused = record("tenant.create");
    let refused = store.insert_tenant(&taken, Some(&refused)).await;
    assert!(refused.is_err(), "the name is taken");
    let machine = mfg_tenant::domain::Machine {
        machine_id: "press-1".parse().unwrap(),
        tenant_id: acme.id,
        display_name: "press".to_owned(),
        labels: Default::default(),
        create_time: acme.create_time,
        update_time: acme.create_time,
    };
    let registered = record("machine.create");
    let absent = record("machine.delete");
    store
        .insert_machine(&machine, Some(&registered))
        .await
        .unwrap();
    let press_2 = "press-2".parse().unwrap();
    let deleted = store.delete_machine(acme.id, &press_2, Some(&absent));
    assert!(!deleted.await.unwrap());
    let at = acme.create_time;
    let offboarding = Offboarding::default();
    let gone = record("tenant.delete");
    store
        .delete_tenant(acme.id, at, offboarding, Some(&gone))
        .await
        .unwrap();
    let again = record("tenant.delete");
    store
        .delete_tenant(acme.id, at, offboarding, Some(&again))
        .await
        .unwrap();

    let now = Utc::now();
    let claimed = AuditOutbox::new(pool, OutboxTable::TENANT)
        .claim(uuid::Uuid::now_v7(), now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed, [created, registered, gone]);
}

/// A database with the tenant service's migrations applied.
async fn migrated(db: &TestDatabase) -> DbPool {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    store::open(pool.clone()).migrate().await.expect("migrate");
    pool
}

/// The audit outbox, as the tenant service's migrations make it.
async fn audit_outbox_conforms(pool: DbPool) {
    mfg_common::audit::conformance::audit_outbox_conforms(pool, OutboxTable::TENANT).await;
}

/// The audit tests, on a database of each backend, beside the outboxes' suite below.
mod audited {
    use super::*;

    mfg_common::on_each_backend!(
        [
            postgres => migrated(&TestDatabase::postgres().await).await,
            sqlite => migrated(&TestDatabase::sqlite()).await,
        ],
        [changes_are_written_with_their_audit_records, audit_outbox_conforms],
    );
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        a_tenant_being_onboarded_is_handed_off_once,
    ],
);
