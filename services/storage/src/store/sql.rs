//! What both backends share: the SQL text that is the same on both (`$N` placeholders bind by
//! number on PostgreSQL and SQLite), the merge of late readings into rollups, and
//! [`telemetry_store!`], the body of the store, generated for each backend. The macro keeps one
//! copy of the logic; each backend's file says what differs: how a transaction that writes
//! starts, how rows are locked, how timestamps and tenant ids are stored, and the statements
//! whose SQL differs.
//!
//! A backend module defines, beside its store type:
//! - `type DbTs` with `db_ts(µs) -> DbTs` and `micros_of(DbTs) -> i64`;
//! - `type DbUuid` with `db_uuid(Uuid) -> DbUuid` and `uuid_of(DbUuid) -> Result<Uuid>`;
//! - the statements `LATEST`, `BUCKETS`, `ROLLUP_MINUTES`, `ROLLUP_HOURS`, `MERGE_MINUTE`,
//!   `MERGE_HOUR`; through `rollups_by_step!` `MINUTE_ROLLUPS_BY_STEP` and
//!   `HOUR_ROLLUPS_BY_STEP`; through `tenant_statements!` `COUNT_RANGE`, `EXPIRE_MINUTES` and
//!   `EXPIRE_HOURS`;
//! - the inherent functions `insert_new`, `create_day`, `lock_day` and `remove_day`.

use std::collections::{BTreeMap, HashMap};

use super::{Resolution, Row, SeriesId, TenantNo, tenant_of};
use crate::domain::{Rollup, bucket_start};

pub(super) const SELECT_TENANT: &str = "SELECT tenant_no FROM storage_tenants WHERE tenant_id = $1";
pub(super) const REGISTER_TENANT: &str = "INSERT INTO storage_tenants (tenant_id) VALUES ($1) \
     ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = excluded.tenant_id RETURNING tenant_no";
pub(super) const REGISTER_ROLLUP_STATE: &str =
    "INSERT INTO rollup_state (tenant_no) VALUES ($1) ON CONFLICT DO NOTHING";
pub(super) const TENANTS: &str =
    "SELECT tenant_no, tenant_id FROM storage_tenants ORDER BY tenant_no";
pub(super) const SELECT_SERIES: &str =
    "SELECT series_id FROM series WHERE tenant_no = $1 AND machine_id = $2 AND metric = $3";
pub(super) const INSERT_SERIES: &str =
    "INSERT INTO series (series_id, tenant_no, machine_id, metric) VALUES ($1, $2, $3, $4)";
pub(super) const SET_NEXT_SERIES: &str =
    "UPDATE storage_tenants SET next_series = $2 WHERE tenant_no = $1";
pub(super) const SERIES_OF: &str = "SELECT series_id, machine_id, metric FROM series \
     WHERE tenant_no = $1 ORDER BY machine_id, metric";
pub(super) const HOT_DAYS: &str =
    "SELECT day FROM hot_partitions WHERE tenant_no = $1 ORDER BY day";
pub(super) const RECORD_DAY: &str =
    "INSERT INTO hot_partitions (tenant_no, day) VALUES ($1, $2) ON CONFLICT DO NOTHING";
pub(super) const FORGET_DAY: &str = "DELETE FROM hot_partitions WHERE tenant_no = $1 AND day = $2";
pub(super) const POINTS: &str = "SELECT ts, value FROM readings \
     WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";
pub(super) const ROLLUP_STATE: &str =
    "SELECT rolled_to, warm_from FROM rollup_state WHERE tenant_no = $1";
pub(super) const SET_ROLLED_TO: &str =
    "UPDATE rollup_state SET rolled_to = $2 WHERE tenant_no = $1";
pub(super) const SET_WARM_FROM: &str =
    "UPDATE rollup_state SET warm_from = $2 WHERE tenant_no = $1";
pub(super) const PENDING_OBJECT: &str = "SELECT object_key FROM cold_objects \
     WHERE tenant_no = $1 AND day = $2 AND state = 'pending'";
pub(super) const INSERT_PENDING_OBJECT: &str =
    "INSERT INTO cold_objects (object_key, tenant_no, day, state) VALUES ($1, $2, $3, 'pending')";
