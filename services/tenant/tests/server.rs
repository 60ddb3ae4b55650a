//! The server around the tenant service: health until the database is ready, reflection,
//! and the same credentials as gRPC metadata.

mod support;

use std::time::Duration;

use mfg_common::{shutdown::CancellationToken, testing};
use mfg_proto::{
    service_names,
    tenant::v1::{self as pb, tenant_service_client::TenantServiceClient},
};
use tonic::{Code, transport::Channel};
use tonic_health::ServingStatus;

use support::*;

#[tokio::test]
async fn health_is_not_serving_until_the_database_is_ready() {
    let (listener, addr) = testing::listener().await;
    let shutdown = CancellationToken::new();
    // Nothing listens on port 1: the database never becomes reachable.
    let config = mfg_tenant::Config::new("postgres://postgres@127.0.0.1:1/none", PEPPER)
        .with_admin_token(OPERATOR);
    let task = tokio::spawn(mfg_tenant::run(config, listener, shutdown.clone()));
    mfg_common::grpc::wait_for_health(
        addr,
        service_names::TENANT,
        ServingStatus::NotServing,
        Duration::from_secs(10),
    )
    .await
    .expect("not serving while the database is unreachable");
    mfg_common::grpc::wait_for_health(addr, "", ServingStatus::NotServing, Duration::from_secs(1))
        .await
        .unwrap();
    let refused = client(addr, OPERATOR)
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services_of_the_process() {
    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let service = Service::sqlite().await;
    let channel = Channel::from_shared(format!("http://{}", service.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    let expected = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "mfg.tenant.v1.TenantService",
    ];
    assert_eq!(names, expected);

    // The same over v1alpha, which grpcio's Python client and older tools speak.
    use tonic_reflection::pb::v1alpha as alpha;
    let request = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list over v1alpha");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, expected);
    service.stop().await;
}

#[tokio::test]
async fn the_same_credentials_work_as_grpc_metadata() {
    let mut service = Service::sqlite().await;
    let acme = create_tenant(&mut service.client, "acme").await;
    let other = create_tenant(&mut service.client, "other").await;
    let key = |tenant: &pb::Tenant, scope: pb::Scope| pb::CreateApiKeyRequest {
        tenant_id: tenant.id.clone(),
        display_name: String::new(),
        scopes: vec![scope.into()],
    };
    let reader = service
        .client
        .create_api_key(key(&acme, pb::Scope::Read))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let admin = service
        .client
        .create_api_key(key(&acme, pb::Scope::Admin))
        .await
        .unwrap()
        .into_inner()
        .secret;

    let mut as_reader = client(service.addr, &reader);
    let own = as_reader
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(own.into_inner().tenant.unwrap().id, acme.id);
    let theirs = as_reader
        .get_tenant(pb::GetTenantRequest {
            tenant_id: other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        theirs.code(),
        Code::NotFound,
        "another tenant does not exist for this key"
    );
    let machine = pb::CreateMachineRequest {
        tenant_id: acme.id.clone(),
        machine: Some(pb::Machine {
            machine_id: "press-1".to_owned(),
            ..Default::default()
        }),
    };
    let denied = as_reader.create_machine(machine.clone()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let listing = as_reader
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        listing.code(),
        Code::PermissionDenied,
        "tenant management is the operator's"
    );
    let internal = as_reader
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: admin.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        internal.code(),
        Code::PermissionDenied,
        "AuthenticateKey is for services"
    );
    let changes = as_reader
        .list_tenant_changes(pb::ListTenantChangesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        changes.code(),
        Code::PermissionDenied,
        "ListTenantChanges is for services"
    );

    let mut as_admin = client(service.addr, &admin);
    as_admin
        .create_machine(machine)
        .await
        .expect("admin manages machines");
    let cross = as_admin
        .create_machine(pb::CreateMachineRequest {
            tenant_id: other.id.clone(),
            machine: Some(pb::Machine {
                machine_id: "press-1".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(cross.code(), Code::NotFound);

    let channel = Channel::from_shared(format!("http://{}", service.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let anonymous = TenantServiceClient::new(channel.clone())
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let forged = client(service.addr, "mfg_forged")
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);
    mfg_common::grpc::wait_for_health(
        service.addr,
        service_names::TENANT,
        ServingStatus::Serving,
        Duration::from_secs(1),
    )
    .await
    .expect("health checks need no credentials");
    service.stop().await;
}
