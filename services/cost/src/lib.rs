//! Cost: the cost service: usage metering, the price book, per-tenant cost with shared costs
//! split, budgets, forecasts and recommendations.
//!
//! A library with one entry, [`run`], which serves on a listener the caller bound. Like the
//! other services, it answers health checks at once (NOT_SERVING until its database is
//! reachable and migrated) and authenticates every call, resolving keys with the tenant
//! service. The RPCs not built yet answer UNIMPLEMENTED.

pub mod api;
pub mod budget_alerts;
pub mod config;
pub mod costing;
pub mod domain;
pub mod error;
pub mod forecasts;
pub mod recommendations;
pub mod settled;
pub mod store;
pub mod tenants;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use mfg_common::{
    clock::{SharedClock, system_clock},
    grpc::{self, Health},
    shutdown::CancellationToken,
    startup::{self, Database, Running},
};
use mfg_proto::{
    cost::v1::cost_service_server::CostServiceServer,
    service_names,
    storage::v1::{
        alert_service_client::AlertServiceClient, telemetry_service_client::TelemetryServiceClient,
    },
};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::{
    api::{CostApi, Ready, ReadyCost},
    budget_alerts::BudgetAlerts,
    costing::Costing,
    recommendations::Recommender,
    tenants::Directory,
};

/// Runs the cost service on `listener` until `shutdown` is cancelled.
pub fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Running {
    run_with_clock(config, listener, shutdown, system_clock())
}

/// Runs the cost service with the given clock.
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
    mfg_common::db::validate_url(&config.database().url)
        .map_err(anyhow::Error::msg)
        .context("invalid cost configuration")?;
    let operator_token = config
        .operator_token()
        .map_err(anyhow::Error::msg)
        .context("invalid cost configuration")?;
    let (tenant_client, auth) =
        startup::tenant_auth(&config.addrs.tenant, &operator_token, clock.clone())?;
    let tenants = Arc::new(Directory::new(tenant_client));
    let storage = grpc::service_channel(&grpc::http_uri(&config.addrs.storage))
        .context("invalid storage service address")?
        .with_bearer(&operator_token)?;
    let budget_alerts = config.budget.enabled().then(|| {
        (
            BudgetAlerts::new(AlertServiceClient::new(storage.clone())),
            config.budget.check_interval,
        )
    });
    let recommender = Recommender::new(TelemetryServiceClient::new(storage));
    let (health, routes) = grpc::standard_routes(&[service_names::COST]).await?;
    let ready: ReadyCost = Arc::new(OnceLock::new());
    let routes = routes.add_service(CostServiceServer::new(CostApi::new(ready.clone())));
    let database = Database::new("cost", &config.database());
    let audit = mfg_common::audit::AuditLink::new(
        "cost",
        mfg_common::audit::OutboxTable::COST,
        config.audit,
        &config.addrs.provisioning,
        &operator_token,
    )
    .context("invalid audit log configuration")?;
    let readiness = become_ready(
        database,
        Parts {
            tenants,
            budget_alerts,
            recommender,
            clock,
            audit,
        },
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
    if let Some(ready) = ready.get() {
        ready.store().close().await;
    }
    served
}

/// How often the snapshot of the tenants is refreshed from the tenant service.
const TENANTS_REFRESH: Duration = Duration::from_secs(5);

/// What the service runs once its database is ready.
struct Parts {
    tenants: Arc<Directory>,
    budget_alerts: Option<(BudgetAlerts, Duration)>,
    recommender: Recommender,
    clock: SharedClock,
    /// Where the changes of budgets and the price book are recorded.
    audit: mfg_common::audit::AuditLink,
}

async fn become_ready(
    database: Database,
    parts: Parts,
    ready: ReadyCost,
    health: Health,
    shutdown: CancellationToken,
) {
    let Parts {
        tenants,
        budget_alerts,
        recommender,
        clock,
        audit,
    } = parts;
    let opened = database.open(&shutdown, |pool| async {
        let store = store::open(pool.clone());
        store.migrate().await?;
        Ok::<_, error::CostError>((store, pool))
    });
    let Some((store, pool)) = opened.await else {
        return;
    };
    let auditor = audit.start(pool, clock.clone(), shutdown.clone());
    let ready = ready.get_or_init(|| Ready {
        costing: Arc::new(Costing::new(Arc::from(store), tenants, clock.clone())),
        forecasts: Arc::default(),
        recommender,
        clock,
        auditor,
    });
    let health = database.keep_health(health, shutdown.clone(), || async {
        ready.store().ping().await.is_ok()
    });
    tokio::join!(
        health,
        ready
            .tenants()
            .refresh_every(TENANTS_REFRESH, shutdown.clone()),
        forget_keys_every(ready, KEYS_FORGOTTEN_EVERY, shutdown.clone()),
        ready.costing.keep_warm(shutdown.clone()),
        async {
            if let Some((alerts, interval)) = &budget_alerts {
                alerts.run(ready, *interval, shutdown).await;
            }
        },
    );
}

/// How long the idempotency keys of recorded usage are kept: far longer than a flush is retried
/// (the services keep unsent flushes an hour, `mfg_common::metering::MAX_UNSENT`).
pub const KEYS_KEPT: chrono::Duration = chrono::Duration::days(1);

/// How often the keys older than [`KEYS_KEPT`] are forgotten.
const KEYS_FORGOTTEN_EVERY: Duration = Duration::from_secs(600);

/// Forgets the idempotency keys older than [`KEYS_KEPT`] every `interval` until `shutdown`.
/// Replicas may each do it: forgetting is idempotent.
async fn forget_keys_every(ready: &Ready, interval: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now: chrono::DateTime<chrono::Utc> = ready.clock.system_now().into();
        match ready.store().forget_keys(now - KEYS_KEPT).await {
            Ok(forgotten) => tracing::debug!(forgotten, "usage keys forgotten"),
            Err(error) => tracing::warn!(%error, "could not forget old usage keys"),
        }
    }
}