pub(super) const COMMIT_OBJECT: &str = "UPDATE cold_objects SET state = 'committed', \
     readings = $2, bytes = $3, commit_time = $4 WHERE object_key = $1 AND state = 'pending'";
pub(super) const COLD_OBJECTS: &str = "SELECT object_key, day, readings, bytes FROM cold_objects \
     WHERE tenant_no = $1 AND state = 'committed' AND day >= $2 AND day <= $3 \
     ORDER BY day, object_key";
pub(super) const FORGET_OBJECT: &str = "DELETE FROM cold_objects WHERE object_key = $1";

/// The rollups that new rows older than their tenant's `rolled_to` add to the warm tier, per
/// resolution, keyed by series and bucket start: what a writer merges in its transaction.
pub(super) fn late_rollups(
    new: &[Row],
    rolled_to: &HashMap<TenantNo, i64>,
) -> [BTreeMap<(SeriesId, i64), Rollup>; 2] {
    let mut merged = [BTreeMap::new(), BTreeMap::new()];
    for row in new {
        let Some(&rolled_to) = rolled_to.get(&tenant_of(row.series_id)) else {
            continue;
        };
        if row.ts_micros >= rolled_to {
            continue;
        }
        for (resolution, buckets) in [Resolution::Minute, Resolution::Hour]
            .into_iter()
            .zip(merged.iter_mut())
        {
            let key = (
                row.series_id,
                bucket_start(row.ts_micros, resolution.micros()),
            );
            buckets
                .entry(key)
                .and_modify(|r: &mut Rollup| r.add(row.ts_micros, row.value))
                .or_insert_with(|| Rollup::of(row.ts_micros, row.value));
        }
    }
    merged
}

/// `MINUTE_ROLLUPS_BY_STEP` and `HOUR_ROLLUPS_BY_STEP`: a series' rollups in `[$2, $3)` merged
/// into buckets of `$4` µs (`$bucket`, the dialect's expression of a rollup's step bucket). Min,
/// max, sum and count by hashed groups; the last value from the group's latest rollup, found by
/// its primary key (rollups of one series never overlap in time), so nothing is sorted.
macro_rules! rollups_by_step {
    ($bucket:literal) => {
        const MINUTE_ROLLUPS_BY_STEP: &str = rollups_by_step!("rollups_1m", $bucket);
        const HOUR_ROLLUPS_BY_STEP: &str = rollups_by_step!("rollups_1h", $bucket);
    };
    ($table:literal, $bucket:literal) => {
        concat!(
            "SELECT g.b, g.lo, g.hi, g.total, g.n, r.last_ts, r.last \
             FROM (SELECT ",
            $bucket,
            " AS b, min(min) AS lo, max(max) AS hi, sum(sum) AS total, \
                          CAST(sum(count) AS BIGINT) AS n, max(bucket) AS latest \
                   FROM ",
            $table,
            " WHERE series_id = $1 AND bucket >= $2 AND bucket < $3 \
                   GROUP BY 1) g \
             JOIN ",
            $table,
            " r ON r.series_id = $1 AND r.bucket = g.latest \
             ORDER BY g.b"
        )
    };
}

/// The statements over all of a tenant's series (`$1 <= series_id < $2`): `COUNT_RANGE` (its
/// readings in `[$3, $4)`), `EXPIRE_MINUTES` and `EXPIRE_HOURS` (its rollups before `$3`).
/// `$of_tenant` is the dialect's predicate: PostgreSQL prunes partitions by the range itself;
/// SQLite seeks `(series_id, …)` for each of the tenant's series, where a range on `series_id`
/// alone would walk all the tenant's rows.
macro_rules! tenant_statements {
    ($of_tenant:literal) => {
        const COUNT_RANGE: &str = concat!(
            "SELECT count(*) FROM readings WHERE ",
            $of_tenant,
            " AND ts >= $3 AND ts < $4"
        );
        const EXPIRE_MINUTES: &str = concat!(
            "DELETE FROM rollups_1m WHERE ",
            $of_tenant,
            " AND bucket < $3"
        );
        const EXPIRE_HOURS: &str = concat!(
            "DELETE FROM rollups_1h WHERE ",
            $of_tenant,
            " AND bucket < $3"
        );
    };
}

