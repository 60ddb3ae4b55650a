//! Database connections for both backends, chosen by URL, and the one place sqlx errors are
//! classified into the system's error codes.

mod migrations;

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::{ErrorCode, config::DatabaseArgs};

pub use migrations::{MigrationFiles, migrator};

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, for production.
    Postgres,
    /// SQLite, bundled, for the embedded default.
    Sqlite,
}

impl Backend {
    /// Returns the backend a URL names, or `None` for an unknown scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub enum DbPool {
    /// A PostgreSQL pool.
    Postgres(PgPool),
    /// A SQLite pool.
    Sqlite(SqlitePool),
}

impl DbPool {
    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Validates a database URL, naming what is wrong.
pub fn validate_url(url: &str) -> Result<Backend, String> {
    let backend = Backend::of_url(url).ok_or_else(|| {
        "the database URL must start with postgres:// or sqlite:// (e.g. sqlite://.mfg/tenant.db)"
            .to_owned()
    })?;
    match backend {
        Backend::Postgres => PgConnectOptions::from_str(url).map(drop),
        Backend::Sqlite => SqliteConnectOptions::from_str(url).map(drop),
    }
    .map_err(|error| format!("invalid database URL: {error}"))?;
    Ok(backend)
}

/// A statement that reads a row its transaction will change: as it is, and with `FOR UPDATE`,
/// which locks the row on a backend with row locks (PostgreSQL). SQLite has none: its
/// read-modify-write transactions take the database's write lock as they begin. Written with
/// [`for_update!`](crate::for_update).
#[derive(Debug, Clone, Copy)]
pub struct ForUpdate {
    /// The statement.
    pub plain: &'static str,
    /// The statement and ` FOR UPDATE`.
    pub locking: &'static str,
}

impl ForUpdate {
    /// The statement as database `DB` runs it.
    pub fn of<DB: SqlDialect>(&self) -> &'static str {
        if DB::LOCKS_ROWS {
            self.locking
        } else {
            self.plain
        }
    }
}

