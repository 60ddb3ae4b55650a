//! The storage service: telemetry ingest, the hot, warm and cold tiers, queries, alert rules and
//! alert fan-out.
//!
//! A library with one entry, [`run`], which serves on a listener the caller bound, so the
//! standalone binary, `mfg` and tests start it the same way. Like the tenant service, it
//! answers health checks at once (NOT_SERVING until its database is reachable and migrated)
//! and authenticates every call; keys are resolved by the tenant service.

pub mod alerting;
mod column;
pub mod config;
pub mod directory;
pub mod error;
pub mod metering;
pub mod metrics;
pub mod micros;
pub mod offboarding;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod usage;

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use mfg_common::{
    clock::{SharedClock, system_clock},
    grpc::{self, Health},
    metering::{Metering, UsageMeter},
    shutdown::CancellationToken,
    startup::{self, Database, Running},
};
use mfg_proto::{
    service_names,
    storage::v1::{
        alert_service_server::AlertServiceServer, telemetry_service_server::TelemetryServiceServer,
    },
};
use tokio::net::TcpListener;

pub use crate::config::{AlertCommit, Config};
use crate::{
    alerting::{Alerting, Evaluator, Journal, MachineSweep},
    directory::Directory,
    metering::IngestMeter,
    metrics::StorageMetrics,
    service::{ReadyStorage, Storage},
    telemetry::{
        api::TelemetryApi,
        ingest::{Ingest, IngestObserver},
        object_store::ObjectStore,
        query::{Queries, StoredHistory},
        store::TelemetryStore,
        tiering::{Tiering, TieringJobs},
    },
};

/// The largest message a client may send (a full batch of 10,000 readings with long names).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Runs the storage service on `listener` until `shutdown` is cancelled.
pub fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Running {
    run_with_clock(config, listener, shutdown, system_clock())
}

/// Runs the storage service with the given clock.
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
        .context("invalid storage configuration")?;
    let operator_token = config
        .operator_token()
        .map_err(anyhow::Error::msg)
        .context("invalid storage configuration")?;
    let (tenant, auth) =
        startup::tenant_auth(&config.addrs.tenant, &operator_token, clock.clone())?;
    let (health, routes) =
        grpc::standard_routes(&[service_names::TELEMETRY, service_names::ALERT]).await?;
    let ready: ReadyStorage = Arc::new(OnceLock::new());
    let subscribers = alerting::SubscriberCaps::new(
        config.options.alert_subscribers_per_key,
        config.options.alert_subscribers_per_tenant,
    );
    let database = Database::new("storage", &config.database());
    let metrics = StorageMetrics::register(
        &config.metrics,
        ready.clone(),
        subscribers.clone(),
        database.pool(),
        config.data.pool.max_connections,
    );
    let routes = routes
        .add_service(
            TelemetryServiceServer::new(TelemetryApi::new(
                ready.clone(),
                shutdown.clone(),
                metrics.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(AlertServiceServer::new(alerting::api::AlertApi::new(
            ready.clone(),
            shutdown.clone(),
            subscribers,
            metrics.clone(),
        )));
    let directory = Directory::new(tenant, clock.clone());
    config.metrics.register(
        "storage_machine_lookups",
        "Machines asked of the tenant service: lookups the directory's cache did not answer",
        directory.machine_lookups().clone(),
    );
    let metering = Metering::start(
        "storage",
        clock.clone(),
        config.metering,
        &config.addrs.cost,
        &operator_token,
    )
    .context("invalid metering configuration")?;
    let objects = config
        .object_store()
        .await
        .map_err(anyhow::Error::msg)
        .context("invalid cold-tier configuration")?;

    let audit = mfg_common::audit::AuditLink::new(
        "storage",
        mfg_common::audit::OutboxTable::STORAGE,
        config.audit,
        &config.addrs.provisioning,
        &operator_token,
    )
    .context("invalid audit log configuration")?;
    let parts = Parts {
        directory,
        audit,
        objects,
        clock,
        ready: ready.clone(),
        health: health.clone(),
        metrics,
        database,
        meter: metering.meter().cloned(),
    };
    let readiness = become_ready(config.clone(), parts, shutdown.clone());
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
    if let Some(storage) = ready.get() {
        storage.alerting.journal().finished().await;
        // The last queries' raw reads, once they have drained.
        if let Err(error) = storage.usage.raw_reads().save().await {
            tracing::warn!(%error, "the last raw reads were not saved");
        }
        storage.queries.store().close().await;
    }
    // The last usage, once ingest has drained.
    metering.stop().await;
    served
}

/// What the service is made of before its database is ready.
struct Parts {
    directory: Directory,
    /// Where the changes of rules and alerts made by hand are recorded.
    audit: mfg_common::audit::AuditLink,
    objects: Arc<dyn ObjectStore>,
    clock: SharedClock,
    ready: ReadyStorage,
    health: Health,
    metrics: Arc<StorageMetrics>,
    database: Database,
    /// Where usage is counted, when it is metered.
    meter: Option<UsageMeter>,
}

async fn become_ready(config: Config, parts: Parts, shutdown: CancellationToken) {
    let Parts {
        directory,
        audit,
        objects,
        clock,
        ready,
        health,
        metrics,
        database,
        meter,
    } = parts;
    let opened = database.open(&shutdown, |pool| async {
        let alert_store = store::open_alerts(pool.clone());
        let job_store = store::open_jobs(pool.clone());
        let usage_store = store::open_usage(pool.clone());
        let store = store::open(pool.clone());
        store.migrate().await?;
        Ok::<_, error::StorageError>((
            Arc::<dyn TelemetryStore>::from(store),
            alert_store,
            job_store,
            usage_store,
            pool,
        ))
    });
    let Some((store, alert_store, job_store, usage_store, pool)) = opened.await else {
        return;
    };
    let auditor = audit.start(pool, clock.clone(), shutdown.clone());
    let mut writer = config.writer();
    if matches!(
        mfg_common::db::Backend::of_url(&config.database().url),
        Some(mfg_common::db::Backend::Sqlite)
    ) {
        // SQLite has one write lock: a second writer would only wait for it.
        writer.writers = 1;
    }
    let Some(alerting) = grpc::retry_until_ready("alert evaluation", &shutdown, || {
        start_alerting(
            &config,
            alert_store.clone(),
            Arc::new(StoredHistory::new(store.clone())),
            directory.clone(),
            clock.clone(),
            meter.clone(),
            &shutdown,
        )
    })
    .await
    else {
        return;
    };
    let alerting = alerting.auditing(auditor);
    // Ingest shows every batch to its observers: alerting evaluates them, and those the
    // embedding process gave.
    let mut observers: Vec<Arc<dyn IngestObserver>> = vec![Arc::new(alerting.evaluator().clone())];
    if let Some(meter) = &meter {
        observers.push(Arc::new(IngestMeter(meter.clone())));
    }
    observers.extend(config.observers.iter().cloned());
    let ingest = Ingest::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        writer,
        observers,
    );
    let tiering = Tiering::new(
        store.clone(),
        Arc::new(alerting.clone()),
        objects.clone(),
        directory.clone(),
        config.tiering(),
    );
    let jobs = TieringJobs::new(
        tiering.clone(),
        job_store,
        clock.clone(),
        config.tiering_jobs(),
        metrics,
    );
    if let Some(meter) = &meter {
        let (meter, store) = (meter.clone(), store.clone());
        let interval = config.metering.interval * metering::FOOTPRINT_FLUSHES;
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            meter
                .sample_every("the tiers", interval, shutdown, || async {
                    Ok::<_, error::StorageError>(
                        metering::storage_levels(&store.footprint().await?).to_vec(),
                    )
                })
                .await;
        });
    }
    let raw_reads = Arc::new(usage::RawReads::new(usage_store.clone(), clock.clone()));
    tokio::spawn({
        let (raw_reads, shutdown) = (raw_reads.clone(), shutdown.clone());
        async move { raw_reads.save_every(shutdown).await }
    });
    let usage = usage::Usage::new(usage_store, store.clone(), raw_reads, clock.clone());
    let storage = ready.get_or_init(|| Storage {
        queries: Queries::new(store, objects, ingest.clone()),
        usage,
        ingest,
        tiering,
        jobs: jobs.clone(),
        alerting,
        clock: clock.clone(),
        meter,
    });
    tokio::spawn(jobs.clone().run(shutdown.clone()));
    tokio::spawn(directory.clone().keep_fresh(shutdown.clone()));
    if !config.options.tiering_interval.is_zero() {
        tokio::spawn(start_tiering_every(
            jobs,
            config.options.tiering_interval,
            shutdown.clone(),
        ));
    }
    database
        .keep_health(health, shutdown, || async {
            storage.queries.store().ping().await.is_ok()
        })
        .await;
}