/// `INSERT … ON CONFLICT DO UPDATE` merging one rollup (`$1` series, `$2` bucket, then min,
/// max, sum, count, last_ts, last) into a bucket of `$table`. `$least` and `$greatest` name the
/// dialect's two-argument minimum and maximum: `least`/`greatest` on PostgreSQL, the scalar
/// `min`/`max` on SQLite.
macro_rules! merge_into {
    ($table:literal, $least:literal, $greatest:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (series_id, bucket, min, max, sum, count, last_ts, last) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (series_id, bucket) DO UPDATE SET min = ",
            $least,
            "(",
            $table,
            ".min, excluded.min), max = ",
            $greatest,
            "(",
            $table,
            ".max, excluded.max), sum = ",
            $table,
            ".sum + excluded.sum, count = ",
            $table,
            ".count + excluded.count, last = CASE WHEN excluded.last_ts > ",
            $table,
            ".last_ts THEN excluded.last ELSE ",
            $table,
            ".last END, last_ts = ",
            $greatest,
            "(",
            $table,
            ".last_ts, excluded.last_ts)"
        )
    };
}

/// Generates `impl TelemetryStore` for a backend's store type.
macro_rules! telemetry_store {
    (
        $store:ident,
        migrations: $migrations:literal,
        begin: |$pool:ident| $begin:expr,
        for_update: $for_update:literal,
        for_share: $for_share:literal $(,)?
    ) => {
        impl $store {
            async fn begin_write(
                &self,
            ) -> ::std::result::Result<::sqlx::Transaction<'static, Db>, ::sqlx::Error> {
                let $pool = &self.pool;
                $begin.await
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::TelemetryStore for $store {
            async fn migrate(&self) -> $crate::error::Result<()> {
                let mut migrator = ::sqlx::migrate!($migrations);
                migrator.dangerous_set_table_name($crate::store::MIGRATIONS_TABLE);
                migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::error::Result<()> {
                ::sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn register_tenant(
                &self,
                tenant: ::uuid::Uuid,
            ) -> $crate::error::Result<$crate::store::TenantNo> {
                if let Some(no) = self.find_tenant(tenant).await? {
                    return Ok(no);
                }
                let mut tx = self.begin_write().await?;
                let no: $crate::store::TenantNo = ::sqlx::query(sql::REGISTER_TENANT)
                    .bind(db_uuid(tenant))
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                ::sqlx::query(sql::REGISTER_ROLLUP_STATE)
                    .bind(no)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(no)
            }

            async fn find_tenant(
                &self,
                tenant: ::uuid::Uuid,
            ) -> $crate::error::Result<Option<$crate::store::TenantNo>> {
                let row = ::sqlx::query(sql::SELECT_TENANT)
                    .bind(db_uuid(tenant))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            async fn tenants(
                &self,
            ) -> $crate::error::Result<Vec<($crate::store::TenantNo, ::uuid::Uuid)>> {
                let rows = ::sqlx::query(sql::TENANTS).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok((r.get(0), uuid_of(r.get(1))?)))
                    .collect()
            }

            async fn resolve_series(
                &self,
                tenant: $crate::store::TenantNo,
                keys: &[$crate::store::SeriesKey],
            ) -> $crate::error::Result<Vec<$crate::store::SeriesId>> {
                let mut tx = self.begin_write().await?;
                // Locking the tenant's row serializes id allocation per tenant.
                let mut next: i64 = ::sqlx::query(concat!(
                    "SELECT next_series FROM storage_tenants WHERE tenant_no = $1",
                    $for_update
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                let allocated = next;
                let mut ids = Vec::with_capacity(keys.len());
                for key in keys {
                    let found = ::sqlx::query(sql::SELECT_SERIES)
                        .bind(tenant)
                        .bind(&key.machine_id)
                        .bind(&key.metric)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let id = match found {
                        Some(row) => row.get(0),
                        None => {
                            let id = $crate::store::first_series_id(tenant) + next;
                            next += 1;
                            ::sqlx::query(sql::INSERT_SERIES)
                                .bind(id)
                                .bind(tenant)
                                .bind(&key.machine_id)
                                .bind(&key.metric)
                                .execute(&mut *tx)
                                .await?;
                            id
                        }
                    };
                    ids.push(id);
                }
                if next != allocated {
                    ::sqlx::query(sql::SET_NEXT_SERIES)
                        .bind(tenant)
                        .bind(next)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(ids)
            }

            async fn find_series(
                &self,
                tenant: $crate::store::TenantNo,
                key: &$crate::store::SeriesKey,
            ) -> $crate::error::Result<Option<$crate::store::SeriesId>> {
                let row = ::sqlx::query(sql::SELECT_SERIES)
                    .bind(tenant)
                    .bind(&key.machine_id)
                    .bind(&key.metric)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get(0)))
            }

            async fn series_of(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<Vec<($crate::store::SeriesId, $crate::store::SeriesKey)>>
            {
                let rows = ::sqlx::query(sql::SERIES_OF)
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (
                            r.get(0),
                            $crate::store::SeriesKey {
                                machine_id: r.get(1),
                                metric: r.get(2),
                            },
                        )
                    })
                    .collect())
            }

            async fn ensure_day(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
            ) -> $crate::error::Result<()> {
                // A write transaction from the start: on SQLite a deferred one that turns into a
                // writer fails at once with SQLITE_BUSY when another writer holds the lock.
                let mut tx = self.begin_write().await?;
                Self::create_day(&mut tx, tenant, day).await?;
                ::sqlx::query(sql::RECORD_DAY)
                    .bind(tenant)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn hot_days(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<Vec<::chrono::NaiveDate>> {
                let rows = ::sqlx::query(sql::HOT_DAYS)
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }

            async fn insert(
                &self,
                rows: &[$crate::store::Row],
            ) -> $crate::error::Result<Vec<bool>> {
                let mut tenants: Vec<$crate::store::TenantNo> = rows
                    .iter()
                    .map(|r| $crate::store::tenant_of(r.series_id))
                    .collect();
                tenants.sort_unstable();
                tenants.dedup();
                let mut tx = self.begin_write().await?;
                // Reading `rolled_to` under a share lock holds the rollup job off until this
                // transaction commits: a row below it is merged here, a row above it is rolled
                // up by the job.
                let mut rolled_to = ::std::collections::HashMap::new();
                for &tenant in &tenants {
                    let row = ::sqlx::query(concat!(
                        "SELECT rolled_to FROM rollup_state WHERE tenant_no = $1",
                        $for_share
                    ))
                    .bind(tenant)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(ts) = row.and_then(|r| r.get::<Option<DbTs>, _>(0)) {
                        rolled_to.insert(tenant, micros_of(ts));
                    }
                }
                let new = Self::insert_new(&mut tx, rows).await?;
                if !rolled_to.is_empty() {
                    let [minutes, hours] = sql::late_rollups(&new, &rolled_to);
                    for (statement, buckets) in [(MERGE_MINUTE, minutes), (MERGE_HOUR, hours)] {
                        for ((series, bucket), r) in buckets {
                            ::sqlx::query(statement)
                                .bind(series)
                                .bind(db_ts(bucket))
                                .bind(r.min)
                                .bind(r.max)
                                .bind(r.sum)
                                .bind(r.count as i64)
                                .bind(db_ts(r.last_ts_micros))
                                .bind(r.last)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                if new.len() == rows.len() {
                    return Ok(vec![true; rows.len()]);
                }
                let new: ::std::collections::HashSet<(i64, i64)> =
                    new.iter().map(|r| (r.series_id, r.ts_micros)).collect();
                Ok(rows
                    .iter()
                    .map(|r| new.contains(&(r.series_id, r.ts_micros)))
                    .collect())
            }

            async fn latest(
                &self,
                tenant: $crate::store::TenantNo,
                machine_id: &str,
            ) -> $crate::error::Result<Vec<$crate::store::Latest>> {
                let rows = ::sqlx::query(LATEST)
                    .bind(tenant)
                    .bind(machine_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| $crate::store::Latest {
                        metric: r.get(0),
                        ts_micros: micros_of(r.get(1)),
                        value: r.get(2),
                    })
                    .collect())
            }

            async fn points(
                &self,
                series: $crate::store::SeriesId,
                range: $crate::store::Range,
            ) -> $crate::error::Result<Vec<(i64, f64)>> {
                let rows = ::sqlx::query(sql::POINTS)
                    .bind(series)
                    .bind(db_ts(range.start_micros))
                    .bind(db_ts(range.end_micros))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| (micros_of(r.get(0)), r.get(1)))
                    .collect())
            }

            async fn buckets(
                &self,
                series: $crate::store::SeriesId,
                range: $crate::store::Range,
                step_micros: i64,
            ) -> $crate::error::Result<Vec<(i64, $crate::domain::Rollup)>> {
                let rows = ::sqlx::query(BUCKETS)
                    .bind(series)
                    .bind(db_ts(range.start_micros))
                    .bind(db_ts(range.end_micros))
                    .bind(step_micros)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), rollup_of(r, 1))).collect())
            }

            async fn rollup_state(
                &self,
                tenant: $crate::store::TenantNo,
            ) -> $crate::error::Result<$crate::store::RollupState> {
                let row = ::sqlx::query(sql::ROLLUP_STATE)
                    .bind(tenant)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .map(|r| $crate::store::RollupState {
                        rolled_to: r.get::<Option<DbTs>, _>(0).map(micros_of),
                        warm_from: r.get::<Option<DbTs>, _>(1).map(micros_of),
                    })
                    .unwrap_or_default())
            }

            async fn roll_up(
                &self,
                tenant: $crate::store::TenantNo,
                range: $crate::store::Range,
            ) -> $crate::error::Result<u64> {
                let (lower, upper) = series_range(tenant);
                let mut tx = self.begin_write().await?;
                let rolled_to: Option<DbTs> = ::sqlx::query(concat!(
                    "SELECT rolled_to FROM rollup_state WHERE tenant_no = $1",
                    $for_update
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                let minutes = ::sqlx::query(ROLLUP_MINUTES)
                    .bind(lower)
                    .bind(upper)
                    .bind(db_ts(range.start_micros))
                    .bind(db_ts(range.end_micros))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let first_hour = $crate::domain::bucket_start(
                    range.start_micros,
                    $crate::store::Resolution::Hour.micros(),
                );
                let hours = ::sqlx::query(ROLLUP_HOURS)
                    .bind(lower)
                    .bind(upper)
                    .bind(db_ts(first_hour))
                    .bind(db_ts(range.end_micros))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let end = rolled_to
                    .map(micros_of)
                    .map_or(range.end_micros, |r| r.max(range.end_micros));
                ::sqlx::query(sql::SET_ROLLED_TO)
                    .bind(tenant)
                    .bind(db_ts(end))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(minutes + hours)
            }

            async fn rollups(
                &self,
                series: $crate::store::SeriesId,
                range: $crate::store::Range,
                resolution: $crate::store::Resolution,
                step_micros: i64,
            ) -> $crate::error::Result<Vec<(i64, $crate::domain::Rollup)>> {
                let statement = match resolution {
                    $crate::store::Resolution::Minute => MINUTE_ROLLUPS_BY_STEP,
                    $crate::store::Resolution::Hour => HOUR_ROLLUPS_BY_STEP,
                };
                let rows = ::sqlx::query(statement)
                    .bind(series)
                    .bind(db_ts(range.start_micros))
                    .bind(db_ts(range.end_micros))
                    .bind(step_micros)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| (micros_of(r.get(0)), rollup_of(r, 1)))
                    .collect())
            }

            async fn expire_rollups(
                &self,
                tenant: $crate::store::TenantNo,
                before: i64,
            ) -> $crate::error::Result<u64> {
                // Whole hours only, so no hour bucket outlives part of its minutes.
                let before =
                    $crate::domain::bucket_start(before, $crate::store::Resolution::Hour.micros());
                let (lower, upper) = series_range(tenant);
                let mut tx = self.begin_write().await?;
                let warm_from: Option<DbTs> = ::sqlx::query(concat!(
                    "SELECT warm_from FROM rollup_state WHERE tenant_no = $1",
                    $for_update
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                if warm_from.map(micros_of).is_some_and(|w| w >= before) {
                    return Ok(0);
                }
                let mut removed = 0;
                for statement in [EXPIRE_MINUTES, EXPIRE_HOURS] {
                    removed += ::sqlx::query(statement)
                        .bind(lower)
                        .bind(upper)
                        .bind(db_ts(before))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                ::sqlx::query(sql::SET_WARM_FROM)
                    .bind(tenant)
                    .bind(db_ts(before))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(removed)
            }

            async fn pending_object(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
                new_key: &str,
            ) -> $crate::error::Result<String> {
                let mut tx = self.begin_write().await?;
                let pending = ::sqlx::query(sql::PENDING_OBJECT)
                    .bind(tenant)
                    .bind(day)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = pending {
                    return Ok(row.get(0));
                }
                ::sqlx::query(sql::INSERT_PENDING_OBJECT)
                    .bind(new_key)
                    .bind(tenant)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(new_key.to_owned())
            }

            async fn commit_day(
                &self,
                tenant: $crate::store::TenantNo,
                day: ::chrono::NaiveDate,
                readings: u64,
                object: Option<(&str, u64)>,
            ) -> $crate::error::Result<bool> {
                let (lower, upper) = series_range(tenant);
                let range = $crate::store::day_range(day);
                let mut tx = self.begin_write().await?;
                Self::lock_day(&mut tx, tenant, day).await?;
                let count: i64 = ::sqlx::query(COUNT_RANGE)
                    .bind(lower)
                    .bind(upper)
                    .bind(db_ts(range.start_micros))
                    .bind(db_ts(range.end_micros))
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                if count as u64 != readings {
                    return Ok(false);
                }
                if let Some((key, bytes)) = object {
                    let committed = ::sqlx::query(sql::COMMIT_OBJECT)
                        .bind(key)
                        .bind(readings as i64)
                        .bind(bytes as i64)
                        .bind(db_ts(::chrono::Utc::now().timestamp_micros()))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if committed != 1 {
                        return Ok(false);
                    }
                }
                Self::remove_day(&mut tx, tenant, day).await?;
                ::sqlx::query(sql::FORGET_DAY)
                    .bind(tenant)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn cold_objects(
                &self,
                tenant: $crate::store::TenantNo,
                from: ::chrono::NaiveDate,
                to: ::chrono::NaiveDate,
            ) -> $crate::error::Result<Vec<$crate::store::ColdObject>> {
                let rows = ::sqlx::query(sql::COLD_OBJECTS)
                    .bind(tenant)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| $crate::store::ColdObject {
                        key: r.get(0),
                        day: r.get(1),
                        readings: r.get::<i64, _>(2) as u64,
                        bytes: r.get::<i64, _>(3) as u64,
                    })
                    .collect())
            }

            async fn forget_object(&self, key: &str) -> $crate::error::Result<()> {
                ::sqlx::query(sql::FORGET_OBJECT)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        /// The tenant's series ids: `[lower, upper)`.
        fn series_range(tenant: $crate::store::TenantNo) -> (i64, i64) {
            (
                $crate::store::first_series_id(tenant),
                $crate::store::first_series_id(tenant + 1),
            )
        }

        /// Reads a rollup from columns `first..first + 6` (min, max, sum, count, last_ts, last).
        fn rollup_of<R: ::sqlx::Row>(row: &R, first: usize) -> $crate::domain::Rollup
        where
            for<'r> f64: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            for<'r> i64: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            for<'r> DbTs: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            usize: ::sqlx::ColumnIndex<R>,
        {
            $crate::domain::Rollup {
                min: row.get(first),
                max: row.get(first + 1),
                sum: row.get(first + 2),
                count: row.get::<i64, _>(first + 3) as u64,
                last_ts_micros: micros_of(row.get(first + 4)),
                last: row.get(first + 5),
            }
        }
    };
}
