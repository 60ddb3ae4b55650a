//! The hot tier's store: one trait, [`HotStore`], with a PostgreSQL and a SQLite implementation
//! that the same conformance suite tests.
//!
//! The model is the same on both: each tenant gets a small number ([`TenantNo`]); each series
//! (tenant, machine, metric) a 64-bit [`SeriesId`] whose upper 32 bits are the tenant's number,
//! so a tenant's rows form one contiguous key range; a reading row is `(series_id, ts, value)`
//! with `(series_id, ts)` as its primary key, which both dedupes and serves every query of one
//! series over time. Timestamps are microseconds since the Unix epoch, UTC.

mod postgres;
mod sqlite;

use chrono::NaiveDate;
use mfg_common::db::DbPool;
use uuid::Uuid;

pub use self::{postgres::PostgresStore, sqlite::SqliteStore};
use crate::{domain::Rollup, error::Result};

/// A tenant's number in the storage database.
pub type TenantNo = i32;
/// A series' id: the tenant's number in the upper 32 bits, a per-tenant sequence below.
pub type SeriesId = i64;

/// The first series id of a tenant.
pub fn first_series_id(tenant: TenantNo) -> SeriesId {
    i64::from(tenant) << 32
}

/// Returns the tenant a series belongs to.
pub fn tenant_of(series: SeriesId) -> TenantNo {
    (series >> 32) as TenantNo
}

/// A series' identity within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
}

/// One reading row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The series.
    pub series_id: SeriesId,
    /// When it was measured (µs since the epoch).
    pub ts_micros: i64,
    /// The value.
    pub value: f64,
}

/// The last reading of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The metric.
    pub metric: String,
    /// When it was measured (µs since the epoch).
    pub ts_micros: i64,
    /// The value.
    pub value: f64,
}

/// A time range `[start, end)` in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The start, inclusive.
    pub start_micros: i64,
    /// The end, exclusive.
    pub end_micros: i64,
}

/// The hot tier's store.
#[async_trait::async_trait]
pub trait HotStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies the migrations that are not applied yet.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the pool.
    async fn close(&self);

    /// Returns a tenant's number, registering the tenant on first sight.
    async fn register_tenant(&self, tenant: Uuid) -> Result<TenantNo>;
    /// Returns a tenant's number, if it was ever registered.
    async fn find_tenant(&self, tenant: Uuid) -> Result<Option<TenantNo>>;
    /// Returns the ids of series, in the order of `keys`, creating the missing ones.
    async fn resolve_series(&self, tenant: TenantNo, keys: &[SeriesKey]) -> Result<Vec<SeriesId>>;
    /// Returns the id of one series, if it exists.
    async fn find_series(&self, tenant: TenantNo, key: &SeriesKey) -> Result<Option<SeriesId>>;
    /// Makes sure the tenant can store readings of a day (UTC): on PostgreSQL, creates the
    /// day's partition. Idempotent.
    async fn ensure_day(&self, tenant: TenantNo, day: NaiveDate) -> Result<()>;

    /// Stores rows durably, in one transaction; no two rows may share a key. Returns, for each
    /// row, whether it is new (`false`: a row with its key was stored before, and is kept).
    async fn insert(&self, rows: &[Row]) -> Result<Vec<bool>>;

    /// The last reading of every metric of a machine, ordered by metric.
    async fn latest(&self, tenant: TenantNo, machine_id: &str) -> Result<Vec<Latest>>;
    /// The readings of a series in a range, oldest first.
    async fn points(&self, series: SeriesId, range: Range) -> Result<Vec<(i64, f64)>>;
    /// The rollups of a series in a range, in buckets of `step_micros` aligned to the epoch,
    /// oldest first; buckets without readings are left out.
    async fn buckets(
        &self,
        series: SeriesId,
        range: Range,
        step_micros: i64,
    ) -> Result<Vec<(i64, Rollup)>>;
}

/// Opens the store of a pool's backend.
pub fn open(pool: DbPool) -> Box<dyn HotStore> {
    match pool {
        DbPool::Postgres(pool) => Box::new(PostgresStore::new(pool)),
        DbPool::Sqlite(pool) => Box::new(SqliteStore::new(pool)),
    }
}

/// The table sqlx records the storage service's migrations in, apart from the other services'
/// when they share a database.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations_storage";

/// Converts µs since the epoch to a UTC date-time.
pub(crate) fn to_datetime(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The UTC day of a timestamp.
pub fn day_of(micros: i64) -> NaiveDate {
    to_datetime(micros).date_naive()
}
