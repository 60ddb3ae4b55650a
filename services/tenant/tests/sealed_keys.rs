//! A key made to be claimed, through a real tonic client: created under the caller's id once
//! however often it is asked for, its secret shown to nobody until the operator claims it,
//! once; the claimed secret authenticates. A tenant's own admin key cannot claim it, and a
//! revoked key has nothing left to claim.

mod support;

use mfg_proto::tenant::v1::{self as pb};
use tonic::Code;

use support::*;

fn sealed(tenant: &str, key_id: &str) -> pb::CreateSealedApiKeyRequest {
    pb::CreateSealedApiKeyRequest {
        tenant_id: tenant.to_owned(),
        key_id: key_id.to_owned(),
        display_name: "first admin key".to_owned(),
        scopes: vec![pb::Scope::Admin.into()],
    }
}

fn claim(tenant: &str, key_id: &str) -> pb::ClaimApiKeySecretRequest {
    pb::ClaimApiKeySecretRequest {
        tenant_id: tenant.to_owned(),
        key_id: key_id.to_owned(),
    }
}

#[tokio::test]
async fn a_sealed_key_is_made_once_and_its_secret_claimed_once() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let acme = create_tenant(client, "acme").await;
    let key_id = uuid::Uuid::new_v4().simple().to_string();

    let bad = client
        .create_sealed_api_key(sealed(&acme.id, "not-a-key-id"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["key_id"]);
    let created = client
        .create_sealed_api_key(sealed(&acme.id, &key_id))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(created.secret_claimable, "{created:?}");
    let again = client
        .create_sealed_api_key(sealed(&acme.id, &key_id))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert_eq!(again, created, "asked again, the same key");
    let other = create_tenant(client, "other").await;
    let taken = client
        .create_sealed_api_key(sealed(&other.id, &key_id))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");

    // A tenant admin's key cannot claim it: only the operator.
    let admin = client
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: acme.id.clone(),
            display_name: "admin".to_owned(),
            scopes: vec![pb::Scope::Admin.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    let refused = support::client(service.addr, &admin)
        .claim_api_key_secret(claim(&acme.id, &key_id))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let claimed = client
        .claim_api_key_secret(claim(&acme.id, &key_id))
        .await
        .unwrap()
        .into_inner();
    assert!(
        claimed.secret.starts_with(&format!("mfg_{key_id}_")),
        "{}",
        claimed.secret
    );
    assert!(!claimed.api_key.unwrap().secret_claimable);
    let who = client
        .authenticate_key(pb::AuthenticateKeyRequest {
            secret: claimed.secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (who.tenant_id, who.key_id),
        (acme.id.clone(), key_id.clone())
    );
    let twice = client
        .claim_api_key_secret(claim(&acme.id, &key_id))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");

    // Revoked before its claim, a key has nothing left to claim.
    let revoked_id = uuid::Uuid::new_v4().simple().to_string();
    client
        .create_sealed_api_key(sealed(&acme.id, &revoked_id))
        .await
        .unwrap();
    client
        .revoke_api_key(pb::RevokeApiKeyRequest {
            tenant_id: acme.id.clone(),
            key_id: revoked_id.clone(),
        })
        .await
        .unwrap();
    let gone = client
        .claim_api_key_secret(claim(&acme.id, &revoked_id))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition, "{gone:?}");
    let missing = uuid::Uuid::new_v4().simple().to_string();
    let unknown = client
        .claim_api_key_secret(claim(&acme.id, &missing))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    service.stop().await;
}
