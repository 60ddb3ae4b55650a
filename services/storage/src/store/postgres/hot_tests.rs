//! The hot tier's statements prune at plan time: on a database with tenants of three classes
//! and ten days each (30 leaves), each statement's plan, made as the store makes it (unnamed,
//! with its values), touches only the leaves that can hold its rows.

use chrono::{DateTime, Utc};
use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use sqlx::{AssertSqlSafe, PgPool, Row as _};
use uuid::Uuid;

use super::{PostgresStore, hot_sql};
use crate::{
    micros::Micros,
    store::TenantNo,
    telemetry::store::{Row, SeriesId, SeriesKey, TelemetryStore},
};

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;
/// 2026-11-01T00:00:00Z.
const DAY0: Micros = Micros(1_793_491_200_000_000);
const DAYS: i64 = 10;

fn ts(at: Micros) -> DateTime<Utc> {
    at.to_datetime()
}

/// Tenants of classes 7, 30 and 90, each with a series and ten days of readings; returns the
/// tenant of class 30 and its series.
async fn populate(store: &PostgresStore) -> (TenantNo, SeriesId) {
    let mut chosen = None;
    for class in [7, 30, 90] {
        for _ in 0..3 {
            let tenant = store.register_tenant(Uuid::now_v7()).await.unwrap();
            let key = SeriesKey {
                machine_id: "press-1".to_owned(),
                metric: "temp".to_owned(),
            };
            let series = store.resolve_series(tenant, &[key]).await.unwrap()[0];
            let mut rows = Vec::new();
            for day in 0..DAYS {
                store
                    .ensure_day(tenant, (DAY0 + day * DAY).day(), class)
                    .await
                    .unwrap();
                rows.extend((0..24).map(|hour| Row {
                    series_id: series,
                    ts: DAY0 + day * DAY + hour * HOUR,
                    value: hour as f64,
                }));
            }
            store.insert(&rows).await.unwrap();
            if class == 30 && chosen.is_none() {
                chosen = Some((tenant, series));
            }
        }
    }
    chosen.unwrap()
}

/// The leaves of `readings` a plan touches.
fn leaves(plan: &serde_json::Value, found: &mut Vec<String>) {
    if let Some(name) = plan.get("Relation Name").and_then(|n| n.as_str())
        && name.starts_with("readings_c")
    {
        found.push(name.to_owned());
    }
    match plan {
        serde_json::Value::Object(map) => map.values().for_each(|v| leaves(v, found)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| leaves(v, found)),
        _ => {}
    }
}

