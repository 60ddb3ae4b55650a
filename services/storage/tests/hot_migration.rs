//! The hot tier's move to partitions by class (migration 20261204000001) on a database made by
//! the previous version: readings stored per tenant and day are kept, readable, archivable, and
//! their day's partition is dropped with its last tenant.

use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_storage::{
    store::{self, MIGRATIONS_TABLE},
    telemetry::store::{SeriesKey, day_range},
};
use sqlx::{AssertSqlSafe, Row as _};
use uuid::Uuid;

/// The last migration of the previous version.
const PREVIOUS: i64 = 20261203000001;

#[tokio::test]
async fn readings_of_the_previous_layout_move_to_class_zero() {
    let db = TestDatabase::postgres().await;
    let pool = db::connect(&DatabaseArgs::new(&db.url)).await.unwrap();
    let db::DbPool::Postgres(pg) = &pool else {
        panic!("a PostgreSQL pool");
    };
    let migrator = db::migrator(store::migrations::POSTGRES, Some(MIGRATIONS_TABLE));
    migrator.run_to(PREVIOUS, pg).await.unwrap();

    // What the previous version wrote: tenant 1's partition, its day, readings, the day's record.
    let tenant = Uuid::now_v7();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    for statement in [
        format!("INSERT INTO storage_tenants (tenant_id, next_series) VALUES ('{tenant}', 1)"),
        "INSERT INTO rollup_state (tenant_no) VALUES (1)".to_owned(),
        "INSERT INTO series VALUES (4294967296, 1, 'press-1', 'temp')".to_owned(),
        "CREATE TABLE readings_t1 PARTITION OF readings FOR VALUES FROM (4294967296) \
         TO (8589934592) PARTITION BY RANGE (ts)"
            .to_owned(),
        "CREATE TABLE readings_t1_20261120 PARTITION OF readings_t1 \
         FOR VALUES FROM ('2026-11-20 00:00:00+00') TO ('2026-11-21 00:00:00+00')"
            .to_owned(),
        "INSERT INTO readings SELECT 4294967296, timestamptz '2026-11-20 00:00:00+00' \
         + n * interval '1 hour', n FROM generate_series(0, 23) n"
            .to_owned(),
        "INSERT INTO hot_partitions VALUES (1, '2026-11-20')".to_owned(),
    ] {
        sqlx::query(AssertSqlSafe(statement))
            .execute(pg)
            .await
            .unwrap();
    }

    let store = store::open(pool.clone());
    store.migrate().await.unwrap();

    let no = store.find_tenant(tenant).await.unwrap().unwrap();
    assert_eq!(store.hot_days(no).await.unwrap(), [day]);
    let key = SeriesKey {
        machine_id: "press-1".to_owned(),
        metric: "temp".to_owned(),
    };
    let series = store.find_series(no, &key).await.unwrap().unwrap();
    let points = store.points(series, day_range(day)).await.unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(points[5].1, 5.0);
    let latest = store.latest(no, "press-1").await.unwrap();
    assert_eq!(latest[0].value, 23.0);
    let leaves = async || -> Vec<String> {
        sqlx::query(
            "SELECT relname::text FROM pg_class WHERE relname LIKE 'readings\\_%' AND relkind IN ('r', 'p') ORDER BY 1",
        )
        .fetch_all(pg)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    assert_eq!(leaves().await, ["readings_c0", "readings_c0_20261120"]);

    // New days go to the tenant's class; the old one leaves with its archive.
    store
        .ensure_day(no, day.succ_opt().unwrap(), 30)
        .await
        .unwrap();
    assert!(store.commit_day(no, day, 24, None).await.unwrap());
    assert_eq!(
        leaves().await,
        ["readings_c0", "readings_c30", "readings_c30_20261121"]
    );
    assert!(
        store
            .points(series, day_range(day))
            .await
            .unwrap()
            .is_empty(),
        "archived: its readings are in the cold tier"
    );
}
