//! A run that fails is rolled back: the steps that ran are undone newest first, and the storage
//! service holds nothing of the tenant's onboarding afterwards (no lifecycle rule, no alert
//! rule), nor the tenant service a key that works (the first key is revoked, its sealed
//! secret erased). The run fails for real: the cost service is down, and the budget step runs out of
//! attempts. Run again under its key, a step that succeeded has its effect once.

use std::time::Duration;

use mfg_common::config::PlatformAddrs;
use mfg_proto::{
    cost::v1::cost_service_client::CostServiceClient,
    provisioning::v1::{
        GetProvisioningRunRequest, OnboardingTemplate, ProvisioningRun,
        RollbackProvisioningRunRequest, RunState, StartProvisioningRequest, StepState,
        UpdateOnboardingTemplateRequest, provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
    storage::v1::{
        self as spb, alert_service_client::AlertServiceClient,
        telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use mfg_provisioning::{
    domain::run::{Offboarding, StepName},
    steps::{StepCall, Steps},
};
use mfg_tests::{Running, TEST_OPERATOR_TOKEN, operator_channel};
use tonic::Code;

/// A tenant's keys.
async fn keys(tenant_service: &Running, tenant: &str) -> Vec<tpb::ApiKey> {
    TenantServiceClient::new(operator_channel(tenant_service))
        .list_api_keys(tpb::ListApiKeysRequest {
            tenant_id: tenant.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .api_keys
}

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

/// Two alert rules for a new tenant of the shared plan.
fn template() -> UpdateOnboardingTemplateRequest {
    let rule = |metric: &str| spb::AlertRule {
        display_name: format!("{metric} silent"),
        metric: metric.to_owned(),
        severity: spb::Severity::Major.into(),
        condition: Some(spb::AlertCondition {
            kind: Some(spb::alert_condition::Kind::NoData(spb::NoDataCondition {
                duration: Some(pbjson_types::Duration {
                    seconds: 300,
                    nanos: 0,
                }),
            })),
        }),
        ..Default::default()
    };
    UpdateOnboardingTemplateRequest {
        template: Some(OnboardingTemplate {
            shared_alert_rules: vec![rule("temperature_c"), rule("vibration_mm_s")],
            ..Default::default()
        }),
        update_mask: None,
    }
}

/// The ids of a tenant's alert rules.
async fn rule_ids(
    alerts: &mut AlertServiceClient<mfg_common::grpc::TracedChannel>,
    tenant: &str,
) -> Vec<String> {
    let listed = alerts
        .list_alert_rules(spb::ListAlertRulesRequest {
            tenant_id: tenant.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    listed.rules.into_iter().map(|r| r.rule_id).collect()
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
    client.update_onboarding_template(template()).await.unwrap();
    let run = client
        .start_provisioning(StartProvisioningRequest {
            tenant_id: tenant.clone(),
            request_id: String::new(),
            ..Default::default()
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
    assert_eq!(failed.steps[1].state(), StepState::Succeeded, "{failed:?}");
    assert_eq!(failed.steps[2].state(), StepState::Succeeded, "{failed:?}");
    assert_eq!(failed.steps[3].state(), StepState::Succeeded, "{failed:?}");
    assert_eq!(failed.steps[4].state(), StepState::Failed, "{failed:?}");
    assert_eq!(failed.steps[4].attempts, 2, "{failed:?}");
    assert!(
        failed.steps[4]
            .error
            .contains("the cost service answered Unavailable"),
        "{failed:?}"
    );
    let rule = format!("tenant-{tenant}");
    let rules = || std::fs::read_to_string(archive.join(".lifecycle.json")).unwrap_or_default();
    assert!(
        rules().contains(&rule),
        "the archive step's lifecycle rule: {}",
        rules()
    );
    let first_key = keys(&tenant_service, &tenant).await;
    assert_eq!(first_key.len(), 1, "{first_key:?}");
    assert!(first_key[0].secret_claimable, "{first_key:?}");
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

    // The template's rules, each once, even when the step runs again under its key.
    let mut alerts = AlertServiceClient::new(operator_channel(&storage));
    let created = rule_ids(&mut alerts, &tenant).await;
    assert_eq!(created.len(), 2, "{created:?}");
    let steps = Steps::new(
        TenantServiceClient::new(operator_channel(&tenant_service)),
        TelemetryServiceClient::new(operator_channel(&storage)),
        alerts.clone(),
        CostServiceClient::new(operator_channel(&provisioning)),
    );
    let database = mfg_common::config::DatabaseArgs::new(url("provisioning.db"));
    let pool = mfg_common::db::connect(&database).await.unwrap();
    let store = mfg_provisioning::store::open(pool);
    let key = format!("{}/default_alert_rules", run.run_id);
    let call = StepCall {
        tenant: tenant.parse().unwrap(),
        key: &key,
        offboarding: Offboarding::default(),
        now: chrono::Utc::now(),
    };
    steps
        .run(StepName::DefaultAlertRules, &call, store.as_ref())
        .await
        .unwrap();
    let mut again = rule_ids(&mut alerts, &tenant).await;
    again.sort();
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(again, sorted, "run again, the step created nothing more");

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
    assert_eq!(
        rule_ids(&mut alerts, &tenant).await,
        Vec::<String>::new(),
        "the default alert rules are gone"
    );
    let revoked = keys(&tenant_service, &tenant).await;
    assert!(
        revoked[0].revoke_time.is_some() && !revoked[0].secret_claimable,
        "the first key is revoked, its sealed secret erased: {revoked:?}"
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
