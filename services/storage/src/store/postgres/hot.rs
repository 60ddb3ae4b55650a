//! The hot tier on PostgreSQL (decision 0002): `readings` partitioned by hot retention class,
//! then by UTC day; its partitions and its writes (the reads are in `hot_read.rs`). `hot_days`
//! records the class each tenant's day lives in; every statement on `readings` names the
//! classes and is planned with its values (an unnamed statement, never a cached generic plan),
//! so it plans and locks only the leaves that can hold its rows.
//!
//! A write holds a key-share lock on the `hot_days` rows of its days; archiving a tenant's day
//! takes that row for update, so it counts and commits exactly what was written. A reading for
//! a day whose share is gone (archived) goes to `late_readings`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, PgConnection, Row as _};

use super::{
    PostgresStore,
    hot_sql::{
        CLASS_OF_DAY, COUNT_DAY, INSERT, INSERT_LATE, LOCK_SHARE, RECORD_DAY, REMOVE_LATE,
        ROLLED_TO, ROLLUP_MINUTES, SHARES, SHARES_LEFT, TIER_BYTES,
    },
};
use crate::{
    error::Result,
    micros::Micros,
    store::{TenantNo, backend::HotTier},
    telemetry::{
        domain::ingest::DAY_MICROS,
        store::{NewRows, Range, Row, SeriesId, day_range},
    },
};

/// A hot retention class in days, as `readings.class` and `hot_days.class` hold it (0: the
/// days stored before classes).
pub(in crate::store) type Class = i32;

/// Serializes the creation and the drop of a class's leaves (`pg_advisory_xact_lock(KEY, class)`).
const LEAF_LOCK: i32 = 4243;

/// A tenant and a UTC day, as days since the Unix epoch.
type DayKey = (TenantNo, i64);

fn day_key(row: &Row) -> DayKey {
    (row.series_id.tenant(), row.ts.0.div_euclid(DAY_MICROS))
}

/// The leaf of a class's day.
fn leaf(class: Class, day: NaiveDate) -> String {
    format!("readings_c{class}_{}", day.format("%Y%m%d"))
}

pub(super) fn ts(at: Micros) -> DateTime<Utc> {
    at.to_datetime()
}

/// The days a range touches, first and last.
pub(super) fn days_of(range: Range) -> (NaiveDate, NaiveDate) {
    (
        range.start.day(),
        (range.end.max(range.start + 1) - 1).day(),
    )
}

impl PostgresStore {
    /// Makes the class's partition and its leaf of the day, if missing.
    async fn create_leaf(tx: &mut PgConnection, class: Class, day: NaiveDate) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LEAF_LOCK)
            .bind(class)
            .execute(&mut *tx)
            .await?;
        let range = day_range(day);
        let (from, to) = (ts(range.start), ts(range.end));
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS readings_c{class} PARTITION OF readings \
             FOR VALUES IN ({class}) PARTITION BY RANGE (ts)"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF readings_c{class} \
             (PRIMARY KEY (series_id, ts)) FOR VALUES FROM ('{}') TO ('{}')",
            leaf(class, day),
            from.to_rfc3339(),
            to.to_rfc3339()
        )))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// The class of each (tenant, day) of `keys` that is in the hot tier, key-share locked in
    /// the order of the keys.
    async fn lock_shares(tx: &mut PgConnection, keys: &[DayKey]) -> Result<Vec<(DayKey, Class)>> {
        let distinct: BTreeSet<DayKey> = keys.iter().copied().collect();
        let (tenants, days): (Vec<TenantNo>, Vec<NaiveDate>) = distinct
            .into_iter()
            .map(|(tenant, day)| (tenant, Micros(day * DAY_MICROS).day()))
            .unzip();
        let shares = sqlx::query(SHARES)
            .bind(tenants)
            .bind(days)
            .fetch_all(&mut *tx)
            .await?;
        Ok(shares
            .iter()
            .map(|row| {
                let day: NaiveDate = row.get(1);
                let key = (row.get(0), day_range(day).start.0.div_euclid(DAY_MICROS));
                (key, row.get(2))
            })
            .collect())
    }

    /// Inserts rows of the hot tier, each in its class. Duplicates are rare (a resend after a
    /// lost ack), so the rows go in first with a binary `COPY` (`copy.rs`), under a savepoint:
    /// when none existed, that is the answer, without sending 20,000 rows back. On a unique violation the
    /// savepoint is rolled back and the rows go in again with `ON CONFLICT DO NOTHING
    /// RETURNING`, which returns the new ones (the first write of a reading wins).
    async fn insert_hot(
        tx: &mut PgConnection,
        rows: &[&Row],
        classes: &[Class],
    ) -> Result<Vec<Row>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query("SAVEPOINT insert_new")
            .execute(&mut *tx)
            .await?;
        let first = super::copy::copy_rows(tx, rows, classes).await;
        match first {
            Ok(()) => {
                sqlx::query("RELEASE insert_new").execute(&mut *tx).await?;
                return Ok(rows.iter().map(|&&row| row).collect());
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
        sqlx::query("ROLLBACK TO insert_new")
            .execute(&mut *tx)
            .await?;
        sqlx::query("RELEASE insert_new").execute(&mut *tx).await?;
        Ok(Self::insert_rows(tx, INSERT, rows, Some(classes)).await?)
    }

    /// Runs one of the insert statements over rows (and their classes), returning the rows it
    /// returns.
    async fn insert_rows(
        tx: &mut PgConnection,
        statement: &'static str,
        rows: &[&Row],
        class: Option<&[Class]>,
    ) -> std::result::Result<Vec<Row>, sqlx::Error> {
        let series: Vec<SeriesId> = rows.iter().map(|r| r.series_id).collect();
        let times: Vec<DateTime<Utc>> = rows.iter().map(|r| ts(r.ts)).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
        let mut query = sqlx::query(statement).bind(series).bind(times).bind(values);
        if let Some(class) = class {
            query = query.bind(class);
        }
        let returned = query.fetch_all(&mut *tx).await?;
        Ok(returned
            .iter()
            .map(|r| Row {
                series_id: r.get(0),
                ts: Micros::of_datetime(r.get(1)),
                value: r.get(2),
            })
            .collect())
    }
}

