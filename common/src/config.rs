//! Command-line arguments every service shares. Each is a `--flag` and an `MFG_*` environment
//! variable; services flatten them into their own `Config`.

use std::{fmt, str::FromStr, time::Duration};

/// Where the platform keeps its data, one set of flags for every command: every part with a
/// database on the URL given, or else on SQLite files in the data directory
/// (`<data-dir>/<part>.db`), where the generated secrets are kept too.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    #[command(flatten)]
    pub data_dir: DataDir,
    /// The database: `postgres://user@host/db` for PostgreSQL, or `sqlite://path/file.db`;
    /// unset, SQLite files in the data directory.
    #[arg(long = "database-url", env = "MFG_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub pool: PoolArgs,
}

impl DataArgs {
    /// Every part on `url`, with the default pool, for tests and embedding.
    pub fn on(url: impl Into<String>) -> Self {
        Self {
            data_dir: DataDir::default(),
            database_url: Some(url.into()),
            pool: PoolArgs::default(),
        }
    }

    /// The database of `part` (`tenant`, `storage`…): the URL given, or its SQLite file in the
    /// data directory.
    pub fn database(&self, part: &str) -> DatabaseArgs {
        let url = self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.path.join(format!("{part}.db")).display()
            )
        });
        DatabaseArgs {
            url,
            pool: self.pool,
        }
    }
}

/// The data directory: one flag for every command.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DataDir {
    /// Where SQLite files and generated secrets (operator token, key pepper) live.
    #[arg(long = "data-dir", env = "MFG_DATA_DIR", default_value = ".mfg")]
    pub path: std::path::PathBuf,
}

impl Default for DataDir {
    fn default() -> Self {
        Self::new(".mfg")
    }
}

impl DataDir {
    /// The data directory at `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

/// The database one service connects to, as [`DataArgs::database`] resolves it.
#[derive(Debug, Clone)]
pub struct DatabaseArgs {
    /// `postgres://user@host/db`, or `sqlite://path/file.db` (created if missing).
    pub url: String,
    /// How its pool is sized.
    pub pool: PoolArgs,
}

impl DatabaseArgs {
    /// Returns arguments for `url` with the defaults, for tests and embedding.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool: PoolArgs::default(),
        }
    }
}

/// Where each part of the platform is: one flag per part, the same for every command. A part
/// listens on its own address when it runs in this process (`mfg up` runs them all, `mfg serve
/// <part>` one), and the others reach it there (`host:port`, or `http://host:port` for a peer).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PlatformAddrs {
    /// The REST gateway.
    #[arg(
        long = "gateway-addr",
        env = "MFG_GATEWAY_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub gateway: String,
    /// The tenant service (gRPC).
    #[arg(
        long = "tenant-addr",
        env = "MFG_TENANT_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub tenant: String,
    /// The storage service (gRPC).
    #[arg(
        long = "storage-addr",
        env = "MFG_STORAGE_ADDR",
        default_value = "127.0.0.1:50052"
    )]
    pub storage: String,
    /// The cost service (gRPC).
    #[arg(
        long = "cost-addr",
        env = "MFG_COST_ADDR",
        default_value = "127.0.0.1:50053"
    )]
    pub cost: String,
    /// The provisioning service (gRPC).
    #[arg(
        long = "provisioning-addr",
        env = "MFG_PROVISIONING_ADDR",
        default_value = "127.0.0.1:50054"
    )]
    pub provisioning: String,
}

impl Default for PlatformAddrs {
    fn default() -> Self {
        Self {
            gateway: "127.0.0.1:8080".to_owned(),
            tenant: "127.0.0.1:50051".to_owned(),
            storage: "127.0.0.1:50052".to_owned(),
            cost: "127.0.0.1:50053".to_owned(),
            provisioning: "127.0.0.1:50054".to_owned(),
        }
    }
}

impl PlatformAddrs {
    /// Every part at `addr` (a port 0 in tests: each listener then gets its own port).
    pub fn all(addr: std::net::SocketAddr) -> Self {
        let addr = addr.to_string();
        Self {
            gateway: addr.clone(),
            tenant: addr.clone(),
            storage: addr.clone(),
            cost: addr.clone(),
            provisioning: addr,
        }
    }

