//! The PostgreSQL store, for production. Read-modify-write transactions lock the rows they read
//! with `SELECT … FOR UPDATE`.

use chrono::{DateTime, Utc};
use mfg_common::db::DbErrorKind;
use sqlx::{PgPool, types::Json};

use super::{Change, sql, sql::require_live};
use crate::{
    domain::{ApiKey, KeyId, KeyRecord, Machine, MachineId, NewApiKey, Tenant, TenantId},
    error::{Result, TenantError},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Tenants, keys and machines in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Creates a store on a pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

sql_store!(PostgresStore, migrator: MIGRATOR, begin: |pool| pool.begin(), lock: " FOR UPDATE");
