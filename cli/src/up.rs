//! `mfg up`: the four services and the gateway in one process ([`crate::platform`]). On the
//! embedded default, SQLite files and generated secrets live in the data directory;
//! `--database-url postgres://…` switches the services to PostgreSQL.

use std::{io::Write as _, net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use mfg_common::{
    config::{DataArgs, DataDir, OperatorArgs, PlatformAddrs, PoolArgs, Secret, ServerArgs},
    shutdown::CancellationToken,
};
use tokio::net::TcpListener;

use crate::platform::PlatformBuilder;

/// Options of `mfg up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where the data is: SQLite files in the data directory, or every service on
    /// `--database-url`.
    #[command(flatten)]
    pub data: DataArgs,
    /// Where each part listens.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    #[command(flatten)]
    pub pepper: mfg_tenant::config::PepperArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// Also streams the brief's scenario in this process: 3 tenants with 15 machines each, 20
    /// metrics at 1 Hz (created on first start, reused after).
    #[arg(long)]
    pub demo: bool,
    /// Every server's connections and shutdown.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The storage service's options, as `mfg serve storage` takes them.
    #[command(flatten)]
    pub storage: mfg_storage::config::StorageOptions,
    /// The gateway's options, as `mfg serve gateway` takes them.
    #[command(flatten)]
    pub gateway: mfg_gateway::config::GatewayOptions,
    /// How the services meter usage for the cost service.
    #[command(flatten)]
    pub metering: mfg_common::config::MeteringArgs,
    /// How often the cost service checks the tenants' budgets.
    #[command(flatten)]
    pub budget: mfg_cost::config::BudgetArgs,
    #[command(flatten)]
    pub onboarding: mfg_tenant::config::OnboardingArgs,
    #[command(flatten)]
    pub audit: mfg_common::config::AuditArgs,
    #[command(flatten)]
    pub runs: mfg_provisioning::config::RunArgs,
}

impl UpArgs {
    /// The options of `mfg up` with their defaults, in `data_dir`, listening on `addr` (port 0
    /// for each part, in tests).
    pub fn new(data_dir: impl Into<PathBuf>, addr: SocketAddr) -> Self {
        Self {
            data: DataArgs {
                data_dir: DataDir::new(data_dir),
                database_url: None,
                pool: PoolArgs::default(),
            },
            addrs: PlatformAddrs::all(addr),
            pepper: mfg_tenant::config::PepperArgs::default(),
            operator: OperatorArgs::default(),
            demo: false,
            server: ServerArgs::default(),
            storage: mfg_storage::config::StorageOptions::default(),
            gateway: mfg_gateway::config::GatewayOptions::default(),
            metering: mfg_common::config::MeteringArgs::default(),
            budget: mfg_cost::config::BudgetArgs::default(),
            onboarding: mfg_tenant::config::OnboardingArgs::ON,
            audit: mfg_common::config::AuditArgs::ON,
            runs: mfg_provisioning::config::RunArgs::default(),
        }
    }
}

/// The listeners of `mfg up`, bound before anything starts.
#[derive(Debug)]
pub struct Listeners {
    /// The gateway's.
    pub gateway: TcpListener,
    /// The tenant service's.
    pub tenant: TcpListener,
    /// The storage service's.
    pub storage: TcpListener,
    /// The cost service's.
    pub cost: TcpListener,
    /// The provisioning service's.
    pub provisioning: TcpListener,
}

impl Listeners {
    /// Binds every address of the options.
    pub async fn bind(args: &UpArgs) -> anyhow::Result<Self> {
        async fn bind(addr: &str, part: &str) -> anyhow::Result<TcpListener> {
            let addr =
                PlatformAddrs::listen(addr, &format!("{part}-addr")).map_err(anyhow::Error::msg)?;
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the {part}"))
        }
        let addrs = &args.addrs;
        Ok(Self {
            gateway: bind(&addrs.gateway, "gateway").await?,
            tenant: bind(&addrs.tenant, "tenant").await?,
            storage: bind(&addrs.storage, "storage").await?,
            cost: bind(&addrs.cost, "cost").await?,
            provisioning: bind(&addrs.provisioning, "provisioning").await?,
        })
    }
}

