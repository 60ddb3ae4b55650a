//! The SQLite store, for the embedded default. Read-modify-write transactions start with
//! `BEGIN IMMEDIATE`, which takes the database's write lock up front: SQLite has no row locks,
//! and a deferred transaction that reads and then writes could fail to upgrade its lock.

use std::{future::Future, sync::LazyLock};

use sqlx::{
    Sqlite, SqlitePool, Transaction,
    migrate::{MigrateError, Migrator},
};

use super::sql_store::{Dialect, SqlStore};

static MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| mfg_common::db::migrator(super::migrations::SQLITE, None));

/// Tenants, keys and machines in a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    fn migrate(pool: &SqlitePool) -> impl Future<Output = Result<(), MigrateError>> + Send {
        MIGRATOR.run(pool)
    }

    fn begin_change(
        pool: &SqlitePool,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin_with("BEGIN IMMEDIATE")
    }
}
