//! Metering across a crash. The storage service runs as a real `mfg serve storage` process
//! (as in `crash.rs`) and flushes usage every 50 ms. It is killed (SIGKILL) while it ingests and flushes, started again, and stopped
//! gracefully. The readings it acknowledged are counted at most once: the killed run loses its
//! unflushed interval, and nothing is ever counted twice. Everything the second run
//! acknowledged is counted.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use mfg_common::testing::Running;
use mfg_proto::{
    common::v1::Reading,
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    storage::v1::{
        Aggregation, IngestBatchRequest, QueryTelemetryRequest,
        telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};

const OPERATOR: &str = "metering-crash-operator-token";

/// Starts `mfg serve storage` with `args` (its log in `dir`) and waits until it serves.
async fn start_storage(args: &[String], addr: SocketAddr, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("storage.log"))
        .expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_mfg"))
        .args(["serve", "storage"])
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("mfg serve storage starts");
    mfg_common::grpc::wait_for_health(
        addr,
        mfg_proto::service_names::TELEMETRY,
        tonic_health::ServingStatus::Serving,
        Duration::from_secs(60),
    )
    .await
    .expect("the storage process serves");
    child
}

/// Sends batches of 100 readings until `stop`, from reading `next` on, adding what was
/// acknowledged to `acked`; a failed call (the process is gone) is not counted.
async fn ingest(
    telemetry: TelemetryServiceClient<mfg_common::grpc::TracedChannel>,
    tenant: String,
    next: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
    batches: usize,
) {
    let start = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    for _ in 0..batches {
        let first = next.fetch_add(100, Ordering::SeqCst);
        let readings = (first..first + 100)
            .map(|i| {
                let micros = start + i as i64 * 1_000;
                Reading {
                    machine_id: "press-1".to_owned(),
                    metric: "temp".to_owned(),
                    ts: Some(pbjson_types::Timestamp {
                        seconds: micros.div_euclid(1_000_000),
                        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
                    }),
                    value: 1.0,
                }
            })
            .collect();
        let mut telemetry = telemetry.clone();
        match telemetry
            .ingest_batch(IngestBatchRequest {
                tenant_id: tenant.clone(),
                readings,
            })
            .await
        {
            Ok(answer) => {
                acked.fetch_add(u64::from(answer.into_inner().accepted), Ordering::SeqCst);
            }
            Err(_) => return,
        }
    }
}

/// How many readings of the tenant's series the storage service holds: the truth that the
/// count is checked against (a batch may be stored and the process killed before its ack).
async fn stored(
    mut telemetry: TelemetryServiceClient<mfg_common::grpc::TracedChannel>,
    tenant: &str,
) -> u64 {
    let now = chrono::Utc::now().timestamp();
    let at = |seconds: i64| pbjson_types::Timestamp { seconds, nanos: 0 };
    telemetry
        .query_telemetry(QueryTelemetryRequest {
            tenant_id: tenant.to_owned(),
            machine_id: "press-1".to_owned(),
            metric: "temp".to_owned(),
            start: Some(at(now - 86_400)),
            end: Some(at(now)),
            step: Some(pbjson_types::Duration {
                seconds: 86_400,
                nanos: 0,
            }),
            aggregation: Aggregation::Count.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .buckets
        .iter()
        .map(|b| b.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_storage_service_never_counts_usage_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let tenant_config = mfg_tenant::Config::new(url("tenant.db"), "metering-crash-pepper-0123")
        .with_admin_token(OPERATOR);
    let tenant_service = Running::start(mfg_proto::service_names::TENANT, |l, s| {
        mfg_tenant::run(tenant_config, l, s)
    })
    .await;
    let config = mfg_cost::Config::new(url("cost.db"), tenant_service.addr.to_string())
        .with_admin_token(OPERATOR);
    let cost_service = Running::start(mfg_proto::service_names::COST, |l, s| {
        mfg_cost::run(config, l, s)
    })
    .await;
    let storage_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args: Vec<String> = [
        "--storage-addr",
        &storage_addr.to_string(),
        "--tenant-addr",
        &tenant_service.addr.to_string(),
        "--cost-addr",
        &cost_service.addr.to_string(),
        "--database-url",
        &url("storage.db"),
        "--admin-token",
        OPERATOR,
        "--metering-interval",
        "50ms",
        "--tiering-interval",
        "0s",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut storage = start_storage(&args, storage_addr, dir.path()).await;

    let mut tenants = TenantServiceClient::new(tenant_service.channel_with(OPERATOR));
    let tenant = tenants
        .create_tenant(tpb::CreateTenantRequest {
            tenant: Some(tpb::Tenant {
                name: "acme".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap()
        .id;
    let key = tenants
        .create_api_key(tpb::CreateApiKeyRequest {
            tenant_id: tenant.clone(),
            display_name: String::new(),
            scopes: vec![tpb::Scope::Write.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    tenants
        .create_machine(tpb::CreateMachineRequest {
            tenant_id: tenant.clone(),
            machine: Some(tpb::Machine {
                machine_id: "press-1".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let telemetry = TelemetryServiceClient::new(
        mfg_common::grpc::lazy_channel(&format!("http://{storage_addr}"))
            .unwrap()
            .with_bearer(&key)
            .unwrap(),
    );
    let (next, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    // Ingest, and kill the process in the middle of it.
    let load = tokio::spawn(ingest(
        telemetry.clone(),
        tenant.clone(),
        next.clone(),
        acked.clone(),
        usize::MAX,
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    storage.kill().unwrap();
    storage.wait().unwrap();
    load.await.unwrap();
    let before_kill = acked.load(Ordering::SeqCst);
    assert!(before_kill > 0, "the first run acknowledged readings");

    // The second run: everything it acknowledges is counted once it stops gracefully.
    let mut storage = start_storage(&args, storage_addr, dir.path()).await;
    let after = Arc::new(AtomicU64::new(0));
    ingest(telemetry.clone(), tenant.clone(), next, after.clone(), 20).await;
    let after = after.load(Ordering::SeqCst);
    assert_eq!(after, 2_000);
    let stored = stored(telemetry, &tenant).await;
    assert!(stored >= before_kill + after, "{stored} stored");
    let stopped = Command::new("kill")
        .args(["-TERM", &storage.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(storage.wait().unwrap().success(), "a graceful stop");

    let mut cost = CostServiceClient::new(cost_service.channel_with(OPERATOR));
    let since = chrono::DurationRound::duration_trunc(
        chrono::Utc::now() - chrono::Duration::hours(3),
        chrono::Duration::hours(1),
    )
    .unwrap();
    let report = cost
        .get_tenant_cost(pb::GetTenantCostRequest {
            tenant_id: tenant,
            start_time: Some(pbjson_types::Timestamp {
                seconds: since.timestamp(),
                nanos: 0,
            }),
            end_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    let counted = report
        .lines
        .iter()
        .find(|l| l.meter == i32::from(pb::Meter::IngestedReadings))
        .map_or(0.0, |l| (l.quantity * 1e6).round()) as u64;
    assert!(
        counted <= stored,
        "counted {counted} of {stored} stored: counted twice"
    );
    assert!(
        counted >= after,
        "counted {counted}: the second run's {after} are not all counted"
    );
    cost_service.stop().await;
    tenant_service.stop().await;
}