    /// The socket address a part listens on, from its flag's value; `flag` names it in the
    /// error.
    pub fn listen(addr: &str, flag: &str) -> Result<std::net::SocketAddr, String> {
        addr.parse()
            .map_err(|_| format!("--{flag}: {addr:?} is not an address to listen on (ip:port)"))
    }
}

/// The operator token, one flag for every command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OperatorArgs {
    /// The operator token (at least 16 characters): a caller presenting it acts as the
    /// platform's operator, and the services present it to each other. Required with
    /// PostgreSQL; with SQLite, when unset, one is generated on first start and kept (mode
    /// 0600) beside the database file, or in the data directory for `mfg up` and the gateway.
    #[arg(long = "admin-token", env = "MFG_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
}

/// Whether a service records its administrative actions in the audit log
/// (`mfg_common::audit`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct AuditArgs {
    /// Record each administrative action (of tenants, keys, machines, rules, alerts, budgets
    /// and the price book) and append it to the audit log of the provisioning service at
    /// `--provisioning-addr`. A record is written with its action, and kept until the log took
    /// it.
    #[arg(
        long = "audit-log",
        env = "MFG_AUDIT_LOG",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,
}

impl AuditArgs {
    /// Nothing recorded, as a service started on its own in tests runs.
    pub const OFF: Self = Self { enabled: false };
    /// Every action recorded, as `mfg up` runs.
    pub const ON: Self = Self { enabled: true };
}

/// How a service meters usage for the cost service (`mfg_common::metering`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct MeteringArgs {
    /// How often the usage counted here is flushed to the cost service at `--cost-addr`; `0s`
    /// turns metering off. A crash loses at most the usage of this long (and of the flushes
    /// the cost service has not taken, while it is down).
    #[arg(
        long = "metering-interval",
        env = "MFG_METERING_INTERVAL",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub interval: Duration,
}

impl Default for MeteringArgs {
    /// Every 5 s, as the flag's default.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
        }
    }
}

impl MeteringArgs {
    /// Metering off, as embedded services and tests start unless they ask for it.
    pub const OFF: Self = Self {
        interval: Duration::ZERO,
    };

    /// Whether usage is metered.
    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }
}

/// How a service's pool of database connections is sized.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PoolArgs {
    /// Maximum connections in the pool.
    #[arg(
        long = "database-max-connections",
        env = "MFG_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
    /// How long to wait for a pooled connection before answering UNAVAILABLE.
    #[arg(long = "database-acquire-timeout", env = "MFG_DATABASE_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub acquire_timeout: Duration,
}

impl Default for PoolArgs {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// How a gRPC server treats its connections and how it stops.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ServerArgs {
    /// How long in-flight requests and streams may run after a shutdown signal before they are
    /// cut.
    #[arg(long = "shutdown-grace", env = "MFG_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    #[command(flatten)]
    pub connections: ConnectionArgs,
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `127.0.0.1:9090`; unset serves
    /// none.
    #[arg(long = "metrics-addr", env = "MFG_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Default for ServerArgs {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(10),
            connections: ConnectionArgs::default(),
            metrics_addr: None,
        }
    }
}

/// What one peer may hold open on a listener (see [`crate::connections`]).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ConnectionArgs {
    /// How long a new connection may take to start its protocol (the HTTP/2 preface, or an
    /// HTTP/1 request's headers), and how long an HTTP/1 connection may sit idle between
    /// requests, before it is closed.
    #[arg(long = "handshake-timeout", env = "MFG_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// How many connections one IP address may hold open at once; more are closed on accept.
    #[arg(
        long = "max-connections-per-peer",
        env = "MFG_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 4_096
    )]
    pub max_connections_per_peer: usize,
}

impl Default for ConnectionArgs {
    fn default() -> Self {
        let limits = crate::connections::ConnectionLimits::default();
        Self {
            handshake_timeout: limits.handshake_timeout,
            max_connections_per_peer: limits.max_per_peer,
        }
    }
}

impl ConnectionArgs {
    /// The limits these arguments set.
    pub fn limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            handshake_timeout: self.handshake_timeout,
            max_per_peer: self.max_connections_per_peer.max(1),
        }
    }
}

/// Parses a duration such as `250ms`, `10s`, `5m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        "d" => Ok(Duration::from_secs(number * 86_400)),
        _ => Err(format!("`{unit}` is not a unit (ms, s, m, h or d)")),
    }
}

/// A secret from configuration, never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("10").is_err());
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("3w").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(..)");
    }
}
