//! The hand-off of a new tenant to the provisioning service is durable: a tenant created while
//! the provisioning service is down stays provisioning, its readings refused with a clear
//! reason, and it is onboarded once the service comes up, with no call from anyone.

use std::time::Duration;

use mfg_common::config::PlatformAddrs;
use mfg_proto::{
    common::v1::Reading,
    service_names,
    storage::v1::{IngestBatchRequest, telemetry_service_client::TelemetryServiceClient},
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use mfg_tests::{Running, TEST_OPERATOR_TOKEN, TEST_PEPPER, operator_channel};
use tonic::Code;

/// An address nothing listens on yet (a port the system just gave and took back).
async fn free_addr() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn ingest(
    storage: &Running,
    key: &str,
    tenant: &str,
) -> Result<tonic::Response<mfg_proto::storage::v1::IngestBatchResponse>, tonic::Status> {
    let now = chrono::Utc::now();
    TelemetryServiceClient::new(storage.channel_with(key))
        .ingest_batch(IngestBatchRequest {
            tenant_id: tenant.to_owned(),
            readings: vec![Reading {
                machine_id: "press-1".to_owned(),
                metric: "temp".to_owned(),
                ts: Some(pbjson_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: 0,
                }),
                value: 21.5,
            }],
        })
        .await
}

#[tokio::test]
async fn a_tenant_created_while_provisioning_is_down_is_onboarded_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let provisioning_addr = free_addr().await;

    let mut config = mfg_tenant::Config::new(url("tenant.db"), TEST_PEPPER)
        .with_admin_token(TEST_OPERATOR_TOKEN);
    config.onboarding = mfg_tenant::config::OnboardingArgs::ON;
    config.addrs.provisioning = provisioning_addr.to_string();
    let tenant_service =
        Running::start(service_names::TENANT, |l, s| mfg_tenant::run(config, l, s)).await;
    let storage = mfg_tests::start_storage(&url("storage.db"), tenant_service.addr).await;
    let cost_config = mfg_cost::Config::new(url("cost.db"), tenant_service.addr.to_string())
        .with_admin_token(TEST_OPERATOR_TOKEN);
    let cost = Running::start(service_names::COST, |l, s| mfg_cost::run(cost_config, l, s)).await;

    let mut tenants = TenantServiceClient::new(operator_channel(&tenant_service));
    let created = tenants
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
        .unwrap();
    assert_eq!(created.state(), tpb::TenantState::Provisioning);
    tenants
        .create_machine(tpb::CreateMachineRequest {
            tenant_id: created.id.clone(),
            machine: Some(tpb::Machine {
                machine_id: "press-1".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let key = tenants
        .create_api_key(tpb::CreateApiKeyRequest {
            tenant_id: created.id.clone(),
            display_name: String::new(),
            scopes: vec![tpb::Scope::Write.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .secret;

    let refused = ingest(&storage, &key, &created.id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("not onboarded yet"),
        "{refused:?}"
    );

    // Nothing takes the tenant while the provisioning service is down: the relay retries.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let get = tpb::GetTenantRequest {
        tenant_id: created.id.clone(),
    };
    let waiting = tenants.get_tenant(get.clone()).await.unwrap().into_inner();
    assert_eq!(
        waiting.tenant.unwrap().state(),
        tpb::TenantState::Provisioning
    );

    // The provisioning service comes up where the tenant service expects it.
    let listener = tokio::net::TcpListener::bind(provisioning_addr)
        .await
        .unwrap();
    let addrs = PlatformAddrs {
        tenant: tenant_service.addr.to_string(),
        storage: storage.addr.to_string(),
        cost: cost.addr.to_string(),
        ..PlatformAddrs::default()
    };
    let provisioning_config = mfg_provisioning::Config::new(url("provisioning.db"), addrs)
        .with_admin_token(TEST_OPERATOR_TOKEN);
    let shutdown = mfg_common::shutdown::CancellationToken::new();
    let provisioning = tokio::spawn(mfg_provisioning::run(
        provisioning_config,
        listener,
        shutdown.clone(),
    ));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let onboarded = loop {
        let tenant = tenants.get_tenant(get.clone()).await.unwrap().into_inner();
        let tenant = tenant.tenant.unwrap();
        if tenant.state() == tpb::TenantState::Active {
            break tenant;
        }
        assert_ne!(
            tenant.state(),
            tpb::TenantState::ProvisioningFailed,
            "{tenant:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "not onboarded: {tenant:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!onboarded.provisioning_run_id.is_empty(), "{onboarded:?}");
    let accepted = ingest(&storage, &key, &created.id)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.accepted, 1, "{accepted:?}");

    shutdown.cancel();
    provisioning.await.unwrap().unwrap();
    for service in [cost, storage, tenant_service] {
        service.stop().await;
    }
}
