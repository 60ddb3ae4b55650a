//! The reads of the hot tier on PostgreSQL (`hot.rs` has the layout and the writes): each
//! names the tenant's classes, its time bound and its series, and runs as an unnamed statement,
//! so PostgreSQL plans it with those values and touches only the leaves that can hold its rows.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, Row as _};

use super::{
    DbTs, PostgresStore,
    arrays::column,
    db_ts,
    hot::{Class, days_of, ts},
    hot_sql::{
        CLASSES, CLASSES_AND_LAST_DAY, LATE_DAYS, LATE_POINTS, LATEST, LATEST_RECENT, POINTS,
        POINTS_IN, SUMS_IN,
    },
    rollups_in_sql,
};
use crate::{
    error::Result,
    micros::Micros,
    store::{TenantNo, backend::HotReads},
    telemetry::{
        domain::{Field, Fields, Rollup, ingest::DAY_MICROS},
        store::{Latest, Range, Resolution, SeriesId, day_range},
    },
};

impl PostgresStore {
    /// The classes the tenant's days in `range` live in (all its days without a range).
    pub(super) async fn classes(
        connection: &mut PgConnection,
        tenant: TenantNo,
        range: Option<Range>,
    ) -> Result<Vec<Class>> {
        let days = range.map(days_of);
        let rows = sqlx::query(CLASSES)
            .bind(tenant)
            .bind(days.map(|(first, _)| first))
            .bind(days.map(|(_, last)| last))
            .fetch_all(&mut *connection)
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}

impl PostgresStore {
    /// Runs `statement` over a series' ranges (`$1` the series, `[$2[i], $3[i])` the ranges,
    /// `$4` the classes of their days, `[$5, $6)` their span), once for each cluster of ranges
    /// (`clusters`), bounded by its first and last so that it plans only their days' leaves:
    /// a query's two ends, 30 days apart, planned together over the class's 31 leaves cost
    /// 1–4 ms of planning. Returns each statement's one row, in the clusters' order.
    async fn per_cluster(
        &self,
        statement: &'static str,
        series: SeriesId,
        ranges: &[Range],
    ) -> Result<Vec<sqlx::postgres::PgRow>> {
        let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
            return Ok(Vec::new());
        };
        let span = Range {
            start: first.start,
            end: last.end,
        };
        let mut connection = self.pool.acquire().await?;
        let classes = Self::classes(&mut connection, series.tenant(), Some(span)).await?;
        let mut rows = Vec::new();
        for cluster in clusters(ranges) {
            let from: Vec<DateTime<Utc>> = cluster.iter().map(|r| ts(r.start)).collect();
            let to: Vec<DateTime<Utc>> = cluster.iter().map(|r| ts(r.end)).collect();
            let (start, end) = (cluster[0].start, cluster[cluster.len() - 1].end);
            let row = sqlx::query(statement)
                .bind(series)
                .bind(from)
                .bind(to)
                .bind(&classes)
                .bind(ts(start))
                .bind(ts(end))
                .persistent(false)
                .fetch_one(&mut *connection)
                .await?;
            rows.push(row);
        }
        Ok(rows)
    }
}

impl HotReads for PostgresStore {
    /// The last reading of every metric of a machine, ordered by metric: from the leaves of
    /// the tenant's last two hot days ([`LATEST_RECENT`]), else, when a series has no reading
    /// there, from all its days and its rollups ([`LATEST`]).
    async fn read_latest(&self, tenant: TenantNo, machine_id: &str) -> Result<Vec<Latest>> {
        let mut connection = self.pool.acquire().await?;
        let days = sqlx::query(CLASSES_AND_LAST_DAY)
            .bind(tenant)
            .fetch_all(&mut *connection)
            .await?;
        let classes: Vec<Class> = days.iter().map(|row| row.get(0)).collect();
        let last_day = days.iter().map(|row| row.get::<NaiveDate, _>(1)).max();
        if let Some(since) = last_day.and_then(|day| day.pred_opt()) {
            let recent = sqlx::query(LATEST_RECENT)
                .bind(tenant)
                .bind(machine_id)
                .bind(&classes)
                .bind(ts(day_range(since).start))
                .persistent(false)
                .fetch_all(&mut *connection)
                .await?;
            let latest: Option<Vec<Latest>> = recent.iter().map(latest_of).collect();
            if let Some(latest) = latest {
                return Ok(latest);
            }
        }
        let rows = sqlx::query(LATEST)
            .bind(tenant)
            .bind(machine_id)
            .bind(classes)
            .persistent(false)
            .fetch_all(&mut *connection)
            .await?;
        Ok(rows.iter().filter_map(latest_of).collect())
    }

