//! The API-key cache of `mfg-common` in front of the real tenant service: repeat calls are
//! answered without a round trip, and a revoked key, or a key of a deleted tenant, is refused
//! once the cache's time to live (at most one second) has passed. The clock is manual.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mfg_common::{
    auth::{AuthError, KeyCache, KeyResolver, MAX_TTL, Principal, Scope},
    clock::ManualClock,
    grpc::{TracedChannel, lazy_channel},
    shutdown::CancellationToken,
    testing,
};
use mfg_proto::{
    service_names,
    tenant::v1::{self as pb, tenant_service_client::TenantServiceClient},
};
use tonic_health::ServingStatus;

/// Counts the round trips to the tenant service.
#[derive(Clone)]
struct Counting {
    client: TenantServiceClient<TracedChannel>,
    calls: Arc<AtomicUsize>,
}

impl KeyResolver for Counting {
    async fn resolve(&self, secret: &str) -> Result<Principal, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.client.resolve(secret).await
    }
}

struct Fixture {
    admin: TenantServiceClient<TracedChannel>,
    cache: KeyCache<Counting>,
    calls: Arc<AtomicUsize>,
    clock: ManualClock,
    shutdown: CancellationToken,
    _db: testing::TestDatabase,
}

async fn fixture() -> Fixture {
    let db = testing::TestDatabase::sqlite();
    let (listener, addr) = testing::listener().await;
    let shutdown = CancellationToken::new();
    tokio::spawn(mfg_tenant::run(
        mfg_tenant::Config::new(&db.url, "test-pepper-0123456789")
            .with_admin_token("operator-token-for-tests"),
        listener,
        shutdown.clone(),
    ));
    mfg_common::grpc::wait_for_health(
        addr,
        service_names::TENANT,
        ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let channel = lazy_channel(&format!("http://{addr}")).unwrap();
    let client = TenantServiceClient::new(channel.with_bearer("operator-token-for-tests").unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new();
    let cache = KeyCache::new(
        Counting {
            client: client.clone(),
            calls: calls.clone(),
        },
        Arc::new(clock.clone()),
        Duration::from_secs(60),
        1000,
    );
    Fixture {
        admin: client,
        cache,
        calls,
        clock,
        shutdown,
        _db: db,
    }
}

async fn tenant_with_key(
    admin: &mut TenantServiceClient<TracedChannel>,
    name: &str,
) -> (String, String, String) {
    let tenant = admin
        .create_tenant(pb::CreateTenantRequest {
            tenant: Some(pb::Tenant {
                name: name.to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    let created = admin
        .create_api_key(pb::CreateApiKeyRequest {
            tenant_id: tenant.id.clone(),
            display_name: String::new(),
            scopes: vec![pb::Scope::Read.into(), pb::Scope::Write.into()],
        })
        .await
        .unwrap()
        .into_inner();
    (tenant.id, created.api_key.unwrap().key_id, created.secret)
}

#[tokio::test]
async fn repeat_calls_are_answered_from_the_cache() {
    let mut f = fixture().await;
    let (tenant_id, key_id, secret) = tenant_with_key(&mut f.admin, "acme").await;

    let principal = f.cache.authenticate(&secret).await.unwrap();
    assert_eq!(
        (principal.tenant_id.as_str(), principal.key_id.as_str()),
        (tenant_id.as_str(), key_id.as_str())
    );
    assert!(principal.allows(Scope::Write) && !principal.allows(Scope::Admin));
    for _ in 0..10 {
        f.cache.authenticate(&secret).await.unwrap();
    }
    assert_eq!(
        f.calls.load(Ordering::SeqCst),
        1,
        "one round trip for eleven calls"
    );

    f.clock.advance(MAX_TTL);
    f.cache.authenticate(&secret).await.unwrap();
    assert_eq!(
        f.calls.load(Ordering::SeqCst),
        2,
        "a fresh lookup once the entry expired"
    );
    f.shutdown.cancel();
}

#[tokio::test]
async fn a_revoked_key_is_refused_within_one_second() {
    let mut f = fixture().await;
    let (tenant_id, key_id, secret) = tenant_with_key(&mut f.admin, "acme").await;
    f.cache.authenticate(&secret).await.unwrap();

    f.admin
        .revoke_api_key(pb::RevokeApiKeyRequest { tenant_id, key_id })
        .await
        .unwrap();
    f.clock.advance(Duration::from_millis(999));
    assert!(
        f.cache.authenticate(&secret).await.is_ok(),
        "still cached just under the bound"
    );
    f.clock.advance(Duration::from_millis(1));
    let refused = f.cache.authenticate(&secret).await.unwrap_err();
    assert!(
        matches!(refused, AuthError::Unauthenticated(_)),
        "{refused:?}"
    );
    f.shutdown.cancel();
}

#[tokio::test]
async fn a_deleted_tenants_keys_are_refused_within_one_second() {
    let mut f = fixture().await;
    let (tenant_id, _, secret) = tenant_with_key(&mut f.admin, "acme").await;
    f.cache.authenticate(&secret).await.unwrap();
    f.admin
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id,
            ..Default::default()
        })
        .await
        .unwrap();
    f.clock.advance(MAX_TTL);
    let refused = f.cache.authenticate(&secret).await.unwrap_err();
    assert!(
        matches!(refused, AuthError::Unauthenticated(_)),
        "{refused:?}"
    );
    f.shutdown.cancel();
}

#[tokio::test]
async fn failures_are_not_cached_and_the_ttl_is_capped() {
    let f = fixture().await;
    for _ in 0..3 {
        assert!(matches!(
            f.cache.authenticate("mfg_bogus").await,
            Err(AuthError::Unauthenticated(_))
        ));
    }
    assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    assert!(
        format!("{:?}", f.cache).contains("ttl: 1s"),
        "a 60 s ttl is lowered to 1 s: {:?}",
        f.cache
    );
    f.shutdown.cancel();
}
