//! The in-process platform the storage benchmarks measure: a tenant service and a storage
//! service on one database (PostgreSQL, or SQLite files in a temporary directory), a tenant
//! with machines, and a key.

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use mfg_common::{
    grpc::{TracedChannel, lazy_channel},
    shutdown::CancellationToken,
};
use mfg_proto::{
    storage::v1::telemetry_service_client::TelemetryServiceClient,
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use tokio::task::JoinHandle;

/// Now, in µs since the Unix epoch.
pub fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// A protobuf timestamp of µs since the Unix epoch.
pub fn timestamp(micros: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// A lazy channel to a service of the benchmark at `addr`, carrying `token`.
pub fn channel(addr: SocketAddr, token: &str) -> anyhow::Result<TracedChannel> {
    Ok(lazy_channel(&format!("http://{addr}"))?.with_bearer(token)?)
}

/// Runs a client of the benchmark on its own Tokio runtime of `threads` worker threads, as a
/// separate machine would be, so that its tasks and the services' share no run queue (they
/// still share the cores). The future is made on that runtime, so the channels it opens
/// spawn their connections there.
///
/// `threads == 0` is a current-thread runtime: the client's tasks and its connections run on
/// that one thread, with no wake-up of another thread between them, as a latency-minded
/// client is written.
pub async fn on_own_runtime<T, F, Fut>(name: &str, threads: usize, make: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()?
    };
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = done.send(runtime.block_on(async move { make().await }));
            // Dropping the runtime ends whatever its tasks left behind.
        })?;
    result
        .await
        .with_context(|| format!("the {name} runtime stopped without an answer"))?
}

/// The operator token of benchmark services.
pub const OPERATOR: &str = "bench-operator-token-0123456789";

/// The API key pepper of benchmark services.
const PEPPER: &str = "bench-pepper-0123456789";

/// The platform running in this process, as `mfg up` starts it ([`mfg::platform`]), with its
/// files in a temporary directory and the tiering jobs run only on demand.
#[derive(Debug)]
pub struct BenchPlatform {
    /// The tenant service.
    pub tenant_addr: SocketAddr,
    /// The storage service.
    pub storage_addr: SocketAddr,
    /// The cost service.
    pub cost_addr: SocketAddr,
    /// The gateway.
    pub gateway_addr: SocketAddr,
    /// "PostgreSQL" or "SQLite".
    pub backend: &'static str,
    platform: mfg::platform::Platform,
    _dir: tempfile::TempDir,
}

/// A tenant of the benchmark, with a key of the given scopes.
#[derive(Debug, Clone)]
pub struct BenchTenant {
    /// The tenant's id.
    pub id: String,
    /// The key's secret.
    pub key: String,
}

impl BenchPlatform {
    /// Starts the platform on `database_url` (SQLite in a temporary directory when `None`) and
    /// waits until it serves.
    pub async fn start(database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(database_url, |config| config).await
    }

    /// [`BenchPlatform::start`] with the storage service's configuration changed by `configure`.
    /// Tenants are active at once: these benchmarks time ingest, queries and reports of
    /// thousands of tenants, not their onboarding.
    pub async fn start_with(
        database_url: Option<&str>,
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> anyhow::Result<Self> {
        Self::start_as(database_url, false, configure).await
    }

    /// The platform as `mfg up` runs it: each new tenant onboarded by the provisioning service.
    pub async fn start_onboarding(database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::start_as(database_url, true, |config| config).await
    }

    async fn start_as(
        database_url: Option<&str>,
        onboarding: bool,
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let platform = mfg::platform::PlatformBuilder::local(dir.path().join("data"))
            .database_url(database_url)
            .key_pepper(PEPPER)
            .admin_token(OPERATOR)
            .onboarding(onboarding)
            .configure_storage(|config| configure(config.with_tiering_interval(Duration::ZERO)))
            .start(CancellationToken::new())
            .await?;
        platform.ready(Duration::from_secs(120)).await?;
        Ok(Self {
            tenant_addr: platform.addresses.tenant,
            storage_addr: platform.addresses.storage,
            cost_addr: platform.addresses.cost,
            gateway_addr: platform.addresses.gateway,
            backend: if database_url.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            platform,
            _dir: dir,
        })
    }

    /// Stops the storage service (letting it drain) and starts it again on the same database;
    /// returns how long the new one took to serve.
    pub async fn restart_storage(&mut self) -> anyhow::Result<Duration> {
        self.platform.restart_storage().await
    }

    /// Restarts the storage service with usage metering every `interval` (`Duration::ZERO`:
    /// off).
    pub async fn restart_storage_metering(&mut self, interval: Duration) -> anyhow::Result<()> {
        self.platform
            .restart_storage_with(|config| config.metering.interval = interval)
            .await?;
        Ok(())
    }

    /// Creates a dedicated tenant without practical limits, its machines, and a key of
    /// `scopes`.
    pub async fn tenant(
        &self,
        machines: impl IntoIterator<Item = String>,
        scopes: &[tpb::Scope],
    ) -> anyhow::Result<BenchTenant> {
        create_tenant(self.tenant_addr, machines, scopes).await
    }

    /// A telemetry client carrying `token`.
    pub fn telemetry(&self, token: &str) -> anyhow::Result<TelemetryServiceClient<TracedChannel>> {
        Ok(
            TelemetryServiceClient::new(channel(self.storage_addr, token)?)
                .max_decoding_message_size(64 << 20),
        )
    }

    /// Stops the platform and waits for it to drain.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.platform.stop().await
    }
}