async fn explain(
    pool: &PgPool,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Vec<String> {
    let row = query.persistent(false).fetch_one(pool).await.unwrap();
    let plan: serde_json::Value = row.get(0);
    let mut found = Vec::new();
    leaves(&plan, &mut found);
    found.sort();
    found.dedup();
    found
}

fn explained(statement: &str) -> String {
    format!("EXPLAIN (FORMAT JSON) {statement}")
}

#[tokio::test]
async fn hot_statements_touch_only_their_leaves() {
    let db = TestDatabase::postgres().await;
    let db::DbPool::Postgres(pool) = db::connect(&DatabaseArgs::new(&db.url)).await.unwrap() else {
        panic!("a PostgreSQL pool");
    };
    let store = PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    let (tenant, series) = populate(&store).await;
    let all: i64 = sqlx::query(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'readings\\_c%\\_%' AND relkind = 'r'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(all, 3 * DAYS, "three classes of ten days");
    let classes = vec![30];
    let day3 = DAY0 + 3 * DAY;
    let leaf3 = format!("readings_c30_{}", day3.day().format("%Y%m%d"));

    let latest = explain(
        &pool,
        sqlx::query(AssertSqlSafe(explained(hot_sql::LATEST)))
            .bind(tenant)
            .bind("press-1")
            .bind(&classes),
    )
    .await;
    assert_eq!(
        latest.len() as i64,
        DAYS,
        "latest reads its class's days: {latest:?}"
    );
    assert!(latest.iter().all(|leaf| leaf.starts_with("readings_c30_")));
    let recent = explain(
        &pool,
        sqlx::query(AssertSqlSafe(explained(hot_sql::LATEST_RECENT)))
            .bind(tenant)
            .bind("press-1")
            .bind(&classes)
            .bind(ts(DAY0 + (DAYS - 2) * DAY)),
    )
    .await;
    assert_eq!(
        recent.len(),
        2,
        "latest reads its last two days first: {recent:?}"
    );

    let points = explain(
        &pool,
        sqlx::query(AssertSqlSafe(explained(hot_sql::POINTS)))
            .bind(series)
            .bind(ts(day3 + HOUR))
            .bind(ts(day3 + 5 * HOUR))
            .bind(&classes),
    )
    .await;
    assert_eq!(points, std::slice::from_ref(&leaf3));

    let from = vec![ts(day3), ts(day3 + 20 * HOUR)];
    let to = vec![ts(day3 + HOUR), ts(day3 + 26 * HOUR)];
    let points_in = explain(
        &pool,
        sqlx::query(AssertSqlSafe(explained(hot_sql::POINTS_IN)))
            .bind(series)
            .bind(from)
            .bind(to)
            .bind(&classes)
            .bind(ts(day3))
            .bind(ts(day3 + 26 * HOUR)),
    )
    .await;
    assert_eq!(points_in.len(), 2, "two days: {points_in:?}");

    let rollup = explain(
        &pool,
        sqlx::query(AssertSqlSafe(explained(hot_sql::ROLLUP_MINUTES)))
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(ts(day3 + HOUR))
            .bind(ts(day3 + 2 * HOUR))
            .bind(&classes),
    )
    .await;
    assert_eq!(rollup, std::slice::from_ref(&leaf3));

    let count = explain(
        &pool,
        sqlx::query(AssertSqlSafe(explained(hot_sql::COUNT_DAY)))
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(ts(day3))
            .bind(ts(day3 + DAY))
            .bind(30),
    )
    .await;
    assert_eq!(count, [leaf3]);
}

/// How a plan reads `relation`: the node types that scan it.
fn scans_of(plan: &serde_json::Value, relation: &str, found: &mut Vec<String>) {
    if plan.get("Relation Name").and_then(|n| n.as_str()) == Some(relation)
        && let Some(node) = plan.get("Node Type").and_then(|n| n.as_str())
    {
        found.push(node.to_owned());
    }
    match plan {
        serde_json::Value::Object(map) => map.values().for_each(|v| scans_of(v, relation, found)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| scans_of(v, relation, found)),
        _ => {}
    }
}

/// A write locks its days' shares and its tenants' `rolled_to` by a probe of the primary key
/// for each, however the planner costs a join: a join of `hot_days` with the write's keys was
/// once planned as a hash join over all of it (statistics stale after 3,000 tenants' history
/// came in), 14 ms a write. Here the planner is told to avoid nested loops.
#[tokio::test]
async fn writes_lock_their_rows_by_key() {
    let db = TestDatabase::postgres().await;
    let db::DbPool::Postgres(pool) = db::connect(&DatabaseArgs::new(&db.url)).await.unwrap() else {
        panic!("a PostgreSQL pool");
    };
    PostgresStore::new(pool.clone()).migrate().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_nestloop = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    for (statement, relation) in [
        (hot_sql::SHARES, "hot_days"),
        (hot_sql::ROLLED_TO, "rollup_state"),
    ] {
        let mut query = sqlx::query(AssertSqlSafe(explained(statement))).bind(vec![1, 2]);
        if relation == "hot_days" {
            query = query.bind(vec![DAY0.day(), DAY0.day()]);
        }
        let row = query.persistent(false).fetch_one(&mut *tx).await.unwrap();
        let mut scans = Vec::new();
        scans_of(&row.get::<serde_json::Value, _>(0), relation, &mut scans);
        assert_eq!(scans, ["Index Scan"], "{relation}");
    }
}

/// Connections run with the settings the hot tier's statements and writes are measured with:
/// - no JIT compilation: with statistics, the read of a 30-day query's split minutes (~29,000
///   readings) is estimated above `jit_above_cost`, and compiling it took ~95 ms of a
///   statement that runs in 14 ms;
/// - the pages a connection writes handed to the disk every 256 kB, so that commits do not
///   wait behind a checkpoint's or the kernel's burst of them.
#[tokio::test]
async fn connections_run_without_jit_and_flush_their_writes() {
    let db = TestDatabase::postgres().await;
    let db::DbPool::Postgres(pool) = db::connect(&DatabaseArgs::new(&db.url)).await.unwrap() else {
        panic!("a PostgreSQL pool");
    };
    for (setting, expected) in [("jit", "off"), ("backend_flush_after", "256kB")] {
        let value: String = sqlx::query(AssertSqlSafe(format!("SHOW {setting}")))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(value, expected, "{setting}");
    }
}

/// A reading for a tenant's day that was archived neither fails its batch nor lands in the
/// leaf another tenant still holds: it is stored in `late_readings`.
#[tokio::test]
async fn a_reading_for_an_archived_day_is_kept_as_late() {
    let db = TestDatabase::postgres().await;
    let pool = db::connect(&DatabaseArgs::new(&db.url)).await.unwrap();
    let store = super::super::open(pool.clone());
    store.migrate().await.unwrap();
    let db::DbPool::Postgres(pg) = pool else {
        panic!("a PostgreSQL pool");
    };
    let key = SeriesKey {
        machine_id: "press-1".to_owned(),
        metric: "temp".to_owned(),
    };
    let mut tenants = Vec::new();
    for _ in 0..2 {
        let tenant = store.register_tenant(Uuid::now_v7()).await.unwrap();
        let series = store
            .resolve_series(tenant, std::slice::from_ref(&key))
            .await
            .unwrap()[0];
        store.ensure_day(tenant, DAY0.day(), 30).await.unwrap();
        let row = Row {
            series_id: series,
            ts: DAY0 + HOUR,
            value: 1.0,
        };
        assert_eq!(store.insert(&[row]).await.unwrap(), [true]);
        tenants.push((tenant, series));
    }
    let (archived, series) = tenants[0];
    let object = "tenant=a/day=2026-11-01/part-0.parquet";
    store
        .pending_object(archived, DAY0.day(), object)
        .await
        .unwrap();
    assert!(
        store
            .commit_day(archived, DAY0.day(), 1, Some((object, 100)))
            .await
            .unwrap()
    );

    let late = [
        Row {
            series_id: series,
            ts: DAY0 + 2 * HOUR,
            value: 2.0,
        },
        Row {
            series_id: tenants[1].1,
            ts: DAY0 + 2 * HOUR,
            value: 3.0,
        },
    ];
    assert_eq!(store.insert(&late).await.unwrap(), [true, true]);
    assert_eq!(
        store.insert(&late).await.unwrap(),
        [false, false],
        "stored once"
    );
    let late_rows: i64 = sqlx::query("SELECT count(*) FROM late_readings")
        .fetch_one(&pg)
        .await
        .unwrap()
        .get(0);
    assert_eq!(late_rows, 1, "the archived tenant's reading");
    let kept = store
        .points(tenants[1].1, crate::telemetry::store::day_range(DAY0.day()))
        .await;
    assert_eq!(
        kept.unwrap().len(),
        2,
        "the other tenant's day is still hot"
    );
}
