//! Test helpers (feature `testing`): a throwaway PostgreSQL database or SQLite file per test.
//!
//! PostgreSQL tests use the server at `MFG_TEST_DATABASE_URL` (or `DATABASE_URL`, or
//! `postgres://postgres@127.0.0.1:5432/postgres`), create a database of their own there, and
//! drop it when done, even when the test fails. A missing server fails the test with a message
//! saying how to get one: such a test never passes silently.

use std::str::FromStr;

use sqlx::{AssertSqlSafe, Connection as _, PgConnection, postgres::PgConnectOptions};

/// The server tests use when no variable names one.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Returns the URL of the PostgreSQL server tests use.
pub fn admin_url() -> String {
    std::env::var("MFG_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// The database's URL.
    pub url: String,
    admin_url: String,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Creates a fresh PostgreSQL database; panics with a clear message if there is no server.
    pub async fn postgres() -> Self {
        let admin_url = admin_url();
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL tests need a server: none answers at {} ({error}). Run `scripts/test.sh`, \
                 which starts one, or set MFG_TEST_DATABASE_URL",
                crate::db::redact(&admin_url)
            )
        });
        let name = format!("mfg_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("cannot create a test database");
        let _ = admin.close().await;
        Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name: Some(name),
            _dir: None,
        }
    }

    /// Creates a fresh SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            url,
            admin_url: String::new(),
            name: None,
            _dir: Some(dir),
        }
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        let admin_url = self.admin_url.clone();
        // Drop may run inside a runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let options = PgConnectOptions::from_str(&admin_url).ok()?;
                let mut admin = PgConnection::connect_with(&options).await.ok()?;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()?;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop a test database");
        }
    }
}

/// Binds a listener on a free port of 127.0.0.1.
pub async fn listener() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// A service running in this process, on a port-0 listener of 127.0.0.1.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    shutdown: crate::shutdown::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts a service with `run(listener, shutdown)` and waits until `service` is SERVING.
    pub async fn start<F, Fut>(service: &str, run: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, crate::shutdown::CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (listener, addr) = listener().await;
        let shutdown = crate::shutdown::CancellationToken::new();
        let task = tokio::spawn(run(listener, shutdown.clone()));
        crate::grpc::wait_for_health(
            addr,
            service,
            tonic_health::ServingStatus::Serving,
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|last| panic!("{service} did not become SERVING: {last}"));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// Returns a traced client channel to the service, carrying `token`.
    pub fn channel_with(&self, token: &str) -> crate::grpc::TracedChannel {
        crate::grpc::lazy_channel(&format!("http://{}", self.addr))
            .expect("valid address")
            .with_bearer(token)
            .expect("a valid token")
    }

    /// Stops the service and waits for it to drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("service task")
            .expect("service stopped cleanly");
    }

    /// Stops the service without letting it drain, as a crash would.
    pub fn kill(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn urls_get_their_database_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@%2Frun%2Fpg/postgres", "x"),
            "postgres://u@%2Frun%2Fpg/x"
        );
    }
}
