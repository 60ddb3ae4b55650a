//! The telemetry half's store: one trait, [`TelemetryStore`], implemented once over the shared
//! database's backends (`sql.rs`) and tested by the same conformance suite on both.
//!
//! Each series (tenant, machine, metric) has a 64-bit [`SeriesId`] whose upper 32 bits are the
//! tenant's number, so a tenant's rows form one contiguous key range; a reading row is
//! `(series_id, ts, value)` with `(series_id, ts)` as its primary key, which both dedupes and
//! serves every query of one series over time. Timestamps are microseconds since the Unix
//! epoch, UTC.

mod sql;

use chrono::NaiveDate;
use uuid::Uuid;

pub use crate::store::TenantNo;
use crate::{
    error::Result,
    micros::Micros,
    telemetry::domain::{Fields, Rollup},
};

/// A series' id: the tenant's number in the upper 32 bits, a per-tenant sequence below, so a
/// tenant's series are one range of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub i64);

crate::column::transparent_column!(SeriesId(i64));

impl SeriesId {
    /// The first series id of a tenant.
    pub fn first_of(tenant: TenantNo) -> Self {
        Self(i64::from(tenant.0) << 32)
    }

    /// The first id after the tenant's series: theirs are `first_of(tenant)..end_of(tenant)`.
    pub fn end_of(tenant: TenantNo) -> Self {
        Self(i64::from(tenant.0 + 1) << 32)
    }

    /// The tenant's `n`th series after this one.
    pub fn offset(self, n: i64) -> Self {
        Self(self.0 + n)
    }

    /// The tenant the series belongs to.
    pub fn tenant(self) -> TenantNo {
        TenantNo((self.0 >> 32) as i32)
    }
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
    /// When it was measured.
    pub ts: Micros,
    /// The value.
    pub value: f64,
}

/// The rows a write stored that were not stored before.
#[derive(Debug, Default)]
pub struct NewRows {
    /// Rows of days in the hot tier.
    pub hot: Vec<Row>,
    /// Rows of days already archived, kept in `late_readings`. One may repeat an archived
    /// reading, which only the archive knows: they reach the warm tier when archived.
    pub late: Vec<Row>,
}

/// The last reading of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The metric.
    pub metric: String,
    /// When it was measured.
    pub ts: Micros,
    /// The value.
    pub value: f64,
}

/// A time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The start, inclusive.
    pub start: Micros,
    /// The end, exclusive.
    pub end: Micros,
}

/// The state of a tenant's warm tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupState {
    /// Every bucket below this is rolled up; `None` before the first rollup.
    pub rolled_to: Option<Micros>,
    /// Buckets below this were expired; `None` while nothing has been.
    pub warm_from: Option<Micros>,
}

/// The width of a warm-tier bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// One minute.
    Minute,
    /// A quarter of an hour.
    Quarter,
    /// One hour.
    Hour,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Self; 3] = [Self::Minute, Self::Quarter, Self::Hour];

    /// The width in µs.
    pub const fn micros(self) -> i64 {
        match self {
            Self::Minute => 60_000_000,
            Self::Quarter => 900_000_000,
            Self::Hour => 3_600_000_000,
        }
    }

    /// Its place in [`Self::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Self::Minute => 0,
            Self::Quarter => 1,
            Self::Hour => 2,
        }
    }

    /// The table of its rollups.
    pub const fn table(self) -> &'static str {
        match self {
            Self::Minute => "rollups_1m",
            Self::Quarter => "rollups_15m",
            Self::Hour => "rollups_1h",
        }
    }
}

/// One committed object of the cold tier's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdObject {
    /// Its key in the object store.
    pub key: String,
    /// The UTC day it holds.
    pub day: NaiveDate,
    /// How many readings it holds.
    pub readings: u64,
    /// Its size.
    pub bytes: u64,
}

/// What the tiers hold, for usage metering (`crate::metering`): the bytes of the tiers the
/// tenants share, and each tenant's share of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// The bytes of the hot tier's tables and indexes (raw and late readings).
    pub hot_bytes: u64,
    /// The bytes of the warm tier's (the rollups).
    pub warm_bytes: u64,
    /// Each tenant's part.
    pub tenants: Vec<TenantFootprint>,
}

/// One tenant's part of the tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFootprint {
    /// The tenant.
    pub tenant: Uuid,
    /// Its readings in the hot tier, from its hour rollups since its oldest hot day (the last
    /// tiering interval's, not rolled up yet, are not counted).
    pub hot_readings: u64,
    /// Its hour rollups: the series-hours the warm tier holds for it.
    pub warm_hours: u64,
    /// The bytes of its committed cold objects.
    pub cold_bytes: u64,
}

