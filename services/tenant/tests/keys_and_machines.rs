//! API keys and machines through a real tonic client: authentication until revocation, a
//! deleted tenant's keys, and the machine registry within its limit.

mod support;

use mfg_proto::tenant::v1::{self as pb};
use tonic::Code;

use support::*;

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
            ..Default::default()
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
