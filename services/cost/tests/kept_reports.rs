//! The summaries the cost service keeps: one that a client keeps asking for is costed again
//! before it is due, so that no request waits for it, and the ledger behind it is never older
//! than `FRESH`; one of a settled period is forgotten when another process records usage into
//! it late. On both backends.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::{clock::ManualClock, config::DatabaseArgs, db, grpc, testing::TestDatabase};
use mfg_cost::{
    costing::{Costed, Costing, Period},
    domain::{
        meter::Meter,
        report::{Plan, Usage},
    },
    store::{self, CostStore, KeyedUsage},
    tenants::{Directory, Tenant},
};
use mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient;
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn CostStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn CostStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store
}

/// A cost process over `store` that knows `tenants` (it never asks the tenant service).
fn costing(store: Arc<dyn CostStore>, tenants: &[Uuid]) -> Costing {
    let nowhere = grpc::lazy_channel("http://127.0.0.1:9").expect("a channel");
    let tenants = tenants
        .iter()
        .map(|&id| Tenant {
            id,
            plan: Plan::Shared,
            monthly_budget_usd: 0.0,
            hot_days: 7,
            api_requests_per_second: 100,
            created: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            deleted: None,
        })
        .collect();
    let directory = Directory::starting_with(TenantServiceClient::new(nowhere), tenants);
    Costing::new(store, Arc::new(directory), Arc::new(ManualClock::new()))
}

/// The month to date, asked for at `now`.
async fn month_to_date(costing: &Costing, now: DateTime<Utc>) -> Arc<Costed> {
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let period = Period {
        start,
        end: now,
        now,
    };
    costing.summary(period).await.expect("a summary")
}

async fn a_summary_asked_for_is_costed_ahead_of_time(store: Arc<dyn CostStore>) {
    let costing = costing(store, &[]);
    let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    let at = |seconds: f64| t0 + Duration::milliseconds((seconds * 1_000.0) as i64);

    let first = month_to_date(&costing, t0).await;
    assert_eq!(first.as_of, t0);
    let again = month_to_date(&costing, at(1.0)).await;
    assert!(Arc::ptr_eq(&first, &again), "reused within FRESH");

    costing.warm(at(2.0)).await.unwrap();
    assert_eq!(
        month_to_date(&costing, at(2.5)).await.as_of,
        t0,
        "not due yet"
    );

    costing.warm(at(3.5)).await.unwrap();
    let warmed = month_to_date(&costing, at(6.0)).await;
    assert_eq!(warmed.as_of, at(3.5), "costed again 2 s before it was due");
    assert_eq!(warmed.period.end, at(3.5));

    // Asked for last at 6 s: 20 s later it is no longer costed ahead of time, so the next
    // request costs it itself.
    costing.warm(at(26.5)).await.unwrap();
    let cold = month_to_date(&costing, at(27.0)).await;
    assert_eq!(
        cold.as_of,
        at(27.0),
        "a summary not asked for is left to expire"
    );

    // A summary that has gone stale is never served.
    let stale = month_to_date(&costing, at(33.0)).await;
    assert_eq!(stale.as_of, at(33.0));
}

/// A period asked for once (a client paging through periods) is not costed ahead of time: only
/// one that is asked for again.
async fn a_summary_asked_for_once_is_left_to_expire(store: Arc<dyn CostStore>) {
    let costing = costing(store, &[]);
    let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    let at = |seconds: i64| t0 + Duration::seconds(seconds);
    let once = month_to_date(&costing, t0).await;
    costing.warm(at(4)).await.unwrap();
    let later = month_to_date(&costing, at(6)).await;
    assert_eq!(
        later.as_of,
        at(6),
        "not costed ahead: costed when asked again"
    );
    costing.warm(at(9)).await.unwrap();
    let warmed = month_to_date(&costing, at(11)).await;
    assert_eq!(warmed.as_of, at(9), "asked twice, it is costed ahead");
    assert_ne!(once.as_of, warmed.as_of);
}

async fn late_usage_from_another_process_is_costed(store: Arc<dyn CostStore>) {
    let tenant = Uuid::now_v7();
    let (this, other) = (
        costing(store.clone(), &[tenant]),
        costing(store.clone(), &[tenant]),
    );
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    let november = Period {
        start: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        end: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        now,
    };
    let readings = |key: &str, start: DateTime<Utc>| KeyedUsage {
        idempotency_key: key.to_owned(),
        usage: Usage {
            tenant,
            meter: Meter::IngestedReadings,
            start,
            end: start + Duration::hours(1),
            quantity: 1e9,
        },
    };
    let direct = |costed: &Costed| costed.summary.tenants[0].direct;
    store
        .record_usage(&[readings("on time", november.start)], november.start)
        .await
        .unwrap();
    let before = direct(&this.summary(november).await.unwrap());
    assert!(before.0 > 0, "a billion readings cost something");
    assert_eq!(direct(&other.summary(november).await.unwrap()), before);

    // Another process records November's last hour two days late: this one's settled
    // November is then out of date.
    store
        .record_usage(&[readings("late", november.end - Duration::hours(1))], now)
        .await
        .unwrap();
    let after = direct(&this.summary(november).await.unwrap());
    let fresh = costing(store, &[tenant]);
    assert_eq!(after, direct(&fresh.summary(november).await.unwrap()));
    assert!(after > before, "{after:?} after {before:?}");
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        a_summary_asked_for_is_costed_ahead_of_time,
        a_summary_asked_for_once_is_left_to_expire,
        late_usage_from_another_process_is_costed
    ],
);
