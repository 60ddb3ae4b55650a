//! Test helpers (feature `testing`): a throwaway PostgreSQL database or SQLite file per test,
//! services on port-0 listeners, and a private PostgreSQL cluster a test may stop and start.
//!
//! PostgreSQL tests use the server at `MFG_TEST_DATABASE_URL` (or `DATABASE_URL`, or
//! `postgres://postgres@127.0.0.1:5432/postgres`), create a database of their own there, and
//! drop it when done, even when the test fails. A missing server fails the test with a message
//! saying how to get one: such a test never passes silently.

use std::{
    process::{Command, Stdio},
    str::FromStr,
};

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
        Self::postgres_on(&admin_url()).await
    }

    /// Creates a fresh PostgreSQL database on the server of `admin_url` (e.g. a
    /// [`PrivatePostgres`]).
    pub async fn postgres_on(admin_url: &str) -> Self {
        let admin_url = admin_url.to_owned();
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

/// How a [`PrivatePostgres`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Clients are cut and the server shuts down cleanly (a checkpoint).
    Fast,
    /// As a crash: the server processes quit at once; the next start recovers from the WAL.
    Immediate,
}

/// A PostgreSQL cluster of the test's own, on a free port, which the test may stop and start:
/// made with the PostgreSQL binaries in `MFG_TEST_PG_BIN` (scripts/test.sh finds or installs
/// them), or the newest under /usr/lib/postgresql. As root, it runs as the `postgres` user, as
/// PostgreSQL requires.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
}

impl PrivatePostgres {
    /// Makes the cluster and starts it; panics with a clear message without the binaries.
    pub async fn start() -> Self {
        let bin = std::env::var_os("MFG_TEST_PG_BIN")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()?
                    .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
                    .filter(|bin| bin.join("pg_ctl").exists())
                    .collect();
                found.sort();
                found.pop()
            })
            .expect(
                "PostgreSQL's binaries: run the tests with scripts/test.sh, or set MFG_TEST_PG_BIN",
            );
        let dir = tempfile::tempdir().expect("temporary directory");
        let as_root = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata("/proc/self").expect("/proc/self").uid() == 0
        };
        let postgres = Self {
            bin,
            dir,
            port: listener().await.1.port(),
            as_root,
        };
        if as_root {
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(postgres.dir.path());
            succeeds(chown);
        }
        postgres.pg("initdb", |c| {
            c.arg("-D").arg(postgres.data()).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]);
        });
        postgres.up();
        postgres
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `command`, as the `postgres` user when the test runs as root.
    fn as_postgres(&self, command: Command) -> Command {
        if !self.as_root {
            return command;
        }
        let mut wrapped = Command::new("runuser");
        wrapped
            .args(["-u", "postgres", "--"])
            .arg(command.get_program())
            .args(command.get_args());
        wrapped
    }

    /// Runs one of PostgreSQL's programs and checks that it succeeded.
    fn pg(&self, program: &str, args: impl FnOnce(&mut Command)) {
        let mut command = Command::new(self.bin.join(program));
        args(&mut command);
        succeeds(self.as_postgres(command));
    }

    /// Starts the server again after [`PrivatePostgres::stop`], and waits until it accepts
    /// connections.
    pub fn start_again(&self) {
        self.up();
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-o", &options, "start"]);
        });
    }

    /// Stops the server, and waits until it has.
    pub fn stop(&self, how: Shutdown) {
        let mode = match how {
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        };
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-w", "-m", mode, "stop"]);
        });
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let mut stop = Command::new(self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"]);
        let _ = self
            .as_postgres(stop)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a command and checks that it succeeded.
fn succeeds(mut command: Command) {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One `#[tokio::test]` per backend for each named test function: `mod <backend> { async fn
/// <test>() }` calls `super::<test>(<the backend's argument>)`. The argument's temporaries (a
/// test database, a directory) live until the test ends. Every suite that runs on more than
/// one backend uses it:
///
/// ```ignore
/// mfg_common::on_each_backend!(
///     [
///         postgres => open(&TestDatabase::postgres().await).await,
///         sqlite => open(&TestDatabase::sqlite()).await,
///     ],
///     [tenants_round_trip, names_stay_reserved],
/// );
/// ```
#[macro_export]
macro_rules! on_each_backend {
    ([$($backend:ident => $argument:expr),+ $(,)?], $tests:tt $(,)?) => {
        $( $crate::on_each_backend!(@backend $backend, $argument, $tests); )+
    };
    (@backend $backend:ident, $argument:expr, [$($test:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($argument).await;
                }
            )*
        }
    };
}
