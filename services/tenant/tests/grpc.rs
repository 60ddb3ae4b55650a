//! The tenant service through a real tonic client on a port-0 listener: behaviour, validation
//! and error codes, health and reflection.

use std::time::Duration;

use mfg_common::{
    grpc::{TracedChannel, lazy_channel},
    shutdown::CancellationToken,
    testing,
};
use mfg_proto::{
    common::v1::Retention,
    service_names,
    tenant::v1::{self as pb, tenant_service_client::TenantServiceClient},
};
use pbjson_types::FieldMask;
use tokio::task::JoinHandle;
use tonic::{Code, Status, transport::Channel};
use tonic_health::ServingStatus;
use tonic_types::StatusExt as _;

const PEPPER: &str = "test-pepper-0123456789";
const OPERATOR: &str = "operator-token-for-tests";

/// A client of the tenant service carrying a bearer token.
fn client(addr: std::net::SocketAddr, token: &str) -> TenantServiceClient<TracedChannel> {
    TenantServiceClient::new(
        lazy_channel(&format!("http://{addr}"))
            .unwrap()
            .with_bearer(token)
            .unwrap(),
    )
}

struct Service {
    client: TenantServiceClient<TracedChannel>,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _db: testing::TestDatabase,
}

impl Service {
    async fn start(db: testing::TestDatabase) -> Self {
        let (listener, addr) = testing::listener().await;
        let shutdown = CancellationToken::new();
        let config = mfg_tenant::Config::new(&db.url, PEPPER).with_admin_token(OPERATOR);
        let task = tokio::spawn(mfg_tenant::run(config, listener, shutdown.clone()));
        testing::wait_for_health(
            addr,
            service_names::TENANT,
            ServingStatus::Serving,
            Duration::from_secs(30),
        )
        .await
        .expect("tenant service ready");
        Self {
            client: client(addr, OPERATOR),
            addr,
            shutdown,
            task,
            _db: db,
        }
    }

    async fn sqlite() -> Self {
        Self::start(testing::TestDatabase::sqlite()).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn new_tenant(name: &str) -> pb::CreateTenantRequest {
    pb::CreateTenantRequest {
        tenant: Some(pb::Tenant {
            name: name.to_owned(),
            ..Default::default()
        }),
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn create_tenant(client: &mut TenantServiceClient<TracedChannel>, name: &str) -> pb::Tenant {
    client
        .create_tenant(new_tenant(name))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap()
}

#[tokio::test]
async fn tenants_have_defaults_and_a_full_lifecycle() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;

    let acme = create_tenant(client, "acme").await;
    assert_eq!(acme.display_name, "acme");
    assert_eq!(acme.plan(), pb::Plan::Shared);
    assert_eq!(acme.state(), pb::TenantState::Active);
    assert_eq!(
        acme.retention,
        Some(Retention {
            hot_days: 30,
            warm_days: 365,
            cold_days: 2555
        })
    );
    assert_eq!(acme.limits.unwrap().max_machines, 100);
    assert!(acme.create_time.is_some() && acme.delete_time.is_none());

    let got = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(got, acme);

    let updated = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant {
                display_name: "ACME Stamping".to_owned(),
                plan: pb::Plan::Dedicated.into(),
                name: "ignored-because-not-in-mask".to_owned(),
                limits: Some(pb::Limits {
                    max_machines: 3,
                    ..Default::default()
                }),
                retention: Some(Retention {
                    hot_days: 7,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&[
                "display_name",
                "plan",
                "limits.max_machines",
                "retention.hot_days",
            ]),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(updated.display_name, "ACME Stamping");
    assert_eq!(updated.name, "acme");
    assert_eq!(updated.plan(), pb::Plan::Dedicated);
    assert_eq!(updated.limits.unwrap().max_machines, 3);
    assert_eq!(
        updated.limits.unwrap().ingest_readings_per_second,
        5_000,
        "untouched"
    );
    assert_eq!(updated.retention.unwrap().hot_days, 7);
    assert_eq!(updated.retention.unwrap().warm_days, 365);

    let deleted = client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(deleted.state(), pb::TenantState::Deleted);
    assert!(deleted.delete_time.is_some());

    let listed = client
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.tenants.is_empty(),
        "deleted tenants are hidden by default"
    );
    let listed = client
        .list_tenants(pb::ListTenantsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tenants.len(), 1);

    let update_deleted = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant::default()),
            update_mask: mask(&["labels"]),
        })
        .await
        .unwrap_err();
    assert_eq!(update_deleted.code(), Code::FailedPrecondition);
    service.stop().await;
}

#[tokio::test]
async fn names_are_unique_forever() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let acme = create_tenant(client, "acme").await;
    let again = client.create_tenant(new_tenant("acme")).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains("acme"), "{}", again.message());
    client
        .delete_tenant(pb::DeleteTenantRequest { tenant_id: acme.id })
        .await
        .unwrap();
    let after_delete = client.create_tenant(new_tenant("acme")).await.unwrap_err();
    assert_eq!(after_delete.code(), Code::AlreadyExists);
    service.stop().await;
}

