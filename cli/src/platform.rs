//! The platform in one process: the four services and the gateway on listeners bound before
//! anything starts, on one database (SQLite files in the data directory unless a URL is
//! given). `mfg up` starts it this way, and so do the whole-system tests and the benchmarks,
//! which adjust it through [`PlatformBuilder`] (port-0 listeners, the storage service's
//! options, its clock) and may restart the storage service alone.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use mfg_common::{
    clock::{SharedClock, system_clock},
    config::{DataArgs, Secret},
    shutdown::CancellationToken,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinSet};

use crate::{
    data_dir::DataDirLock,
    up::{Addresses, Listeners, UpArgs},
};

/// What the storage service's configuration becomes before it starts.
type StorageHook = Box<dyn FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send>;

/// How the platform is started: `mfg up`'s options, and what only an embedding process can
/// give (the storage service's clock and configuration).
pub struct PlatformBuilder {
    args: UpArgs,
    configure_storage: Option<StorageHook>,
    clock: SharedClock,
    tenant_database: Option<String>,
    storage_database: Option<String>,
}

impl std::fmt::Debug for PlatformBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformBuilder")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl PlatformBuilder {
    /// The platform as `mfg up` runs it with these options.
    pub fn new(args: UpArgs) -> Self {
        Self {
            args,
            configure_storage: None,
            clock: system_clock(),
            tenant_database: None,
            storage_database: None,
        }
    }

    /// The platform with its files in `data_dir` and every listener on a port 0 of
    /// 127.0.0.1: how tests and benchmarks start it.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Self::new(UpArgs::new(
            data_dir,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
    }

    /// Whether the tenant service hands new tenants to the provisioning service (as `mfg up`
    /// does), or makes them active at once.
    pub fn onboarding(mut self, hand_off: bool) -> Self {
        self.args.onboarding.hand_off = hand_off;
        self
    }

    /// Every service on this PostgreSQL (or SQLite) URL instead of SQLite files in the data
    /// directory.
    pub fn database_url(mut self, url: Option<&str>) -> Self {
        self.args.data.database_url = url.map(str::to_owned);
        self
    }

    /// The tenant service on a database of its own.
    pub fn tenant_database_url(mut self, url: &str) -> Self {
        self.tenant_database = Some(url.to_owned());
        self
    }

    /// The storage service on a database of its own.
    pub fn storage_database_url(mut self, url: &str) -> Self {
        self.storage_database = Some(url.to_owned());
        self
    }

    /// The API key pepper (required with PostgreSQL).
    pub fn key_pepper(mut self, pepper: &str) -> Self {
        self.args.pepper.key_pepper = Some(Secret::new(pepper));
        self
    }

    /// The operator token, instead of one generated into the data directory.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.args.operator.admin_token = Some(Secret::new(token));
        self
    }

    /// Changes the storage service's configuration (after `mfg up`'s options are applied).
    pub fn configure_storage(
        mut self,
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> Self {
        self.configure_storage = Some(Box::new(configure));
        self
    }

    /// The storage service's clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Binds the options' addresses and starts everything.
    pub async fn start(self, shutdown: CancellationToken) -> anyhow::Result<Platform> {
        let listeners = Listeners::bind(&self.args).await?;
        self.start_on(listeners, shutdown).await
    }

    /// Starts everything on the given listeners. The parts end when `shutdown` is cancelled
    /// and they have drained ([`Platform::stop`]), or when one of them fails.
    pub async fn start_on(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Platform> {
        let Self {
            args,
            configure_storage,
            clock,
            tenant_database,
            storage_database,
        } = self;
        let mut addresses = Addresses {
            gateway: listeners.gateway.local_addr()?,
            tenant: listeners.tenant.local_addr()?,
            storage: listeners.storage.local_addr()?,
            cost: listeners.cost.local_addr()?,
            provisioning: listeners.provisioning.local_addr()?,
            metrics: None,
            admin_token_file: args
                .operator
                .admin_token
                .is_none()
                .then(|| args.data.data_dir.path.join("admin-token")),
            operator_token: Secret::new(""),
        };
        check_options(&args)?;
        mfg_common::secret_file::create_private_dir(&args.data.data_dir.path).with_context(
            || {
                format!(
                    "cannot create the data directory {}",
                    args.data.data_dir.path.display()
                )
            },
        )?;
        // Every part holds the lock until it has drained, so a second `mfg up` waits for all.
        let lock = Arc::new(DataDirLock::acquire(&args.data.data_dir.path)?);

        let mut gateway = mfg_gateway::Config::new(
            &args.data.data_dir.path,
            &addresses.tenant.to_string(),
            &addresses.storage.to_string(),
            &addresses.cost.to_string(),
            &addresses.provisioning.to_string(),
        );
        gateway.operator.admin_token = args.operator.admin_token.clone();
        gateway.options = args.gateway.clone();
        gateway.metering = args.metering;
        gateway.server = args.server;
        let operator_token = gateway
            .operator_token()
            .context("cannot set up the operator token")?;
        addresses.operator_token = Secret::new(operator_token.clone());

        let mut tenant = mfg_tenant::Config::new("", "").with_admin_token(operator_token.clone());
        tenant.pepper = args.pepper.clone();
        tenant.data = DataArgs {
            database_url: tenant_database.or_else(|| args.data.database_url.clone()),
            ..args.data.clone()
        };
        tenant.server = args.server;
        tenant.addrs.cost = addresses.cost.to_string();
        tenant.addrs.provisioning = addresses.provisioning.to_string();
        tenant.metering = args.metering;
        tenant.onboarding = args.onboarding;
        tenant.audit = args.audit;
        tenant
            .validate()
            .map_err(anyhow::Error::msg)
            .context("invalid tenant configuration")?;
        // The gateway's configuration carries the operator token it resolved, so the two agree.
        gateway.operator.admin_token = Some(Secret::new(
            tenant.operator_token().map_err(anyhow::Error::msg)?,
        ));

        let mut parts = JoinSet::new();
        // One registry for every part, served on --metrics-addr if set.
        let metrics = mfg_common::metrics::Registry::default();
        if let Some(addr) = args.server.metrics_addr {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            addresses.metrics = Some(listener.local_addr()?);
            parts.spawn(mfg_common::metrics::serve(
                listener,
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        tenant.metrics = metrics.clone();
        gateway.metrics = metrics.clone();
        parts.spawn(holding(
            &lock,
            mfg_tenant::run(tenant, listeners.tenant, shutdown.clone()),
        ));

        let mut storage = mfg_storage::Config::new("", addresses.tenant.to_string())
            .with_admin_token(operator_token.clone());
        storage.options = args.storage.clone();
        storage.options.archive_dir = Some(
            args.storage
                .archive_dir
                .clone()
                .unwrap_or_else(|| args.data.data_dir.path.join("archive")),
        );
        storage.data = DataArgs {
            database_url: storage_database.or_else(|| args.data.database_url.clone()),
            ..args.data.clone()
        };
        storage.server = args.server;
        storage.metrics = metrics;
        storage.addrs.cost = addresses.cost.to_string();
        storage.addrs.provisioning = addresses.provisioning.to_string();
        storage.metering = args.metering;
        storage.audit = args.audit;
        if let Some(configure) = configure_storage {
            storage = configure(storage);
        }
        let storage = StoragePart {
            config: storage,
            clock,
            stopped: None,
            shutdown: shutdown.child_token(),
        };
        let mut platform = Platform {
            addresses,
            shutdown: shutdown.clone(),
            parts,
            storage,
            lock,
        };
        platform.spawn_storage(listeners.storage);

        let mut cost = mfg_cost::Config::new("", platform.addresses.tenant.to_string())
            .with_admin_token(operator_token.clone())
            .with_budget_alerts(
                platform.addresses.storage.to_string(),
                args.budget.check_interval,
            );
        cost.data = args.data.clone();
        cost.server = args.server;
        cost.addrs.provisioning = platform.addresses.provisioning.to_string();
        cost.audit = args.audit;
        let parts = &mut platform.parts;
        let lock = &platform.lock;
        parts.spawn(holding(
            lock,
            mfg_cost::run(cost, listeners.cost, shutdown.clone()),
        ));
        parts.spawn(holding(
            lock,
            mfg_provisioning::run(
                mfg_provisioning::Config {
                    addrs: platform.addresses.platform_addrs(),
                    data: args.data.clone(),
                    runs: args.runs,
                    server: args.server,
                    ..mfg_provisioning::Config::default()
                }
                .with_admin_token(operator_token),
                listeners.provisioning,
                shutdown.clone(),
            ),
        ));
        parts.spawn(holding(
            lock,
            mfg_gateway::run(gateway, listeners.gateway, shutdown.clone()),
        ));
        if args.demo {
            parts.spawn(crate::demo::run(platform.addresses.clone(), shutdown));
        }
        Ok(platform)
    }
}

/// Waits until the services with a database serve: their databases answer and are migrated.
pub async fn ready(addresses: &Addresses, within: Duration) -> anyhow::Result<()> {
    for (addr, service) in [
        (addresses.tenant, mfg_proto::service_names::TENANT),
        (addresses.storage, mfg_proto::service_names::TELEMETRY),
        (addresses.cost, mfg_proto::service_names::COST),
        (
            addresses.provisioning,
            mfg_proto::service_names::PROVISIONING,
        ),
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

/// What the options lack, said before anything is written.
fn check_options(args: &UpArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.data.database_url {
        mfg_common::db::validate_url(url)
            .map_err(anyhow::Error::msg)
            .context("invalid --database-url")?;
        if args.pepper.key_pepper.is_none()
            && mfg_common::db::Backend::of_url(url) == Some(mfg_common::db::Backend::Postgres)
        {
            anyhow::bail!(mfg_tenant::config::PEPPER_REQUIRED);
        }
    }
    Ok(())
}

/// A part that holds the data directory's lock until it has drained.
fn holding(
    lock: &Arc<DataDirLock>,
    part: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let lock = lock.clone();
    async move {
        let result = part.await;
        drop(lock);
        result
    }
}

/// The storage service, which can be restarted alone.
struct StoragePart {
    config: mfg_storage::Config,
    clock: SharedClock,
    /// Says when the running one has ended.
    stopped: Option<oneshot::Receiver<()>>,
    /// Stops the running one alone.
    shutdown: CancellationToken,
}

/// The platform running in this process.
pub struct Platform {
    /// Where each part serves, and the operator token.
    pub addresses: Addresses,
    shutdown: CancellationToken,
    parts: JoinSet<anyhow::Result<()>>,
    storage: StoragePart,
    lock: Arc<DataDirLock>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// Waits until the services with a database serve ([`ready`]).
    pub async fn ready(&self, within: Duration) -> anyhow::Result<()> {
        ready(&self.addresses, within).await
    }

    /// Waits for the next part to end: `None` once all have.
    pub async fn next_ended(&mut self) -> Option<anyhow::Result<()>> {
        let joined = self.parts.join_next().await?;
        Some(
            joined
                .map_err(anyhow::Error::from)
                .and_then(|result| result),
        )
    }

    /// Stops the storage service alone, letting it drain.
    pub async fn stop_storage(&mut self) {
        self.storage.shutdown.cancel();
        if let Some(stopped) = self.storage.stopped.take() {
            let _ = stopped.await;
        }
    }

    /// Stops the storage service (letting it drain) if it runs, and starts it again on the
    /// same address and database; returns how long the new one took to serve.
    pub async fn restart_storage(&mut self) -> anyhow::Result<Duration> {
        self.restart_storage_with(|_| ()).await
    }

    /// [`Platform::restart_storage`] with its configuration changed by `configure` first (e.g.
    /// metering on or off, for a benchmark's A/B).
    pub async fn restart_storage_with(
        &mut self,
        configure: impl FnOnce(&mut mfg_storage::Config),
    ) -> anyhow::Result<Duration> {
        self.stop_storage().await;
        configure(&mut self.storage.config);
        let started = std::time::Instant::now();
        let listener = TcpListener::bind(self.addresses.storage)
            .await
            .with_context(|| format!("cannot listen on {} again", self.addresses.storage))?;
        self.storage.shutdown = self.shutdown.child_token();
        self.spawn_storage(listener);
        mfg_common::grpc::wait_for_health(
            self.addresses.storage,
            mfg_proto::service_names::TELEMETRY,
            tonic_health::ServingStatus::Serving,
            Duration::from_secs(120),
        )
        .await
        .map_err(anyhow::Error::msg)
        .context("the storage service did not start again")?;
        Ok(started.elapsed())
    }

    /// Stops every part and waits for them to drain; the first failure, if one failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut result = Ok(());
        while let Some(ended) = self.next_ended().await {
            if let Err(error) = ended
                && result.is_ok()
            {
                result = Err(error);
            }
        }
        result
    }

    fn spawn_storage(&mut self, listener: TcpListener) {
        let (stopped, on_stop) = oneshot::channel();
        self.storage.stopped = Some(on_stop);
        let run = mfg_storage::run_with_clock(
            self.storage.config.clone(),
            listener,
            self.storage.shutdown.clone(),
            self.storage.clock.clone(),
        );
        self.parts.spawn(holding(&self.lock, async move {
            let result = run.await;
            let _ = stopped.send(());
            result
        }));
    }
}
