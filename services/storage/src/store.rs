//! The storage service's database, which both halves share: one pool, one set of migrations,
//! and a PostgreSQL and a SQLite backend. Each half declares its own store trait
//! ([`crate::telemetry::store::TelemetryStore`], [`crate::alerting::store::AlertStore`]) and
//! implements it once over [`backend::SqlBackend`]; the backends differ only in their dialect and
//! in the hot tier's own statements.
//!
//! Each tenant gets a small number ([`TenantNo`]) that keys its rows in both halves.

#[macro_use]
pub(crate) mod backend;
#[macro_use]
pub(crate) mod sql;
mod jobs;
/// The SQL migrations of each backend, embedded by the build script (`mfg_build`).
pub mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}
mod postgres;
mod sqlite;
pub(crate) mod write_turn;

use mfg_common::db::DbPool;

pub use self::{
    jobs::{JobStore, SqlJobStore},
    postgres::PostgresStore,
    sqlite::SqliteStore,
};
use crate::{alerting::store::AlertStore, telemetry::store::TelemetryStore};

/// A tenant's number in the storage database: the key its rows are stored under, smaller than
/// its UUID. Given by [`TelemetryStore::register_tenant`], never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantNo(pub i32);

crate::column::transparent_column!(TenantNo(i32));

/// Opens the store of a pool's backend.
pub fn open(pool: DbPool) -> Box<dyn TelemetryStore> {
    match pool {
        DbPool::Postgres(pool) => Box::new(PostgresStore::new(pool)),
        DbPool::Sqlite(pool) => Box::new(SqliteStore::new(pool)),
    }
}

/// Opens the tiering jobs' store of a pool's backend.
pub fn open_jobs(pool: DbPool) -> std::sync::Arc<dyn JobStore> {
    match pool {
        DbPool::Postgres(pool) => std::sync::Arc::new(SqlJobStore::new(pool)),
        DbPool::Sqlite(pool) => std::sync::Arc::new(SqlJobStore::new(pool)),
    }
}

/// Opens the alert store of a pool's backend.
pub fn open_alerts(pool: DbPool) -> std::sync::Arc<dyn AlertStore> {
    match pool {
        DbPool::Postgres(pool) => std::sync::Arc::new(PostgresStore::new(pool)),
        DbPool::Sqlite(pool) => std::sync::Arc::new(SqliteStore::new(pool)),
    }
}

/// Opens the usage facts' store of a pool's backend.
pub fn open_usage(pool: DbPool) -> std::sync::Arc<dyn crate::usage::UsageStore> {
    match pool {
        DbPool::Postgres(pool) => std::sync::Arc::new(PostgresStore::new(pool)),
        DbPool::Sqlite(pool) => std::sync::Arc::new(SqliteStore::new(pool)),
    }
}

/// The table sqlx records the storage service's migrations in, apart from the other services'
/// when they share a database.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations_storage";
