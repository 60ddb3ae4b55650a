//! The storage service's audit records, on PostgreSQL and SQLite: a change of rules or alerts
//! made by hand is written with its record in its transaction, and the audit outbox, as the
//! service's migrations make it, passes the conformance suite of `mfg_common::audit`.

mod support;

use mfg_common::{
    audit::{AuditOutbox, AuditRecord, OutboxTable},
    config::DatabaseArgs,
    db::{self, DbPool},
    testing::TestDatabase,
};
use mfg_storage::{
    alerting::{domain::alert::Alert, store::AlertWrite},
    error::StorageError,
    micros::Micros,
    store,
};
use support::alerts::stored_rule;
use uuid::Uuid;

/// A change of rules or alerts made by hand is written with its audit record, in its
/// transaction: a change refused or of nothing writes none.
async fn changes_are_written_with_their_audit_records(pool: DbPool) {
    let store = store::open_alerts(pool.clone());
    let outbox = AuditOutbox::new(pool, OutboxTable::STORAGE);
    let tenant = Uuid::now_v7();
    let at = Micros(1_795_478_400_123_456);
    let record = |action: &str| AuditRecord {
        id: Uuid::now_v7(),
        tenant: Some(tenant),
        actor: "key:k".to_owned(),
        action: action.to_owned(),
        resource: format!("tenants/{tenant}/alert-rules/r"),
        time: chrono::Utc::now(),
        request_id: "req".to_owned(),
        trace_id: String::new(),
    };
    let claim = || async {
        let now = chrono::Utc::now();
        let claimed = outbox
            .claim(Uuid::now_v7(), now, now + chrono::Duration::seconds(60), 10)
            .await
            .unwrap();
        claimed.into_iter().map(|r| r.action).collect::<Vec<_>>()
    };

    let rule = stored_rule(tenant, "temp", at);
    let created = record("alert_rule.create");
    store.insert_rule(&rule, 10, Some(&created)).await.unwrap();
    let (twice, refused, none) = (
        record("alert_rule.create"),
        record("alert_rule.update"),
        record("alert_rule.delete"),
    );
    let again = store.insert_rule(&rule, 10, Some(&twice)).await;
    assert!(
        matches!(again, Err(StorageError::RuleExists(_))),
        "{again:?}"
    );
    let no = |_| Err(StorageError::invalid("rule", "no"));
    let changed = store.update_rule(tenant, rule.rule_id, &no, Some(&refused));
    assert!(changed.await.is_err());
    let other = Uuid::now_v7();
    let deleted = store.delete_rule(other, rule.rule_id, Some(&none)).await;
    assert!(!deleted.unwrap());
    assert_eq!(claim().await, ["alert_rule.create"], "only what was done");

    store
        .update_rule(
            tenant,
            rule.rule_id,
            &|r| Ok(r),
            Some(&record("alert_rule.update")),
        )
        .await
        .unwrap();
    let mut alert = Alert::open(&rule, "press-1", 81.5, at);
    alert.acknowledge("key:k", at + 1);
    let acknowledged = AlertWrite {
        alerts: vec![alert],
        audit: vec![record("alert.acknowledge")],
        ..AlertWrite::default()
    };
    store.write_alerts(&acknowledged).await.unwrap();
    let retried = AlertWrite {
        retried: true,
        ..acknowledged.clone()
    };
    store.write_alerts(&retried).await.unwrap();
    assert!(
        store
            .delete_rule(tenant, rule.rule_id, Some(&record("alert_rule.delete")))
            .await
            .unwrap()
    );
    assert_eq!(
        claim().await,
        [
            "alert_rule.update",
            "alert.acknowledge",
            "alert_rule.delete"
        ],
        "each once, a retried write's included"
    );
}

/// A database with the storage service's migrations applied.
async fn migrated(db: &TestDatabase) -> DbPool {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    store::open(pool.clone()).migrate().await.expect("migrate");
    pool
}

/// The audit outbox, as the storage service's migrations make it.
async fn audit_outbox_conforms(pool: DbPool) {
    mfg_common::audit::conformance::audit_outbox_conforms(pool, OutboxTable::STORAGE).await;
}

mfg_common::on_each_backend!(
    [
        postgres => migrated(&TestDatabase::postgres().await).await,
        sqlite => migrated(&TestDatabase::sqlite()).await,
    ],
    [changes_are_written_with_their_audit_records, audit_outbox_conforms],
);
