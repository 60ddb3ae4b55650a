//! The settled buckets kept in memory sum what the ledger sums, and late usage, recorded by
//! this process or another, is never summed stale: on both backends.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_cost::{
    costing::FRESH,
    domain::{meter::Meter, report::Usage},
    settled::SettledBuckets,
    store::{self, CostStore, KeyedUsage, Summed},
};
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn CostStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn CostStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

fn hour_of(
    tenant: Uuid,
    meter: Meter,
    start: DateTime<Utc>,
    quantity: f64,
    key: &str,
) -> KeyedUsage {
    KeyedUsage {
        idempotency_key: key.to_owned(),
        usage: Usage {
            tenant,
            meter,
            start,
            end: start + Duration::hours(1),
            quantity,
        },
    }
}

fn sorted(mut sums: Vec<Summed>) -> Vec<(Uuid, Meter, i64)> {
    sums.sort_by_key(|s| (s.tenant, s.meter));
    sums.into_iter()
        .map(|s| (s.tenant, s.meter, (s.amount * 1e6).round() as i64))
        .collect()
}

async fn settled_sums_agree_with_the_ledger(store: Arc<dyn CostStore>) {
    let tenants = [Uuid::now_v7(), Uuid::now_v7()];
    // Every hour of November 1 to December 3, 10:00: requests, and a level of hot storage.
    let mut records = Vec::new();
    let mut start = at(1, 0);
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    while start < now - Duration::hours(1) {
        for (i, tenant) in tenants.iter().enumerate() {
            let n = start.timestamp() / 3600 + i as i64;
            records.push(hour_of(
                *tenant,
                Meter::ApiRequests,
                start,
                (n % 7) as f64,
                &format!("{tenant}/{start}/r"),
            ));
            records.push(hour_of(
                *tenant,
                Meter::HotStorage,
                start,
                1e9,
                &format!("{tenant}/{start}/h"),
            ));
        }
        start += Duration::hours(1);
    }
    for chunk in records.chunks(5_000) {
        store.record_usage(chunk, now).await.unwrap();
    }
    let (kept, other) = (SettledBuckets::default(), SettledBuckets::default());
    let windows = [
        (now - Duration::days(30), None),
        (at(4, 17), Some(at(29, 5))),
        (at(1, 0), None),
        (now - Duration::days(30) + Duration::hours(1), None),
    ];
    for (start, end) in windows {
        for _ in 0..2 {
            assert_eq!(
                sorted(
                    kept.sums(store.as_ref(), start, end, now)
                        .await
                        .unwrap()
                        .sums
                ),
                sorted(store.sums(None, start, end).await.unwrap()),
                "{start} to {end:?}"
            );
        }
    }

    // Another process backfills an hour that had settled: both see it at once.
    let late = hour_of(tenants[0], Meter::ApiRequests, at(10, 3), 1_000.0, "late");
    store.record_usage(&[late], now).await.unwrap();
    for buckets in [&kept, &other] {
        let window = (now - Duration::days(30), None);
        assert_eq!(
            sorted(
                buckets
                    .sums(store.as_ref(), window.0, window.1, now)
                    .await
                    .unwrap()
                    .sums
            ),
            sorted(store.sums(None, window.0, window.1).await.unwrap()),
        );
    }
}

/// The open tail (the month so far) is kept [`FRESH`] and says when it was read; read again
/// ahead of time, it holds what was recorded since.
async fn the_open_tail_is_read_again_ahead_of_time(store: Arc<dyn CostStore>) {
    let tenant = Uuid::now_v7();
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    let month = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let hour = |h: i64, quantity: f64| {
        let start = month + Duration::hours(h);
        hour_of(tenant, Meter::ApiRequests, start, quantity, &format!("{h}"))
    };
    store.record_usage(&[hour(0, 5.0)], now).await.unwrap();
    let buckets = SettledBuckets::default();
    let read = buckets
        .sums(store.as_ref(), month, None, now)
        .await
        .unwrap();
    assert_eq!(
        (sorted(read.sums), read.as_of),
        (vec![(tenant, Meter::ApiRequests, 5_000_000)], now)
    );

    // Usage from 10:00, recorded on time: the ledger's version stays.
    let on_time = month + Duration::hours(58) + Duration::minutes(10);
    store.record_usage(&[hour(58, 2.0)], on_time).await.unwrap();
    let later = now + Duration::seconds(4);
    let kept = buckets
        .sums(store.as_ref(), month, None, later)
        .await
        .unwrap();
    assert_eq!(kept.as_of, now, "the tail read at {now} is kept {FRESH:?}");
    assert_eq!(sorted(kept.sums)[0].2, 5_000_000);

    let not_due = now + Duration::seconds(2);
    buckets
        .refresh_open(store.as_ref(), not_due, Duration::seconds(3))
        .await
        .unwrap();
    let kept = buckets
        .sums(store.as_ref(), month, None, later)
        .await
        .unwrap();
    assert_eq!(
        kept.as_of, now,
        "a tail read 2 s before is not due 3 s ahead"
    );

    let due = now + Duration::seconds(3);
    buckets
        .refresh_open(store.as_ref(), due, Duration::seconds(3))
        .await
        .unwrap();
    let fresh = buckets
        .sums(store.as_ref(), month, None, later)
        .await
        .unwrap();
    assert_eq!(fresh.as_of, due);
    assert_eq!(sorted(fresh.sums)[0].2, 7_000_000);
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        settled_sums_agree_with_the_ledger,
        the_open_tail_is_read_again_ahead_of_time
    ],
);