/// The storage service's database: the hot tier (raw readings), the warm tier (rollups) and
/// the manifest of the cold tier.
#[async_trait::async_trait]
pub trait TelemetryStore: Send + Sync + std::fmt::Debug + 'static {
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
    /// Every registered tenant, by number.
    async fn tenants(&self) -> Result<Vec<(TenantNo, Uuid)>>;
    /// Returns the ids of series, in the order of `keys`, creating the missing ones.
    async fn resolve_series(&self, tenant: TenantNo, keys: &[SeriesKey]) -> Result<Vec<SeriesId>>;
    /// Returns the id of one series, if it exists.
    async fn find_series(&self, tenant: TenantNo, key: &SeriesKey) -> Result<Option<SeriesId>>;
    /// Every series of a tenant, ordered by machine and metric.
    async fn series_of(&self, tenant: TenantNo) -> Result<Vec<(SeriesId, SeriesKey)>>;

    /// Makes sure the tenant can store readings of a day (UTC) in the hot tier, in its hot
    /// retention class (days): records the day with the class, unless it was recorded before
    /// (its class is kept) or archived already (readings of it are late); on PostgreSQL,
    /// creates the class's partition of the day. Idempotent.
    async fn ensure_day(&self, tenant: TenantNo, day: NaiveDate, class: u32) -> Result<()>;
    /// The hot retention classes that have days in the hot tier.
    async fn classes_in_use(&self) -> Result<Vec<u32>>;
    /// Creates, where the backend partitions the hot tier, the partitions of `days` of the
    /// classes `classes`, ahead of the writes that will need them; records no tenant's day.
    /// Idempotent.
    async fn create_partitions(&self, classes: &[u32], days: &[NaiveDate]) -> Result<()>;
    /// The days the tenant has in the hot tier, oldest first.
    async fn hot_days(&self, tenant: TenantNo) -> Result<Vec<NaiveDate>>;
    /// Stores rows durably, in one transaction; no two rows may share a key. Returns, for each
    /// row, whether it is new (`false`: a row with its key was stored before, and is kept).
    /// New rows older than their tenant's `rolled_to` are merged into the warm tier in the same
    /// transaction.
    async fn insert(&self, rows: &[Row]) -> Result<Vec<bool>>;
    /// The last reading of every metric of a machine, ordered by metric.
    async fn latest(&self, tenant: TenantNo, machine_id: &str) -> Result<Vec<Latest>>;
    /// The readings of a series in a range, oldest first.
    async fn points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>>;
    /// A series' readings in several disjoint ranges (oldest first), in one round trip where
    /// the database allows; in no particular order.
    async fn points_in(&self, series: SeriesId, ranges: &[Range]) -> Result<Vec<(Micros, f64)>>;

    /// The sum and count of a series' readings in each of several disjoint ranges (oldest
    /// first): one rollup for each range, in their order, with [`Fields::Sum`] filled in; in
    /// one round trip where the database allows.
    async fn sums_in(&self, series: SeriesId, ranges: &[Range]) -> Result<Vec<Rollup>>;

    /// How far the tenant's rollups go.
    async fn rollup_state(&self, tenant: TenantNo) -> Result<RollupState>;
    /// Rolls the tenant's readings in `range` (minute-aligned, starting at `rolled_to`) up
    /// into minute buckets, rewrites the hour buckets it touches, and moves `rolled_to` to the
    /// range's end, in one transaction. Returns the buckets written.
    async fn roll_up(&self, tenant: TenantNo, range: Range) -> Result<u64>;
    /// A series' rollups of `resolution` whose buckets start in several disjoint ranges (oldest
    /// first), as `(bucket start, rollup)`, in one round trip where the database allows; in
    /// no particular order. Queries merge them into their buckets. Fills in at least `fields`
    /// of each rollup; a field left out is as in [`Rollup::NONE`].
    async fn rollups_in(
        &self,
        series: SeriesId,
        resolution: Resolution,
        ranges: &[Range],
        fields: Fields,
    ) -> Result<Vec<(Micros, Rollup)>>;
    /// Removes the tenant's rollups older than `before` and records it as `warm_from`.
    /// Returns the rows removed.
    async fn expire_rollups(&self, tenant: TenantNo, before: Micros) -> Result<u64>;

    /// Returns the key of the tenant's pending object for a day, recording `new_key` as
    /// pending if there is none, so that a retried upload reuses its key.
    async fn pending_object(
        &self,
        tenant: TenantNo,
        day: NaiveDate,
        new_key: &str,
    ) -> Result<String>;
    /// Removes a day from the hot tier once it is archived: commits the uploaded and verified
    /// object `(key, bytes)` (none for a day without readings) and drops the day, in one
    /// transaction that holds writes to the day off. `false`, and nothing changed, when the day
    /// no longer holds exactly `readings` readings: the archive must be redone.
    async fn commit_day(
        &self,
        tenant: TenantNo,
        day: NaiveDate,
        readings: u64,
        object: Option<(&str, u64)>,
    ) -> Result<bool>;
    /// What the tiers hold, and each tenant's part of it.
    async fn footprint(&self) -> Result<Footprint>;
    /// The tenant's committed objects of the days `from..=to`, by day.
    async fn cold_objects(
        &self,
        tenant: TenantNo,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ColdObject>>;
    /// Removes an object from the manifest, once it is deleted from the object store.
    async fn forget_object(&self, key: &str) -> Result<()>;
    /// Forgets an offboarded tenant's series, late readings and objects (its rollups go by
    /// [`TelemetryStore::expire_rollups`]), in one transaction. Its number stays registered.
    async fn forget_tenant(&self, tenant: TenantNo) -> Result<()>;

    /// A series' readings in a range that came after their tenant's day was archived, oldest
    /// first: kept apart until archived as a further part of the day.
    async fn late_points(&self, series: SeriesId, range: Range) -> Result<Vec<(Micros, f64)>>;
    /// The days a tenant has late readings of, oldest first.
    async fn late_days(&self, tenant: TenantNo) -> Result<Vec<NaiveDate>>;
    /// Removes a tenant's late readings of a day once archived, in one transaction: commits
    /// the uploaded and verified object `(key, bytes)` of the `fresh` ones (those the day's
    /// earlier parts lack; none, no object), merges them into the warm tier, and deletes the
    /// day's late readings. `false`, and nothing changed, when the day no longer holds exactly
    /// `readings` late readings.
    async fn commit_late(
        &self,
        tenant: TenantNo,
        day: NaiveDate,
        readings: u64,
        object: Option<(&str, u64)>,
        fresh: &[Row],
    ) -> Result<bool>;
}

/// The range of a UTC day.
pub fn day_range(day: NaiveDate) -> Range {
    let start = Micros::start_of(day);
    Range {
        start,
        end: start + crate::telemetry::domain::ingest::DAY_MICROS,
    }
}
