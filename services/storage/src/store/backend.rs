//! What a SQL backend of the storage stores says about itself, so that the stores' bodies are
//! written once, as plain generic Rust (`alerting/store/sql.rs`): its database, how it stores times and
//! ids, how it begins a write and locks a row, and the writes it makes its own way.

use std::{collections::HashMap, future::Future};

use chrono::NaiveDate;
use mfg_common::db::SqlDialect;
use sqlx::{Database, Pool};
use uuid::Uuid;

use super::{TenantNo, write_turn::WriteTx};
use crate::{
    alerting::store::{AlertWrite, LogPosition, Written},
    error::Result,
    micros::Micros,
    telemetry::{
        domain::{Fields, Rollup},
        store::{Latest, NewRows, Range, Resolution, Row, SeriesId},
    },
};

/// A backend of the stores: PostgreSQL or SQLite.
pub trait SqlBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Its database.
    type Db: SqlDialect;
    /// A time as its columns hold it (`timestamptz`; µs since the epoch on SQLite).
    type Ts: Send + Sync + 'static;
    /// An id as its columns hold it (`uuid`; text on SQLite).
    type Uuid: Send + Sync + 'static;

    /// Its pool.
    fn pool(&self) -> &Pool<Self::Db>;
    /// A moment as a column value.
    fn ts(at: Micros) -> Self::Ts;
    /// A column's moment.
    fn micros(ts: Self::Ts) -> Micros;
    /// An id as a column value.
    fn uuid(id: Uuid) -> Self::Uuid;
    /// A column's id.
    fn uuid_of(id: Self::Uuid) -> Result<Uuid>;
    /// How many rows a statement changed.
    fn rows_affected(result: &<Self::Db as Database>::QueryResult) -> u64 {
        <Self::Db as SqlDialect>::rows_affected(result)
    }

    /// Begins a write transaction (see `write_turn`).
    fn begin_write(&self) -> impl Future<Output = Result<WriteTx<Self::Db>, sqlx::Error>> + Send;
    /// Writes alerts, events and evaluator states in one transaction.
    fn write_alerts_now(&self, write: &AlertWrite) -> impl Future<Output = Result<Written>> + Send;
    /// How far the server's log stands, where it can tell.
    fn log_position_now(&self) -> impl Future<Output = Result<Option<LogPosition>>> + Send;
}

/// The connection of a backend's database.
pub type Connection<B> = <<B as SqlBackend>::Db as Database>::Connection;

/// What a backend does its own way in the hot tier's writes (PostgreSQL partitions it, SQLite
/// keeps one table), and the statements whose SQL differs; `telemetry/store/sql.rs` is the rest, once.
pub trait HotTier: SqlBackend {
    /// A retention class as its columns hold it.
    type Class: Copy + Send + Sync + 'static;

    /// Rewrites a tenant's quarter buckets from its minutes.
    const ROLLUP_QUARTERS: &'static str;
    /// Rewrites a tenant's hour buckets from its minutes.
    const ROLLUP_HOURS: &'static str;
    /// Removes a tenant's minute buckets before a time.
    const EXPIRE_MINUTES: &'static str;
    /// Removes a tenant's quarter buckets before a time.
    const EXPIRE_QUARTERS: &'static str;
    /// Removes a tenant's hour buckets before a time.
    const EXPIRE_HOURS: &'static str;
    /// Merges a late reading's rollup into its minute bucket.
    const MERGE_MINUTE: &'static str;
    /// Merges a late reading's rollup into its quarter bucket.
    const MERGE_QUARTER: &'static str;
    /// Merges a late reading's rollup into its hour bucket.
    const MERGE_HOUR: &'static str;

