//! A SIGKILL of the storage service while machines stream, and a restart of its PostgreSQL
//! server (clean, and as a crash): no acked reading is lost and none is stored twice. The storage service runs as a real `mfg serve storage` process, killed with
//! SIGKILL (no drain, no flush) while batches are in flight, twice, and restarted on the same
//! address; the machines stream through [`mfg_uplink::Uplink`], which resends what was not
//! acked.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use mfg::simulate::{Scenario, SimTenant};
use mfg_common::{
    grpc::lazy_channel,
    shutdown::CancellationToken,
    testing::{PrivatePostgres, Running, Shutdown, TestDatabase},
};
use mfg_proto::{
    storage::v1::{
        Aggregation, QueryTelemetryRequest, telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1::tenant_service_client::TenantServiceClient,
};
use mfg_uplink::UplinkStats;
use pbjson_types::Timestamp;

const OPERATOR: &str = "crash-test-operator-token-0123";

/// The storage service as a child process.
struct StorageProcess {
    child: Child,
}

impl StorageProcess {
    async fn start(addr: SocketAddr, database_url: &str, tenant: SocketAddr, dir: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("storage.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_mfg"))
            .args(["serve", "storage"])
            .arg("--storage-addr")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(database_url)
            .arg("--tenant-addr")
            .arg(tenant.to_string())
            .arg("--archive-dir")
            .arg(dir.join("archive"))
            .args(["--tiering-interval", "0s"])
            .env("MFG_ADMIN_TOKEN", OPERATOR)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start mfg serve storage");
        mfg_common::grpc::wait_for_health(
            addr,
            mfg_proto::service_names::TELEMETRY,
            tonic_health::ServingStatus::Serving,
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|last| {
            panic!(
                "mfg serve storage did not become SERVING: {last}\n{}",
                std::fs::read_to_string(dir.join("storage.log")).unwrap_or_default()
            )
        });
        Self { child }
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

/// Waits (bounded) until `condition` holds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..3_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Readings stored for each series, through QueryTelemetry's count over all time.
async fn stored(storage: SocketAddr, tenant: &SimTenant, scenario: &Scenario) -> u64 {
    let mut client = TelemetryServiceClient::new(
        lazy_channel(&format!("http://{storage}"))
            .expect("address")
            .with_bearer(OPERATOR)
            .expect("token"),
    );
    let now = chrono::Utc::now().timestamp();
    let mut total = 0;
    for machine in &tenant.machines {
        for metric in mfg::simulate::metric_names(scenario.metrics) {
            let answer = client
                .query_telemetry(QueryTelemetryRequest {
                    tenant_id: tenant.id.clone(),
                    machine_id: machine.clone(),
                    metric,
                    start: Some(Timestamp {
                        seconds: now - 3_600,
                        nanos: 0,
                    }),
                    end: Some(Timestamp {
                        seconds: now + 3_600,
                        nanos: 0,
                    }),
                    step: Some(pbjson_types::Duration {
                        seconds: 7_200,
                        nanos: 0,
                    }),
                    aggregation: Aggregation::Count.into(),
                })
                .await
                .expect("query")
                .into_inner();
            total += answer.buckets.iter().map(|b| b.count).sum::<u64>();
        }
    }
    total
}

/// Machines of one tenant streaming through uplinks to the storage service at `addr`.
struct Streaming {
    tenant_service: Running,
    tenant: SimTenant,
    scenario: Scenario,
    addr: SocketAddr,
    stats: Arc<UplinkStats>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Streaming {
    /// Starts the tenant service on `tenant_url`, creates the tenant, its machines and key,
    /// and streams to `addr` (where the storage service is, or will be).
    async fn start(tenant_url: &str, addr: SocketAddr) -> Self {
        let tenant_config = mfg_tenant::Config::new(tenant_url, "crash-test-pepper-0123456789")
            .with_admin_token(OPERATOR);
        let tenant_service =
            Running::start(mfg_proto::service_names::TENANT, |listener, shutdown| {
                mfg_tenant::run(tenant_config, listener, shutdown)
            })
            .await;
        let scenario = Scenario {
            tenants: vec!["crash-test".to_owned()],
            machines: 4,
            metrics: 10,
            hz: 100.0,
            flush_every: Duration::from_millis(20),
            window: 4,
            overheat_first_machine: false,
        };
        let mut tenants = TenantServiceClient::new(tenant_service.channel_with(OPERATOR));
        let prepared = mfg::simulate::prepare(&mut tenants, &scenario)
            .await
            .expect("tenant, machines and key");
        let stats = Arc::new(UplinkStats::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (prepared, scenario, stats, stop) = (
                prepared.clone(),
                scenario.clone(),
                stats.clone(),
                stop.clone(),
            );
            async move {
                mfg::simulate::stream(
                    &addr.to_string(),
                    &prepared,
                    &scenario,
                    stats,
                    stop,
                    Duration::from_secs(30),
                )
                .await
            }
        });
        Self {
            tenant_service,
            tenant: prepared[0].clone(),
            scenario,
            addr,
            stats,
            stop,
            task,
        }
    }

    /// Waits until `readings` more readings are acked.
    async fn acked_more(&self, readings: u64, what: &str) {
        let acked = self.stats.acked();
        until(what, || self.stats.acked() >= acked + readings).await;
    }

    /// Stops streaming once everything sent is acked, and checks that every reading sent was
    /// acked once stored and is stored exactly once.
    async fn finish(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("streaming task")
            .expect("every reading acked after the restarts");
        let stats = &self.stats;
        let sent = stats.sent.load(Ordering::Relaxed);
        let accepted = stats.accepted.load(Ordering::Relaxed);
        let duplicates = stats.duplicates.load(Ordering::Relaxed);
        assert_eq!(stats.rejected.load(Ordering::Relaxed), 0);
        assert_eq!(
            accepted + duplicates,
            sent,
            "every reading sent was acked once stored"
        );
        assert_eq!(
            stored(self.addr, &self.tenant, &self.scenario).await,
            sent,
            "every distinct reading is stored exactly once ({accepted} accepted, {duplicates} \
             duplicates after resending)"
        );
        self.tenant_service.stop().await;
    }
}

/// A free port of 127.0.0.1.
async fn free_addr() -> SocketAddr {
    let (listener, addr) = mfg_common::testing::listener().await;
    drop(listener);
    addr
}

async fn storage_killed_twice(tenant_url: &str, storage_url: &str, dir: &Path) {
    let addr = free_addr().await;
    let streaming = Streaming::start(tenant_url, addr).await;
    let mut storage =
        StorageProcess::start(addr, storage_url, streaming.tenant_service.addr, dir).await;
    let stats = streaming.stats.clone();

    // Kill until two kills have cut batches in flight (the uplinks resent something after
    // them); a kill that finds everything acked proves nothing and does not count.
    let mut interrupted = 0;
    for _ in 0..20 {
        streaming.acked_more(2_000, "more readings are acked").await;
        until("a batch is in flight", || {
            stats.sent.load(Ordering::Relaxed) > stats.acked()
        })
        .await;
        let reconnects = stats.reconnects.load(Ordering::Relaxed);
        let resent = stats.resent.load(Ordering::Relaxed);
        storage.kill();
        until("the uplinks notice the crash", || {
            stats.reconnects.load(Ordering::Relaxed) > reconnects
        })
        .await;
        storage =
            StorageProcess::start(addr, storage_url, streaming.tenant_service.addr, dir).await;
        streaming.acked_more(2_000, "streaming resumes").await;
        if stats.resent.load(Ordering::Relaxed) > resent {
            interrupted += 1;
            if interrupted == 2 {
                break;
            }
        }
    }
    assert_eq!(interrupted, 2, "two kills cut batches in flight");
    streaming.finish().await;
    storage.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_storage_service_loses_no_acked_reading_on_postgres() {
    let database = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    storage_killed_twice(&database.url, &database.url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_loses_no_acked_reading() {
    let postgres = PrivatePostgres::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // The tenant service on SQLite: only the storage service's database restarts.
    let tenant_url = format!("sqlite://{}", dir.path().join("tenant.db").display());
    let addr = free_addr().await;
    let streaming = Streaming::start(&tenant_url, addr).await;
    let storage = StorageProcess::start(
        addr,
        &postgres.url(),
        streaming.tenant_service.addr,
        dir.path(),
    )
    .await;
    let stats = streaming.stats.clone();
    // A clean restart, then one as a crash of the database server. While it is down, writes
    // fail, the storage service says so, and the uplinks resend what was not acked.
    for mode in [Shutdown::Fast, Shutdown::Immediate] {
        streaming.acked_more(2_000, "readings are acked").await;
        let reconnects = stats.reconnects.load(Ordering::Relaxed);
        postgres.stop(mode);
        until("the uplinks notice the database is down", || {
            stats.reconnects.load(Ordering::Relaxed) > reconnects
        })
        .await;
        postgres.start_again();
        streaming
            .acked_more(2_000, "streaming resumes after the database is back")
            .await;
    }
    assert!(
        stats.resent.load(Ordering::Relaxed) > 0,
        "batches in flight while the database was down were resent"
    );
    streaming.finish().await;
    storage.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_storage_service_loses_no_acked_reading_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    storage_killed_twice(&url("tenant.db"), &url("storage.db"), dir.path()).await;
}
