//! What the storage service's gRPC tests share: a tenant service and a storage service on
//! port-0 listeners, on the same backend, and a tenant with machines and keys.

#![allow(dead_code)]

pub mod alerts;
pub mod tiering;

use std::net::SocketAddr;

use mfg_common::{
    grpc::{TracedChannel, lazy_channel},
    testing::TestDatabase,
};
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        alert_service_client::AlertServiceClient, telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use pbjson_types::{FieldMask, Timestamp};

pub const PEPPER: &str = "storage-test-pepper-0123456789";
pub const OPERATOR: &str = "storage-test-operator-token";

fn channel(addr: SocketAddr, token: &str) -> TracedChannel {
    lazy_channel(&format!("http://{addr}"))
        .unwrap()
        .with_bearer(token)
        .unwrap()
}

/// The platform as `mfg up` starts it (`mfg::platform`), its tenant service and its storage
/// service each on a test database of one backend, and one tenant.
pub struct Platform {
    platform: mfg::platform::Platform,
    storage_runs: bool,
    pub tenants: TenantServiceClient<TracedChannel>,
    pub tenant_id: String,
    pub write_key: String,
    pub read_key: String,
    /// The cold tier's directory, when it is one.
    pub archive: Option<tempfile::TempDir>,
    storage_url: String,
    _tenant_db: TestDatabase,
    _storage_db: TestDatabase,
    _data_dir: tempfile::TempDir,
}

/// The backends tests run on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub async fn database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Postgres => TestDatabase::postgres().await,
        Backend::Sqlite => TestDatabase::sqlite(),
    }
}

impl Platform {
    /// The storage service's database URL.
    pub fn storage_url(&self) -> &str {
        &self.storage_url
    }

    /// Starts both services and creates a tenant (`ingest_per_second` readings/s, machines
    /// `press-1` and `press-2`) with a write key and a read key.
    pub async fn start(backend: Backend, ingest_per_second: u32) -> Self {
        Self::start_with_clock(
            backend,
            ingest_per_second,
            mfg_common::clock::system_clock(),
        )
        .await
    }

    /// [`Platform::start`] with the storage service on `clock`.
    pub async fn start_with_clock(
        backend: Backend,
        ingest_per_second: u32,
        clock: mfg_common::clock::SharedClock,
    ) -> Self {
        let archive = tempfile::tempdir().unwrap();
        let dir = archive.path().to_owned();
        let mut platform = Self::start_configured(backend, ingest_per_second, clock, move |c| {
            c.with_archive_dir(dir)
        })
        .await;
        platform.archive = Some(archive);
        platform
    }

