//! A run that fails is rolled back: the steps that ran are undone newest first, and the storage
//! service holds nothing of the tenant's onboarding afterwards. The run fails for real: the
//! cost service is down, and the budget step runs out of attempts.

use std::time::Duration;

use mfg_common::config::PlatformAddrs;
use mfg_proto::{
    provisioning::v1::{
        GetProvisioningRunRequest, ProvisioningRun, RollbackProvisioningRunRequest, RunState,
        StartProvisioningRequest, StepState,
        provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use mfg_tests::{Running, TEST_OPERATOR_TOKEN, operator_channel};
use tonic::Code;

/// Reads the run until it is in `state`, for at most 20 s.
async fn wait_for(
    client: &mut ProvisioningServiceClient<mfg_common::grpc::TracedChannel>,
    request: &GetProvisioningRunRequest,
    state: RunState,
) -> ProvisioningRun {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let run = client
            .get_provisioning_run(request.clone())
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap();
        if run.state() == state {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {state:?}: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_run_is_rolled_back_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let archive = dir.path().join("archive");
    let tenant_service = mfg_tests::start_tenant(&url("tenant.db")).await;
    let storage_config =
        mfg_storage::Config::new(url("storage.db"), tenant_service.addr.to_string())
            .with_admin_token(TEST_OPERATOR_TOKEN)
            .with_archive_dir(&archive);
    let storage = Running::start(service_names::TELEMETRY, |l, s| {
        mfg_storage::run(storage_config, l, s)
    })
    .await;
    // Nothing listens at the cost service's address.
    let cost = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cost_addr = cost.local_addr().unwrap();
    drop(cost);
    let mut config = mfg_provisioning::Config::new(
        url("provisioning.db"),
        PlatformAddrs {
            tenant: tenant_service.addr.to_string(),
            storage: storage.addr.to_string(),
            cost: cost_addr.to_string(),
            ..PlatformAddrs::default()
        },
    )
    .with_admin_token(TEST_OPERATOR_TOKEN);
    config.runs.step_attempts = 2;
    let provisioning = Running::start(service_names::PROVISIONING, |l, s| {
        mfg_provisioning::run(config, l, s)
    })
    .await;

    let tenant = mfg_tests::create_tenant(
        &mut TenantServiceClient::new(operator_channel(&tenant_service)),
        "acme",
    )
    .await;
    let mut client = ProvisioningServiceClient::new(operator_channel(&provisioning));
    let run = client
        .start_provisioning(StartProvisioningRequest {
            tenant_id: tenant.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let get = GetProvisioningRunRequest {
        tenant_id: tenant.clone(),
        run_id: run.run_id.clone(),
    };
    let failed = wait_for(&mut client, &get, RunState::Failed).await;
    assert_eq!(failed.steps[0].state(), StepState::Succeeded, "{failed:?}");
    assert_eq!(failed.steps[1].state(), StepState::Failed, "{failed:?}");
    assert_eq!(failed.steps[1].attempts, 2, "{failed:?}");
    assert!(
        failed.steps[1]
            .error
            .contains("the cost service answered Unavailable"),
        "{failed:?}"
    );
    let rule = format!("tenant-{tenant}");
    let rules = || std::fs::read_to_string(archive.join(".lifecycle.json")).unwrap_or_default();
    assert!(
        rules().contains(&rule),
        "the first step's lifecycle rule: {}",
        rules()
    );
    let onboarding = TenantServiceClient::new(operator_channel(&tenant_service))
        .get_tenant(tpb::GetTenantRequest {
            tenant_id: tenant.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(
        onboarding.provisioning_run_id, run.run_id,
        "the failure was reported"
    );

    let rollback = RollbackProvisioningRunRequest {
        tenant_id: tenant.clone(),
        run_id: run.run_id.clone(),
    };
    let rolling = client
        .rollback_provisioning_run(rollback.clone())
        .await
        .unwrap();
    assert_eq!(
        rolling.into_inner().run.unwrap().state(),
        RunState::RollingBack
    );
    let rolled_back = wait_for(&mut client, &get, RunState::RolledBack).await;
    for step in &rolled_back.steps {
        assert_eq!(step.state(), StepState::RolledBack, "{rolled_back:?}");
    }
    assert!(
        !rules().contains(&rule),
        "the lifecycle rule is gone: {}",
        rules()
    );
    let again = client
        .rollback_provisioning_run(rollback)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    for service in [provisioning, storage, tenant_service] {
        service.stop().await;
    }
}
