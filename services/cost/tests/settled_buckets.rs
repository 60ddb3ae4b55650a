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
    // Every hour of November 1 to December 3, 09:00: requests, and a level of hot storage.
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    record_hours(store.as_ref(), &tenants, at(1, 0), now - Duration::hours(1)).await;
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
                    kept.sums(
                        store.as_ref(),
                        version(store.as_ref()).await,
                        start,
                        end,
                        now
                    )
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
                    .sums(
                        store.as_ref(),
                        version(store.as_ref()).await,
                        window.0,
                        window.1,
                        now
                    )
                    .await
                    .unwrap()
                    .sums
            ),
            sorted(store.sums(None, window.0, window.1).await.unwrap()),
        );
    }
}

/// Hourly usage of two tenants from `from` to `to`: requests, and a level of hot storage.
async fn record_hours(
    store: &dyn CostStore,
    tenants: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let mut records = Vec::new();
    let mut start = from;
    while start < to {
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
                1e9 + n as f64,
                &format!("{tenant}/{start}/h"),
            ));
        }
        start += Duration::hours(1);
    }
    for chunk in records.chunks(5_000) {
        store.record_usage(chunk, to).await.unwrap();
    }
}

/// Checks that the usage from `start` on, summed from `kept`, is what the ledger sums, and
/// returns how many buckets that read.
async fn sums_agree(
    kept: &SettledBuckets,
    store: &dyn CostStore,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> u64 {
    let read = kept.buckets_read();
    let sums = kept
        .sums(store, version(store).await, start, None, now)
        .await
        .unwrap()
        .sums;
    assert_eq!(
        sorted(sums),
        sorted(store.sums(None, start, None).await.unwrap()),
        "from {start}"
    );
    kept.buckets_read() - read
}

/// A period whose start slides an hour at a time (a rolling 30 days) reads one bucket more
/// each step, and two the hour after a midnight (the day before and its first hour): its first
/// day is the day's bucket less the hours before the start, where its own hours would be 23
/// hours never read. Its start sliding a day at a time across the first of a month reads the
/// month less its first days in the same way.
async fn a_sliding_start_reads_a_bucket_a_step(store: Arc<dyn CostStore>) {
    let tenants = [Uuid::now_v7(), Uuid::now_v7()];
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    let first = Utc.with_ymd_and_hms(2026, 10, 28, 0, 0, 0).unwrap();
    record_hours(store.as_ref(), &tenants, first, now - Duration::hours(1)).await;
    let kept = SettledBuckets::default();
    let steps = (0..36)
        .map(|hours| at(4, 20) + Duration::hours(hours))
        .chain((0..5).map(|days| first + Duration::days(days)));
    for (step, start) in steps.enumerate() {
        let read = sums_agree(&kept, store.as_ref(), start, now).await;
        let most = match step {
            0 | 36 => u64::MAX,
            _ => 2,
        };
        assert!(read <= most, "from {start}: {read} buckets read");
    }
}

/// Read ahead off the reports' path, the buckets a rolling period wants are kept before it
/// slides: an hour at a time through the day and the next, it reads none on its path.
async fn buckets_read_ahead_serve_a_sliding_start(store: Arc<dyn CostStore>) {
    let tenants = [Uuid::now_v7(), Uuid::now_v7()];
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 30, 0).unwrap();
    record_hours(store.as_ref(), &tenants, at(1, 0), now - Duration::hours(1)).await;
    let kept = SettledBuckets::default();
    let first = at(4, 20);
    kept.sums(
        store.as_ref(),
        version(store.as_ref()).await,
        first,
        None,
        now,
    )
    .await
    .unwrap();
    kept.read_ahead(store.as_ref(), version(store.as_ref()).await)
        .await
        .unwrap();
    for hours in 1..=28 {
        let start = first + Duration::hours(hours);
        let read = sums_agree(&kept, store.as_ref(), start, now).await;
        assert_eq!(read, 0, "from {start}: read on its path");
        kept.read_ahead(store.as_ref(), version(store.as_ref()).await)
            .await
            .unwrap();
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
        .sums(
            store.as_ref(),
            version(store.as_ref()).await,
            month,
            None,
            now,
        )
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
        .sums(
            store.as_ref(),
            version(store.as_ref()).await,
            month,
            None,
            later,
        )
        .await
        .unwrap();
    assert_eq!(kept.as_of, now, "the tail read at {now} is kept {FRESH:?}");
    assert_eq!(sorted(kept.sums)[0].2, 5_000_000);

    let not_due = now + Duration::seconds(2);
    buckets
        .refresh_open(
            store.as_ref(),
            version(store.as_ref()).await,
            not_due,
            Duration::seconds(3),
        )
        .await
        .unwrap();
    let kept = buckets
        .sums(
            store.as_ref(),
            version(store.as_ref()).await,
            month,
            None,
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        kept.as_of, now,
        "a tail read 2 s before is not due 3 s ahead"
    );

    let due = now + Duration::seconds(3);
    buckets
        .refresh_open(
            store.as_ref(),
            version(store.as_ref()).await,
            due,
            Duration::seconds(3),
        )
        .await
        .unwrap();
    let fresh = buckets
        .sums(
            store.as_ref(),
            version(store.as_ref()).await,
            month,
            None,
            later,
        )
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
        the_open_tail_is_read_again_ahead_of_time,
        a_sliding_start_reads_a_bucket_a_step,
        buckets_read_ahead_serve_a_sliding_start
    ],
);

/// The ledger's version, as a request reads it before summing.
async fn version(store: &dyn CostStore) -> i64 {
    store.ledger_version().await.expect("the ledger's version")
}