#[tokio::test]
async fn listing_pages_through_every_tenant_once() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create_tenant(client, &format!("plant-{i}")).await.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tenants(pb::ListTenantsRequest {
                page_size: 3,
                page_token: token.clone(),
                show_deleted: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.tenants.len() <= 3);
        seen.extend(page.tenants.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, created);
    service.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;

    let missing = client
        .create_tenant(pb::CreateTenantRequest { tenant: None })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&missing), ["tenant"]);

    let bad_name = client
        .create_tenant(new_tenant("Not A Slug"))
        .await
        .unwrap_err();
    assert_eq!(bad_name.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad_name), ["tenant.name"]);

    let mut several = new_tenant("acme");
    let tenant = several.tenant.as_mut().unwrap();
    tenant.labels.insert("Bad Key".to_owned(), "x".to_owned());
    tenant.monthly_budget_usd = f64::NAN;
    tenant.retention = Some(Retention {
        hot_days: 90,
        warm_days: 0,
        cold_days: 30,
    });
    let several = client.create_tenant(several).await.unwrap_err();
    assert_eq!(
        violated_fields(&several),
        [
            "tenant.labels",
            "tenant.retention.cold_days",
            "tenant.monthly_budget_usd"
        ]
    );

    let listed = client
        .list_tenants(pb::ListTenantsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tenants.is_empty(), "failed requests wrote nothing");

    let bad_id = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: "acme".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (bad_id.code(), violated_fields(&bad_id)),
        (Code::InvalidArgument, vec!["tenant_id".to_owned()])
    );
    let unknown = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let acme = create_tenant(client, "acme").await;
    let no_mask = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant::default()),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_mask), ["update_mask"]);
    let immutable = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant::default()),
            update_mask: mask(&["name", "color"]),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&immutable), ["update_mask", "update_mask"]);
    let to_deleted = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant {
                state: pb::TenantState::Deleted.into(),
                ..Default::default()
            }),
            update_mask: mask(&["state"]),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&to_deleted), ["tenant.state"]);
    let zero_limit = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant {
                retention: Some(Retention {
                    hot_days: 99_999,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["retention.hot_days"]),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&zero_limit),
        ["tenant.retention.hot_days", "tenant.retention.cold_days"]
    );
    let unchanged = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unchanged.tenant.unwrap(),
        acme,
        "failed updates wrote nothing"
    );

    let negative = client
        .list_tenants(pb::ListTenantsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&negative), ["page_size"]);
    let forged = client
        .list_tenants(pb::ListTenantsRequest {
            page_token: "bm9wZQ".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&forged), ["page_token"]);
    service.stop().await;
}

