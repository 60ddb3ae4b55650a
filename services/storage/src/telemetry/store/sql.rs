//! The telemetry store, once for both backends: `impl TelemetryStore` for every [`HotTier`],
//! with the statements of `sql.rs` and the backend's own (its [`HotTier`] says what differs).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use mfg_common::db::ForUpdate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row as _, Type};
use uuid::Uuid;

use crate::{
    error::Result,
    telemetry::domain::{Fields, Rollup},
};
use crate::{
    micros::Micros,
    store::{
        TenantNo,
        backend::{HotReads, HotTier},
        sql,
    },
    telemetry::store::{
        ColdObject, Footprint, Latest, Range, Resolution, RollupState, Row, SeriesId, SeriesKey,
        TelemetryStore, TenantFootprint,
    },
};

/// A tenant's next series number, read to be changed: the lock serializes id allocation per
/// tenant.
const NEXT_SERIES_FOR_UPDATE: ForUpdate =
    mfg_common::for_update!("SELECT next_series FROM storage_tenants WHERE tenant_no = $1");
const ROLLED_TO_FOR_UPDATE: ForUpdate =
    mfg_common::for_update!("SELECT rolled_to FROM rollup_state WHERE tenant_no = $1");
const WARM_FROM_FOR_UPDATE: ForUpdate =
    mfg_common::for_update!("SELECT warm_from FROM rollup_state WHERE tenant_no = $1");

/// The tenant's series ids: `[lower, upper)`.
fn series_range(tenant: TenantNo) -> (SeriesId, SeriesId) {
    (SeriesId::first_of(tenant), SeriesId::end_of(tenant))
}

/// Marks a pending object of the archive committed, with what it holds; `false` when it was
/// not pending.
async fn commit_object<B: HotTier>(
    tx: &mut <B::Db as Database>::Connection,
    key: &str,
    readings: u64,
    bytes: u64,
) -> Result<bool>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Ts: Encode<'q, B::Db> + Type<B::Db>,
{
    let committed = sqlx::query(sql::COMMIT_OBJECT)
        .bind(key)
        .bind(readings as i64)
        .bind(bytes as i64)
        .bind(B::ts(Micros::of_datetime(chrono::Utc::now())))
        .execute(&mut *tx)
        .await?;
    Ok(B::rows_affected(&committed) == 1)
}

