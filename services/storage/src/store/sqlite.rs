//! The store on SQLite, the embedded default: one `readings` table clustered by
//! `(series_id, ts)`, written in multi-row statements inside one `BEGIN IMMEDIATE` transaction
//! per group of batches. SQLite has no partitions: an archived day is removed by a range delete
//! on the primary key.

use sqlx::SqlitePool;

use uuid::Uuid;

use super::{backend::SqlBackend, write_turn::WriteTx};
use crate::error::{Result, StorageError};
use crate::telemetry::store::{Range, Resolution};
use crate::{alerting::store::sql as alert_sql, micros::Micros};

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

fn db_ts(at: Micros) -> DbTs {
    at.0
}

fn micros_of(ts: DbTs) -> Micros {
    Micros(ts)
}

fn db_uuid(id: Uuid) -> DbUuid {
    id.to_string()
}

fn uuid_of(id: DbUuid) -> Result<Uuid> {
    Uuid::parse_str(&id)
        .map_err(|e| StorageError::Internal(format!("tenant id `{id}` in the database: {e}")))
}

/// Rewrites a tenant's buckets of `$table`, `$width` µs wide, from its minute buckets in
/// `[$3, $4)`, series by series as above.
macro_rules! rollup_from_minutes {
    ($table:literal, $width:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (series_id, bucket, min, max, sum, count, last_ts, last) \
             SELECT g.series_id, g.bucket, g.lo, g.hi, g.total, g.n, g.last_ts, m.last \
             FROM (SELECT m.series_id, m.bucket - (((m.bucket % ",
            $width,
            ") + ",
            $width,
            ") % ",
            $width,
            ") AS bucket, \
                          min(m.min) AS lo, max(m.max) AS hi, sum(m.sum) AS total, \
                          sum(m.count) AS n, max(m.last_ts) AS last_ts \
                   FROM series s CROSS JOIN rollups_1m m ON m.series_id = s.series_id \
                        AND m.bucket >= $3 AND m.bucket < $4 \
                   WHERE s.series_id >= $1 AND s.series_id < $2 \
                   GROUP BY 1, 2) g \
             JOIN rollups_1m m ON m.series_id = g.series_id \
               AND m.bucket = g.last_ts - (((g.last_ts % 60000000) + 60000000) % 60000000) \
             WHERE true \
             ON CONFLICT (series_id, bucket) DO UPDATE SET min = excluded.min, \
               max = excluded.max, sum = excluded.sum, count = excluded.count, \
               last_ts = excluded.last_ts, last = excluded.last"
        )
    };
}
const ROLLUP_QUARTERS: &str = rollup_from_minutes!("rollups_15m", "900000000");
const ROLLUP_HOURS: &str = rollup_from_minutes!("rollups_1h", "3600000000");

tenant_statements!(
    "series_id IN (SELECT series_id FROM series WHERE series_id >= $1 AND series_id < $2)"
);
const MERGE_MINUTE: &str = merge_into!("rollups_1m", "min", "max");
const MERGE_QUARTER: &str = merge_into!("rollups_15m", "min", "max");
const MERGE_HOUR: &str = merge_into!("rollups_1h", "min", "max");

/// Ranges as a JSON array of `[start, end]`, which statements read with `json_each`.
fn ranges_json(ranges: &[Range]) -> Result<String> {
    let ranges: Vec<[i64; 2]> = ranges.iter().map(|r| [r.start.0, r.end.0]).collect();
    serde_json::to_string(&ranges)
        .map_err(|e| StorageError::Internal(format!("ranges as JSON: {e}")))
}

impl SqliteStore {}

/// A series' (`$1`) rollups of a resolution whose buckets start in the ranges `$2`, a JSON
/// array of `[start, end)` pairs (µs); `CROSS JOIN` makes SQLite loop over the ranges first.
fn rollups_in_sql(resolution: Resolution) -> &'static str {
    static STATEMENTS: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
        Resolution::ALL.map(|resolution| {
            format!(
                "SELECT m.bucket, m.min, m.max, m.sum, m.count, m.last_ts, m.last \
                 FROM json_each($2) e CROSS JOIN {} m ON m.series_id = $1 \
                     AND m.bucket >= json_extract(e.value, '$[0]') \
                     AND m.bucket < json_extract(e.value, '$[1]')",
                resolution.table()
            )
        })
    });
    &STATEMENTS[resolution.index()]
}

mod hot;
mod hot_read;

impl SqliteStore {
    /// SQLite has no log position to tell: its commits are as durable as its settings make
    /// them when they return.
    #[allow(clippy::unused_async)]
    async fn log_position_now(&self) -> Result<Option<crate::alerting::store::LogPosition>> {
        Ok(None)
    }

    /// Writes alerts, events and evaluator states in one `BEGIN IMMEDIATE` transaction, a
    /// statement per row (in-process: no round trips to save).
    async fn write_alerts_now(
        &self,
        write: &crate::alerting::store::AlertWrite,
    ) -> Result<crate::alerting::store::Written> {
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
                .bind(alert.budget.as_ref().map(Json))
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
        for record in &write.audit {
            mfg_common::audit::outbox::record(
                &mut *tx,
                mfg_common::audit::OutboxTable::STORAGE,
                record,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(crate::alerting::store::Written {
            cursors,
            position: None,
        })
    }
}

impl SqlBackend for SqliteStore {
    type Db = Db;
    type Ts = DbTs;
    type Uuid = DbUuid;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }
    fn ts(at: Micros) -> DbTs {
        db_ts(at)
    }
    fn micros(ts: DbTs) -> Micros {
        micros_of(ts)
    }
    fn uuid(id: Uuid) -> DbUuid {
        db_uuid(id)
    }
    fn uuid_of(id: DbUuid) -> Result<Uuid> {
        uuid_of(id)
    }

    /// Waits for this process's turn at the file, then begins with `BEGIN IMMEDIATE`.
    async fn begin_write(&self) -> std::result::Result<WriteTx<Db>, sqlx::Error> {
        let turn = self.turns.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx::new(tx, Some(turn)))
    }
    async fn write_alerts_now(
        &self,
        write: &crate::alerting::store::AlertWrite,
    ) -> Result<crate::alerting::store::Written> {
        SqliteStore::write_alerts_now(self, write).await
    }
    async fn log_position_now(&self) -> Result<Option<crate::alerting::store::LogPosition>> {
        SqliteStore::log_position_now(self).await
    }
}