/// The databases of the tenant and the storage service: both on `database_url`, or SQLite files
/// in `dir`.
pub fn database_urls(database_url: Option<&str>, dir: &Path) -> (String, String) {
    match database_url {
        Some(url) => (url.to_owned(), url.to_owned()),
        None => (
            format!("sqlite://{}", dir.join("tenant.db").display()),
            format!("sqlite://{}", dir.join("storage.db").display()),
        ),
    }
}

/// Starts a tenant service in this process on `database_url` and waits until it serves.
pub async fn start_tenant_service(
    database_url: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = mfg_tenant::Config::new(database_url, PEPPER).with_admin_token(OPERATOR);
    let task = tokio::spawn(mfg_tenant::run(config, listener, shutdown.clone()));
    mfg_common::grpc::wait_for_health(
        addr,
        mfg_proto::service_names::TENANT,
        tonic_health::ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await
    .map_err(anyhow::Error::msg)
    .context("the tenant service did not start")?;
    Ok((addr, task))
}

/// Creates, through the tenant service at `tenant_addr`, a dedicated tenant without practical
/// limits, its machines, and a key of `scopes`.
pub async fn create_tenant(
    tenant_addr: SocketAddr,
    machines: impl IntoIterator<Item = String>,
    scopes: &[tpb::Scope],
) -> anyhow::Result<BenchTenant> {
    let mut tenants = TenantServiceClient::new(channel(tenant_addr, OPERATOR)?);
    let tenant = tenants
        .create_tenant(tpb::CreateTenantRequest {
            tenant: Some(tpb::Tenant {
                name: format!("bench-{}", uuid::Uuid::new_v4().simple()),
                plan: tpb::Plan::Dedicated.into(),
                limits: Some(tpb::Limits {
                    ingest_readings_per_second: 100_000_000,
                    max_machines: 100_000,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .tenant
        .context("no tenant")?;
    for machine_id in machines {
        tenants
            .create_machine(tpb::CreateMachineRequest {
                tenant_id: tenant.id.clone(),
                machine: Some(tpb::Machine {
                    machine_id,
                    ..Default::default()
                }),
            })
            .await?;
    }
    let key = tenants
        .create_api_key(tpb::CreateApiKeyRequest {
            tenant_id: tenant.id.clone(),
            display_name: "bench".to_owned(),
            scopes: scopes.iter().map(|&scope| scope.into()).collect(),
        })
        .await?
        .into_inner()
        .secret;
    Ok(BenchTenant { id: tenant.id, key })
}

/// Fails unless the database holds no table yet: queries on a database that earlier runs
/// loaded are slower, and their figures would not compare.
pub async fn ensure_empty(url: &str) -> anyhow::Result<()> {
    use sqlx::Row as _;
    let pool = sqlx::PgPool::connect(url).await?;
    let tables: i64 = sqlx::query(
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&pool)
    .await?
    .get(0);
    pool.close().await;
    anyhow::ensure!(
        tables == 0,
        "the database holds {tables} tables: give the benchmark a new, empty database"
    );
    Ok(())
}

/// Vacuums and analyzes the database, as autovacuum does after a load: the planner then
/// estimates from statistics, as on a database in service.
pub async fn analyze(url: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}
