//! What a SQL backend of the storage stores says about itself, so that the stores' bodies are
//! written once, as plain generic Rust (`alert_sql.rs`): its database, how it stores times and
//! ids, how it begins a write and locks a row, and the writes it makes its own way.

use std::future::Future;

use sqlx::{Database, Pool};
use uuid::Uuid;

use super::{AlertWrite, LogPosition, Written, write_turn::WriteTx};
use crate::error::Result;

/// A backend of the stores: PostgreSQL or SQLite.
pub trait SqlBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Its database.
    type Db: Database;
    /// A time as its columns hold it (`timestamptz`; µs since the epoch on SQLite).
    type Ts: Send + Sync + 'static;
    /// An id as its columns hold it (`uuid`; text on SQLite).
    type Uuid: Send + Sync + 'static;

    /// Whether a read-modify-write locks the rows it reads with `FOR UPDATE`; SQLite has no
    /// row locks, and its write transactions lock the whole database as they begin.
    const LOCKS_ROWS: bool;

    /// Its pool.
    fn pool(&self) -> &Pool<Self::Db>;
    /// µs since the epoch as a column value.
    fn ts(micros: i64) -> Self::Ts;
    /// A column's time in µs since the epoch.
    fn micros(ts: Self::Ts) -> i64;
    /// An id as a column value.
    fn uuid(id: Uuid) -> Self::Uuid;
    /// A column's id.
    fn uuid_of(id: Self::Uuid) -> Result<Uuid>;
    /// How many rows a statement changed.
    fn rows_affected(result: &<Self::Db as Database>::QueryResult) -> u64;

    /// Begins a write transaction (see `write_turn`).
    fn begin_write(&self) -> impl Future<Output = Result<WriteTx<Self::Db>, sqlx::Error>> + Send;
    /// Writes alerts, events and evaluator states in one transaction.
    fn write_alerts_now(&self, write: &AlertWrite) -> impl Future<Output = Result<Written>> + Send;
    /// How far the server's log stands, where it can tell.
    fn log_position_now(&self) -> impl Future<Output = Result<Option<LogPosition>>> + Send;
}

/// A statement that reads a row its transaction will change: as it is, and with the suffix that
/// locks the row, for a backend that locks rows ([`SqlBackend::LOCKS_ROWS`]).
pub struct ForUpdate {
    pub plain: &'static str,
    pub locking: &'static str,
}

impl ForUpdate {
    /// The statement as backend `B` runs it.
    pub fn of<B: SqlBackend>(&self) -> &'static str {
        if B::LOCKS_ROWS {
            self.locking
        } else {
            self.plain
        }
    }
}

/// A [`ForUpdate`] of a statement given in parts, as `concat!` takes them.
macro_rules! for_update {
    ($($part:expr),+ $(,)?) => {
        $crate::store::backend::ForUpdate {
            plain: concat!($($part),+),
            locking: concat!($($part),+, " FOR UPDATE"),
        }
    };
}
