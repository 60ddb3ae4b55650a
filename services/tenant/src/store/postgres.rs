//! The PostgreSQL store, for production. Read-modify-write transactions lock the rows they read
//! with `SELECT … FOR UPDATE`.

use std::future::Future;

use sqlx::{PgPool, Postgres, Transaction, migrate::MigrateError};

use super::sql_store::{Dialect, SqlStore};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
