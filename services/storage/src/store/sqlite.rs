//! The store on SQLite, the embedded default: one `readings` table clustered by
//! `(series_id, ts)`, written in multi-row statements inside one `BEGIN IMMEDIATE` transaction
//! per group of batches. SQLite has no partitions: an archived day is removed by a range delete
//! on the primary key.

use std::sync::OnceLock;

use chrono::NaiveDate;
use sqlx::{Row as _, SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{Range, Row, SeriesId, TenantNo, alert_sql, day_range, first_series_id, sql};
use crate::domain::Rollup;
use crate::error::{Result, StorageError};

/// The store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// This process's queue of writers of the file (see `write_turn`).
    turns: super::write_turn::Turns,
}

impl SqliteStore {
    /// Wraps a pool.
    pub fn new(pool: SqlitePool) -> Self {
        let turns = super::write_turn::turns_of(pool.connect_options().get_filename());
        Self { pool, turns }
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

/// The last reading of each of a machine's series, from the hot tier or the last minute
/// rollup, whichever is newer (the rollup only when the hot tier has nothing left of the
/// series); `value` is SQLite's bare column of the row with `max(ts)`.
const LATEST: &str = "SELECT metric, max(ts), value FROM ( \
         SELECT s.metric, r.ts, r.value FROM series s \
         JOIN readings r ON r.series_id = s.series_id \
             AND r.ts = (SELECT max(ts) FROM readings WHERE series_id = s.series_id) \
         WHERE s.tenant_no = $1 AND s.machine_id = $2 \
         UNION ALL \
         SELECT s.metric, m.last_ts, m.last FROM series s \
         JOIN rollups_1m m ON m.series_id = s.series_id \
             AND m.bucket = (SELECT max(bucket) FROM rollups_1m WHERE series_id = s.series_id) \
         WHERE s.tenant_no = $1 AND s.machine_id = $2) \
     GROUP BY metric ORDER BY metric";

const BUCKETS: &str = "WITH b AS ( \
       SELECT ts - (((ts % $4) + $4) % $4) AS bucket, min(value) AS lo, max(value) AS hi, \
              sum(value) AS total, count(*) AS n, max(ts) AS last_ts \
       FROM readings WHERE series_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1) \
     SELECT b.bucket, b.lo, b.hi, b.total, b.n, b.last_ts, r.value AS last \
     FROM b JOIN readings r ON r.series_id = $1 AND r.ts = b.last_ts ORDER BY b.bucket";

/// [`BUCKETS`] over the ranges `$2`, a JSON array of `[start, end)` pairs (µs): an index range
/// scan for each, one statement. `CROSS JOIN` makes SQLite loop over the ranges first; left to
/// itself it scanned the series' readings once per range (ten times slower in the tests).
const BUCKETS_IN: &str = "WITH b AS ( \
       SELECT r.ts - (((r.ts % $3) + $3) % $3) AS bucket, min(r.value) AS lo, \
              max(r.value) AS hi, sum(r.value) AS total, count(*) AS n, max(r.ts) AS last_ts \
       FROM json_each($2) e \
       CROSS JOIN readings r ON r.series_id = $1 AND r.ts >= json_extract(e.value, '$[0]') \
                      AND r.ts < json_extract(e.value, '$[1]') \
       GROUP BY 1) \
     SELECT b.bucket, b.lo, b.hi, b.total, b.n, b.last_ts, r.value AS last \
     FROM b JOIN readings r ON r.series_id = $1 AND r.ts = b.last_ts ORDER BY b.bucket";

/// Rolls a tenant's (`$1 <= series_id < $2`) readings in `[$3, $4)` up into minute buckets,
/// replacing what was there. Driven by the tenant's series, so each series' readings are
/// sought by `(series_id, ts)` (`CROSS JOIN` makes SQLite loop over the series first); a range
/// on `series_id` alone would scan all the tenant's days.
const ROLLUP_MINUTES: &str = "INSERT INTO rollups_1m \
       (series_id, bucket, min, max, sum, count, last_ts, last) \
     SELECT g.series_id, g.bucket, g.lo, g.hi, g.total, g.n, g.last_ts, r.value \
     FROM (SELECT r.series_id, r.ts - (((r.ts % 60000000) + 60000000) % 60000000) AS bucket, \
                  min(r.value) AS lo, max(r.value) AS hi, sum(r.value) AS total, \
                  count(*) AS n, max(r.ts) AS last_ts \
           FROM series s CROSS JOIN readings r ON r.series_id = s.series_id \
                AND r.ts >= $3 AND r.ts < $4 \
           WHERE s.series_id >= $1 AND s.series_id < $2 \
           GROUP BY 1, 2) g \
     JOIN readings r ON r.series_id = g.series_id AND r.ts = g.last_ts WHERE true \
     ON CONFLICT (series_id, bucket) DO UPDATE SET min = excluded.min, max = excluded.max, \
       sum = excluded.sum, count = excluded.count, last_ts = excluded.last_ts, \
       last = excluded.last";

/// Rewrites a tenant's hour buckets from its minute buckets in `[$3, $4)`, series by series as
/// above.
const ROLLUP_HOURS: &str = "INSERT INTO rollups_1h \
       (series_id, bucket, min, max, sum, count, last_ts, last) \
     SELECT g.series_id, g.bucket, g.lo, g.hi, g.total, g.n, g.last_ts, m.last \
     FROM (SELECT m.series_id, \
                  m.bucket - (((m.bucket % 3600000000) + 3600000000) % 3600000000) AS bucket, \
                  min(m.min) AS lo, max(m.max) AS hi, sum(m.sum) AS total, sum(m.count) AS n, \
                  max(m.last_ts) AS last_ts \
           FROM series s CROSS JOIN rollups_1m m ON m.series_id = s.series_id \
                AND m.bucket >= $3 AND m.bucket < $4 \
           WHERE s.series_id >= $1 AND s.series_id < $2 \
           GROUP BY 1, 2) g \
     JOIN rollups_1m m ON m.series_id = g.series_id \
       AND m.bucket = g.last_ts - (((g.last_ts % 60000000) + 60000000) % 60000000) WHERE true \
     ON CONFLICT (series_id, bucket) DO UPDATE SET min = excluded.min, max = excluded.max, \
       sum = excluded.sum, count = excluded.count, last_ts = excluded.last_ts, \
       last = excluded.last";

// A rollup's bucket of `$4` µs, aligned to the epoch.
rollups_by_step!(
    "(bucket - ((bucket % $4) + $4) % $4)",
    "((bucket + 59999999) - (((bucket + 59999999) % $4) + $4) % $4)"
);
tenant_statements!(
    "series_id IN (SELECT series_id FROM series WHERE series_id >= $1 AND series_id < $2)"
);
const MERGE_MINUTE: &str = merge_into!("rollups_1m", "min", "max");
const MERGE_HOUR: &str = merge_into!("rollups_1h", "min", "max");

/// The row counts of the prepared multi-row inserts, largest first; a group is written with as
/// few statements as these sizes allow, each prepared once per connection.
const CHUNKS: [usize; 3] = [1024, 32, 1];

/// `INSERT … VALUES (…), … ON CONFLICT DO NOTHING RETURNING …` for `rows` rows.
fn insert_sql(rows: usize, returning: bool) -> &'static str {
    static SQL: [[OnceLock<String>; 3]; 2] = [
        [OnceLock::new(), OnceLock::new(), OnceLock::new()],
        [OnceLock::new(), OnceLock::new(), OnceLock::new()],
    ];
    let slot = CHUNKS
        .iter()
        .position(|&n| n == rows)
        .expect("a chunk size");
    SQL[usize::from(returning)][slot].get_or_init(|| {
        // Anonymous `?` parameters: sqlx looks up every parameter's name, and SQLite finds a
        // named (`$N`) parameter by a linear search, so 3,072 `$N` cost 3,072² lookups.
        let values = vec!["(?, ?, ?)"; rows];
        format!(
            "INSERT INTO readings (series_id, ts, value) VALUES {} ON CONFLICT DO NOTHING{}",
            values.join(", "),
            if returning {
                " RETURNING series_id, ts, value"
            } else {
                ""
            }
        )
    })
}

/// Binds a chunk's rows to its statement.
fn bind_chunk<'q>(
    sql: &'static str,
    chunk: &[Row],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut query = sqlx::query(sql);
    for row in chunk {
        query = query
            .bind(row.series_id)
            .bind(row.ts_micros)
            .bind(row.value);
    }
    query
}

