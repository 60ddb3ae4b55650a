//! The tenant service: tenants with their plans, limits, retention and budgets; API keys; and
//! the machine registry. A library with one entry, [`run`], which serves on a listener the
//! caller bound, so the standalone binary, `mfg` and tests start it the same way.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod handoff;
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
    startup::{self, Database, Running},
};
use mfg_proto::{service_names, tenant::v1::tenant_service_server::TenantServiceServer};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::{
    api::{ReadyTenants, TenantApi},
    domain::{KeyHasher, Tenants},
};

/// Runs the tenant service on `listener` until `shutdown` is cancelled.
pub fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Running {
    run_with_clock(config, listener, shutdown, system_clock())
}

/// Runs the tenant service with the given clock.
///
/// The server answers health checks at once, NOT_SERVING, while the database is reached and
/// migrated in the background (retrying with backoff); every tenant RPC answers UNAVAILABLE
/// until then. After that it is SERVING for as long as the database answers.
pub fn run_with_clock(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    clock: SharedClock,
) -> Running {
    Box::pin(serve(config, listener, shutdown, clock))
}

async fn serve(
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
    let provisioning = config
        .onboarding
        .hand_off
        .then(|| {
            anyhow::Ok(
                grpc::service_channel(&grpc::http_uri(&config.addrs.provisioning))
                    .context("invalid provisioning service address")?
                    .with_bearer(&operator_token)?,
            )
        })
        .transpose()?;
    let audit = mfg_common::audit::AuditLink::new(
        "tenant",
        mfg_common::audit::OutboxTable::TENANT,
        config.audit,
        &config.addrs.provisioning,
        &operator_token,
    )
    .context("invalid audit log configuration")?;
    let parts = Parts {
        hasher,
        clock,
        provisioning,
        audit,
        meter: metering
            .meter()
            .map(|meter| (meter.clone(), config.metering.interval)),
    };
    let readiness = become_ready(
        database,
        parts,
        ready.clone(),
        health.clone(),
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

/// What the service runs once its database is ready.
struct Parts {
    hasher: KeyHasher,
    clock: SharedClock,
    /// The provisioning service new tenants are handed to, when they are.
    provisioning: Option<grpc::TracedChannel>,
    /// Where the administrative actions are recorded.
    audit: mfg_common::audit::AuditLink,
    meter: Option<(UsageMeter, std::time::Duration)>,
}

/// Opens the database (retrying), makes the service ready, then keeps its health.
async fn become_ready(
    database: Database,
    parts: Parts,
    ready: ReadyTenants,
    health: Health,
    shutdown: CancellationToken,
) {
    let Parts {
        hasher,
        clock,
        provisioning,
        audit,
        meter,
    } = parts;
    let opened = database.open(&shutdown, |pool| async {
        let store = store::open(pool.clone());
        store.migrate().await?;
        Ok::<_, error::TenantError>((store, pool))
    });
    let Some((store, pool)) = opened.await else {
        return;
    };
    let auditor = audit.start(pool, clock.clone(), shutdown.clone());
    let store: Arc<dyn store::TenantStore> = Arc::from(store);
    let relay =
        provisioning.map(|client| handoff::Relay::new(store.clone(), client, clock.clone()));
    let tenants = ready.get_or_init(|| {
        let tenants = Tenants::new(store, hasher, clock).auditing(auditor);
        match &relay {
            Some(relay) => tenants.handing_off(relay.clone()),
            None => tenants,
        }
    });
    if let Some(relay) = relay {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { relay.run(shutdown).await });
    }
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
