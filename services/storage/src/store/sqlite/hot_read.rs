//! The reads of the hot tier and of the rollups on SQLite (`hot.rs` has the writes).

use chrono::NaiveDate;
use sqlx::Row as _;

use super::{SqliteStore, ranges_json, rollups_in_sql};
use crate::{
    error::Result,
    micros::Micros,
    store::{TenantNo, backend::HotReads},
    telemetry::{
        domain::{Fields, Rollup, ingest::DAY_MICROS},
        store::{Latest, Range, Resolution, SeriesId},
    },
};

const LATE_POINTS: &str = "SELECT ts, value FROM late_readings \
     WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";
/// Days as numbers since the epoch (`ts` is µs; SQLite's `/` truncates toward zero, so days
/// before 1970 would be off by one: none are stored).
const LATE_DAYS: &str = "SELECT DISTINCT ts / 86400000000 FROM late_readings \
     WHERE series_id >= $1 AND series_id < $2 ORDER BY 1";
const POINTS: &str = "SELECT ts, value FROM readings \
     WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";
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
/// A series' readings in the ranges `$2`, a JSON array of `[start, end)` pairs (µs): an index
/// range scan for each, one statement. `CROSS JOIN` makes SQLite loop over the ranges first;
/// left to itself it scanned the series' readings once per range (ten times slower in the
/// tests).
const POINTS_IN: &str = "SELECT r.ts, r.value FROM json_each($2) e \
     CROSS JOIN readings r ON r.series_id = $1 AND r.ts >= json_extract(e.value, '$[0]') \
         AND r.ts < json_extract(e.value, '$[1]')";

/// The sum and count of a series' readings in each of the ranges `$2` (as [`POINTS_IN`]'s),
/// in their order: `LEFT JOIN` keeps the ranges without readings, and the ranges' loop.
const SUMS_IN: &str = "SELECT total(r.value), count(r.value) FROM json_each($2) e \
     LEFT JOIN readings r ON r.series_id = $1 AND r.ts >= json_extract(e.value, '$[0]') \
         AND r.ts < json_extract(e.value, '$[1]') \
     GROUP BY e.key ORDER BY e.key";

impl SqliteStore {
    /// The rows `statement` answers for a series (`$1`) in several ranges (`$2`, a JSON array
    /// of `[start, end)` pairs); none for no ranges.
    async fn rows_in(
        &self,
        statement: &'static str,
        series: SeriesId,
        ranges: &[Range],
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query(statement)
            .bind(series)
            .bind(ranges_json(ranges)?)
            .fetch_all(&self.pool)
            .await?)
    }

    /// A series' `(ts, value)` in a range, from `statement` (`$1` series, `[$2, $3)`).
    async fn series_points(
        &self,
        statement: &'static str,
        series: SeriesId,
        range: Range,
    ) -> Result<Vec<(Micros, f64)>> {
        let rows = sqlx::query(statement)
            .bind(series)
            .bind(range.start)
            .bind(range.end)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

impl HotReads for SqliteStore {
    /// The last reading of every metric of a machine, ordered by metric.
    async fn read_latest(&self, tenant: TenantNo, machine_id: &str) -> Result<Vec<Latest>> {
        let rows = sqlx::query(LATEST)
            .bind(tenant)
            .bind(machine_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Latest {
                metric: r.get(0),
                ts: r.get(1),
                value: r.get(2),
            })
            .collect())
    }

    /// The readings of a series in a range, oldest first.
    async fn read_points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>> {
        self.series_points(POINTS, series, range).await
    }

    /// A series' readings in several ranges, in one statement ([`POINTS_IN`]).
    async fn read_points_in(
        &self,
        series: SeriesId,
        ranges: &[Range],
    ) -> Result<Vec<(Micros, f64)>> {
        let rows = self.rows_in(POINTS_IN, series, ranges).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The sum and count of a series' readings in each of several ranges, in one statement
    /// ([`SUMS_IN`]).
    async fn read_sums_in(&self, series: SeriesId, ranges: &[Range]) -> Result<Vec<Rollup>> {
        let rows = self.rows_in(SUMS_IN, series, ranges).await?;
        Ok(rows
            .iter()
            .map(|r| Rollup {
                sum: r.get(0),
                count: r.get::<i64, _>(1) as u64,
                ..Rollup::NONE
            })
            .collect())
    }

    /// A series' rollups of a resolution in several ranges, in one statement
    /// ([`rollups_in_sql`]), with every field filled in: SQLite returns rows, whose fields
    /// cost little next to finding them.
    async fn read_rollups_in(
        &self,
        series: SeriesId,
        resolution: Resolution,
        ranges: &[Range],
        _fields: Fields,
    ) -> Result<Vec<(Micros, Rollup)>> {
        let rows = self
            .rows_in(rollups_in_sql(resolution), series, ranges)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let rollup = Rollup {
                    min: r.get(1),
                    max: r.get(2),
                    sum: r.get(3),
                    count: r.get::<i64, _>(4) as u64,
                    last_ts: r.get(5),
                    last: r.get(6),
                };
                (r.get(0), rollup)
            })
            .collect())
    }

    /// A series' late readings in a range, oldest first.
    async fn read_late_points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>> {
        self.series_points(LATE_POINTS, series, range).await
    }

    /// The days a tenant has late readings of.
    async fn read_late_days(&self, tenant: TenantNo) -> Result<Vec<NaiveDate>> {
        let rows = sqlx::query(LATE_DAYS)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Micros(r.get::<i64, _>(0) * DAY_MICROS).day())
            .collect())
    }
}