/// Splits rows into the prepared statements' chunk sizes.
fn chunks(rows: &[Row]) -> impl Iterator<Item = &[Row]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = CHUNKS.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

impl SqliteStore {
    /// The buckets of readings in several ranges, in one statement ([`BUCKETS_IN`]).
    async fn buckets_in_ranges(
        connection: &mut SqliteConnection,
        series: SeriesId,
        ranges: &[Range],
        step_micros: i64,
    ) -> Result<Vec<(i64, Rollup)>> {
        let ranges: Vec<[i64; 2]> = ranges
            .iter()
            .map(|r| [r.start_micros, r.end_micros])
            .collect();
        let ranges = serde_json::to_string(&ranges)
            .map_err(|e| StorageError::Internal(format!("ranges as JSON: {e}")))?;
        let rows = sqlx::query(BUCKETS_IN)
            .bind(series)
            .bind(ranges)
            .bind(step_micros)
            .fetch_all(connection)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), rollup_of(r, 1))).collect())
    }

    /// Inserts rows, returning the new ones. Duplicates are rare (a resend after a lost ack),
    /// so the rows go in first without `RETURNING`, under a savepoint: when every row was new,
    /// that is the answer, without reading 20,000 rows back; otherwise the savepoint is rolled
    /// back and the rows go in again, returning the new ones.
    async fn insert_new(tx: &mut SqliteConnection, rows: &[Row]) -> Result<Vec<Row>> {
        sqlx::query("SAVEPOINT insert_new")
            .execute(&mut *tx)
            .await?;
        let mut inserted = 0;
        for chunk in chunks(rows) {
            inserted += bind_chunk(insert_sql(chunk.len(), false), chunk)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if inserted == rows.len() as u64 {
            sqlx::query("RELEASE insert_new").execute(&mut *tx).await?;
            return Ok(rows.to_vec());
        }
        sqlx::query("ROLLBACK TO insert_new")
            .execute(&mut *tx)
            .await?;
        sqlx::query("RELEASE insert_new").execute(&mut *tx).await?;
        let mut new = Vec::with_capacity(inserted as usize);
        for chunk in chunks(rows) {
            let returned = bind_chunk(insert_sql(chunk.len(), true), chunk)
                .fetch_all(&mut *tx)
                .await?;
            new.extend(returned.iter().map(|r| Row {
                series_id: r.get(0),
                ts_micros: r.get(1),
                value: r.get(2),
            }));
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

    /// Deletes the tenant's readings of the day: a range of the primary key for each series.
    async fn remove_day(tx: &mut SqliteConnection, tenant: TenantNo, day: NaiveDate) -> Result<()> {
        let range = day_range(day);
        sqlx::query(
            "DELETE FROM readings WHERE series_id IN \
             (SELECT series_id FROM series WHERE series_id >= $1 AND series_id < $2) \
             AND ts >= $3 AND ts < $4",
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
    begin: |store| {
        let turn = store.turns.clone().lock_owned().await;
        let tx = store.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(super::write_turn::WriteTx::new(tx, Some(turn)))
    },
    for_update: "",
    for_share: "",
);

impl SqliteStore {
    /// SQLite has no log position to tell: its commits are as durable as its settings make
    /// them when they return.
    #[allow(clippy::unused_async)]
    async fn log_position_now(&self) -> Result<Option<crate::store::LogPosition>> {
        Ok(None)
    }

    /// Writes alerts, events and evaluator states in one `BEGIN IMMEDIATE` transaction, a
    /// statement per row (in-process: no round trips to save).
    async fn write_alerts_now(
        &self,
        write: &crate::store::AlertWrite,
    ) -> Result<crate::store::Written> {
        use sqlx::types::Json;
        let mut tx = self.begin_write().await?;
        for alert in &write.alerts {
            sqlx::query(alert_sql::UPSERT_ALERT)
                .bind(db_uuid(alert.alert_id))
                .bind(db_uuid(alert.tenant_id))
                .bind(db_uuid(alert.rule_id))
                .bind(&alert.machine_id)
                .bind(&alert.metric)
                .bind(alert.severity.as_str())
                .bind(alert.state.as_str())
                .bind(i64::try_from(alert.count).unwrap_or(i64::MAX))
                .bind(db_ts(alert.first_seen))
                .bind(db_ts(alert.last_seen))
                .bind(alert.trigger_value)
                .bind(alert.last_value)
                .bind(alert.acknowledged_by.as_deref())
                .bind(alert.acknowledge_time.map(db_ts))
                .bind(alert.resolved_by.as_deref())
                .bind(alert.resolve_time.map(db_ts))
                .execute(&mut *tx)
                .await?;
        }
        let mut cursors = Vec::with_capacity(write.events.len());
        for event in &write.events {
            let tenant = db_uuid(event.alert.tenant_id);
            let cursor: i64 = if event.cursor > 0 {
                // Given out before: kept, and the tenant's cursors stay past it.
                let cursor = i64::try_from(event.cursor).unwrap_or(i64::MAX);
                sqlx::query(alert_sql::CURSOR_AT_LEAST)
                    .bind(&tenant)
                    .bind(cursor)
                    .execute(&mut *tx)
                    .await?;
                cursor
            } else if let Some(stored) = sqlx::query_scalar(alert_sql::EVENT_CURSOR)
                .bind(db_uuid(event.event_id))
                .fetch_optional(&mut *tx)
                .await?
            {
                // Stored by an attempt whose commit this one did not hear of.
                stored
            } else {
                sqlx::query_scalar(alert_sql::NEXT_CURSOR)
                    .bind(&tenant)
                    .fetch_one(&mut *tx)
                    .await?
            };
            sqlx::query(alert_sql::INSERT_EVENT)
                .bind(cursor)
                .bind(&tenant)
                .bind(db_uuid(event.event_id))
                .bind(db_uuid(event.alert.alert_id))
                .bind(event.kind.as_str())
                .bind(db_ts(event.time))
                .bind(Json(&event.alert))
                .execute(&mut *tx)
                .await?;
            cursors.push(u64::try_from(cursor).unwrap_or(0));
        }
        for (key, state) in &write.states {
            let query = match state {
                Some(state) => sqlx::query(alert_sql::UPSERT_RULE_STATE)
                    .bind(db_uuid(key.tenant_id))
                    .bind(db_uuid(key.rule_id))
                    .bind(&key.machine_id)
                    .bind(Json(state)),
                None => sqlx::query(alert_sql::DELETE_RULE_STATE)
                    .bind(db_uuid(key.tenant_id))
                    .bind(db_uuid(key.rule_id))
                    .bind(&key.machine_id),
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(crate::store::Written {
            cursors,
            position: None,
        })
    }
}

alert_store!(SqliteStore, for_update: "");