/// Where `mfg up` serves.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The gateway.
    pub gateway: SocketAddr,
    /// The tenant service.
    pub tenant: SocketAddr,
    /// The storage service.
    pub storage: SocketAddr,
    /// The cost service.
    pub cost: SocketAddr,
    /// The provisioning service.
    pub provisioning: SocketAddr,
    /// Where metrics are served, if they are.
    pub metrics: Option<SocketAddr>,
    /// The file holding the generated operator token, if it was generated.
    pub admin_token_file: Option<PathBuf>,
    /// The operator token.
    pub operator_token: Secret,
}

impl Addresses {
    /// The same, as the services' flags take them.
    pub fn platform_addrs(&self) -> PlatformAddrs {
        PlatformAddrs {
            gateway: self.gateway.to_string(),
            tenant: self.tenant.to_string(),
            storage: self.storage.to_string(),
            cost: self.cost.to_string(),
            provisioning: self.provisioning.to_string(),
        }
    }
}

/// Runs `mfg up` until SIGINT/SIGTERM.
pub fn run(args: UpArgs, shutdown: CancellationToken) -> mfg_common::startup::Running {
    Box::pin(serve(args, shutdown))
}

async fn serve(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&args).await?;
    let backend = if args.data.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let data_dir = args.data.data_dir.path.clone();
    let mut platform = PlatformBuilder::new(args)
        .start_on(listeners, shutdown.clone())
        .await?;
    let addresses = platform.addresses.clone();

    // "Up" once the services answer from their databases; until then the log says why not.
    writeln!(
        std::io::stdout(),
        "mfg is starting ({backend}, data in {})",
        data_dir.display()
    )?;
    // Long enough for any database to come up; a part that fails ends the wait sooner.
    let within = std::time::Duration::from_secs(365 * 24 * 3600);
    tokio::select! {
        ready = crate::platform::ready(&addresses, within) => ready?,
        Some(ended) = platform.next_ended() => {
            shutdown.cancel();
            ended?;
            anyhow::bail!("a part of mfg stopped while starting");
        }
        () = shutdown.cancelled() => {}
    }
    if shutdown.is_cancelled() {
        return platform.stop().await;
    }

    print_addresses(backend, &data_dir, &addresses)?;

    let mut result = Ok(());
    while let Some(outcome) = platform.next_ended().await {
        if let Err(error) = outcome {
            tracing::error!(error = %format!("{error:#}"), "a part of mfg failed; stopping the rest");
            shutdown.cancel();
            if result.is_ok() {
                result = Err(error);
            }
        }
    }
    result
}

/// Prints where each part of the platform listens, and where the operator token is.
fn print_addresses(
    backend: &str,
    data_dir: &std::path::Path,
    addresses: &Addresses,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "mfg is up ({backend}, data in {})", data_dir.display())?;
    writeln!(out, "  console              http://{}/", addresses.gateway)?;
    writeln!(out, "  REST gateway         http://{}", addresses.gateway)?;
    writeln!(out, "  tenant (gRPC)        {}", addresses.tenant)?;
    writeln!(out, "  storage (gRPC)       {}", addresses.storage)?;
    writeln!(out, "  cost (gRPC)          {}", addresses.cost)?;
    writeln!(out, "  provisioning (gRPC)  {}", addresses.provisioning)?;
    match &addresses.admin_token_file {
        Some(path) => writeln!(
            out,
            "  operator token       in {} (export TOKEN=$(cat {}))",
            path.display(),
            path.display()
        )?,
        None => writeln!(out, "  operator token       from MFG_ADMIN_TOKEN")?,
    }
    if let Some(metrics) = addresses.metrics {
        writeln!(out, "  metrics              http://{metrics}/metrics")?;
    }
    Ok(())
}