/// What the services' stores, generic over their database, need to know of it beyond sqlx.
pub trait SqlDialect: sqlx::Database {
    /// Whether a read-modify-write locks the rows it reads with `FOR UPDATE`; SQLite has no
    /// row locks, and its write transactions lock the whole database as they begin.
    const LOCKS_ROWS: bool;
    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl SqlDialect for sqlx::Postgres {
    const LOCKS_ROWS: bool = true;
    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl SqlDialect for sqlx::Sqlite {
    const LOCKS_ROWS: bool = false;
    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// A [`ForUpdate`] of a statement given in parts, as `concat!` takes them.
#[macro_export]
macro_rules! for_update {
    ($($part:expr),+ $(,)?) => {
        $crate::db::ForUpdate {
            plain: concat!($($part),+),
            locking: concat!($($part),+, " FOR UPDATE"),
        }
    };
}

/// Connects to the database a URL names.
///
/// SQLite files (and their directory) are created if missing, readable by their owner only
/// (0600, and 0700 for a new directory), in WAL mode with `synchronous =
/// FULL`, so that a committed transaction survives a crash of the process or of the machine.
///
/// PostgreSQL connections run with two settings of their own (decision 0010):
/// - `jit = off`: the services' statements are short, and once a table has statistics a read
///   of a few thousand rows can be estimated above `jit_above_cost`, whereupon compiling it
///   took ~95 ms of a 30-day query that runs in 14 ms without it;
/// - `backend_flush_after = 256kB`: the pages a connection writes out are handed to the disk
///   as it goes, as the server already does for its checkpointer and background writer, rather
///   than left dirty in the kernel's cache until a checkpoint or the kernel's 30-s expiry
///   writes them all at once, which every commit then waits behind.
pub async fn connect(args: &DatabaseArgs) -> Result<DbPool, sqlx::Error> {
    match Backend::of_url(&args.url) {
        Some(Backend::Postgres) => {
            let options = PgConnectOptions::from_str(&args.url)?
                .options([("jit", "off"), ("backend_flush_after", "256kB")]);
            // One connection first, whose error says why (refused, authentication, no such
            // database): a pool that cannot connect only says that it timed out.
            let first = sqlx::ConnectOptions::connect(&options)
                .await
                .map_err(|error| unreachable_postgres(&options, error))?;
            sqlx::Connection::close(first).await?;
            let pool = PgPoolOptions::new()
                .max_connections(args.pool.max_connections)
                .acquire_timeout(args.pool.acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(DbPool::Postgres(pool))
        }
        Some(Backend::Sqlite) => {
            let options = SqliteConnectOptions::from_str(&args.url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let file = options.get_filename();
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::secret_file::create_private_dir(dir).map_err(sqlx::Error::Io)?;
            }
            let in_memory = args.url.contains(":memory:") || args.url.contains("mode=memory");
            if !in_memory {
                crate::secret_file::create_private_file(file).map_err(sqlx::Error::Io)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(args.pool.max_connections)
                .acquire_timeout(args.pool.acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(DbPool::Sqlite(pool))
        }
        None => Err(sqlx::Error::Configuration(
            format!("unsupported database URL scheme in `{}`", redact(&args.url)).into(),
        )),
    }
}

/// Names the server a failed first connection was for, keeping sqlx's own words for the cause.
fn unreachable_postgres(options: &PgConnectOptions, error: sqlx::Error) -> sqlx::Error {
    let server = format!(
        "PostgreSQL at {}:{} (database `{}`, user `{}`)",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default(),
        options.get_username()
    );
    match error {
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(
            io.kind(),
            format!("cannot reach {server}: {io}"),
        )),
        sqlx::Error::Database(db) => sqlx::Error::Configuration(
            format!("{server} refused the connection: {}", db.message()).into(),
        ),
        other => other,
    }
}

/// Returns a URL with its password hidden, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!("{}:***{}", &url[..scheme + 3 + colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// What went wrong in a database call, in the system's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A unique or primary-key constraint: the thing exists.
    UniqueViolation,
    /// A foreign-key constraint: the referenced thing does not exist.
    ForeignKeyViolation,
    /// A check or not-null constraint: a bug in validation.
    ConstraintViolation,
    /// No row where one was expected.
    RowNotFound,
    /// The database cannot be reached now (pool timeout, I/O, closed pool).
    Unavailable,
    /// Anything else.
    Other,
}

impl DbErrorKind {
    /// Classifies a sqlx error.
    pub fn of(error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => Self::UniqueViolation,
                sqlx::error::ErrorKind::ForeignKeyViolation => Self::ForeignKeyViolation,
                sqlx::error::ErrorKind::NotNullViolation
                | sqlx::error::ErrorKind::CheckViolation
                | sqlx::error::ErrorKind::ExclusionViolation => Self::ConstraintViolation,
                _ if is_transient(db.code().as_deref()) => Self::Unavailable,
                _ => Self::Other,
            },
            sqlx::Error::RowNotFound => Self::RowNotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable,
            _ => Self::Other,
        }
    }

    /// Returns the error code a caller should see for this kind, absent a more specific mapping.
    pub fn error_code(self) -> ErrorCode {
        match self {
            Self::UniqueViolation => ErrorCode::AlreadyExists,
            Self::ForeignKeyViolation | Self::RowNotFound => ErrorCode::NotFound,
            Self::Unavailable => ErrorCode::Unavailable,
            Self::ConstraintViolation | Self::Other => ErrorCode::Internal,
        }
    }
}

/// PostgreSQL SQLSTATEs (admin shutdown, cannot connect now, serialization and deadlock) and
/// SQLite's busy and locked codes: the request may succeed if retried.
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("57P01" | "57P02" | "57P03" | "40001" | "40P01" | "5" | "6" | "517" | "262")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(
            validate_url("postgres://postgres@127.0.0.1/test"),
            Ok(Backend::Postgres)
        );
        assert_eq!(validate_url("sqlite://.mfg/tenant.db"), Ok(Backend::Sqlite));
        assert!(validate_url("mysql://root@localhost/x").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn pool_timeouts_are_unavailable() {
        assert_eq!(
            DbErrorKind::of(&sqlx::Error::PoolTimedOut).error_code(),
            ErrorCode::Unavailable
        );
        assert_eq!(
            DbErrorKind::of(&sqlx::Error::RowNotFound).error_code(),
            ErrorCode::NotFound
        );
    }
}
