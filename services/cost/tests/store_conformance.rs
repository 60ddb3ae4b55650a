//! The conformance suite of `CostStore`'s usage ledger and prices: the same assertions against
//! PostgreSQL and SQLite (its budgets are in `budget_store.rs`).

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::testing::TestDatabase;
use mfg_cost::{
    domain::{meter::Meter, price_book::PriceBook, report::Usage},
    store::{CostStore, KeyedUsage, Recorded, buckets::Grain},
};
use support::{at, open};
use uuid::Uuid;

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
    // The same key twice in one call: its first record counts.
    let twice = record("e", tenant, Meter::ApiRequests, at(4, 10, 40), 1, 1_000.0);
    assert_eq!(
        store
            .record_usage(&[twice.clone(), twice], now)
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
        .usage(Grain::Hour, Some(tenant), at(4, 0, 0), at(5, 0, 0))
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].quantity, 1_171.0, "100 + 50 + 1 + 1,000 + 20");
}

async fn a_batch_counts_once_under_its_key(store: Arc<dyn CostStore>) {
    let tenant = Uuid::now_v7();
    let usage: Vec<Usage> = [
        record("", tenant, Meter::ApiRequests, at(4, 10, 0), 10, 100.0),
        record("", tenant, Meter::IngestedReadings, at(4, 10, 0), 10, 7.0),
    ]
    .into_iter()
    .map(|r| r.usage)
    .collect();
    let now = at(4, 11, 0);
    let counted = |recorded, duplicates| Recorded {
        recorded,
        duplicates,
    };
    assert_eq!(
        store.record_batch("run/0/0", &usage, now).await.unwrap(),
        counted(2, 0)
    );
    assert_eq!(
        store.record_batch("run/0/0", &usage, now).await.unwrap(),
        counted(0, 2),
        "the same batch again"
    );
    assert_eq!(
        store
            .record_batch("run/1/0", &usage[..1], now)
            .await
            .unwrap(),
        counted(1, 0)
    );
    let hours = store
        .usage(Grain::Hour, Some(tenant), at(4, 10, 0), at(4, 11, 0))
        .await
        .unwrap();
    let requests: f64 = hours
        .iter()
        .filter(|u| u.meter == Meter::ApiRequests)
        .map(|u| u.quantity)
        .sum();
    assert_eq!(requests, 200.0);
}

