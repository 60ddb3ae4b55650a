//! Where the usage facts are read: one trait, [`UsageStore`], implemented once over both
//! backends ([`SqlBackend`]), from the storage service's own tables.

use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row as _, Type};
use uuid::Uuid;

use crate::{
    error::Result,
    micros::Micros,
    store::{TenantNo, backend::SqlBackend},
    telemetry::store::SeriesId,
};

/// Keeps the larger age of a tenant's raw reads of a day.
const RECORD_RAW_READ: &str = "INSERT INTO raw_read_ages (tenant_id, day, age_days) \
     VALUES ($1, $2, $3) ON CONFLICT (tenant_id, day) DO UPDATE SET age_days = excluded.age_days \
     WHERE raw_read_ages.age_days < excluded.age_days";
const FORGET_RAW_READS: &str = "DELETE FROM raw_read_ages WHERE tenant_id = $1";
const OLDEST_RAW_READ: &str =
    "SELECT max(age_days) FROM raw_read_ages WHERE tenant_id = $1 AND day >= $2";
/// Each series of a tenant (`[$1, $2)`) over its minute rollups from `$3`.
const SERIES_SHAPES: &str = "SELECT s.machine_id, s.metric, \
       CAST(COALESCE(SUM(m.count), 0) AS BIGINT), \
       CAST(COALESCE(SUM(CASE WHEN m.count >= 2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
       CAST(COALESCE(SUM(CASE WHEN m.count >= 2 AND m.min = m.max THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM rollups_1m m JOIN series s ON s.series_id = m.series_id \
     WHERE m.series_id >= $1 AND m.series_id < $2 AND m.bucket >= $3 \
     GROUP BY s.machine_id, s.metric ORDER BY s.machine_id, s.metric";
/// The machines of a tenant (`[$1, $2)`) with an hour rollup from `$3`.
const ACTIVE_MACHINES: &str = "SELECT DISTINCT s.machine_id \
     FROM rollups_1h m JOIN series s ON s.series_id = m.series_id \
     WHERE m.series_id >= $1 AND m.series_id < $2 AND m.bucket >= $3 ORDER BY s.machine_id";
/// The readings and bytes of the archive's committed objects, of one tenant (`$1`) and of all.
const COLD_SIZES: &str = "SELECT \
       CAST(COALESCE(SUM(CASE WHEN tenant_no = $1 THEN readings ELSE 0 END), 0) AS BIGINT), \
       CAST(COALESCE(SUM(CASE WHEN tenant_no = $1 THEN bytes ELSE 0 END), 0) AS BIGINT), \
       CAST(COALESCE(SUM(readings), 0) AS BIGINT), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) \
     FROM cold_objects WHERE state = 'committed'";

/// How one series changed over a period, from its minute rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesShape {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
    /// Its readings.
    pub readings: u64,
    /// Its minutes with at least two readings.
    pub busy_minutes: u64,
    /// Of those, the minutes whose readings were all one value.
    pub flat_minutes: u64,
}

/// Where the usage facts are read.
#[async_trait::async_trait]
pub trait UsageStore: Send + Sync + std::fmt::Debug + 'static {
    /// Keeps, per tenant and day, the largest age in days of the raw hot readings its queries
    /// read.
    async fn record_raw_reads(&self, reads: &[(Uuid, NaiveDate, u32)]) -> Result<()>;
    /// Forgets an offboarded tenant's raw reads.
    async fn forget_raw_reads(&self, tenant: Uuid) -> Result<()>;
    /// The largest age kept of a tenant's raw reads on the days from `since`.
    async fn oldest_raw_read(&self, tenant: Uuid, since: NaiveDate) -> Result<Option<u32>>;
    /// A tenant's series, shaped by their minute rollups from `since`.
    async fn series_shapes(&self, tenant: TenantNo, since: Micros) -> Result<Vec<SeriesShape>>;
    /// A tenant's machines with readings rolled up into hours from `since`.
    async fn active_machines(&self, tenant: TenantNo, since: Micros) -> Result<Vec<String>>;
    /// The bytes a reading takes in the archive: the tenant's own objects', or all objects' on
    /// average while it has none; zero while there are none.
    async fn cold_bytes_per_reading(&self, tenant: TenantNo) -> Result<f64>;
}

#[async_trait::async_trait]
impl<B> UsageStore for B
where
    B: SqlBackend,
    for<'c> &'c Pool<B::Db>: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> String: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i32: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i32>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> NaiveDate: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Uuid: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> B::Ts: Encode<'q, B::Db> + Type<B::Db>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn record_raw_reads(&self, reads: &[(Uuid, NaiveDate, u32)]) -> Result<()> {
        for &(tenant, day, age) in reads {
            sqlx::query(RECORD_RAW_READ)
                .bind(B::uuid(tenant))
                .bind(day)
                .bind(i32::try_from(age).unwrap_or(i32::MAX))
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    async fn forget_raw_reads(&self, tenant: Uuid) -> Result<()> {
        sqlx::query(FORGET_RAW_READS)
            .bind(B::uuid(tenant))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn oldest_raw_read(&self, tenant: Uuid, since: NaiveDate) -> Result<Option<u32>> {
        let row = sqlx::query(OLDEST_RAW_READ)
            .bind(B::uuid(tenant))
            .bind(since)
            .fetch_one(self.pool())
            .await?;
        let age: Option<i32> = row.try_get(0)?;
        Ok(age.map(|age| u32::try_from(age).unwrap_or(0)))
    }

    async fn series_shapes(&self, tenant: TenantNo, since: Micros) -> Result<Vec<SeriesShape>> {
        let rows = sqlx::query(SERIES_SHAPES)
            .bind(SeriesId::first_of(tenant).0)
            .bind(SeriesId::end_of(tenant).0)
            .bind(B::ts(since))
            .fetch_all(self.pool())
            .await?;
        let count = |row: &<B::Db as Database>::Row, i: usize| -> Result<u64> {
            Ok(row.try_get::<i64, _>(i)?.max(0).unsigned_abs())
        };
        rows.iter()
            .map(|row| {
                Ok(SeriesShape {
                    machine_id: row.try_get(0)?,
                    metric: row.try_get(1)?,
                    readings: count(row, 2)?,
                    busy_minutes: count(row, 3)?,
                    flat_minutes: count(row, 4)?,
                })
            })
            .collect()
    }

    async fn active_machines(&self, tenant: TenantNo, since: Micros) -> Result<Vec<String>> {
        let rows = sqlx::query(ACTIVE_MACHINES)
            .bind(SeriesId::first_of(tenant).0)
            .bind(SeriesId::end_of(tenant).0)
            .bind(B::ts(since))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    async fn cold_bytes_per_reading(&self, tenant: TenantNo) -> Result<f64> {
        let row = sqlx::query(COLD_SIZES)
            .bind(tenant.0)
            .fetch_one(self.pool())
            .await?;
        let sizes: [i64; 4] = [
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        ];
        let per_reading = |readings: i64, bytes: i64| bytes as f64 / readings as f64;
        Ok(match sizes {
            [readings, bytes, _, _] if readings > 0 => per_reading(readings, bytes),
            [_, _, readings, bytes] if readings > 0 => per_reading(readings, bytes),
            _ => 0.0,
        })
    }
}