/// Merges new rows older than their tenant's `rolled_to` into the warm tier's minute, quarter
/// and hour buckets.
async fn merge_rollups<B: HotTier>(
    tx: &mut <B::Db as Database>::Connection,
    rows: &[Row],
    rolled_to: &HashMap<TenantNo, Micros>,
) -> Result<()>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Ts: Encode<'q, B::Db> + Type<B::Db>,
{
    if rolled_to.is_empty() {
        return Ok(());
    }
    let [minutes, quarters, hours] = sql::late_rollups(rows, rolled_to);
    for (statement, buckets) in [
        (B::MERGE_MINUTE, minutes),
        (B::MERGE_QUARTER, quarters),
        (B::MERGE_HOUR, hours),
    ] {
        for ((series, bucket), r) in buckets {
            sqlx::query(statement)
                .bind(series)
                .bind(B::ts(bucket))
                .bind(r.min)
                .bind(r.max)
                .bind(r.sum)
                .bind(r.count as i64)
                .bind(B::ts(r.last_ts))
                .bind(r.last)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl<B> TelemetryStore for B
where
    B: HotTier + HotReads,
    for<'c> &'c Pool<B::Db>: Executor<'c, Database = B::Db>,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i32: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> NaiveDate: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Uuid: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Ts: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<B::Ts>: Decode<'q, B::Db> + Type<B::Db>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn migrate(&self) -> Result<()> {
        self.migrate_hot().await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool().close().await;
    }

    async fn register_tenant(&self, tenant: Uuid) -> Result<TenantNo> {
        if let Some(no) = self.find_tenant(tenant).await? {
            return Ok(no);
        }
        let mut tx = self.begin_write().await?;
        let no: TenantNo = sqlx::query(sql::REGISTER_TENANT)
            .bind(B::uuid(tenant))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query(sql::REGISTER_ROLLUP_STATE)
            .bind(no)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(no)
    }

    async fn find_tenant(&self, tenant: Uuid) -> Result<Option<TenantNo>> {
        let row = sqlx::query(sql::SELECT_TENANT)
            .bind(B::uuid(tenant))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn tenants(&self) -> Result<Vec<(TenantNo, Uuid)>> {
        let rows = sqlx::query(sql::TENANTS).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, B::uuid_of(r.try_get(1)?)?)))
            .collect()
    }

    async fn resolve_series(&self, tenant: TenantNo, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        let mut tx = self.begin_write().await?;
        let mut next: i64 = sqlx::query(NEXT_SERIES_FOR_UPDATE.of::<B::Db>())
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let allocated = next;
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            let found = sqlx::query(sql::SELECT_SERIES)
                .bind(tenant)
                .bind(key.machine_id.as_str())
                .bind(key.metric.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let id = match found {
                Some(row) => row.try_get(0)?,
                None => {
                    let id = SeriesId::first_of(tenant).offset(next);
                    next += 1;
                    sqlx::query(sql::INSERT_SERIES)
                        .bind(id)
                        .bind(tenant)
                        .bind(key.machine_id.as_str())
                        .bind(key.metric.as_str())
                        .execute(&mut *tx)
                        .await?;
                    id
                }
            };
            ids.push(id);
        }
        if next != allocated {
            sqlx::query(sql::SET_NEXT_SERIES)
                .bind(tenant)
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn find_series(&self, tenant: TenantNo, key: &SeriesKey) -> Result<Option<SeriesId>> {
        let row = sqlx::query(sql::SELECT_SERIES)
            .bind(tenant)
            .bind(key.machine_id.as_str())
            .bind(key.metric.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn series_of(&self, tenant: TenantNo) -> Result<Vec<(SeriesId, SeriesKey)>> {
        let rows = sqlx::query(sql::SERIES_OF)
            .bind(tenant)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let key = SeriesKey {
                    machine_id: r.try_get(1)?,
                    metric: r.try_get(2)?,
                };
                Ok((r.try_get(0)?, key))
            })
            .collect()
    }

    async fn ensure_day(&self, tenant: TenantNo, day: NaiveDate, class: u32) -> Result<()> {
        // A write transaction from the start: on SQLite a deferred one that turns into a
        // writer fails at once with SQLITE_BUSY when another writer holds the lock.
        let mut tx = self.begin_write().await?;
        self.record_day(&mut tx, tenant, day, class).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn classes_in_use(&self) -> Result<Vec<u32>> {
        self.read_classes_in_use().await
    }

    async fn create_partitions(&self, classes: &[u32], days: &[NaiveDate]) -> Result<()> {
        self.create_leaves(classes, days).await
    }

    async fn hot_days(&self, tenant: TenantNo) -> Result<Vec<NaiveDate>> {
        let rows = sqlx::query(sql::HOT_DAYS)
            .bind(tenant)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    async fn insert(&self, rows: &[Row]) -> Result<Vec<bool>> {
        let mut tenants: Vec<TenantNo> = rows.iter().map(|r| r.series_id.tenant()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let mut tx = self.begin_write().await?;
        // Reading `rolled_to` under a share lock holds the rollup job off until this
        // transaction commits: a row below it is merged here, a row above it is rolled up by
        // the job.
        let rolled_to = Self::rolled_to_of(&mut tx, &tenants).await?;
        let new = self.insert_new(&mut tx, rows).await?;
        merge_rollups::<B>(&mut tx, &new.hot, &rolled_to).await?;
        tx.commit().await?;
        if new.hot.len() + new.late.len() == rows.len() {
            return Ok(vec![true; rows.len()]);
        }
        let new: HashSet<(SeriesId, Micros)> = new
            .hot
            .iter()
            .chain(&new.late)
            .map(|r| (r.series_id, r.ts))
            .collect();
        Ok(rows
            .iter()
            .map(|r| new.contains(&(r.series_id, r.ts)))
            .collect())
    }

    async fn latest(&self, tenant: TenantNo, machine_id: &str) -> Result<Vec<Latest>> {
        self.read_latest(tenant, machine_id).await
    }

    async fn points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>> {
        self.read_points(series, range).await
    }

    async fn points_in(&self, series: SeriesId, ranges: &[Range]) -> Result<Vec<(Micros, f64)>> {
        self.read_points_in(series, ranges).await
    }

    async fn sums_in(&self, series: SeriesId, ranges: &[Range]) -> Result<Vec<Rollup>> {
        self.read_sums_in(series, ranges).await
    }

    async fn rollup_state(&self, tenant: TenantNo) -> Result<RollupState> {
        let row = sqlx::query(sql::ROLLUP_STATE)
            .bind(tenant)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else {
            return Ok(RollupState::default());
        };
        Ok(RollupState {
            rolled_to: r.try_get::<Option<B::Ts>, _>(0)?.map(B::micros),
            warm_from: r.try_get::<Option<B::Ts>, _>(1)?.map(B::micros),
        })
    }

    async fn roll_up(&self, tenant: TenantNo, range: Range) -> Result<u64> {
        let (lower, upper) = series_range(tenant);
        let mut tx = self.begin_write().await?;
        let rolled_to: Option<B::Ts> = sqlx::query(ROLLED_TO_FOR_UPDATE.of::<B::Db>())
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let minutes = Self::roll_up_minutes(&mut tx, tenant, range).await?;
        let first_hour = range.start.floor(Resolution::Hour.micros());
        // Quarters and hours rewritten whole from their minutes: those `range` touches.
        let mut coarser = 0;
        for statement in [B::ROLLUP_QUARTERS, B::ROLLUP_HOURS] {
            let written = sqlx::query(statement)
                .bind(lower)
                .bind(upper)
                .bind(B::ts(first_hour))
                .bind(B::ts(range.end))
                .execute(&mut *tx)
                .await?;
            coarser += B::rows_affected(&written);
        }
        let end = rolled_to
            .map(B::micros)
            .map_or(range.end, |r| r.max(range.end));
        sqlx::query(sql::SET_ROLLED_TO)
            .bind(tenant)
            .bind(B::ts(end))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(minutes + coarser)
    }

    async fn rollups_in(
        &self,
        series: SeriesId,
        resolution: Resolution,
        ranges: &[Range],
        fields: Fields,
    ) -> Result<Vec<(Micros, Rollup)>> {
        self.read_rollups_in(series, resolution, ranges, fields)
            .await
    }

    async fn expire_rollups(&self, tenant: TenantNo, before: Micros) -> Result<u64> {
        // Whole hours only, so no hour bucket outlives part of its minutes.
        let before = before.floor(Resolution::Hour.micros());
        let (lower, upper) = series_range(tenant);
        let mut tx = self.begin_write().await?;
        let warm_from: Option<B::Ts> = sqlx::query(WARM_FROM_FOR_UPDATE.of::<B::Db>())
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if warm_from.map(B::micros).is_some_and(|w| w >= before) {
            return Ok(0);
        }
        let mut removed = 0;
        for statement in [B::EXPIRE_MINUTES, B::EXPIRE_QUARTERS, B::EXPIRE_HOURS] {
            let expired = sqlx::query(statement)
                .bind(lower)
                .bind(upper)
                .bind(B::ts(before))
                .execute(&mut *tx)
                .await?;
            removed += B::rows_affected(&expired);
        }
        sqlx::query(sql::SET_WARM_FROM)
            .bind(tenant)
            .bind(B::ts(before))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn pending_object(
        &self,
        tenant: TenantNo,
        day: NaiveDate,
        new_key: &str,
    ) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let pending = sqlx::query(sql::PENDING_OBJECT)
            .bind(tenant)
            .bind(day)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = pending {
            return Ok(row.try_get(0)?);
        }
        sqlx::query(sql::INSERT_PENDING_OBJECT)
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
        tenant: TenantNo,
        day: NaiveDate,
        readings: u64,
        object: Option<(&str, u64)>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(class) = Self::lock_day(&mut tx, tenant, day).await? else {
            return Ok(false);
        };
        if Self::count_day(&mut tx, tenant, day, class).await? != readings {
            return Ok(false);
        }
        if let Some((key, bytes)) = object
            && !commit_object::<B>(&mut tx, key, readings, bytes).await?
        {
            return Ok(false);
        }
        Self::remove_day(&mut tx, tenant, day, class).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn footprint(&self) -> Result<Footprint> {
        let (hot_bytes, warm_bytes) = self.tier_bytes().await?;
        let cold: HashMap<TenantNo, i64> = sqlx::query(sql::COLD_BYTES)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        let mut tenants = Vec::new();
        for (no, tenant) in self.tenants().await? {
            let oldest_hot = self
                .hot_days(no)
                .await?
                .first()
                .map(|d| Micros::start_of(*d));
            let (first, end) = series_range(no);
            let row = sqlx::query(sql::ROLLUP_HOURS)
                .bind(first)
                .bind(end)
                .bind(B::ts(oldest_hot.unwrap_or(Micros(0))))
                .fetch_one(self.pool())
                .await?;
            let count = |i: usize| -> Result<u64> { Ok(row.try_get::<i64, _>(i)?.max(0) as u64) };
            tenants.push(TenantFootprint {
                tenant,
                hot_readings: if oldest_hot.is_some() { count(1)? } else { 0 },
                warm_hours: count(0)?,
                cold_bytes: cold.get(&no).copied().unwrap_or(0).max(0) as u64,
            });
        }
        Ok(Footprint {
            hot_bytes,
            warm_bytes,
            tenants,
        })
    }

    async fn cold_objects(
        &self,
        tenant: TenantNo,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ColdObject>> {
        let rows = sqlx::query(sql::COLD_OBJECTS)
            .bind(tenant)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ColdObject {
                    key: r.try_get(0)?,
                    day: r.try_get(1)?,
                    readings: r.try_get::<i64, _>(2)? as u64,
                    bytes: r.try_get::<i64, _>(3)? as u64,
                })
            })
            .collect()
    }

    async fn late_points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>> {
        self.read_late_points(series, range).await
    }

    async fn late_days(&self, tenant: TenantNo) -> Result<Vec<NaiveDate>> {
        self.read_late_days(tenant).await
    }

    async fn commit_late(
        &self,
        tenant: TenantNo,
        day: NaiveDate,
        readings: u64,
        object: Option<(&str, u64)>,
        fresh: &[Row],
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if Self::remove_late(&mut tx, tenant, day).await? != readings {
            return Ok(false);
        }
        if let Some((key, bytes)) = object
            && !commit_object::<B>(&mut tx, key, fresh.len() as u64, bytes).await?
        {
            return Ok(false);
        }
        // The day was rolled up before it was archived: its fresh readings join the warm tier
        // now.
        let rolled_to = HashMap::from([(tenant, Micros::MAX)]);
        merge_rollups::<B>(&mut tx, fresh, &rolled_to).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn forget_object(&self, key: &str) -> Result<()> {
        sqlx::query(sql::FORGET_OBJECT)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn forget_tenant(&self, tenant: TenantNo) -> Result<()> {
        let (lower, upper) = series_range(tenant);
        let mut tx = self.begin_write().await?;
        sqlx::query(sql::FORGET_LATE_READINGS)
            .bind(lower)
            .bind(upper)
            .execute(&mut *tx)
            .await?;
        for statement in sql::FORGET_OBJECTS_AND_SERIES {
            sqlx::query(statement)
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
