//! The conformance suite of `TelemetryStore`: the same assertions against PostgreSQL and SQLite.

use std::sync::Arc;

use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_storage::{
    micros::Micros,
    store::{self, TenantNo},
    telemetry::{
        domain::{Field, Fields, Rollup},
        store::{Range, Row, SeriesId, SeriesKey, TelemetryStore},
    },
};
use uuid::Uuid;

const MINUTE: i64 = 60_000_000;
/// 2026-11-24T00:00:00Z in µs.
const DAY0: Micros = Micros(1_795_478_400_000_000);

async fn open(db: &TestDatabase) -> Arc<dyn TelemetryStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn TelemetryStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrations are idempotent");
    store
}

fn key(machine: &str, metric: &str) -> SeriesKey {
    SeriesKey {
        machine_id: machine.to_owned(),
        metric: metric.to_owned(),
    }
}

async fn tenants_and_series(store: &dyn TelemetryStore) {
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let a_no = store.register_tenant(a).await.unwrap();
    assert_eq!(store.register_tenant(a).await.unwrap(), a_no, "stable");
    let b_no = store.register_tenant(b).await.unwrap();
    assert_ne!(a_no, b_no);
    assert_eq!(store.find_tenant(a).await.unwrap(), Some(a_no));
    assert_eq!(store.find_tenant(Uuid::now_v7()).await.unwrap(), None);

    let keys = [
        key("press-1", "temp"),
        key("press-1", "rpm"),
        key("press-2", "temp"),
    ];
    let ids = store.resolve_series(a_no, &keys).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|id| id.tenant() == a_no),
        "ids carry the tenant"
    );
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
    let again = store
        .resolve_series(
            a_no,
            &[keys[2].clone(), key("press-3", "temp"), keys[0].clone()],
        )
        .await
        .unwrap();
    assert_eq!(again[0], ids[2]);
    assert_eq!(again[2], ids[0]);
    assert!(!ids.contains(&again[1]));
    assert_eq!(
        store.find_series(a_no, &keys[1]).await.unwrap(),
        Some(ids[1])
    );
    assert_eq!(store.find_series(b_no, &keys[1]).await.unwrap(), None);
    let other = store
        .resolve_series(b_no, &[keys[0].clone()])
        .await
        .unwrap();
    assert_ne!(other[0], ids[0], "tenants have their own series");
    assert_eq!(other[0].tenant(), b_no);
}

