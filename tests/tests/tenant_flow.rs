//! End to end on PostgreSQL: create a tenant, a key and a machine; revoke the key; delete the
//! tenant; its other keys stop working.

use mfg_common::testing::TestDatabase;
use mfg_proto::tenant::v1::{self as pb, tenant_service_client::TenantServiceClient};
use mfg_tests::start_tenant;
use tonic::Code;

#[tokio::test]
async fn tenant_key_machine_revoke_delete_on_postgres() {
    let db = TestDatabase::postgres().await;
    let service = start_tenant(&db.url).await;
    let mut client = TenantServiceClient::new(mfg_tests::operator_channel(&service));

    let tenant = client
        .create_tenant(pb::CreateTenantRequest {
            tenant: Some(pb::Tenant {
                name: "acme-stamping".to_owned(),
                display_name: "ACME Stamping".to_owned(),
                plan: pb::Plan::Dedicated.into(),
                monthly_budget_usd: 2_900.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(
        tenant.limits.unwrap().max_machines,
        1_000,
        "dedicated defaults"
    );

    let key = |scope: pb::Scope| pb::CreateApiKeyRequest {
        tenant_id: tenant.id.clone(),
        display_name: format!("{scope:?} key"),
        scopes: vec![scope.into()],
    };
    let writer = client
        .create_api_key(key(pb::Scope::Write))
        .await
        .unwrap()
        .into_inner();
    let reader = client
        .create_api_key(key(pb::Scope::Read))
        .await
        .unwrap()
        .into_inner();

    let machine = client
        .create_machine(pb::CreateMachineRequest {
            tenant_id: tenant.id.clone(),
            machine: Some(pb::Machine {
                machine_id: "press-7".to_owned(),
                display_name: "Press 7".to_owned(),
                labels: [("line".to_owned(), "a".to_owned())].into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .machine
        .unwrap();
    assert_eq!(machine.tenant_id, tenant.id);

    let who = client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: writer.secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (who.tenant_id.as_str(), who.plan()),
        (tenant.id.as_str(), pb::Plan::Dedicated)
    );

    client
        .revoke_api_key(pb::RevokeApiKeyRequest {
            tenant_id: tenant.id.clone(),
            key_id: writer.api_key.unwrap().key_id,
        })
        .await
        .unwrap();
    let revoked = client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: writer.secret,
        })
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated);
    client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: reader.secret.clone(),
        })
        .await
        .expect("the other key still works");

    client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: tenant.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted = client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: reader.secret,
        })
        .await
        .unwrap_err();
    assert_eq!(deleted.code(), Code::Unauthenticated);
    let still_there = client
        .get_machine(pb::GetMachineRequest {
            tenant_id: tenant.id.clone(),
            machine_id: "press-7".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .machine
        .unwrap();
    assert_eq!(
        still_there, machine,
        "a soft delete keeps the registry readable"
    );

    service.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart_of_the_service() {
    let db = TestDatabase::postgres().await;
    let service = start_tenant(&db.url).await;
    let created = TenantServiceClient::new(mfg_tests::operator_channel(&service))
        .create_tenant(pb::CreateTenantRequest {
            tenant: Some(pb::Tenant {
                name: "durable".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    service.stop().await;

    let restarted = start_tenant(&db.url).await;
    let read = TenantServiceClient::new(mfg_tests::operator_channel(&restarted))
        .get_tenant(pb::GetTenantRequest {
            tenant_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(read, created);
    restarted.stop().await;
}