/// Loads the rules and the unresolved alerts, and starts the journal and the evaluator (which
/// `history` refills rate-of-change windows from). Rules other replicas change are picked up
/// every 10 s.
async fn start_alerting(
    config: &Config,
    store: Arc<dyn alerting::store::AlertStore>,
    history: Arc<dyn alerting::SeriesHistory>,
    directory: Directory,
    clock: SharedClock,
    meter: Option<UsageMeter>,
    shutdown: &CancellationToken,
) -> error::Result<Alerting> {
    let index = Arc::new(alerting::index::RuleIndex::default());
    index.replace_all(store.all_rules().await?);
    let states = store.rule_states().await?;
    // The journal needs one connection; a second lets it reconnect without waiting.
    let database = mfg_common::config::DatabaseArgs {
        pool: mfg_common::config::PoolArgs {
            max_connections: 2,
            ..config.data.pool
        },
        ..config.database()
    };
    let journal = Journal::start(
        database,
        clock.clone(),
        alerting::journal::JournalOptions {
            fan_out: config.options.alert_fan_out,
            durable: config.options.alert_commit == AlertCommit::Durable,
        },
        shutdown.clone(),
    )
    .await?;
    let evaluator = Evaluator::start(
        alerting::EvaluatorConfig {
            meter,
            ..config.evaluator()
        },
        index.clone(),
        journal.clone(),
        states,
        history,
        clock.clone(),
        shutdown,
    );
    if !config.options.alert_machine_sweep.is_zero() {
        let sweep = MachineSweep::new(directory.clone(), evaluator.clone(), journal.clone());
        tokio::spawn(sweep.run(config.options.alert_machine_sweep, shutdown.clone()));
    }
    let alerting = Alerting::new(store, directory, clock, index, journal, evaluator);
    let refresh = alerting.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(error) = refresh.reindex_all().await {
                tracing::warn!(%error, "reloading the alert rules failed");
            }
        }
    });
    Ok(alerting)
}

/// Starts a tiering job at an interval until shutdown, unless one is queued or running.
async fn start_tiering_every(
    jobs: TieringJobs,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(error) = jobs.start_unless_pending().await {
            tracing::warn!(%error, "starting a tiering job failed; the next interval retries");
        }
    }
}
