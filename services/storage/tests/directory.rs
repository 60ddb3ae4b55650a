//! The storage service's directory against a real tenant service, on a clock moved by hand and
//! with the tenants' changes listed when the test says: a tenant's record and the answers about
//! its machines hold while listings say the tenant did not change, however old; a change to
//! the tenant or its machines is seen at the next listing; without a fresh record of the
//! tenant, an answer about a machine expires as before.

use std::{collections::HashMap, sync::Arc, time::Duration};

use mfg_common::{
    clock::ManualClock,
    grpc::{TracedChannel, lazy_channel},
    shutdown::CancellationToken,
    testing::{self, TestDatabase},
};
use mfg_proto::{
    service_names,
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use mfg_storage::directory::{Directory, MACHINE_TTL, TENANT_TTL, UNKNOWN_MACHINE_TTL};
use pbjson_types::FieldMask;
use tonic_health::ServingStatus;
use uuid::Uuid;

const OPERATOR: &str = "directory-test-operator-token";
const PEPPER: &str = "directory-test-pepper-0123456789";

/// A tenant service on SQLite, until the token is cancelled.
async fn tenant_service(
    db: &TestDatabase,
    shutdown: CancellationToken,
) -> TenantServiceClient<TracedChannel> {
    let (listener, addr) = testing::listener().await;
    let config = mfg_tenant::Config::new(db.url.clone(), PEPPER).with_admin_token(OPERATOR);
    tokio::spawn(mfg_tenant::run(config, listener, shutdown));
    mfg_common::grpc::wait_for_health(
        addr,
        service_names::TENANT,
        ServingStatus::Serving,
        Duration::from_secs(20),
    )
    .await
    .expect("the tenant service serves");
    let channel = lazy_channel(&format!("http://{addr}"))
        .unwrap()
        .with_bearer(OPERATOR)
        .unwrap();
    TenantServiceClient::new(channel)
}

/// Creates a tenant named `name`; returns its id.
async fn create_tenant(tenants: &mut TenantServiceClient<TracedChannel>, name: &str) -> String {
    let request = tpb::CreateTenantRequest {
        tenant: Some(tpb::Tenant {
            name: name.to_owned(),
            ..Default::default()
        }),
    };
    let created = tenants.create_tenant(request).await.unwrap().into_inner();
    created.tenant.unwrap().id
}

fn machine(id: &str, line: &str) -> tpb::Machine {
    tpb::Machine {
        machine_id: id.to_owned(),
        labels: HashMap::from([("line".to_owned(), line.to_owned())]),
        ..Default::default()
    }
}

/// The `line` label of a machine as the directory answers, `None` when it is not registered.
async fn line(directory: &Directory, tenant: Uuid) -> Option<String> {
    let labels = directory.machine(tenant, "press-1").await.unwrap()?;
    Some(labels["line"].clone())
}

#[tokio::test]
async fn machines_are_kept_while_their_tenants_revision_holds() {
    let db = TestDatabase::sqlite();
    let shutdown = CancellationToken::new();
    let mut tenants = tenant_service(&db, shutdown.clone()).await;
    let tenant_id = create_tenant(&mut tenants, "acme").await;
    let id: Uuid = tenant_id.parse().unwrap();
    let register = |line: &str| tpb::CreateMachineRequest {
        tenant_id: tenant_id.clone(),
        machine: Some(machine("press-1", line)),
    };
    tenants.create_machine(register("a")).await.unwrap();

    let clock = Arc::new(ManualClock::new());
    let directory = Directory::new(tenants.clone(), clock.clone());
    let lookups = || directory.machine_lookups().get();
    directory.refresh_tenants().await.unwrap();

    // Asked once; then answered from memory long past MACHINE_TTL, while listings say the
    // tenant's machines did not change.
    assert_eq!(line(&directory, id).await.as_deref(), Some("a"));
    assert_eq!(lookups(), 1);
    clock.advance(MACHINE_TTL * 6);
    directory.refresh_tenants().await.unwrap();
    assert_eq!(line(&directory, id).await.as_deref(), Some("a"));
    assert_eq!(lookups(), 1, "kept while the revision holds");

    // A change is seen at the next listing, however recently the machine was asked.
    tenants
        .update_machine(tpb::UpdateMachineRequest {
            tenant_id: tenant_id.clone(),
            machine_id: "press-1".to_owned(),
            machine: Some(machine("press-1", "b")),
            update_mask: Some(FieldMask {
                paths: vec!["labels".to_owned()],
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        line(&directory, id).await.as_deref(),
        Some("a"),
        "not listed yet"
    );
    directory.refresh_tenants().await.unwrap();
    assert_eq!(
        line(&directory, id).await.as_deref(),
        Some("b"),
        "relabelled"
    );
    assert_eq!(lookups(), 2);

    // So is a removal, and the machine then stays unknown without asking again.
    tenants
        .delete_machine(tpb::DeleteMachineRequest {
            tenant_id: tenant_id.clone(),
            machine_id: "press-1".to_owned(),
        })
        .await
        .unwrap();
    directory.refresh_tenants().await.unwrap();
    assert_eq!(line(&directory, id).await, None, "removed");
    clock.advance(UNKNOWN_MACHINE_TTL * 2);
    directory.refresh_tenants().await.unwrap();
    assert_eq!(line(&directory, id).await, None);
    assert_eq!(lookups(), 3, "an unknown machine is kept unknown too");

    // And a registration.
    tenants.create_machine(register("c")).await.unwrap();
    directory.refresh_tenants().await.unwrap();
    assert_eq!(
        line(&directory, id).await.as_deref(),
        Some("c"),
        "registered"
    );
    assert_eq!(lookups(), 4);

    // Without a fresh record of the tenant (no listing since), an answer holds for MACHINE_TTL
    // from when it was asked, as before.
    clock.advance(TENANT_TTL);
    assert_eq!(line(&directory, id).await.as_deref(), Some("c"));
    assert_eq!(lookups(), 4);
    clock.advance(MACHINE_TTL);
    assert_eq!(line(&directory, id).await.as_deref(), Some("c"));
    assert_eq!(lookups(), 5, "expired without a fresh record");
    shutdown.cancel();
}

#[tokio::test]
async fn a_change_to_a_tenant_is_seen_at_the_next_listing() {
    let db = TestDatabase::sqlite();
    let shutdown = CancellationToken::new();
    let mut tenants = tenant_service(&db, shutdown.clone()).await;
    let ids = [
        create_tenant(&mut tenants, "acme").await,
        create_tenant(&mut tenants, "globex").await,
    ];
    let clock = Arc::new(ManualClock::new());
    let directory = Directory::new(tenants.clone(), clock.clone());
    directory.refresh_tenants().await.unwrap();
    let rate = async |id: &str| {
        let info = directory.tenant(id.parse().unwrap()).await.unwrap();
        info.ingest_per_second
    };
    let before = rate(&ids[0]).await;

    // The records kept hold long past TENANT_TTL from when they were first listed, for as long
    // as listings say nothing changed; a change is seen at the next listing.
    clock.advance(TENANT_TTL * 30);
    directory.refresh_tenants().await.unwrap();
    tenants
        .update_tenant(tpb::UpdateTenantRequest {
            tenant_id: ids[0].clone(),
            tenant: Some(tpb::Tenant {
                limits: Some(tpb::Limits {
                    ingest_readings_per_second: 1_234,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["limits.ingest_readings_per_second".to_owned()],
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        rate(&ids[0]).await,
        before,
        "not listed yet, and not asked alone"
    );
    directory.refresh_tenants().await.unwrap();
    assert_eq!(rate(&ids[0]).await, 1_234);
    clock.advance(TENANT_TTL / 2);
    directory.refresh_tenants().await.unwrap();
    assert_eq!(rate(&ids[0]).await, 1_234);
    assert_ne!(rate(&ids[1]).await, 0, "the other tenant, listed once");
    shutdown.cancel();
}