    /// Applies the backend's migrations.
    fn migrate_hot(&self) -> impl Future<Output = Result<()>> + Send;
    /// Records a tenant's day with its class, unless it was recorded or archived.
    fn record_day(
        &self,
        tx: &mut Connection<Self>,
        tenant: TenantNo,
        day: NaiveDate,
        class: u32,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The bytes of the hot tier's tables and indexes, and of the warm tier's.
    fn tier_bytes(&self) -> impl Future<Output = Result<(u64, u64)>> + Send;
    /// The retention classes that hold days.
    fn read_classes_in_use(&self) -> impl Future<Output = Result<Vec<u32>>> + Send;
    /// Creates the classes' partitions of the days, where the backend has partitions.
    fn create_leaves(
        &self,
        classes: &[u32],
        days: &[NaiveDate],
    ) -> impl Future<Output = Result<()>> + Send;
    /// The tenants' `rolled_to`, held against the rollup job until the transaction ends.
    fn rolled_to_of(
        tx: &mut Connection<Self>,
        tenants: &[TenantNo],
    ) -> impl Future<Output = Result<HashMap<TenantNo, Micros>>> + Send;
    /// Inserts rows, returning the new ones.
    fn insert_new(
        &self,
        tx: &mut Connection<Self>,
        rows: &[Row],
    ) -> impl Future<Output = Result<NewRows>> + Send;
    /// Rolls a tenant's readings in a range up into minute buckets; how many it wrote.
    fn roll_up_minutes(
        tx: &mut Connection<Self>,
        tenant: TenantNo,
        range: Range,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Locks a tenant's share of a day for archiving; its class, if the day is hot.
    fn lock_day(
        tx: &mut Connection<Self>,
        tenant: TenantNo,
        day: NaiveDate,
    ) -> impl Future<Output = Result<Option<Self::Class>>> + Send;
    /// How many readings a tenant has on a day.
    fn count_day(
        tx: &mut Connection<Self>,
        tenant: TenantNo,
        day: NaiveDate,
        class: Self::Class,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Removes a tenant's day from the hot tier.
    fn remove_day(
        tx: &mut Connection<Self>,
        tenant: TenantNo,
        day: NaiveDate,
        class: Self::Class,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Removes a tenant's late readings of a day; how many there were.
    fn remove_late(
        tx: &mut Connection<Self>,
        tenant: TenantNo,
        day: NaiveDate,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// How a backend reads the hot tier and the warm tier's rollups.
pub trait HotReads: SqlBackend {
    /// The last reading of every metric of a machine.
    fn read_latest(
        &self,
        tenant: TenantNo,
        machine_id: &str,
    ) -> impl Future<Output = Result<Vec<Latest>>> + Send;
    /// A series' readings in a range, oldest first.
    fn read_points(
        &self,
        series: SeriesId,
        range: Range,
    ) -> impl Future<Output = Result<Vec<(Micros, f64)>>> + Send;
    /// A series' readings in several ranges, oldest first.
    fn read_points_in(
        &self,
        series: SeriesId,
        ranges: &[Range],
    ) -> impl Future<Output = Result<Vec<(Micros, f64)>>> + Send;
    /// The sum and count of a series' readings in each of several ranges, in their order.
    fn read_sums_in(
        &self,
        series: SeriesId,
        ranges: &[Range],
    ) -> impl Future<Output = Result<Vec<Rollup>>> + Send;
    /// A series' rollups of a resolution in ranges, with at least `fields` filled in.
    fn read_rollups_in(
        &self,
        series: SeriesId,
        resolution: Resolution,
        ranges: &[Range],
        fields: Fields,
    ) -> impl Future<Output = Result<Vec<(Micros, Rollup)>>> + Send;
    /// A series' late readings in a range, oldest first.
    fn read_late_points(
        &self,
        series: SeriesId,
        range: Range,
    ) -> impl Future<Output = Result<Vec<(Micros, f64)>>> + Send;
    /// The days a tenant has late readings of.
    fn read_late_days(
        &self,
        tenant: TenantNo,
    ) -> impl Future<Output = Result<Vec<NaiveDate>>> + Send;
}
