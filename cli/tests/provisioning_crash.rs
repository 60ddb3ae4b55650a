//! A SIGKILL of the provisioning service in the middle of a run: after a restart the run goes on
//! from the step it was in, and no step that had succeeded runs again. The service runs as a
//! real `mfg serve provisioning` process; the run is held in its second step by keeping the
//! cost service down, so the kill lands while the first step is done and the second is not.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use mfg_common::{grpc::lazy_channel, testing::Running};
use mfg_proto::{
    provisioning::v1::{
        GetProvisioningRunRequest, ProvisioningRun, RunState, StartProvisioningRequest, StepState,
        provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};

const OPERATOR: &str = "provisioning-crash-operator-0123";
const PEPPER: &str = "provisioning-crash-pepper-0123";

/// The provisioning service as a child process.
struct ProvisioningProcess {
    child: Child,
}

impl ProvisioningProcess {
    async fn start(addr: SocketAddr, others: [(&str, SocketAddr); 3], dir: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("provisioning.log"))
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfg"));
        command
            .args(["serve", "provisioning", "--provisioning-addr"])
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(format!(
                "sqlite://{}",
                dir.join("provisioning.db").display()
            ));
        for (flag, addr) in others {
            command.arg(flag).arg(addr.to_string());
        }
        let child = command
            .env("MFG_ADMIN_TOKEN", OPERATOR)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start mfg serve provisioning");
        mfg_common::grpc::wait_for_health(
            addr,
            service_names::PROVISIONING,
            tonic_health::ServingStatus::Serving,
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|last| panic!("mfg serve provisioning did not become SERVING: {last}"));
        Self { child }
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

/// An address nothing listens on yet.
async fn free_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Reads the run until `done` holds, for at most 60 s.
async fn wait_for(
    client: &mut ProvisioningServiceClient<mfg_common::grpc::TracedChannel>,
    request: &GetProvisioningRunRequest,
    what: &str,
    done: impl Fn(&ProvisioningRun) -> bool,
) -> ProvisioningRun {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get_provisioning_run(request.clone()).await {
            let run = response.into_inner().run.expect("a run");
            if done(&run) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not {what}: {run:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_resumes_at_its_step_and_repeats_none() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let tenant_config =
        mfg_tenant::Config::new(url("tenant.db"), PEPPER).with_admin_token(OPERATOR);
    let tenant_service = Running::start(service_names::TENANT, |l, s| {
        mfg_tenant::run(tenant_config, l, s)
    })
    .await;
    let storage_config =
        mfg_storage::Config::new(url("storage.db"), tenant_service.addr.to_string())
            .with_admin_token(OPERATOR);
    let storage = Running::start(service_names::TELEMETRY, |l, s| {
        mfg_storage::run(storage_config, l, s)
    })
    .await;
    let cost_addr = free_addr().await;
    let provisioning_addr = free_addr().await;
    let others = [
        ("--tenant-addr", tenant_service.addr),
        ("--storage-addr", storage.addr),
        ("--cost-addr", cost_addr),
    ];
    let process = ProvisioningProcess::start(provisioning_addr, others, dir.path()).await;

    let tenant = TenantServiceClient::new(tenant_service.channel_with(OPERATOR))
        .create_tenant(tpb::CreateTenantRequest {
            tenant: Some(tpb::Tenant {
                name: "acme".to_owned(),
                monthly_budget_usd: 500.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    let mut client = ProvisioningServiceClient::new(
        lazy_channel(&format!("http://{provisioning_addr}"))
            .unwrap()
            .with_bearer(OPERATOR)
            .unwrap(),
    );
    let run = client
        .start_provisioning(StartProvisioningRequest {
            tenant_id: tenant.id.clone(),
            request_id: "crash".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let get = GetProvisioningRunRequest {
        tenant_id: tenant.id.clone(),
        run_id: run.run_id.clone(),
    };

    // The steps before the budget done, the budget failing while the cost service is down:
    // kill it there.
    let budget = |run: &ProvisioningRun| run.steps.last().cloned().unwrap_or_default();
    let mid_way = wait_for(&mut client, &get, "mid-way", |run| {
        budget(run).attempts >= 1
    })
    .await;
    assert_eq!(budget(&mid_way).name, "budget");
    for step in &mid_way.steps[..mid_way.steps.len() - 1] {
        assert_eq!(
            (step.state(), step.attempts),
            (StepState::Succeeded, 1),
            "{mid_way:?}"
        );
    }
    process.kill();

    let process = ProvisioningProcess::start(provisioning_addr, others, dir.path()).await;
    let listener = tokio::net::TcpListener::bind(cost_addr).await.unwrap();
    let cost_config = mfg_cost::Config::new(url("cost.db"), tenant_service.addr.to_string())
        .with_admin_token(OPERATOR);
    let shutdown = mfg_common::shutdown::CancellationToken::new();
    let cost = tokio::spawn(mfg_cost::run(cost_config, listener, shutdown.clone()));

    let done = wait_for(&mut client, &get, "succeeded", |run| {
        run.state() == RunState::Succeeded
    })
    .await;
    for step in &done.steps[..done.steps.len() - 1] {
        assert_eq!(step.attempts, 1, "a step done did not run again: {done:?}");
    }
    assert!(budget(&done).attempts >= 2, "{done:?}");
    // The outcome is reported after the run is stored as ended.
    let mut tenants = TenantServiceClient::new(tenant_service.channel_with(OPERATOR));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = tenants
            .get_tenant(tpb::GetTenantRequest {
                tenant_id: tenant.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .tenant
            .unwrap();
        if found.provisioning_run_id == run.run_id {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outcome was not reported: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    process.kill();
    shutdown.cancel();
    cost.await.unwrap().unwrap();
    storage.stop().await;
    tenant_service.stop().await;
}
