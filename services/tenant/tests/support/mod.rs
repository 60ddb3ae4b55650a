//! What the tenant service's gRPC tests share: a service on a port-0 listener and a client
//! carrying a bearer token.

#![allow(dead_code)]

use mfg_common::{
    grpc::{TracedChannel, lazy_channel},
    testing,
};
use mfg_proto::{
    service_names,
    tenant::v1::{self as pb, tenant_service_client::TenantServiceClient},
};
use pbjson_types::FieldMask;
use tonic::Status;
use tonic_types::StatusExt as _;

pub const PEPPER: &str = "test-pepper-0123456789";
pub const OPERATOR: &str = "operator-token-for-tests";

/// A client of the tenant service carrying a bearer token.
pub fn client(addr: std::net::SocketAddr, token: &str) -> TenantServiceClient<TracedChannel> {
    TenantServiceClient::new(
        lazy_channel(&format!("http://{addr}"))
            .unwrap()
            .with_bearer(token)
            .unwrap(),
    )
}

pub struct Service {
    pub client: TenantServiceClient<TracedChannel>,
    pub addr: std::net::SocketAddr,
    running: testing::Running,
    _db: testing::TestDatabase,
}

impl Service {
    pub async fn start(db: testing::TestDatabase) -> Self {
        let config = mfg_tenant::Config::new(&db.url, PEPPER).with_admin_token(OPERATOR);
        Self::start_with(db, config).await
    }

    /// The service handing new tenants to a provisioning service that is never up.
    pub async fn handing_off() -> Self {
        let db = testing::TestDatabase::sqlite();
        let mut config = mfg_tenant::Config::new(&db.url, PEPPER).with_admin_token(OPERATOR);
        config.onboarding = mfg_tenant::config::OnboardingArgs::ON;
        config.addrs.provisioning = "127.0.0.1:9".to_owned();
        Self::start_with(db, config).await
    }

    async fn start_with(db: testing::TestDatabase, config: mfg_tenant::Config) -> Self {
        let running = testing::Running::start(service_names::TENANT, |listener, shutdown| {
            mfg_tenant::run(config, listener, shutdown)
        })
        .await;
        Self {
            client: client(running.addr, OPERATOR),
            addr: running.addr,
            running,
            _db: db,
        }
    }

    pub async fn sqlite() -> Self {
        Self::start(testing::TestDatabase::sqlite()).await
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

pub fn new_tenant(name: &str) -> pb::CreateTenantRequest {
    pb::CreateTenantRequest {
        tenant: Some(pb::Tenant {
            name: name.to_owned(),
            ..Default::default()
        }),
    }
}

pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

pub async fn create_tenant(
    client: &mut TenantServiceClient<TracedChannel>,
    name: &str,
) -> pb::Tenant {
    client
        .create_tenant(new_tenant(name))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap()
}
