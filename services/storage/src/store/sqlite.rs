//! The store on SQLite, the embedded default: one `readings` table clustered by
//! `(series_id, ts)`, written in multi-row statements inside one `BEGIN IMMEDIATE` transaction
//! per group of batches. SQLite has no partitions: an archived day is removed by a range delete
//! on the primary key.

use std::sync::OnceLock;

use chrono::NaiveDate;
use sqlx::{Row as _, SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{Row, TenantNo, day_range, first_series_id, sql};
use crate::error::{Result, StorageError};

/// The store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Wraps a pool.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

type Db = sqlx::Sqlite;
/// µs since the Unix epoch.
type DbTs = i64;
type DbUuid = String;

fn db_ts(micros: i64) -> DbTs {
    micros
}

fn micros_of(ts: DbTs) -> i64 {
    ts
}

fn db_uuid(id: Uuid) -> DbUuid {
    id.to_string()
}

fn uuid_of(id: DbUuid) -> Result<Uuid> {
    Uuid::parse_str(&id)
        .map_err(|e| StorageError::Internal(format!("tenant id `{id}` in the database: {e}")))
}

const LATEST: &str = "SELECT s.metric, r.ts, r.value FROM series s \
     JOIN readings r ON r.series_id = s.series_id \
         AND r.ts = (SELECT max(ts) FROM readings WHERE series_id = s.series_id) \
     WHERE s.tenant_no = $1 AND s.machine_id = $2 ORDER BY s.metric";

const BUCKETS: &str = "WITH b AS ( \
       SELECT ts - (((ts % $4) + $4) % $4) AS bucket, min(value) AS lo, max(value) AS hi, \
              sum(value) AS total, count(*) AS n, max(ts) AS last_ts \
       FROM readings WHERE series_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1) \
     SELECT b.bucket, b.lo, b.hi, b.total, b.n, b.last_ts, r.value AS last \
     FROM b JOIN readings r ON r.series_id = $1 AND r.ts = b.last_ts ORDER BY b.bucket";

/// Rolls a tenant's (`$1 <= series_id < $2`) readings in `[$3, $4)` up into minute buckets,
/// replacing what was there.
const ROLLUP_MINUTES: &str = "INSERT INTO rollups_1m \
       (series_id, bucket, min, max, sum, count, last_ts, last) \
     SELECT g.series_id, g.bucket, g.lo, g.hi, g.total, g.n, g.last_ts, r.value \
     FROM (SELECT series_id, ts - (((ts % 60000000) + 60000000) % 60000000) AS bucket, \
                  min(value) AS lo, max(value) AS hi, sum(value) AS total, count(*) AS n, \
                  max(ts) AS last_ts \
           FROM readings WHERE series_id >= $1 AND series_id < $2 AND ts >= $3 AND ts < $4 \
           GROUP BY 1, 2) g \
     JOIN readings r ON r.series_id = g.series_id AND r.ts = g.last_ts WHERE true \
     ON CONFLICT (series_id, bucket) DO UPDATE SET min = excluded.min, max = excluded.max, \
       sum = excluded.sum, count = excluded.count, last_ts = excluded.last_ts, \
       last = excluded.last";

/// Rewrites a tenant's hour buckets from its minute buckets in `[$3, $4)`.
const ROLLUP_HOURS: &str = "INSERT INTO rollups_1h \
       (series_id, bucket, min, max, sum, count, last_ts, last) \
     SELECT g.series_id, g.bucket, g.lo, g.hi, g.total, g.n, g.last_ts, m.last \
     FROM (SELECT series_id, \
                  bucket - (((bucket % 3600000000) + 3600000000) % 3600000000) AS bucket, \
                  min(min) AS lo, max(max) AS hi, sum(sum) AS total, sum(count) AS n, \
                  max(last_ts) AS last_ts \
           FROM rollups_1m \
           WHERE series_id >= $1 AND series_id < $2 AND bucket >= $3 AND bucket < $4 \
           GROUP BY 1, 2) g \
     JOIN rollups_1m m ON m.series_id = g.series_id \
       AND m.bucket = g.last_ts - (((g.last_ts % 60000000) + 60000000) % 60000000) WHERE true \
     ON CONFLICT (series_id, bucket) DO UPDATE SET min = excluded.min, max = excluded.max, \
       sum = excluded.sum, count = excluded.count, last_ts = excluded.last_ts, \
       last = excluded.last";

macro_rules! merge_into {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (series_id, bucket, min, max, sum, count, last_ts, last) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (series_id, bucket) DO UPDATE SET \
               min = min(",
            $table,
            ".min, excluded.min), max = max(",
            $table,
            ".max, excluded.max), sum = ",
            $table,
            ".sum + excluded.sum, count = ",
            $table,
            ".count + excluded.count, last = CASE WHEN excluded.last_ts > ",
            $table,
            ".last_ts THEN excluded.last ELSE ",
            $table,
            ".last END, last_ts = max(",
            $table,
            ".last_ts, excluded.last_ts)"
        )
    };
}
const MERGE_MINUTE: &str = merge_into!("rollups_1m");
const MERGE_HOUR: &str = merge_into!("rollups_1h");