async fn inserts_dedupe_and_queries_read(store: &dyn TelemetryStore) {
    let tenant = store.register_tenant(Uuid::now_v7()).await.unwrap();
    let ids = store
        .resolve_series(tenant, &[key("m1", "temp"), key("m1", "rpm")])
        .await
        .unwrap();
    let (temp, rpm) = (ids[0], ids[1]);
    for day in [DAY0.day(), (DAY0 + 86_400_000_000).day()] {
        store.ensure_day(tenant, day, 30).await.unwrap();
        store.ensure_day(tenant, day, 30).await.unwrap();
    }
    // Three minutes of temp, two readings a minute, and one rpm reading the next day.
    let mut rows: Vec<Row> = (0..6)
        .map(|i| Row {
            series_id: temp,
            ts: DAY0 + i * MINUTE / 2,
            value: i as f64,
        })
        .collect();
    rows.push(Row {
        series_id: rpm,
        ts: DAY0 + 86_400_000_000 + 5,
        value: 1200.0,
    });
    assert_eq!(store.insert(&rows).await.unwrap(), vec![true; 7]);

    // The same keys again, one with another value, and one new reading: the first write wins.
    let again = vec![
        Row {
            value: 99.0,
            ..rows[0]
        },
        rows[1],
        Row {
            series_id: temp,
            ts: DAY0 + 3 * MINUTE,
            value: 6.0,
        },
    ];
    assert_eq!(
        store.insert(&again).await.unwrap(),
        vec![false, false, true]
    );

    let all = Range {
        start: DAY0,
        end: DAY0 + 10 * MINUTE,
    };
    let points = store.points(temp, all).await.unwrap();
    assert_eq!(
        points,
        (0..7)
            .map(|i| (DAY0 + i * MINUTE / 2, i as f64))
            .collect::<Vec<_>>(),
        "oldest first, the first write kept"
    );
    let part = Range {
        start: DAY0 + MINUTE / 2,
        end: DAY0 + 2 * MINUTE,
    };
    assert_eq!(
        store.points(temp, part).await.unwrap().len(),
        3,
        "start inclusive, end exclusive"
    );

    // Several ranges at once: start inclusive, end exclusive, the first write kept.
    let ranges = [
        Range {
            start: DAY0,
            end: DAY0 + MINUTE,
        },
        Range {
            start: DAY0 + 2 * MINUTE + 1,
            end: DAY0 + 3 * MINUTE,
        },
    ];
    let mut points = store.points_in(temp, &ranges).await.unwrap();
    points.sort_by_key(|&(ts, _)| ts);
    assert_eq!(
        points,
        [
            (DAY0, 0.0),
            (DAY0 + MINUTE / 2, 1.0),
            (DAY0 + 5 * MINUTE / 2, 5.0)
        ]
    );
    assert!(store.points_in(temp, &[]).await.unwrap().is_empty());

    let latest = store.latest(tenant, "m1").await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].metric, "rpm");
    assert_eq!(latest[0].value, 1200.0);
    assert_eq!(latest[1].metric, "temp");
    assert_eq!(latest[1].ts, DAY0 + 3 * MINUTE);
    assert!(store.latest(tenant, "m2").await.unwrap().is_empty());

    // A third metric days later: the other two are found beyond the last days too.
    let vib = store
        .resolve_series(tenant, &[key("m1", "vib")])
        .await
        .unwrap()[0];
    let later = DAY0 + 4 * 86_400_000_000;
    store.ensure_day(tenant, later.day(), 30).await.unwrap();
    let row = Row {
        series_id: vib,
        ts: later,
        value: 0.5,
    };
    assert_eq!(store.insert(&[row]).await.unwrap(), vec![true]);
    let latest = store.latest(tenant, "m1").await.unwrap();
    let found: Vec<(&str, Micros)> = latest.iter().map(|l| (l.metric.as_str(), l.ts)).collect();
    assert_eq!(
        found,
        [
            ("rpm", DAY0 + 86_400_000_000 + 5),
            ("temp", DAY0 + 3 * MINUTE),
            ("vib", later)
        ]
    );
}

async fn large_inserts_are_counted_exactly(store: &dyn TelemetryStore) {
    let tenant = store.register_tenant(Uuid::now_v7()).await.unwrap();
    let ids = store
        .resolve_series(tenant, &[key("m", "a"), key("m", "b")])
        .await
        .unwrap();
    store.ensure_day(tenant, DAY0.day(), 30).await.unwrap();
    let rows: Vec<Row> = (0..5_000)
        .map(|i| Row {
            series_id: ids[i % 2],
            ts: DAY0 + i as i64,
            value: 0.5,
        })
        .collect();
    let first = store.insert(&rows[..3_001]).await.unwrap();
    assert!(first.iter().all(|n| *n));
    let second = store.insert(&rows).await.unwrap();
    assert_eq!(second.iter().filter(|n| **n).count(), 1_999);
    assert!(second[..3_001].iter().all(|n| !*n));
    let all = Range {
        start: DAY0,
        end: DAY0 + MINUTE,
    };
    assert_eq!(store.points(ids[0], all).await.unwrap().len(), 2_500);
}