    /// The readings of a series in a range, oldest first.
    async fn read_points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>> {
        let mut connection = self.pool.acquire().await?;
        let classes = Self::classes(&mut connection, series.tenant(), Some(range)).await?;
        let rows = sqlx::query(POINTS)
            .bind(series)
            .bind(ts(range.start))
            .bind(ts(range.end))
            .bind(classes)
            .persistent(false)
            .fetch_all(&mut *connection)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (Micros::of_datetime(r.get(0)), r.get(1)))
            .collect())
    }

    /// A series' readings in several ranges ([`POINTS_IN`], by [`Self::per_cluster`]).
    async fn read_points_in(
        &self,
        series: SeriesId,
        ranges: &[Range],
    ) -> Result<Vec<(Micros, f64)>> {
        let mut points = Vec::new();
        for row in self.per_cluster(POINTS_IN, series, ranges).await? {
            let times: Vec<Micros> = column(&row, 0)?;
            let values: Vec<f64> = column(&row, 1)?;
            points.extend(times.into_iter().zip(values));
        }
        Ok(points)
    }

    /// The sum and count of a series' readings in each of several ranges ([`SUMS_IN`], by
    /// [`Self::per_cluster`]), in their order.
    async fn read_sums_in(&self, series: SeriesId, ranges: &[Range]) -> Result<Vec<Rollup>> {
        let mut sums = Vec::with_capacity(ranges.len());
        for row in self.per_cluster(SUMS_IN, series, ranges).await? {
            let sum: Vec<f64> = column(&row, 0)?;
            let count: Vec<i64> = column(&row, 1)?;
            sums.extend(sum.into_iter().zip(count).map(|(sum, count)| Rollup {
                sum,
                count: count as u64,
                ..Rollup::NONE
            }));
        }
        Ok(sums)
    }

    /// A series' rollups of a resolution in several ranges, with `fields` filled in, in one
    /// statement ([`rollups_in_sql`]).
    async fn read_rollups_in(
        &self,
        series: SeriesId,
        resolution: Resolution,
        ranges: &[Range],
        fields: Fields,
    ) -> Result<Vec<(Micros, Rollup)>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let from: Vec<DbTs> = ranges.iter().map(|r| db_ts(r.start)).collect();
        let to: Vec<DbTs> = ranges.iter().map(|r| db_ts(r.end)).collect();
        let row = sqlx::query(rollups_in_sql(resolution, fields))
            .bind(series)
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .await?;
        let buckets: Vec<Micros> = column(&row, 0)?;
        let counts: Vec<i64> = column(&row, 1)?;
        let mut rollups: Vec<Rollup> = counts
            .into_iter()
            .map(|count| Rollup {
                count: count as u64,
                ..Rollup::NONE
            })
            .collect();
        for (index, &field) in (2..).zip(fields.fields()) {
            fill(&mut rollups, field, &row, index)?;
        }
        Ok(buckets.into_iter().zip(rollups).collect())
    }

    /// A series' late readings in a range, oldest first.
    async fn read_late_points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>> {
        let rows = sqlx::query(LATE_POINTS)
            .bind(series)
            .bind(ts(range.start))
            .bind(ts(range.end))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (Micros::of_datetime(r.get(0)), r.get(1)))
            .collect())
    }

    /// The days a tenant has late readings of.
    async fn read_late_days(&self, tenant: TenantNo) -> Result<Vec<NaiveDate>> {
        let rows = sqlx::query(LATE_DAYS)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Sets `field` of each rollup from the array in column `index`.
fn fill(
    rollups: &mut [Rollup],
    field: Field,
    row: &sqlx::postgres::PgRow,
    index: usize,
) -> Result<()> {
    fn set<T>(rollups: &mut [Rollup], values: Vec<T>, set: impl Fn(&mut Rollup, T)) {
        for (rollup, value) in rollups.iter_mut().zip(values) {
            set(rollup, value);
        }
    }
    match field {
        Field::Min => set(rollups, column(row, index)?, |r, v| r.min = v),
        Field::Max => set(rollups, column(row, index)?, |r, v| r.max = v),
        Field::Sum => set(rollups, column(row, index)?, |r, v| r.sum = v),
        Field::LastTs => set(rollups, column(row, index)?, |r, v| r.last_ts = v),
        Field::Last => set(rollups, column(row, index)?, |r, v| r.last = v),
    }
    Ok(())
}

/// A row of `(metric, ts, value)`; `None` when the series has no reading.
fn latest_of(row: &sqlx::postgres::PgRow) -> Option<Latest> {
    Some(Latest {
        metric: row.get(0),
        ts: Micros::of_datetime(row.get::<Option<DateTime<Utc>>, _>(1)?),
        value: row.get::<Option<f64>, _>(2)?,
    })
}

/// The most statements one read of ranges is split into.
const MAX_CLUSTERS: usize = 4;

/// `ranges` (disjoint, oldest first) in clusters that each span at most two days, when that
/// makes at most [`MAX_CLUSTERS`]; else all in one (ranges spread over many days, such as the
/// minutes a step of no whole minutes splits, cost more in statements than in planning).
fn clusters(ranges: &[Range]) -> Vec<&[Range]> {
    let mut clusters: Vec<&[Range]> = Vec::new();
    let mut start = 0;
    for i in 1..=ranges.len() {
        let split = ranges
            .get(i)
            .is_none_or(|next| next.end - ranges[start].start > 2 * DAY_MICROS);
        if split {
            clusters.push(&ranges[start..i]);
            start = i;
        }
    }
    if clusters.len() > MAX_CLUSTERS {
        vec![ranges]
    } else {
        clusters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_far_apart_are_read_apart_unless_they_are_many() {
        let range = |day: i64| Range {
            start: Micros(day * DAY_MICROS),
            end: Micros(day * DAY_MICROS + 1_000),
        };
        let ends = [range(0), range(1), range(30)];
        assert_eq!(clusters(&ends), [&ends[..2], &ends[2..]]);
        let spread: Vec<Range> = (0..30).map(|day| range(3 * day)).collect();
        assert_eq!(clusters(&spread), [&spread[..]]);
        assert!(clusters(&[]).is_empty());
    }
}