/// The row counts of the prepared multi-row inserts, largest first; a group is written with as
/// few statements as these sizes allow, each prepared once per connection.
const CHUNKS: [usize; 3] = [1024, 32, 1];

/// `INSERT … VALUES (…), … ON CONFLICT DO NOTHING RETURNING …` for `rows` rows.
fn insert_sql(rows: usize) -> &'static str {
    static SQL: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = CHUNKS
        .iter()
        .position(|&n| n == rows)
        .expect("a chunk size");
    SQL[slot].get_or_init(|| {
        let values: Vec<String> = (0..rows)
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        format!(
            "INSERT INTO readings (series_id, ts, value) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING series_id, ts, value",
            values.join(", ")
        )
    })
}

impl SqliteStore {
    /// Inserts rows, returning the new ones.
    async fn insert_new(tx: &mut SqliteConnection, rows: &[Row]) -> Result<Vec<Row>> {
        let mut new = Vec::with_capacity(rows.len());
        let mut rest = rows;
        while !rest.is_empty() {
            let size = CHUNKS.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(size);
            let mut query = sqlx::query(insert_sql(size));
            for row in chunk {
                query = query
                    .bind(row.series_id)
                    .bind(row.ts_micros)
                    .bind(row.value);
            }
            new.extend(query.fetch_all(&mut *tx).await?.iter().map(|r| Row {
                series_id: r.get(0),
                ts_micros: r.get(1),
                value: r.get(2),
            }));
            rest = tail;
        }
        Ok(new)
    }

    /// Nothing to create: SQLite keeps every day in one table.
    #[allow(clippy::unused_async)]
    async fn create_day(_: &mut SqliteConnection, _: TenantNo, _: NaiveDate) -> Result<()> {
        Ok(())
    }

    /// Nothing to lock: the transaction began with `BEGIN IMMEDIATE`, which holds every writer
    /// off.
    #[allow(clippy::unused_async)]
    async fn lock_day(_: &mut SqliteConnection, _: TenantNo, _: NaiveDate) -> Result<()> {
        Ok(())
    }

    /// Deletes the tenant's readings of the day: a range of the primary key.
    async fn remove_day(tx: &mut SqliteConnection, tenant: TenantNo, day: NaiveDate) -> Result<()> {
        let range = day_range(day);
        sqlx::query(
            "DELETE FROM readings WHERE series_id >= $1 AND series_id < $2 AND ts >= $3 AND ts < $4",
        )
        .bind(first_series_id(tenant))
        .bind(first_series_id(tenant + 1))
        .bind(range.start_micros)
        .bind(range.end_micros)
        .execute(tx)
        .await?;
        Ok(())
    }
}

telemetry_store!(
    SqliteStore,
    migrations: "./migrations/sqlite",
    begin: |pool| pool.begin_with("BEGIN IMMEDIATE"),
    for_update: "",
    for_share: "",
);