#[tokio::test]
async fn api_keys_authenticate_until_revoked() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let acme = create_tenant(client, "acme").await;

    let no_scope = client
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: acme.id.clone(),
            display_name: "x".to_owned(),
            scopes: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_scope), ["scopes"]);
    let bad_scope = client
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: acme.id.clone(),
            display_name: String::new(),
            scopes: vec![1, 9],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_scope), ["scopes[1]"]);

    let created = client
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: acme.id.clone(),
            display_name: "line collector".to_owned(),
            scopes: vec![pb::Scope::Write.into()],
        })
        .await
        .unwrap()
        .into_inner();
    let key = created.api_key.unwrap();
    assert!(
        created.secret.starts_with(&format!("mfg_{}_", key.key_id)),
        "{}",
        created.secret
    );
    assert!(created.secret.len() >= 4 + 32 + 1 + 43);

    let who = client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: created.secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.tenant_id, acme.id);
    assert_eq!(who.key_id, key.key_id);
    assert_eq!(who.scopes, [pb::Scope::Write as i32]);
    assert_eq!(who.tenant_state(), pb::TenantState::Active);
    assert_eq!(who.limits.unwrap().ingest_readings_per_second, 5_000);

    let mut tampered = created.secret.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "", "mfg_nope", "Bearer abc"] {
        let refused = client
            .authenticate_key(pb::AuthenticateKeyRequest {
                secret: bad.to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{bad}");
    }

    let listed = client
        .list_api_keys(pb::ListApiKeysRequest {
            tenant_id: acme.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.api_keys, std::slice::from_ref(&key));

    let revoked = client
        .revoke_api_key(pb::RevokeApiKeyRequest {
            tenant_id: acme.id.clone(),
            key_id: key.key_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoke_time.is_some());
    let refused = client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: created.secret.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );

    let other = create_tenant(client, "other").await;
    let cross = client
        .revoke_api_key(pb::RevokeApiKeyRequest {
            tenant_id: other.id,
            key_id: key.key_id,
        })
        .await
        .unwrap_err();
    assert_eq!(
        cross.code(),
        Code::NotFound,
        "a key is addressed only through its tenant"
    );
    service.stop().await;
}

#[tokio::test]
async fn deleting_a_tenant_stops_its_keys_and_freezes_its_registry() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let acme = create_tenant(client, "acme").await;
    let secret = client
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: acme.id.clone(),
            display_name: String::new(),
            scopes: vec![pb::Scope::Admin.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap();

    let refused = client
        .authenticate_key(pb::AuthenticateKeyRequest { secret })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let machine = client
        .create_machine(pb::CreateMachineRequest {
            tenant_id: acme.id.clone(),
            machine: Some(pb::Machine {
                machine_id: "press-1".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(machine.code(), Code::FailedPrecondition);
    let key = client
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: acme.id,
            display_name: String::new(),
            scopes: vec![1],
        })
        .await
        .unwrap_err();
    assert_eq!(key.code(), Code::FailedPrecondition);
    service.stop().await;
}

#[tokio::test]
async fn machines_are_registered_within_the_limit() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let mut request = new_tenant("acme");
    request.tenant.as_mut().unwrap().limits = Some(pb::Limits {
        max_machines: 2,
        ..Default::default()
    });
    let acme = client
        .create_tenant(request)
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();

    let register = |id: &str| pb::CreateMachineRequest {
        tenant_id: acme.id.clone(),
        machine: Some(pb::Machine {
            machine_id: id.to_owned(),
            labels: [("line".to_owned(), "a".to_owned())].into(),
            ..Default::default()
        }),
    };
    let press = client
        .create_machine(register("press-7"))
        .await
        .unwrap()
        .into_inner()
        .machine
        .unwrap();
    assert_eq!(press.display_name, "press-7");
    assert_eq!(press.tenant_id, acme.id);
    let duplicate = client
        .create_machine(register("press-7"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let bad = client
        .create_machine(register("press 7"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["machine.machine_id"]);
    client.create_machine(register("cnc-1")).await.unwrap();
    let over = client.create_machine(register("cnc-2")).await.unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert!(
        over.message().contains("limit of 2 machines"),
        "{}",
        over.message()
    );

    let updated = client
        .update_machine(pb::UpdateMachineRequest {
            tenant_id: acme.id.clone(),
            machine_id: "press-7".to_owned(),
            machine: Some(pb::Machine {
                display_name: "Press 7".to_owned(),
                ..Default::default()
            }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner()
        .machine
        .unwrap();
    assert_eq!(updated.display_name, "Press 7");
    assert_eq!(
        updated.labels.get("line").map(String::as_str),
        Some("a"),
        "labels untouched"
    );

    let listed = client
        .list_machines(pb::ListMachinesRequest {
            tenant_id: acme.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .machines
            .iter()
            .map(|m| m.machine_id.as_str())
            .collect::<Vec<_>>(),
        ["cnc-1", "press-7"]
    );

    client
        .delete_machine(pb::DeleteMachineRequest {
            tenant_id: acme.id.clone(),
            machine_id: "press-7".to_owned(),
        })
        .await
        .unwrap();
    let gone = client
        .get_machine(pb::GetMachineRequest {
            tenant_id: acme.id.clone(),
            machine_id: "press-7".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    client
        .create_machine(register("cnc-2"))
        .await
        .expect("room again after a delete");
    service.stop().await;
}

#[tokio::test]
async fn health_is_not_serving_until_the_database_is_ready() {
    let (listener, addr) = testing::listener().await;
    let shutdown = CancellationToken::new();
    // Nothing listens on port 1: the database never becomes reachable.
    let config = mfg_tenant::Config::new("postgres://postgres@127.0.0.1:1/none", PEPPER)
        .with_admin_token(OPERATOR);
    let task = tokio::spawn(mfg_tenant::run(config, listener, shutdown.clone()));
    testing::wait_for_health(
        addr,
        service_names::TENANT,
        ServingStatus::NotServing,
        Duration::from_secs(10),
    )
    .await
    .expect("not serving while the database is unreachable");
    testing::wait_for_health(addr, "", ServingStatus::NotServing, Duration::from_secs(1))
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
    let mut responses = ServerReflectionClient::new(channel)
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
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "mfg.tenant.v1.TenantService"
        ]
    );
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
    testing::wait_for_health(
        service.addr,
        service_names::TENANT,
        ServingStatus::Serving,
        Duration::from_secs(1),
    )
    .await
    .expect("health checks need no credentials");
    service.stop().await;
}