/// A new tenant's series holding `count` readings from [`DAY0`], one every 20 s, whose values
/// (in halves, so that every sum is exact) rise and fall; the tenant, the series and the
/// readings.
async fn series_of(
    store: &dyn TelemetryStore,
    count: i64,
) -> (TenantNo, SeriesId, Vec<(Micros, f64)>) {
    let tenant = store.register_tenant(Uuid::now_v7()).await.unwrap();
    let series = store
        .resolve_series(tenant, &[key("m", "t")])
        .await
        .unwrap()[0];
    store.ensure_day(tenant, DAY0.day(), 30).await.unwrap();
    let readings: Vec<(Micros, f64)> = (0..count)
        .map(|i| (DAY0 + i * 20_000_000, ((i * 37) % 23) as f64 - 7.5))
        .collect();
    let rows: Vec<Row> = readings
        .iter()
        .map(|&(ts, value)| Row {
            series_id: series,
            ts,
            value,
        })
        .collect();
    store.insert(&rows).await.unwrap();
    (tenant, series, readings)
}

/// The rollups of each resolution in several ranges equal the raw readings' rollups: min,
/// max, sum, count, and the last value by time (not the largest); each read of some fields
/// fills in those.
async fn rollups_in_ranges(store: &dyn TelemetryStore) {
    const HOUR: i64 = 60 * MINUTE;
    // Two hours, a reading every 20 s whose value rises and falls, so the last is not the
    // largest.
    let (tenant, series, readings) = series_of(store, 360).await;
    store
        .roll_up(
            tenant,
            Range {
                start: DAY0,
                end: DAY0 + 2 * HOUR,
            },
        )
        .await
        .unwrap();
    let expected = |width: i64, ranges: &[Range]| -> Vec<(Micros, Rollup)> {
        let inside = readings
            .iter()
            .copied()
            .filter(|&(ts, _)| ranges.iter().any(|r| ts >= r.start && ts < r.end));
        mfg_storage::telemetry::domain::roll_up(inside, width)
            .into_iter()
            .collect()
    };
    for (resolution, ranges) in [
        (
            mfg_storage::telemetry::store::Resolution::Minute,
            vec![(7, 30), (45, 47), (100, 120)],
        ),
        (
            mfg_storage::telemetry::store::Resolution::Quarter,
            vec![(0, 15), (60, 105)],
        ),
        (
            mfg_storage::telemetry::store::Resolution::Hour,
            vec![(0, 60), (60, 120)],
        ),
    ] {
        let ranges: Vec<Range> = ranges
            .into_iter()
            .map(|(from, to)| Range {
                start: DAY0 + from * MINUTE,
                end: DAY0 + to * MINUTE,
            })
            .collect();
        for fields in Fields::ALL {
            let mut rollups = store
                .rollups_in(series, resolution, &ranges, fields)
                .await
                .unwrap();
            rollups.sort_by_key(|&(start, _)| start);
            let kept = |rollups: Vec<(Micros, Rollup)>| -> Vec<(Micros, Rollup)> {
                rollups
                    .into_iter()
                    .map(|(start, rollup)| (start, only(rollup, fields)))
                    .collect()
            };
            assert_eq!(
                kept(rollups),
                kept(expected(resolution.micros(), &ranges)),
                "{resolution:?}, {fields:?}"
            );
        }
    }
}

/// The sums of a series' readings in several ranges, in their order, with the ranges that
/// hold none among them.
async fn sums_in_ranges(store: &dyn TelemetryStore) {
    const SECOND: i64 = 1_000_000;
    // A reading every 20 s for an hour.
    let (_, series, readings) = series_of(store, 180).await;
    let ranges: Vec<Range> = [
        (65, 110),
        (601, 619),
        (620, 621),
        (1_800, 1_860),
        (3_590, 3_700),
    ]
    .into_iter()
    .map(|(from, to)| Range {
        start: DAY0 + from * SECOND,
        end: DAY0 + to * SECOND,
    })
    .collect();
    let sums: Vec<(f64, u64)> = store
        .sums_in(series, &ranges)
        .await
        .unwrap()
        .into_iter()
        .map(|rollup| (rollup.sum, rollup.count))
        .collect();
    let expected: Vec<(f64, u64)> = ranges
        .iter()
        .map(|range| {
            let inside = readings
                .iter()
                .filter(|&&(ts, _)| ts >= range.start && ts < range.end);
            (
                inside.clone().map(|&(_, value)| value).sum(),
                inside.count() as u64,
            )
        })
        .collect();
    assert_eq!(sums, expected);
    assert_eq!(expected[1].1, 0, "a range without readings");
    assert!(store.sums_in(series, &[]).await.unwrap().is_empty());
}

