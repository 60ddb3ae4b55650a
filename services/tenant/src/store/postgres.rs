//! The PostgreSQL store, for production. Read-modify-write transactions lock the rows they read
//! with `SELECT … FOR UPDATE`.

use std::{future::Future, sync::LazyLock};

use sqlx::{
    PgPool, Postgres, Transaction,
    migrate::{MigrateError, Migrator},
};

use super::sql_store::{Dialect, SqlStore};

static MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| mfg_common::db::migrator(super::migrations::POSTGRES, None));

/// Tenants, keys and machines in PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    fn migrate(pool: &PgPool) -> impl Future<Output = Result<(), MigrateError>> + Send {
        MIGRATOR.run(pool)
    }

    fn begin_change(
        pool: &PgPool,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin()
    }
}
