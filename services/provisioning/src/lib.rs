//! Provisioning: the provisioning service: the onboarding workflow of a tenant.
//!
//! A library with one entry, [`run`], which serves on a listener the caller bound. Like the
//! other services, it answers health checks at once (NOT_SERVING until its database is
//! reachable and migrated) and authenticates every call, resolving keys with the tenant
//! service. Its worker runs the steps of the runs stored (`worker`), calling the storage and
//! cost services. Decision 0014 is the design; the RPCs not built yet answer UNIMPLEMENTED.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod steps;
pub mod store;
pub mod worker;

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use mfg_common::{
    clock::{SharedClock, system_clock},
    grpc::{self, Health},
    shutdown::CancellationToken,
    startup::{self, Database, Running},
};
use mfg_proto::{
    cost::v1::cost_service_client::CostServiceClient,
    provisioning::v1::{
        audit_service_server::AuditServiceServer,
        provisioning_service_server::ProvisioningServiceServer,
    },
    service_names,
    storage::v1::{
        alert_service_client::AlertServiceClient, telemetry_service_client::TelemetryServiceClient,
    },
};
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::{
    api::{ProvisioningApi, Ready, ReadyProvisioning, audit::AuditApi},
    steps::Steps,
    worker::Worker,
};

/// Runs the provisioning service on `listener` until `shutdown` is cancelled.
pub fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Running {
    run_with_clock(config, listener, shutdown, system_clock())
}

/// Runs the provisioning service with the given clock.
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
        .context("invalid provisioning configuration")?;
    let operator_token = config
        .operator_token()
        .map_err(anyhow::Error::msg)
        .context("invalid provisioning configuration")?;
    let (tenants, auth) =
        startup::tenant_auth(&config.addrs.tenant, &operator_token, clock.clone())?;
    let channel = |addr: &str, what: &str| {
        anyhow::Ok(
            grpc::lazy_channel(&grpc::http_uri(addr))
                .with_context(|| format!("invalid {what} service address"))?
                .with_bearer(&operator_token)?,
        )
    };
    let steps = Steps::new(
        tenants,
        TelemetryServiceClient::new(channel(&config.addrs.storage, "storage")?),
        AlertServiceClient::new(channel(&config.addrs.storage, "storage")?),
        CostServiceClient::new(channel(&config.addrs.cost, "cost")?),
    )
    .with_offboarding_grace(config.runs.offboarding_grace);
    let (health, routes) =
        grpc::standard_routes(&[service_names::PROVISIONING, service_names::AUDIT]).await?;
    let ready: ReadyProvisioning = Arc::new(OnceLock::new());
    let routes = routes
        .add_service(ProvisioningServiceServer::new(ProvisioningApi::new(
            ready.clone(),
        )))
        .add_service(AuditServiceServer::new(AuditApi::new(ready.clone())));
    let database = Database::new("provisioning", &config.database());
    let readiness = become_ready(
        database,
        (
            steps,
            config.runs.step_attempts,
            usize::from(config.runs.workers),
            config.runs.audit_retention,
        ),
        clock,
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
        ready.store.close().await;
    }
    served
}

async fn become_ready(
    database: Database,
    (steps, step_attempts, workers, audit_retention): (Steps, u32, usize, std::time::Duration),
    clock: SharedClock,
    ready: ReadyProvisioning,
    health: Health,
    shutdown: CancellationToken,
) {
    let opened = database.open(&shutdown, |pool| async {
        let store = store::open(pool);
        store.migrate().await?;
        Ok::<_, error::ProvisioningError>(store)
    });
    let Some(store) = opened.await else {
        return;
    };
    let store: Arc<dyn store::ProvisioningStore> = Arc::from(store);
    let worker = Worker::new(store.clone(), steps.clone(), clock.clone(), step_attempts);
    let ready = ready.get_or_init(|| Ready {
        store,
        steps,
        worker,
        clock,
    });
    let health = database.keep_health(health, shutdown.clone(), || async {
        ready.store.ping().await.is_ok()
    });
    tokio::join!(
        health,
        ready.worker.run_many(workers, shutdown.clone()),
        keep_audit(ready, audit_retention, shutdown),
    );
}

/// How often events past the audit log's retention are dropped.
const AUDIT_SWEEP: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Drops the audit log's events older than `retention`, at start and then every
/// [`AUDIT_SWEEP`], until `shutdown`.
async fn keep_audit(ready: &Ready, retention: std::time::Duration, shutdown: CancellationToken) {
    loop {
        let now = mfg_common::clock::micros(ready.clock.system_now());
        let before = now - chrono::Duration::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
        match ready.store.forget_audit_before(before).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "audit events past their retention dropped"),
            Err(error) => tracing::warn!(%error, "audit events past their retention not dropped"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(AUDIT_SWEEP) => {}
        }
    }
}