impl HotTier for PostgresStore {
    type Class = Class;

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
            crate::store::migrations::POSTGRES,
            Some(crate::store::MIGRATIONS_TABLE),
        )
        .run(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the tenant's day in the hot tier with its class, unless the day was recorded
    /// before (its class is kept) or archived already (its readings are late); makes the
    /// class's leaf of the day.
    async fn record_day(
        &self,
        tx: &mut PgConnection,
        tenant: TenantNo,
        day: NaiveDate,
        class: u32,
    ) -> Result<()> {
        let class = Class::try_from(class).unwrap_or(Class::MAX);
        sqlx::query(RECORD_DAY)
            .bind(tenant)
            .bind(day)
            .bind(class)
            .execute(&mut *tx)
            .await?;
        let recorded: Option<Class> = sqlx::query(CLASS_OF_DAY)
            .bind(tenant)
            .bind(day)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get(0));
        if let Some(class) = recorded {
            Self::create_leaf(tx, class, day).await?;
        }
        Ok(())
    }

    /// The classes that have days in the hot tier (class 0, the days from before classes,
    /// is left out: no write goes there).
    async fn tier_bytes(&self) -> Result<(u64, u64)> {
        let row = sqlx::query(TIER_BYTES).fetch_one(&self.pool).await?;
        let bytes = |i: usize| u64::try_from(row.get::<i64, _>(i)).unwrap_or(0);
        Ok((bytes(0), bytes(1)))
    }

    async fn read_classes_in_use(&self) -> Result<Vec<u32>> {
        let rows = sqlx::query("SELECT DISTINCT class FROM hot_days WHERE class > 0")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| u32::try_from(row.get::<Class, _>(0)).ok())
            .collect())
    }

    /// Makes the leaves of `days` of each class that lacks them, one transaction a leaf, so
    /// that no write waits behind more than one.
    async fn create_leaves(&self, classes: &[u32], days: &[NaiveDate]) -> Result<()> {
        for &class in classes {
            let class = Class::try_from(class).unwrap_or(Class::MAX);
            for &day in days {
                let exists: bool = sqlx::query("SELECT to_regclass($1) IS NOT NULL")
                    .bind(leaf(class, day))
                    .fetch_one(&self.pool)
                    .await?
                    .get(0);
                if !exists {
                    let mut tx = self.pool.begin().await?;
                    Self::create_leaf(&mut tx, class, day).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(())
    }

    /// The tenants' `rolled_to` (those rolled up at all), share-locked until the transaction
    /// ends, in one round trip whatever the number of tenants.
    async fn rolled_to_of(
        tx: &mut PgConnection,
        tenants: &[TenantNo],
    ) -> Result<HashMap<TenantNo, Micros>> {
        let rows = sqlx::query(ROLLED_TO)
            .bind(tenants)
            .fetch_all(&mut *tx)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let rolled_to: Option<DateTime<Utc>> = row.get(1);
                Some((row.get(0), Micros::of_datetime(rolled_to?)))
            })
            .collect())
    }

    /// Inserts rows, returning the new ones: rows of days in the hot tier into their class,
    /// rows of days already archived into `late_readings`. The days' shares stay locked until
    /// the transaction ends, so archiving waits for this write.
    async fn insert_new(&self, tx: &mut PgConnection, rows: &[Row]) -> Result<NewRows> {
        let keys: Vec<DayKey> = rows.iter().map(day_key).collect();
        let shares = Self::lock_shares(tx, &keys).await?;
        let mut hot = Vec::with_capacity(rows.len());
        let mut classes = Vec::with_capacity(rows.len());
        let mut late = Vec::new();
        // Rows come grouped by batch, so mostly a run of one tenant's day: one look-up a run.
        let mut last: Option<(DayKey, Option<Class>)> = None;
        for (row, key) in rows.iter().zip(keys) {
            let class = match last {
                Some((known, class)) if known == key => class,
                _ => {
                    let class = shares.iter().find(|(share, _)| *share == key).map(|s| s.1);
                    last = Some((key, class));
                    class
                }
            };
            match class {
                Some(class) => {
                    hot.push(row);
                    classes.push(class);
                }
                None => late.push(row),
            }
        }
        let mut new = NewRows {
            hot: Self::insert_hot(tx, &hot, &classes).await?,
            late: Vec::new(),
        };
        if !late.is_empty() {
            new.late = Self::insert_rows(tx, INSERT_LATE, &late, None).await?;
        }
        Ok(new)
    }

    /// Rolls the tenant's readings in `range` up into minute buckets; returns the buckets
    /// written.
    async fn roll_up_minutes(tx: &mut PgConnection, tenant: TenantNo, range: Range) -> Result<u64> {
        let classes = Self::classes(tx, tenant, Some(range)).await?;
        if classes.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(ROLLUP_MINUTES)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(ts(range.start))
            .bind(ts(range.end))
            .bind(classes)
            .persistent(false)
            .execute(&mut *tx)
            .await?
            .rows_affected())
    }

    /// Holds writes to the tenant's day off until the transaction ends, and the commits of
    /// other tenants' days of its class: the last of a leaf's tenants drops it, which must not
    /// wait for another commit that reads it while that one waits for this one. The day's
    /// class, or `None` when the day is not in the hot tier.
    async fn lock_day(
        tx: &mut PgConnection,
        tenant: TenantNo,
        day: NaiveDate,
    ) -> Result<Option<Class>> {
        // Bounded, so the archive job gives up (and retries on its next run) rather than stall
        // ingest behind it.
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await?;
        let Some(class) = sqlx::query(LOCK_SHARE)
            .bind(tenant)
            .bind(day)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get::<Class, _>(0))
        else {
            return Ok(None);
        };
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LEAF_LOCK)
            .bind(class)
            .execute(&mut *tx)
            .await?;
        Ok(Some(class))
    }

    /// How many readings the tenant's day holds.
    async fn count_day(
        tx: &mut PgConnection,
        tenant: TenantNo,
        day: NaiveDate,
        class: Class,
    ) -> Result<u64> {
        let range = day_range(day);
        let count: i64 = sqlx::query(COUNT_DAY)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(ts(range.start))
            .bind(ts(range.end))
            .bind(class)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Removes the tenant's day from the hot tier; drops the class's leaf of the day with its
    /// last share: retention never deletes row by row.
    async fn remove_day(
        tx: &mut PgConnection,
        tenant: TenantNo,
        day: NaiveDate,
        class: Class,
    ) -> Result<()> {
        sqlx::query(crate::store::sql::FORGET_DAY)
            .bind(tenant)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LEAF_LOCK)
            .bind(class)
            .execute(&mut *tx)
            .await?;
        let shares_left: bool = sqlx::query(SHARES_LEFT)
            .bind(class)
            .bind(day)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        if !shares_left {
            sqlx::query(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {}",
                leaf(class, day)
            )))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Deletes a tenant's late readings of a day; returns how many.
    async fn remove_late(tx: &mut PgConnection, tenant: TenantNo, day: NaiveDate) -> Result<u64> {
        let range = day_range(day);
        Ok(sqlx::query(REMOVE_LATE)
            .bind(SeriesId::first_of(tenant))
            .bind(SeriesId::end_of(tenant))
            .bind(ts(range.start))
            .bind(ts(range.end))
            .execute(&mut *tx)
            .await?
            .rows_affected())
    }
}
