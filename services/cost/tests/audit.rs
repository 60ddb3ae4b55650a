//! The cost service's audit records, on PostgreSQL and SQLite: a change of a budget or of the
//! price book is written with its record in its transaction, and the audit outbox, as the
//! service's migrations make it, passes the conformance suite of `mfg_common::audit`.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::{
    audit::{AuditOutbox, AuditRecord, OutboxTable},
    config::DatabaseArgs,
    db::{self, DbPool},
    testing::TestDatabase,
};
use mfg_cost::{domain::price_book::PriceBook, store};
use uuid::Uuid;

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, hour, minute, 0)
        .unwrap()
}

/// A change of a budget or of the price book is written with its audit record, in its
/// transaction: a change that lost to another writes none.
async fn changes_are_written_with_their_audit_records(pool: DbPool) {
    let store = store::open(pool.clone());
    let record = |tenant: Option<Uuid>, action: &str| AuditRecord {
        id: Uuid::now_v7(),
        tenant,
        actor: "operator".to_owned(),
        action: action.to_owned(),
        resource: "r".to_owned(),
        time: at(4, 10, 0),
        request_id: String::new(),
        trace_id: String::new(),
    };
    let acme = Uuid::now_v7();
    let limit_only = record(Some(acme), "budget.update");
    store
        .set_budget(acme, None, at(4, 10, 0), Some(&limit_only))
        .await
        .unwrap();
    assert_eq!(store.budget_thresholds(acme).await.unwrap(), None);
    let book = PriceBook::default();
    let changed = record(None, "price_book.update");
    let lost = record(None, "price_book.update");
    let first = store.change_prices(at(5, 0, 0), None, &book, Some(&changed));
    assert!(first.await.unwrap());
    let second = store.change_prices(at(5, 0, 1), None, &book, Some(&lost));
    assert!(!second.await.unwrap(), "replaces a book replaced before");

    let now = Utc::now();
    let claimed = AuditOutbox::new(pool, OutboxTable::COST)
        .claim(Uuid::now_v7(), now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed, [limit_only, changed]);
}

/// A database with the cost service's migrations applied.
async fn migrated(db: &TestDatabase) -> DbPool {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    store::open(pool.clone()).migrate().await.expect("migrate");
    pool
}

/// The audit outbox, as the cost service's migrations make it.
async fn audit_outbox_conforms(pool: DbPool) {
    mfg_common::audit::conformance::audit_outbox_conforms(pool, OutboxTable::COST).await;
}

mfg_common::on_each_backend!(
    [
        postgres => migrated(&TestDatabase::postgres().await).await,
        sqlite => migrated(&TestDatabase::sqlite()).await,
    ],
    [changes_are_written_with_their_audit_records, audit_outbox_conforms],
);
