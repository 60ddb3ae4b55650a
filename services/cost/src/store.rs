//! The cost service's ledger: one trait, [`CostStore`], implemented once over both backends
//! (`store/sql_store.rs`) and tested by one conformance suite on PostgreSQL and SQLite.
//!
//! Usage is kept by tenant, meter and hour, and summed by day and by month as well
//! ([`buckets`]): a record is split over the hours it spans and added to them and to their days
//! and months, in the transaction that records its idempotency key, so a record is counted once
//! however often it is sent. A month of a tenant's usage is at most 730 hourly rows a meter,
//! and one monthly row.

pub mod buckets;
/// The SQL migrations of each backend, embedded by the build script (`mfg_build`).
pub mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}
mod sql_store;
mod writes;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mfg_common::{audit::AuditRecord, db::DbPool};
use uuid::Uuid;

use self::buckets::Grain;
pub use self::sql_store::SqlStore;
use crate::{
    domain::{
        budget::Breach,
        meter::Meter,
        price_book::{PriceBook, PriceHistory},
        report::Usage,
    },
    error::Result,
};

/// How long after its start an hour takes late usage without bumping the
/// [`CostStore::ledger_version`]: half the hour after which reports keep it as settled, a
/// margin for the clocks of several processes.
pub const LATE: chrono::Duration = chrono::Duration::minutes(30);

/// The table sqlx records the cost service's migrations in, apart from the other services'
/// when they share a database.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations_cost";

/// A usage record with the key that makes it count once.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedUsage {
    /// Unique to the record: a retried or repeated record carries the same key.
    pub idempotency_key: String,
    /// The usage.
    pub usage: Usage,
}

/// What a [`CostStore::record_usage`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Records counted now.
    pub recorded: u32,
    /// Records whose key was counted before.
    pub duplicates: u32,
}

/// A tenant's usage of a meter summed over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Summed {
    /// The tenant.
    pub tenant: Uuid,
    /// The meter.
    pub meter: Meter,
    /// A count, or a level times the seconds it was held.
    pub amount: f64,
}

/// Where usage and prices are kept.
#[async_trait::async_trait]
pub trait CostStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies the migrations that are not applied yet.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the pool, once the service has drained.
    async fn close(&self);

    /// Counts the records whose keys were not counted before, in one transaction.
    async fn record_usage(&self, records: &[KeyedUsage], now: DateTime<Utc>) -> Result<Recorded>;
    /// Counts a batch of usage under one key, in one transaction: all of it when the key was
    /// not counted before, none of it when it was.
    async fn record_batch(
        &self,
        key: &str,
        usage: &[Usage],
        now: DateTime<Utc>,
    ) -> Result<Recorded>;
    /// How many times usage was recorded late, into hours that had settled
    /// ([`LATE`] before it was recorded): what was kept of settled buckets is stale when it
    /// changed.
    async fn ledger_version(&self) -> Result<i64>;
    /// Every tenant's amount of each meter in each bucket of `grain` that starts in
    /// `[start, end)` (µs), as `(bucket start, amount)`, in no order.
    async fn bucket_amounts(
        &self,
        grain: Grain,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Summed)>>;
    /// Forgets the idempotency keys recorded before `before`, returning how many: a record
    /// sent again after its key is forgotten counts again, so `before` must lie further back
    /// than any flush is retried.
    async fn forget_keys(&self, before: DateTime<Utc>) -> Result<u64>;
    /// The usage of the buckets of `grain` that start in `[start, end)`, of one tenant or of
    /// all, one record per tenant, meter and bucket (a level as its mean over the bucket).
    async fn usage(
        &self,
        grain: Grain,
        tenant: Option<Uuid>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Usage>>;
    /// The usage of the hours that start in `[start, end)`, or from `start` on when `end` is
    /// `None`, of one tenant or of all, summed per tenant and meter from the fewest buckets.
    async fn sums(
        &self,
        tenant: Option<Uuid>,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Vec<Summed>>;

    /// A tenant's budget thresholds and when they were set, if it set them.
    async fn budget_thresholds(&self, tenant: Uuid) -> Result<Option<(Vec<f64>, DateTime<Utc>)>>;
    /// Records a change of a tenant's budget at `now`, in one transaction: its thresholds
    /// (checked, ascending) when they changed, and its audit record.
    async fn set_budget(
        &self,
        tenant: Uuid,
        thresholds: Option<&[f64]>,
        now: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<()>;

    /// Every tenant's budget thresholds that it set (the others have the defaults).
    async fn all_budget_thresholds(&self) -> Result<HashMap<Uuid, Vec<f64>>>;

    /// Claims the raising of a breach's alert: inserts its row with `alert_id` at `now`, or
    /// takes over a row not raised and claimed before `stale`. Returns the alert id to raise it
    /// under (the row's, whoever inserted it), or `None` when it was raised or another process
    /// claimed it since `stale`.
    async fn claim_breach(
        &self,
        breach: &Breach,
        alert_id: Uuid,
        now: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> Result<Option<Uuid>>;
    /// Marks a breach's alert raised.
    async fn breach_raised(&self, breach: &Breach) -> Result<()>;
    /// The breaches of a month whose alerts were raised.
    async fn raised_breaches(&self, month: &str) -> Result<Vec<Breach>>;
    /// The tenants with breaches of the months before `month` whose alerts have not ended.
    async fn unended_breaches(&self, month: &str) -> Result<Vec<Uuid>>;
    /// Marks a tenant's breaches of the months before `month` ended.
    async fn end_breaches(&self, tenant: Uuid, month: &str) -> Result<()>;

    /// Deletes an offboarded tenant's usage, budget and budget alerts, and moves the ledger's
    /// version so that every process forgets the sums it kept; returns how many rows of usage
    /// went. Usage of the tenant recorded afterwards is dropped (a meter's flush taken before
    /// the deletion), until [`CostStore::forget_keys`] forgets the deletion with the keys.
    async fn forget_tenant(&self, tenant: Uuid, now: DateTime<Utc>) -> Result<u64>;

    /// Every price book with the moment it came into force, the default before the first.
    async fn price_history(&self) -> Result<PriceHistory>;
    /// Records a price book in force from `from` on, replacing the one in force since
    /// `replaces` (`None`: the defaults). Returns false, changing nothing, when another change
    /// replaced that book first: the caller reads the history again and retries. The change's
    /// audit record is written with it.
    async fn change_prices(
        &self,
        from: DateTime<Utc>,
        replaces: Option<DateTime<Utc>>,
        book: &PriceBook,
        audit: Option<&AuditRecord>,
    ) -> Result<bool>;
}

/// Opens the store of a pool's backend.
pub fn open(pool: DbPool) -> Box<dyn CostStore> {
    match pool {
        DbPool::Postgres(pool) => Box::new(SqlStore::new(pool)),
        DbPool::Sqlite(pool) => Box::new(SqlStore::new(pool)),
    }
}
