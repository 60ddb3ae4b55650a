//! `mfg up`: the four services and the gateway in one process. On the embedded default, SQLite
//! files and generated secrets live in the data directory; `--database-url postgres://…`
//! switches the services to PostgreSQL.

use std::{io::Write as _, net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use mfg_common::{
    config::{PoolArgs, Secret, ServerArgs},
    shutdown::CancellationToken,
};
use tokio::{net::TcpListener, task::JoinSet};

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

/// Starts everything on the given listeners; returns the addresses, and a set that ends when
/// `shutdown` is cancelled and every part has drained (or when one part fails).
pub async fn start(
    args: UpArgs,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<(Addresses, JoinSet<anyhow::Result<()>>)> {
    let mut addresses = Addresses {
        gateway: listeners.gateway.local_addr()?,
        tenant: listeners.tenant.local_addr()?,
        storage: listeners.storage.local_addr()?,
        cost: listeners.cost.local_addr()?,
        provisioning: listeners.provisioning.local_addr()?,
        metrics: None,
        admin_token_file: args
            .admin_token
            .is_none()
            .then(|| args.data_dir.join("admin-token")),
        operator_token: Secret::new(""),
    };
    // What the options lack is said before anything is written.
    if let Some(url) = &args.database_url {
        mfg_common::db::validate_url(url)
            .map_err(anyhow::Error::msg)
            .context("invalid --database-url")?;
        if args.key_pepper.is_none()
            && mfg_common::db::Backend::of_url(url) == Some(mfg_common::db::Backend::Postgres)
        {
            anyhow::bail!(mfg_tenant::config::PEPPER_REQUIRED);
        }
    }
    mfg_common::secret_file::create_private_dir(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    // Every part holds the lock until it has drained, so a second `mfg up` waits for all.
    let lock = std::sync::Arc::new(crate::data_dir::DataDirLock::acquire(&args.data_dir)?);
    let holding = |part: std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>| {
        let lock = lock.clone();
        async move {
            let result = part.await;
            drop(lock);
            result
        }
    };

    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", args.data_dir.join("tenant.db").display()),
    };
    let mut gateway = mfg_gateway::Config::new(
        &args.data_dir,
        &addresses.tenant.to_string(),
        &addresses.storage.to_string(),
        &addresses.cost.to_string(),
        &addresses.provisioning.to_string(),
    );
    gateway.admin_token = args.admin_token.clone();
    gateway.options = args.gateway.clone();
    gateway.server = args.server;
    let operator_token = gateway
        .operator_token()
        .context("cannot set up the operator token")?;
    addresses.operator_token = Secret::new(operator_token.clone());

    let mut tenant =
        mfg_tenant::Config::new(database_url, "").with_admin_token(operator_token.clone());
    tenant.key_pepper = args.key_pepper.clone();
    tenant.database.pool = args.pool;
    tenant.server = args.server;
    tenant
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid tenant configuration")?;

    // The gateway's configuration carries the operator token it resolved, so the two agree.
    gateway.admin_token = Some(Secret::new(
        tenant.operator_token().map_err(anyhow::Error::msg)?,
    ));

    let mut set = JoinSet::new();
    // One registry for every part, served on --metrics-addr if set.
    let metrics = mfg_common::metrics::Registry::default();
    if let Some(addr) = args.server.metrics_addr {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        addresses.metrics = Some(listener.local_addr()?);
        set.spawn(mfg_common::metrics::serve(
            listener,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    tenant.metrics = metrics.clone();
    gateway.metrics = metrics.clone();
    set.spawn(holding(Box::pin(mfg_tenant::run(
        tenant,
        listeners.tenant,
        shutdown.clone(),
    ))));
    let storage_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", args.data_dir.join("storage.db").display()),
    };
    let mut storage = mfg_storage::Config::new(storage_url, addresses.tenant.to_string())
        .with_admin_token(operator_token.clone());
    storage.options = args.storage.clone();
    storage.options.archive_dir = Some(
        args.storage
            .archive_dir
            .clone()
            .unwrap_or_else(|| args.data_dir.join("archive")),
    );
    storage.database.pool = args.pool;
    storage.server = args.server;
    storage.metrics = metrics;
    set.spawn(holding(Box::pin(mfg_storage::run(
        storage,
        listeners.storage,
        shutdown.clone(),
    ))));
    set.spawn(holding(Box::pin(mfg_cost::run(
        mfg_cost::Config {
            server: args.server,
            ..mfg_cost::Config::default()
        },
        listeners.cost,
        shutdown.clone(),
    ))));
    set.spawn(holding(Box::pin(mfg_provisioning::run(
        mfg_provisioning::Config {
            server: args.server,
            ..mfg_provisioning::Config::default()
        },
        listeners.provisioning,
        shutdown.clone(),
    ))));
    set.spawn(holding(Box::pin(mfg_gateway::run(
        gateway,
        listeners.gateway,
        shutdown.clone(),
    ))));
    if args.demo {
        set.spawn(crate::demo::run(addresses.clone(), shutdown));
    }
    Ok((addresses, set))
}

/// Waits until the services with a database serve: their databases answer and are migrated.
async fn ready(addresses: &Addresses) -> anyhow::Result<()> {
    // Long enough for any database to come up; a part that fails ends the wait sooner.
    let within = std::time::Duration::from_secs(365 * 24 * 3600);
    for (addr, service) in [
        (addresses.tenant, mfg_proto::service_names::TENANT),
        (addresses.storage, mfg_proto::service_names::TELEMETRY),
    ] {
        mfg_common::grpc::wait_for_health(
            addr,
            service,
            tonic_health::ServingStatus::Serving,
            within,
        )
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{service} did not become ready"))?;
    }
    Ok(())
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
    let (addresses, mut set) = start(args, listeners, shutdown.clone()).await?;

    // "Up" once the services answer from their databases; until then the log says why not.
    writeln!(
        std::io::stdout(),
        "mfg is starting ({backend}, data in {})",
        data_dir.display()
    )?;
    tokio::select! {
        ready = ready(&addresses) => ready?,
        Some(joined) = set.join_next() => {
            shutdown.cancel();
            joined??;
            anyhow::bail!("a part of mfg stopped while starting");
        }
        () = shutdown.cancelled() => {}
    }
    if shutdown.is_cancelled() {
        while set.join_next().await.is_some() {}
        return Ok(());
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
    while let Some(joined) = set.join_next().await {
        let outcome = joined.map_err(anyhow::Error::from).and_then(|r| r);
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
