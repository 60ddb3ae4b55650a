//! The cost service's ledger: one trait, [`CostStore`], implemented once over both backends
//! (`store/sql_store.rs`) and tested by one conformance suite on PostgreSQL and SQLite.
//!
//! Usage is kept by tenant, meter and hour: a record is split over the hours it spans and added
//! to them, in the transaction that records its idempotency key, so a record is counted once
//! however often it is sent. A month of a tenant's usage is at most 730 rows a meter.

mod sql_store;

use chrono::{DateTime, Utc};
use mfg_common::db::DbPool;
use uuid::Uuid;

pub use self::sql_store::SqlStore;
use crate::{
    domain::{
        price_book::{PriceBook, PriceHistory},
        report::Usage,
    },
    error::Result,
};

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

/// Where usage and prices are kept.
#[async_trait::async_trait]
pub trait CostStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies the migrations that are not applied yet.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Counts the records whose keys were not counted before, in one transaction.
    async fn record_usage(&self, records: &[KeyedUsage], now: DateTime<Utc>) -> Result<Recorded>;
    /// Forgets the idempotency keys recorded before `before`, returning how many: a record
    /// sent again after its key is forgotten counts again, so `before` must lie further back
    /// than any flush is retried.
    async fn forget_keys(&self, before: DateTime<Utc>) -> Result<u64>;
    /// The usage of the hours that start in `[start, end)`, of one tenant or of all, one
    /// record per tenant, meter and hour (a level as its mean over the hour).
    async fn usage(
        &self,
        tenant: Option<Uuid>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Usage>>;

    /// Every price book with the moment it came into force, the default before the first.
    async fn price_history(&self) -> Result<PriceHistory>;
    /// Records a price book in force from `from` on.
    async fn change_prices(&self, from: DateTime<Utc>, book: &PriceBook) -> Result<()>;
}

/// Opens the store of a pool's backend.
pub fn open(pool: DbPool) -> Box<dyn CostStore> {
    match pool {
        DbPool::Postgres(pool) => Box::new(SqlStore::new(pool)),
        DbPool::Sqlite(pool) => Box::new(SqlStore::new(pool)),
    }
}