async fn late_usage_moves_the_ledger_version(store: Arc<dyn CostStore>) {
    let tenant = Uuid::now_v7();
    let now = at(4, 12, 0);
    let version = store.ledger_version().await.unwrap();
    let recent = record("recent", tenant, Meter::ApiRequests, at(4, 11, 50), 5, 1.0);
    store.record_usage(&[recent], now).await.unwrap();
    assert_eq!(
        store.ledger_version().await.unwrap(),
        version,
        "recent usage"
    );
    let late = record("late", tenant, Meter::ApiRequests, at(4, 9, 0), 5, 2.0);
    store
        .record_usage(std::slice::from_ref(&late), now)
        .await
        .unwrap();
    assert_eq!(store.ledger_version().await.unwrap(), version + 1);
    store
        .record_usage(std::slice::from_ref(&late), now)
        .await
        .unwrap();
    assert_eq!(
        store.ledger_version().await.unwrap(),
        version + 1,
        "a duplicate adds nothing"
    );
    store
        .record_batch("late-batch", &[late.usage], now)
        .await
        .unwrap();
    assert_eq!(store.ledger_version().await.unwrap(), version + 2);

    // The buckets as they are, each tenant's amount of each meter.
    let hours = store
        .bucket_amounts(
            Grain::Hour,
            at(4, 9, 0).timestamp_micros(),
            at(4, 12, 0).timestamp_micros(),
        )
        .await
        .unwrap();
    let mut of_tenant: Vec<(i64, f64)> = hours
        .iter()
        .filter(|(_, s)| s.tenant == tenant)
        .map(|(hour, s)| (*hour, s.amount))
        .collect();
    of_tenant.sort_by_key(|(hour, _)| *hour);
    assert_eq!(
        of_tenant,
        [
            (at(4, 9, 0).timestamp_micros(), 4.0),
            (at(4, 11, 0).timestamp_micros(), 1.0)
        ]
    );
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
        .usage(Grain::Hour, Some(tenant), at(4, 0, 0), at(5, 0, 0))
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
        .usage(Grain::Hour, Some(acme), at(4, 0, 0), at(5, 0, 0))
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
            .usage(Grain::Hour, Some(acme), at(4, 11, 0), at(4, 12, 0))
            .await
            .unwrap()
            .len(),
        2
    );
    let all = store
        .usage(Grain::Hour, None, at(4, 0, 0), at(5, 0, 0))
        .await
        .unwrap();
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
    assert!(
        store
            .change_prices(at(10, 12, 0), None, &dearer, None)
            .await
            .unwrap()
    );
    let history = store.price_history().await.unwrap();
    assert_eq!(history.at(at(10, 11, 59)), &PriceBook::default());
    assert_eq!(history.at(at(10, 12, 0)), &dearer);
    assert_eq!(history.at(at(20, 0, 0)), &dearer);
    assert_eq!(history.latest(), (Some(at(10, 12, 0)), &dearer));

    // Two changes made from the same book, at once: one wins, the other changes nothing.
    let (even_dearer, cheaper) = (
        PriceBook {
            shared_monthly_usd: 2_000.0,
            ..PriceBook::default()
        },
        PriceBook {
            shared_monthly_usd: 10.0,
            ..PriceBook::default()
        },
    );
    let replaces = Some(at(10, 12, 0));
    let (one, two) = tokio::join!(
        store.change_prices(at(11, 0, 0), replaces, &even_dearer, None),
        store.change_prices(at(11, 0, 1), replaces, &cheaper, None),
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert!(one ^ two, "exactly one wins: {one} {two}");
    let winner = if one { &even_dearer } else { &cheaper };
    let history = store.price_history().await.unwrap();
    assert_eq!(history.latest().1, winner);
    // The loser, retried on the winner, goes in.
    let (from, _) = history.latest();
    assert!(
        store
            .change_prices(at(12, 0, 0), from, &dearer, None)
            .await
            .unwrap()
    );
}

fn in_november(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .unwrap()
}

async fn usage_is_summed_by_day_and_month(store: Arc<dyn CostStore>) {
    let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
    // Two hours across the turn of the month: 60 requests and a GB-hour on each side.
    let from = in_november(30, 23, 0);
    let records = [
        record("acme-api", acme, Meter::ApiRequests, from, 120, 120.0),
        record("acme-hot", acme, Meter::HotStorage, from, 120, 1e9),
        record("globex-api", globex, Meter::ApiRequests, from, 60, 7.0),
    ];
    store.record_usage(&records, at(1, 1, 0)).await.unwrap();

    let days = store
        .usage(Grain::Day, Some(acme), in_november(1, 0, 0), at(31, 0, 0))
        .await
        .unwrap();
    let seen: Vec<_> = days.iter().map(|u| (u.start, u.end, u.meter)).collect();
    assert_eq!(
        seen,
        [
            (in_november(30, 0, 0), at(1, 0, 0), Meter::ApiRequests),
            (in_november(30, 0, 0), at(1, 0, 0), Meter::HotStorage),
            (at(1, 0, 0), at(2, 0, 0), Meter::ApiRequests),
            (at(1, 0, 0), at(2, 0, 0), Meter::HotStorage),
        ]
    );
    assert_eq!(days[0].quantity, 60.0);
    // A level is its mean over the bucket: a GB for an hour of a 24-hour day.
    assert!(
        (days[1].quantity - 1e9 / 24.0).abs() < 1.0,
        "{}",
        days[1].quantity
    );
    let months = store
        .usage(Grain::Month, Some(acme), in_november(1, 0, 0), at(31, 0, 0))
        .await
        .unwrap();
    assert_eq!(months.len(), 4);
    assert_eq!(
        (months[0].start, months[0].end),
        (in_november(1, 0, 0), at(1, 0, 0))
    );
    assert!((months[1].quantity - 1e9 / (30.0 * 24.0)).abs() < 1.0);

    let sum = async |tenant, start, end| {
        let mut sums = store.sums(tenant, start, end).await.unwrap();
        sums.sort_by_key(|s| (s.tenant, s.meter));
        sums.into_iter()
            .map(|s| (s.tenant, s.meter, s.amount))
            .collect::<Vec<_>>()
    };
    // From the start of November on: both hours; a level as GB-seconds.
    assert_eq!(
        sum(Some(acme), in_november(1, 0, 0), None).await,
        [
            (acme, Meter::HotStorage, 7_200e9),
            (acme, Meter::ApiRequests, 120.0),
        ]
    );
    // November only, read from its month; the hours that start from 23:30 to 00:30: one.
    assert_eq!(
        sum(Some(acme), in_november(1, 0, 0), Some(at(1, 0, 0))).await[1],
        (acme, Meter::ApiRequests, 60.0)
    );
    assert_eq!(
        sum(Some(acme), in_november(30, 23, 30), Some(at(1, 0, 30))).await[1],
        (acme, Meter::ApiRequests, 60.0)
    );
    // Every tenant, from days and hours.
    let all = sum(None, in_november(29, 12, 0), Some(at(2, 0, 0))).await;
    assert!(all.contains(&(globex, Meter::ApiRequests, 7.0)), "{all:?}");
    assert!(all.contains(&(acme, Meter::ApiRequests, 120.0)), "{all:?}");
}

