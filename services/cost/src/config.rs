//! The cost service's configuration.

use std::{net::SocketAddr, time::Duration};

use mfg_common::{
    config::{
        AuditArgs, DataArgs, DataDir, DatabaseArgs, OperatorArgs, PlatformAddrs, PoolArgs, Secret,
        ServerArgs, parse_duration,
    },
    secret_file,
};

/// How the tenants' costs are checked against their budgets.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct BudgetArgs {
    /// How often each tenant's month-to-date and forecast cost is compared with its budget, to
    /// raise budget alerts through the storage service at `--storage-addr`; `0s` turns budget
    /// alerts off.
    #[arg(
        long = "budget-check-interval",
        env = "MFG_BUDGET_CHECK_INTERVAL",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub check_interval: Duration,
}

impl BudgetArgs {
    /// Budget alerts off, as embedded services and tests start unless they ask for them.
    pub const OFF: Self = Self {
        check_interval: Duration::ZERO,
    };

    /// Whether budget alerts are raised.
    pub fn enabled(&self) -> bool {
        !self.check_interval.is_zero()
    }
}

impl Default for BudgetArgs {
    /// Every 30 s, as the flag's default.
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(30),
        }
    }
}

/// The cost service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the platform's parts are; the service listens on `--cost-addr`, resolves keys
    /// with the tenant service at `--tenant-addr` and raises budget alerts with the storage
    /// service at `--storage-addr`.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    #[command(flatten)]
    pub budget: BudgetArgs,
    /// Its database: `--database-url`, or `cost.db` in the data directory.
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// Whether changes of budgets and the price book go to the audit log.
    #[command(flatten)]
    pub audit: AuditArgs,
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
            operator: OperatorArgs::default(),
            audit: AuditArgs::OFF,
            server: ServerArgs::default(),
            budget: BudgetArgs::default(),
        }
    }
}

impl Config {
    /// A configuration on a database URL, asking the tenant service at `tenant_addr`, with
    /// budget alerts off.
    pub fn new(database_url: impl Into<String>, tenant_addr: impl Into<String>) -> Self {
        let mut config = Self {
            data: DataArgs::on(database_url),
            budget: BudgetArgs::OFF,
            ..Self::default()
        };
        config.addrs.tenant = tenant_addr.into();
        config
    }

    /// The same, checking budgets every `interval` and raising their alerts with the storage
    /// service at `storage_addr`.
    #[must_use]
    pub fn with_budget_alerts(
        mut self,
        storage_addr: impl Into<String>,
        interval: Duration,
    ) -> Self {
        self.addrs.storage = storage_addr.into();
        self.budget.check_interval = interval;
        self
    }

    /// The same with an operator token.
    #[must_use]
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.operator.admin_token = Some(Secret::new(token));
        self
    }

    /// The service's database.
    pub fn database(&self) -> DatabaseArgs {
        self.data.database("cost")
    }

    /// The operator token: the one given, or on SQLite the one kept beside the database.
    pub fn operator_token(&self) -> Result<String, String> {
        secret_file::service_operator_token(
            self.operator.admin_token.as_ref(),
            &self.database().url,
        )
    }
}
