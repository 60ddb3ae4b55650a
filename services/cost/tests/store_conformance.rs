//! The conformance suite of `CostStore`: the same assertions against PostgreSQL and SQLite.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_cost::{
    domain::{meter::Meter, price_book::PriceBook, report::Usage},
    store::{self, CostStore, KeyedUsage, Recorded},
};
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn CostStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn CostStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrations are idempotent");
    store
}

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, hour, minute, 0)
        .unwrap()
}

fn record(
    key: &str,
    tenant: Uuid,
    meter: Meter,
    start: DateTime<Utc>,
    minutes: i64,
    quantity: f64,
) -> KeyedUsage {
    KeyedUsage {
        idempotency_key: key.to_owned(),
        usage: Usage {
            tenant,
            meter,
            start,
            end: start + Duration::minutes(minutes),
            quantity,
        },
    }
}

async fn usage_counts_once_per_key(store: Arc<dyn CostStore>) {
    let tenant = Uuid::now_v7();
    let records = [
        record("a", tenant, Meter::ApiRequests, at(4, 10, 0), 10, 100.0),
        record("b", tenant, Meter::ApiRequests, at(4, 10, 10), 10, 50.0),
    ];
    let now = at(4, 11, 0);
    assert_eq!(
        store.record_usage(&records, now).await.unwrap(),
        Recorded {
            recorded: 2,
            duplicates: 0
        }
    );
    // A retried flush, and one that repeats a record among new ones.
    assert_eq!(
        store.record_usage(&records, now).await.unwrap(),
        Recorded {
            recorded: 0,
            duplicates: 2
        }
    );
    let c = record("c", tenant, Meter::ApiRequests, at(4, 10, 20), 10, 1.0);
    assert_eq!(
        store
            .record_usage(&[records[0].clone(), c], now)
            .await
            .unwrap(),
        Recorded {
            recorded: 1,
            duplicates: 1
        }
    );
    // Two writers flushing the same records at once: each counted once between them.
    let same: Vec<KeyedUsage> = (0..20)
        .map(|i| {
            record(
                &format!("d{i}"),
                tenant,
                Meter::ApiRequests,
                at(4, 10, 30),
                1,
                1.0,
            )
        })
        .collect();
    let (one, two) = tokio::join!(
        store.record_usage(&same, now),
        store.record_usage(&same, now)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.recorded + two.recorded, 20);
    assert_eq!(one.duplicates + two.duplicates, 20);
    let hours = store
        .usage(Some(tenant), at(4, 0, 0), at(5, 0, 0))
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].quantity, 171.0, "100 + 50 + 1 + 20");
}

async fn forgotten_keys_count_again(store: Arc<dyn CostStore>) {
    let tenant = Uuid::now_v7();
    let sent = [record(
        "k",
        tenant,
        Meter::ApiRequests,
        at(4, 10, 0),
        1,
        1.0,
    )];
    store.record_usage(&sent, at(4, 10, 5)).await.unwrap();
    assert_eq!(
        store.forget_keys(at(4, 10, 5)).await.unwrap(),
        0,
        "not before"
    );
    assert_eq!(
        store
            .record_usage(&sent, at(4, 10, 6))
            .await
            .unwrap()
            .duplicates,
        1
    );
    assert_eq!(store.forget_keys(at(5, 10, 0)).await.unwrap(), 1);
    assert_eq!(
        store
            .record_usage(&sent, at(5, 10, 1))
            .await
            .unwrap()
            .recorded,
        1
    );
    let hours = store
        .usage(Some(tenant), at(4, 0, 0), at(5, 0, 0))
        .await
        .unwrap();
    assert_eq!(hours[0].quantity, 2.0);
}

async fn usage_is_read_back_by_hour_and_tenant(store: Arc<dyn CostStore>) {
    let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
    let records = [
        // 90 minutes from 10:30: 100 requests in the 10:00 hour, 200 in the 11:00 hour.
        record(
            "acme-api",
            acme,
            Meter::ApiRequests,
            at(4, 10, 30),
            90,
            300.0,
        ),
        // A GB held from 10:30 to 12:00: half an hour in the first hour, a whole one after.
        record("acme-hot", acme, Meter::HotStorage, at(4, 10, 30), 90, 1e9),
        record(
            "globex-api",
            globex,
            Meter::ApiRequests,
            at(4, 10, 0),
            60,
            7.0,
        ),
    ];
    store.record_usage(&records, at(4, 12, 0)).await.unwrap();
    let acme_hours = store
        .usage(Some(acme), at(4, 0, 0), at(5, 0, 0))
        .await
        .unwrap();
    let seen: Vec<(DateTime<Utc>, Meter, f64)> = acme_hours
        .iter()
        .map(|u| (u.start, u.meter, u.quantity))
        .collect();
    assert_eq!(
        seen,
        [
            (at(4, 10, 0), Meter::ApiRequests, 100.0),
            (at(4, 10, 0), Meter::HotStorage, 0.5e9),
            (at(4, 11, 0), Meter::ApiRequests, 200.0),
            (at(4, 11, 0), Meter::HotStorage, 1e9),
        ]
    );
    assert!(
        acme_hours
            .iter()
            .all(|u| u.tenant == acme && u.end == u.start + Duration::hours(1))
    );
    // Hours that start in the range only; every tenant without one.
    assert_eq!(
        store
            .usage(Some(acme), at(4, 11, 0), at(4, 12, 0))
            .await
            .unwrap()
            .len(),
        2
    );
    let all = store.usage(None, at(4, 0, 0), at(5, 0, 0)).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().filter(|u| u.tenant == globex).count(), 1);
}

async fn prices_are_kept_with_the_moment_they_came_into_force(store: Arc<dyn CostStore>) {
    let history = store.price_history().await.unwrap();
    assert_eq!(
        history.at(at(4, 0, 0)),
        &PriceBook::default(),
        "the default before any change"
    );
    let dearer = PriceBook {
        shared_monthly_usd: 1_234.5,
        ..PriceBook::default()
    };
    store.change_prices(at(10, 12, 0), &dearer).await.unwrap();
    let history = store.price_history().await.unwrap();
    assert_eq!(history.at(at(10, 11, 59)), &PriceBook::default());
    assert_eq!(history.at(at(10, 12, 0)), &dearer);
    assert_eq!(history.at(at(20, 0, 0)), &dearer);
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        usage_counts_once_per_key,
        forgotten_keys_count_again,
        usage_is_read_back_by_hour_and_tenant,
        prices_are_kept_with_the_moment_they_came_into_force,
    ],
);