/// An offboarded tenant's usage and budget go, in hours, days and months, and the ledger's
/// version moves; another tenant's stay.
async fn a_forgotten_tenant_leaves_no_usage_or_budget(store: Arc<dyn CostStore>) {
    let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
    let from = in_november(30, 23, 0);
    let records = [
        record("acme-api", acme, Meter::ApiRequests, from, 120, 120.0),
        record("globex-api", globex, Meter::ApiRequests, from, 60, 7.0),
    ];
    store.record_usage(&records, at(1, 1, 0)).await.unwrap();
    store
        .set_budget(acme, Some(&[0.5]), at(1, 1, 0), None)
        .await
        .unwrap();
    let version = store.ledger_version().await.unwrap();

    assert_eq!(
        store.forget_tenant(acme, at(1, 2, 0)).await.unwrap(),
        6,
        "2 hours, 2 days, 2 months"
    );
    assert!(store.ledger_version().await.unwrap() > version);
    for grain in [Grain::Hour, Grain::Day, Grain::Month] {
        let usage = |tenant| store.usage(grain, Some(tenant), in_november(1, 0, 0), at(31, 0, 0));
        assert!(usage(acme).await.unwrap().is_empty(), "{grain:?}");
        assert!(!usage(globex).await.unwrap().is_empty(), "{grain:?}");
    }
    assert_eq!(store.budget_thresholds(acme).await.unwrap(), None);
    assert_eq!(
        store.forget_tenant(acme, at(1, 3, 0)).await.unwrap(),
        0,
        "again"
    );

    // A flush taken before the deletion, arriving after it, counts nothing of the tenant's;
    // once the deletion is forgotten with the keys, its usage counts again.
    let late = [
        record("acme-late", acme, Meter::ApiRequests, from, 60, 5.0),
        record("globex-late", globex, Meter::ApiRequests, from, 60, 5.0),
    ];
    let counted = store.record_usage(&late, at(1, 4, 0)).await.unwrap();
    assert_eq!(counted.recorded, 2, "both keys are taken");
    let usage = |tenant| {
        store.usage(
            Grain::Month,
            Some(tenant),
            in_november(1, 0, 0),
            at(31, 0, 0),
        )
    };
    assert!(usage(acme).await.unwrap().is_empty(), "dropped");
    assert_eq!(usage(globex).await.unwrap()[0].quantity, 12.0);
    store.forget_keys(at(1, 5, 0)).await.unwrap();
    let batch = [record("acme-new", acme, Meter::ApiRequests, from, 60, 1.0).usage];
    store
        .record_batch("acme-new", &batch, at(1, 6, 0))
        .await
        .unwrap();
    assert_eq!(usage(acme).await.unwrap()[0].quantity, 1.0, "counted again");
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        usage_counts_once_per_key,
        a_batch_counts_once_under_its_key,
        late_usage_moves_the_ledger_version,
        forgotten_keys_count_again,
        usage_is_read_back_by_hour_and_tenant,
        prices_are_kept_with_the_moment_they_came_into_force,
        usage_is_summed_by_day_and_month,
        a_forgotten_tenant_leaves_no_usage_or_budget,
    ],
);
