//! `mfg up`: the four services and the gateway in one process ([`crate::platform`]). On the
//! embedded default, SQLite files and generated secrets live in the data directory;
//! `--database-url postgres://…` switches the services to PostgreSQL.

use std::{io::Write as _, net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use mfg_common::{
    config::{PoolArgs, Secret, ServerArgs},
    shutdown::CancellationToken,
};
use tokio::net::TcpListener;

use crate::platform::PlatformBuilder;

/// Options of `mfg up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where SQLite files and generated secrets (operator token, key pepper) live.
    #[arg(long = "data-dir", env = "MFG_DATA_DIR", default_value = ".mfg")]
    pub data_dir: PathBuf,
    /// Address of the REST gateway.
    #[arg(
        long = "gateway-addr",
        env = "MFG_GATEWAY_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub gateway_addr: SocketAddr,
    /// Address of the tenant service (gRPC).
    #[arg(
        long = "tenant-addr",
        env = "MFG_TENANT_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub tenant_addr: SocketAddr,
    /// Address of the storage service (gRPC).
    #[arg(
        long = "storage-addr",
        env = "MFG_STORAGE_ADDR",
        default_value = "127.0.0.1:50052"
    )]
    pub storage_addr: SocketAddr,
    /// Address of the cost service (gRPC).
    #[arg(
        long = "cost-addr",
        env = "MFG_COST_ADDR",
        default_value = "127.0.0.1:50053"
    )]
    pub cost_addr: SocketAddr,
    /// Address of the provisioning service (gRPC).
    #[arg(
        long = "provisioning-addr",
        env = "MFG_PROVISIONING_ADDR",
        default_value = "127.0.0.1:50054"
    )]
    pub provisioning_addr: SocketAddr,
    /// PostgreSQL for every service (`postgres://user@host/db`) instead of SQLite files in the
    /// data directory.
    #[arg(long = "database-url", env = "MFG_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The API key pepper; generated into the data directory when unset on SQLite.
    #[arg(long = "key-pepper", env = "MFG_KEY_PEPPER", hide_env_values = true)]
    pub key_pepper: Option<Secret>,
    /// The operator token; generated into the data directory when unset.
    #[arg(long = "admin-token", env = "MFG_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// Also streams the brief's scenario in this process: 3 tenants with 15 machines each, 20
    /// metrics at 1 Hz (created on first start, reused after).
    #[arg(long)]
    pub demo: bool,
    /// Every service's database pool.
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Every server's connections and shutdown.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The storage service's options, as `mfg serve storage` takes them.
    #[command(flatten)]
    pub storage: mfg_storage::config::StorageOptions,
    /// The gateway's options, as `mfg serve gateway` takes them.
    #[command(flatten)]
    pub gateway: mfg_gateway::config::GatewayOptions,
}

impl UpArgs {
    /// The options of `mfg up` with their defaults, in `data_dir`, listening on `addr` (port 0
    /// for each part, in tests).
    pub fn new(data_dir: impl Into<PathBuf>, addr: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            gateway_addr: addr,
            tenant_addr: addr,
            storage_addr: addr,
            cost_addr: addr,
            provisioning_addr: addr,
            database_url: None,
            key_pepper: None,
            admin_token: None,
            demo: false,
            pool: PoolArgs::default(),
            server: ServerArgs::default(),
            storage: mfg_storage::config::StorageOptions::default(),
            gateway: mfg_gateway::config::GatewayOptions::default(),
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
        async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the {what}"))
        }
        Ok(Self {
            gateway: bind(args.gateway_addr, "gateway").await?,
            tenant: bind(args.tenant_addr, "tenant service").await?,
            storage: bind(args.storage_addr, "storage service").await?,
            cost: bind(args.cost_addr, "cost service").await?,
            provisioning: bind(args.provisioning_addr, "provisioning service").await?,
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

/// Runs `mfg up` until SIGINT/SIGTERM.
pub async fn run(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&args).await?;
    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let data_dir = args.data_dir.clone();
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

    let mut out = std::io::stdout().lock();
    writeln!(out, "mfg is up ({backend}, data in {})", data_dir.display())?;
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
    drop(out);

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
