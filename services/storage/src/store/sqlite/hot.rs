//! The hot tier on SQLite: one `readings` table clustered by `(series_id, ts)`, written in
//! multi-row statements; `hot_days` records each tenant's day with its hot retention class
//! (which changes nothing else here). An archived day is removed by a range delete on the
//! primary key; a reading for a day already archived goes to `late_readings`.

use std::{collections::HashSet, sync::OnceLock};

use chrono::NaiveDate;
use sqlx::{Row as _, SqliteConnection};

use super::SqliteStore;
use crate::store::backend::HotTier;
use crate::{
    error::Result,
    micros::Micros,
    store::TenantNo,
    telemetry::{
        domain::ingest::DAY_MICROS,
        store::{NewRows, Range, Row, SeriesId, day_range},
    },
};

/// A day already archived is not recorded again: readings of it are late.
const RECORD_DAY: &str = "INSERT INTO hot_days (tenant_no, day, class) \
     SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM cold_objects \
       WHERE tenant_no = $1 AND day = $2 AND state = 'committed') \
     ON CONFLICT DO NOTHING";
const INSERT_LATE: &str =
    "INSERT INTO late_readings (series_id, ts, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const REMOVE_LATE: &str = "DELETE FROM late_readings \
     WHERE series_id >= $1 AND series_id < $2 AND ts >= $3 AND ts < $4";
const CLASS_OF_DAY: &str = "SELECT class FROM hot_days WHERE tenant_no = $1 AND day = $2";
/// A tenant and a UTC day, as days since the Unix epoch.
type DayKey = (TenantNo, i64);

fn day_key(row: &Row) -> DayKey {
    (row.series_id.tenant(), row.ts.0.div_euclid(DAY_MICROS))
}

/// A tenant's readings of a day: its series each sought by `(series_id, ts)`.
const COUNT_DAY: &str = "SELECT count(*) FROM readings WHERE series_id IN \
     (SELECT series_id FROM series WHERE series_id >= $1 AND series_id < $2) \
     AND ts >= $3 AND ts < $4";

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
        query = query.bind(row.series_id).bind(row.ts).bind(row.value);
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
    /// Which of the (tenant, day) pairs of the rows are in the hot tier. The transaction began
    /// with `BEGIN IMMEDIATE`: no archive commits meanwhile.
    async fn hot_days_of(tx: &mut SqliteConnection, rows: &[Row]) -> Result<HashSet<DayKey>> {
        let keys: HashSet<DayKey> = rows.iter().map(day_key).collect();
        let mut hot = HashSet::with_capacity(keys.len());
        for key in keys {
            let (tenant, day) = key;
            let found = sqlx::query(CLASS_OF_DAY)
                .bind(tenant)
                .bind(Micros(day * DAY_MICROS).day())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_some() {
                hot.insert(key);
            }
        }
        Ok(hot)
    }

    /// Inserts rows of the hot tier, returning the new ones. Duplicates are rare (a resend
    /// after a lost ack), so the rows go in first without `RETURNING`, under a savepoint: when
    /// every row was new, that is the answer, without reading 20,000 rows back; otherwise the
    /// savepoint is rolled back and the rows go in again, returning the new ones.
    async fn insert_hot(tx: &mut SqliteConnection, rows: &[Row]) -> Result<Vec<Row>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
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
                ts: r.get(1),
                value: r.get(2),
            }));
        }
        Ok(new)
    }
}

impl HotTier for SqliteStore {
    type Class = i64;

    const ROLLUP_QUARTERS: &'static str = super::ROLLUP_QUARTERS;
    const ROLLUP_HOURS: &'static str = super::ROLLUP_HOURS;
    const EXPIRE_MINUTES: &'static str = super::EXPIRE_MINUTES;
    const EXPIRE_QUARTERS: &'static str = super::EXPIRE_QUARTERS;
    const EXPIRE_HOURS: &'static str = super::EXPIRE_HOURS;
    const MERGE_MINUTE: &'static str = super::MERGE_MINUTE;
    const MERGE_QUARTER: &'static str = super::MERGE_QUARTER;
    const MERGE_HOUR: &'static str = super::MERGE_HOUR;

