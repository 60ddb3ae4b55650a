//! The SQLite store, for the embedded default. Read-modify-write transactions start with
//! `BEGIN IMMEDIATE`, which takes the database's write lock up front: SQLite has no row locks,
//! and a deferred transaction that reads and then writes could fail to upgrade its lock.

use chrono::{DateTime, Utc};
use mfg_common::db::DbErrorKind;
use sqlx::{SqlitePool, types::Json};

use super::{Change, sql, sql::require_live};
use crate::{
    domain::{ApiKey, KeyId, KeyRecord, Machine, MachineId, NewApiKey, Tenant, TenantId},
    error::{Result, TenantError},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Tenants, keys and machines in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Creates a store on a pool.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

sql_store!(SqliteStore, migrator: MIGRATOR, begin: |pool| pool.begin_with("BEGIN IMMEDIATE"), lock: "");