/// A rollup's count and `fields`, the rest as in [`Rollup::NONE`]: what a read of `fields`
/// must answer (it may fill in more).
fn only(rollup: Rollup, fields: Fields) -> Rollup {
    let mut kept = Rollup {
        count: rollup.count,
        ..Rollup::NONE
    };
    for field in fields.fields() {
        match field {
            Field::Min => kept.min = rollup.min,
            Field::Max => kept.max = rollup.max,
            Field::Sum => kept.sum = rollup.sum,
            Field::LastTs => kept.last_ts = rollup.last_ts,
            Field::Last => kept.last = rollup.last,
        }
    }
    kept
}

async fn footprint_of_the_tiers(store: &dyn TelemetryStore) {
    const HOUR: i64 = 60 * MINUTE;
    let day1 = DAY0 + 86_400_000_000;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut series = Vec::new();
    for tenant in [a, b] {
        let no = store.register_tenant(tenant).await.unwrap();
        for day in [DAY0.day(), day1.day()] {
            store.ensure_day(no, day, 30).await.unwrap();
        }
        series.push((
            no,
            store.resolve_series(no, &[key("m", "t")]).await.unwrap()[0],
        ));
    }
    // Tenant a: a reading a minute for two hours of each day; b: for one hour of the second
    // day, its first archived.
    let minutes = |(_, id): (_, _), from: i64, to: i64| {
        (from..to).map(move |m| Row {
            series_id: id,
            ts: DAY0 + m * MINUTE,
            value: 1.0,
        })
    };
    let rows: Vec<Row> = minutes(series[0], 0, 120)
        .chain(minutes(series[0], 24 * 60, 24 * 60 + 120))
        .chain(minutes(series[1], 24 * 60, 24 * 60 + 60))
        .collect();
    store.insert(&rows).await.unwrap();
    for (no, _) in &series {
        store
            .roll_up(
                *no,
                Range {
                    start: DAY0,
                    end: day1 + 2 * HOUR,
                },
            )
            .await
            .unwrap();
    }
    let (b_no, _) = series[1];
    let key = store
        .pending_object(b_no, DAY0.day(), "b/day0")
        .await
        .unwrap();
    assert!(
        store
            .commit_day(b_no, DAY0.day(), 0, Some((&key, 4_096)))
            .await
            .unwrap()
    );

    let footprint = store.footprint().await.unwrap();
    assert!(
        footprint.hot_bytes > 0 && footprint.warm_bytes > 0,
        "{footprint:?}"
    );
    let of = |tenant| {
        footprint
            .tenants
            .iter()
            .find(|t| t.tenant == tenant)
            .cloned()
            .unwrap()
    };
    let (of_a, of_b) = (of(a), of(b));
    assert_eq!(
        (of_a.hot_readings, of_a.warm_hours, of_a.cold_bytes),
        (240, 4, 0)
    );
    assert_eq!(
        (of_b.hot_readings, of_b.warm_hours, of_b.cold_bytes),
        (60, 1, 4_096)
    );
}

mfg_common::on_each_backend!(
    [
        postgres => &*open(&TestDatabase::postgres().await).await,
        sqlite => &*open(&TestDatabase::sqlite()).await,
    ],
    [
        tenants_and_series,
        inserts_dedupe_and_queries_read,
        large_inserts_are_counted_exactly,
        rollups_in_ranges,
        sums_in_ranges,
        footprint_of_the_tiers,
    ],
);