    /// [`Platform::start_with_clock`] with the storage service's configuration changed by
    /// `configure`; the tiering jobs run only on demand.
    pub async fn start_configured(
        backend: Backend,
        ingest_per_second: u32,
        clock: mfg_common::clock::SharedClock,
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> Self {
        let storage_db = database(backend).await;
        Self::start_on(backend, storage_db, ingest_per_second, clock, configure).await
    }

    /// [`Platform::start_configured`] with the storage service on `storage_db` (the tenant
    /// service on `backend`).
    pub async fn start_on(
        backend: Backend,
        storage_db: TestDatabase,
        ingest_per_second: u32,
        clock: mfg_common::clock::SharedClock,
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> Self {
        let options = (ingest_per_second, clock, true);
        Self::start_with_options(backend, storage_db, options, configure).await
    }

    /// [`Platform::start_configured`] with new tenants active at once, not onboarded by the
    /// provisioning service: for a cold tier that cannot take the tenant's lifecycle rule yet.
    pub async fn start_unprovisioned(
        backend: Backend,
        ingest_per_second: u32,
        clock: mfg_common::clock::SharedClock,
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> Self {
        let storage_db = database(backend).await;
        let options = (ingest_per_second, clock, false);
        Self::start_with_options(backend, storage_db, options, configure).await
    }

    async fn start_with_options(
        backend: Backend,
        storage_db: TestDatabase,
        (ingest_per_second, clock, onboarding): (u32, mfg_common::clock::SharedClock, bool),
        configure: impl FnOnce(mfg_storage::Config) -> mfg_storage::Config + Send + 'static,
    ) -> Self {
        // The services' logs, shown for failing tests.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let tenant_db = database(backend).await;
        let storage_url = storage_db.url.clone();
        let data_dir = tempfile::tempdir().unwrap();
        let platform = mfg::platform::PlatformBuilder::local(data_dir.path())
            .tenant_database_url(&tenant_db.url)
            .storage_database_url(&storage_url)
            .key_pepper(PEPPER)
            .admin_token(OPERATOR)
            .clock(clock)
            .onboarding(onboarding)
            .configure_storage(|config| {
                configure(config.with_tiering_interval(std::time::Duration::ZERO))
            })
            .start(mfg_common::shutdown::CancellationToken::new())
            .await
            .expect("the platform starts");
        platform
            .ready(std::time::Duration::from_secs(30))
            .await
            .expect("the platform serves");
        let mut tenants = TenantServiceClient::new(channel(platform.addresses.tenant, OPERATOR));
        let tenant = tenants
            .create_tenant(tpb::CreateTenantRequest {
                tenant: Some(tpb::Tenant {
                    name: format!("acme-{}", uuid::Uuid::new_v4().simple()),
                    plan: tpb::Plan::Dedicated.into(),
                    limits: Some(tpb::Limits {
                        ingest_readings_per_second: ingest_per_second,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .tenant
            .unwrap();
        wait_until_active(&mut tenants, &tenant.id).await;
        for machine in ["press-1", "press-2"] {
            tenants
                .create_machine(tpb::CreateMachineRequest {
                    tenant_id: tenant.id.clone(),
                    machine: Some(tpb::Machine {
                        machine_id: machine.to_owned(),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
        let key = |scope: tpb::Scope| {
            let mut tenants = tenants.clone();
            let tenant_id = tenant.id.clone();
            async move {
                tenants
                    .create_api_key(tpb::CreateApiKeyRequest {
                        tenant_id,
                        display_name: String::new(),
                        scopes: vec![scope.into()],
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .secret
            }
        };
        let write_key = key(tpb::Scope::Write).await;
        let read_key = key(tpb::Scope::Read).await;
        Self {
            platform,
            storage_runs: true,
            tenants,
            tenant_id: tenant.id,
            write_key,
            read_key,
            archive: None,
            storage_url,
            _tenant_db: tenant_db,
            _storage_db: storage_db,
            _data_dir: data_dir,
        }
    }

    /// A storage client with a token.
    pub fn client(&self, token: &str) -> TelemetryServiceClient<TracedChannel> {
        TelemetryServiceClient::new(channel(self.storage_addr(), token))
    }

    /// A storage client with the operator token.
    pub fn operator(&self) -> TelemetryServiceClient<TracedChannel> {
        self.client(OPERATOR)
    }

    /// An alert client with a token.
    pub fn alerts(&self, token: &str) -> AlertServiceClient<TracedChannel> {
        AlertServiceClient::new(channel(self.storage_addr(), token))
    }

    /// Creates a key of the platform's tenant.
    pub async fn key(&self, scope: tpb::Scope) -> String {
        self.key_of(&self.tenant_id, scope).await
    }

    /// Creates a key of any tenant.
    pub async fn key_of(&self, tenant_id: &str, scope: tpb::Scope) -> String {
        self.tenants
            .clone()
            .create_api_key(tpb::CreateApiKeyRequest {
                tenant_id: tenant_id.to_owned(),
                display_name: String::new(),
                scopes: vec![scope.into()],
            })
            .await
            .unwrap()
            .into_inner()
            .secret
    }

    /// Creates another tenant, with a machine `press-1`; returns its id.
    pub async fn other_tenant(&self) -> String {
        let mut tenants = self.tenants.clone();
        let tenant = tenants
            .create_tenant(tpb::CreateTenantRequest {
                tenant: Some(tpb::Tenant {
                    name: format!("other-{}", uuid::Uuid::new_v4().simple()),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .tenant
            .unwrap();
        wait_until_active(&mut tenants, &tenant.id).await;
        tenants
            .create_machine(tpb::CreateMachineRequest {
                tenant_id: tenant.id.clone(),
                machine: Some(tpb::Machine {
                    machine_id: "press-1".to_owned(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        tenant.id
    }

    /// Changes the tenant's state.
    pub async fn set_state(&self, state: tpb::TenantState) {
        self.tenants
            .clone()
            .update_tenant(tpb::UpdateTenantRequest {
                tenant_id: self.tenant_id.clone(),
                tenant: Some(tpb::Tenant {
                    state: state.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["state".to_owned()],
                }),
            })
            .await
            .unwrap();
    }

    /// Where the storage service listens.
    pub fn storage_addr(&self) -> SocketAddr {
        assert!(self.storage_runs, "the storage service runs");
        self.platform.addresses.storage
    }

    /// Stops the storage service, letting it drain.
    pub async fn stop_storage(&mut self) {
        self.platform.stop_storage().await;
        self.storage_runs = false;
    }

    /// Stops the storage service (draining it) and starts it again with the same
    /// configuration, on the same address and database.
    pub async fn restart_storage(&mut self) {
        self.platform
            .restart_storage()
            .await
            .expect("the storage service starts again");
        self.storage_runs = true;
    }

    pub async fn stop(self) {
        self.platform.stop().await.expect("stopped cleanly");
    }
}

/// Now, in µs since the epoch, rounded down to the second.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_secs() as i64 * 1_000_000
}

pub fn ts(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

pub fn micros(ts: &Timestamp) -> i64 {
    ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000
}

pub fn reading(machine: &str, metric: &str, micros: i64, value: f64) -> Reading {
    Reading {
        machine_id: machine.to_owned(),
        metric: metric.to_owned(),
        ts: Some(ts(micros)),
        value,
    }
}

/// Waits until the provisioning service has onboarded a new tenant: its readings are refused
/// until then.
async fn wait_until_active(tenants: &mut TenantServiceClient<TracedChannel>, id: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let tenant = tenants
            .get_tenant(tpb::GetTenantRequest {
                tenant_id: id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .tenant
            .unwrap();
        if tenant.state() == tpb::TenantState::Active {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tenant is not active after 20 s: {tenant:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
