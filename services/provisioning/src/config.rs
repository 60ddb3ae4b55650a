//! The provisioning service's configuration.

use std::{net::SocketAddr, time::Duration};

use mfg_common::{
    config::{
        DataArgs, DataDir, DatabaseArgs, OperatorArgs, PlatformAddrs, PoolArgs, Secret, ServerArgs,
        parse_duration,
    },
    secret_file,
};

/// How provisioning runs are worked: one flag for `mfg serve provisioning` and `mfg up`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RunArgs {
    /// How many times a step is started before a retryable failure (a service down, say)
    /// fails its run; the waits between them double from 200 ms to at most 30 s.
    #[arg(
        long = "step-attempts",
        env = "MFG_STEP_ATTEMPTS",
        default_value_t = crate::domain::run::MAX_ATTEMPTS
    )]
    pub step_attempts: u32,
    /// How long a deleted tenant's data is kept after its export before it is deleted in
    /// every service (`DeleteTenant` with `force` skips the wait).
    #[arg(
        long = "offboarding-grace",
        env = "MFG_OFFBOARDING_GRACE",
        default_value = "7d",
        value_parser = parse_duration
    )]
    pub offboarding_grace: Duration,
    /// How long the audit log keeps an event.
    #[arg(
        long = "audit-retention",
        env = "MFG_AUDIT_RETENTION",
        default_value = "400d",
        value_parser = parse_duration
    )]
    pub audit_retention: Duration,
    /// How many runs are worked at once.
    #[arg(
        long = "provisioning-workers",
        env = "MFG_PROVISIONING_WORKERS",
        default_value_t = 4
    )]
    pub workers: u16,
}

impl Default for RunArgs {
    fn default() -> Self {
        Self {
            step_attempts: crate::domain::run::MAX_ATTEMPTS,
            offboarding_grace: crate::steps::DEFAULT_GRACE,
            audit_retention: Duration::from_secs(400 * 86_400),
            workers: 4,
        }
    }
}

/// The provisioning service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the platform's parts are; the service listens on `--provisioning-addr`, and its
    /// steps call the tenant, storage and cost services at their addresses.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    /// Its database: `--database-url`, or `provisioning.db` in the data directory.
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub runs: RunArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addrs: PlatformAddrs::all(SocketAddr::from(([127, 0, 0, 1], 0))),
            data: DataArgs {
                data_dir: DataDir::default(),
                database_url: None,
                pool: PoolArgs::default(),
            },
            runs: RunArgs::default(),
            operator: OperatorArgs::default(),
            server: ServerArgs::default(),
        }
    }
}

impl Config {
    /// A configuration on a database URL, calling the services at `addrs`.
    pub fn new(database_url: impl Into<String>, addrs: PlatformAddrs) -> Self {
        Self {
            addrs,
            data: DataArgs::on(database_url),
            ..Self::default()
        }
    }

    /// The same with an operator token.
    #[must_use]
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.operator.admin_token = Some(Secret::new(token));
        self
    }

    /// The service's database.
    pub fn database(&self) -> DatabaseArgs {
        self.data.database("provisioning")
    }

    /// The operator token: the one given, or on SQLite the one kept beside the database.
    pub fn operator_token(&self) -> Result<String, String> {
        secret_file::service_operator_token(
            self.operator.admin_token.as_ref(),
            &self.database().url,
        )
    }
}
