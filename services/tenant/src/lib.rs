//! The tenant service: tenants with their plans, limits, retention and budgets; API keys; and
//! the machine registry. A library with one entry, [`run`], which serves on a listener the
//! caller bound, so the standalone binary, `mfg` and tests start it the same way.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod metering;
pub mod store;

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use mfg_common::{
    auth::{AuthLayer, Authenticator, KeyCache, MAX_TTL},
    clock::{SharedClock, system_clock},
    grpc::{self, Health},
    metering::{Metering, UsageMeter},
    shutdown::CancellationToken,
    startup::{self, Database},
};
use mfg_proto::{service_names, tenant::v1::tenant_service_server::TenantServiceServer};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::{
    api::{ReadyTenants, TenantApi},
    domain::{KeyHasher, Tenants},
};

/// Runs the tenant service on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_clock(config, listener, shutdown, system_clock()).await
}

/// Runs the tenant service with the given clock.
///
/// The server answers health checks at once, NOT_SERVING, while the database is reached and
/// migrated in the background (retrying with backoff); every tenant RPC answers UNAVAILABLE
/// until then. After that it is SERVING for as long as the database answers.
pub async fn run_with_clock(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    clock: SharedClock,
) -> anyhow::Result<()> {
    let hasher = config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid tenant configuration")?;
    let operator_token = config
        .operator_token()
        .map_err(anyhow::Error::msg)
        .context("invalid tenant configuration")?;
    let (health, routes) = grpc::standard_routes(&[service_names::TENANT]).await?;
    let ready: ReadyTenants = Arc::new(OnceLock::new());
    let routes = routes.add_service(TenantServiceServer::new(TenantApi::new(ready.clone())));
    // Keys that call the tenant service directly are resolved here, without a round trip.
    let keys = KeyCache::new(
        api::LocalKeys::new(ready.clone()),
        clock.clone(),
        MAX_TTL,
        100_000,
    );
    let auth = AuthLayer::new(Authenticator::new(&operator_token, keys));
    let database = Database::new("tenant", &config.database());
    config
        .metrics
        .register_collector(mfg_common::metrics::PoolCollector::new(
            "tenant",
            database.pool(),
            config.data.pool.max_connections,
        ));

    let metering = Metering::start(
        "tenant",
        clock.clone(),
        config.metering,
        &config.addrs.cost,
        &operator_token,
    )
    .context("invalid metering configuration")?;
    let readiness = become_ready(
        database,
        hasher,
        clock,
        ready.clone(),
        health.clone(),
        metering
            .meter()
            .map(|meter| (meter.clone(), config.metering.interval)),
        shutdown.clone(),
    );
    let served = startup::serve_becoming_ready(
        listener,
        routes,
        health,
        Some(auth),
        shutdown,
        &config.server,
        readiness,
    )
    .await;
    metering.stop().await;
    if let Some(tenants) = ready.get() {
        tenants.store().close().await;
    }
    served
}

/// Opens the database (retrying), makes the service ready, then keeps its health.
async fn become_ready(
    database: Database,
    hasher: KeyHasher,
    clock: SharedClock,
    ready: ReadyTenants,
    health: Health,
    meter: Option<(UsageMeter, std::time::Duration)>,
    shutdown: CancellationToken,
) {
    let opened = database.open(&shutdown, |pool| async {
        let store = store::open(pool);
        store.migrate().await?;
        Ok::<_, error::TenantError>(store)
    });
    let Some(store) = opened.await else {
        return;
    };
    let tenants = ready.get_or_init(|| Tenants::new(Arc::from(store), hasher, clock));
    if let Some((meter, interval)) = meter {
        let store = tenants.store().clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            meter
                .sample_every("the machines", interval, shutdown, || {
                    metering::machine_levels(store.as_ref())
                })
                .await;
        });
    }
    database
        .keep_health(health, shutdown, || async {
            tenants.store().ping().await.is_ok()
        })
        .await;
}