    async fn migrate_hot(&self) -> Result<()> {
        mfg_common::db::migrator(
            crate::store::migrations::SQLITE,
            Some(crate::store::MIGRATIONS_TABLE),
        )
        .run(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the tenant's day with its class, unless it was recorded before. SQLite keeps
    /// every day in one table: there is nothing to create.
    async fn record_day(
        &self,
        tx: &mut SqliteConnection,
        tenant: TenantNo,
        day: NaiveDate,
        class: u32,
    ) -> Result<()> {
        sqlx::query(RECORD_DAY)
            .bind(tenant)
            .bind(day)
            .bind(class)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// The classes that have days in the hot tier.
    /// From `dbstat`, which reads every page of the tables: cheap for the embedded default's
    /// sizes, and sampled every few minutes.
    async fn tier_bytes(&self) -> Result<(u64, u64)> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM \
              sqlite_schema WHERE tbl_name IN ('readings', 'late_readings'))), \
             (SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM \
              sqlite_schema WHERE tbl_name IN ('rollups_1m', 'rollups_15m', 'rollups_1h')))",
        )
        .fetch_one(&self.pool)
        .await?;
        let bytes = |i: usize| u64::try_from(row.get::<i64, _>(i)).unwrap_or(0);
        Ok((bytes(0), bytes(1)))
    }

    async fn read_classes_in_use(&self) -> Result<Vec<u32>> {
        let rows = sqlx::query("SELECT DISTINCT class FROM hot_days WHERE class > 0")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| u32::try_from(row.get::<i64, _>(0)).ok())
            .collect())
    }

    /// SQLite keeps every day in one table: there is nothing to create ahead.
    #[allow(clippy::unused_async)]
    async fn create_leaves(&self, _classes: &[u32], _days: &[NaiveDate]) -> Result<()> {
        Ok(())
    }

    /// The tenants' `rolled_to` (those rolled up at all). The transaction began with
    /// `BEGIN IMMEDIATE`: the rollup job waits for it.
    async fn rolled_to_of(
        tx: &mut SqliteConnection,
        tenants: &[TenantNo],
    ) -> Result<std::collections::HashMap<TenantNo, Micros>> {
        let mut rolled_to = std::collections::HashMap::new();
        for &tenant in tenants {
            let row = sqlx::query("SELECT rolled_to FROM rollup_state WHERE tenant_no = $1")
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(ts) = row.and_then(|r| r.get::<Option<Micros>, _>(0)) {
                rolled_to.insert(tenant, ts);
            }
        }
        Ok(rolled_to)
    }

    /// Inserts rows, returning the new ones: rows of days in the hot tier into `readings`,
    /// rows of days already archived into `late_readings`.
    async fn insert_new(&self, tx: &mut SqliteConnection, rows: &[Row]) -> Result<NewRows> {
        let hot_days = Self::hot_days_of(tx, rows).await?;
        let (hot, late): (Vec<Row>, Vec<Row>) = rows
            .iter()
            .partition(|row| hot_days.contains(&day_key(row)));
        let mut new = NewRows {
            hot: Self::insert_hot(tx, &hot).await?,
            late: Vec::new(),
        };
        for row in late {
            let stored = sqlx::query(INSERT_LATE)
                .bind(row.series_id)
                .bind(row.ts)
                .bind(row.value)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if stored == 1 {
                new.late.push(row);
            }
        }
        Ok(new)
    }

    /// Rolls the tenant's readings in `range` up into minute buckets; returns the buckets
    /// written.
    async fn roll_up_minutes(
        tx: &mut SqliteConnection,
        tenant: TenantNo,
        range: Range,
    ) -> Result<u64> {
        Ok(sqlx::query(ROLLUP_MINUTES)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(range.start)
            .bind(range.end)
            .execute(tx)
            .await?
            .rows_affected())
    }

    /// The tenant's day's class, or `None` when the day is not in the hot tier. Nothing to
    /// lock: the transaction began with `BEGIN IMMEDIATE`, which holds every writer off.
    async fn lock_day(
        tx: &mut SqliteConnection,
        tenant: TenantNo,
        day: NaiveDate,
    ) -> Result<Option<i64>> {
        let class = sqlx::query(CLASS_OF_DAY)
            .bind(tenant)
            .bind(day)
            .fetch_optional(tx)
            .await?;
        Ok(class.map(|row| row.get(0)))
    }

    /// How many readings the tenant's day holds.
    async fn count_day(
        tx: &mut SqliteConnection,
        tenant: TenantNo,
        day: NaiveDate,
        _class: i64,
    ) -> Result<u64> {
        let range = day_range(day);
        let count: i64 = sqlx::query(COUNT_DAY)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(range.start)
            .bind(range.end)
            .fetch_one(tx)
            .await?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Removes the tenant's day from the hot tier: its readings (a range of the primary key
    /// for each series) and its record.
    async fn remove_day(
        tx: &mut SqliteConnection,
        tenant: TenantNo,
        day: NaiveDate,
        _class: i64,
    ) -> Result<()> {
        let range = day_range(day);
        sqlx::query(
            "DELETE FROM readings WHERE series_id IN \
             (SELECT series_id FROM series WHERE series_id >= $1 AND series_id < $2) \
             AND ts >= $3 AND ts < $4",
        )
        .bind(SeriesId::first_of(tenant))
        .bind(SeriesId::end_of(tenant))
        .bind(range.start)
        .bind(range.end)
        .execute(&mut *tx)
        .await?;
        sqlx::query(crate::store::sql::FORGET_DAY)
            .bind(tenant)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Deletes a tenant's late readings of a day; returns how many.
    async fn remove_late(
        tx: &mut SqliteConnection,
        tenant: TenantNo,
        day: NaiveDate,
    ) -> Result<u64> {
        let range = day_range(day);
        Ok(sqlx::query(REMOVE_LATE)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(range.start)
            .bind(range.end)
            .execute(tx)
            .await?
            .rows_affected())
    }
}
