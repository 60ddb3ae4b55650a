//! Helpers for whole-system tests: start services on port-0 listeners, wait for them to be
//! SERVING by polling health (never a fixed sleep), and stop them cleanly.

pub mod gate;

use std::{net::SocketAddr, time::Duration};

use mfg_common::{grpc::TracedChannel, shutdown::CancellationToken};

/// The pepper test tenant services hash keys with.
pub const TEST_PEPPER: &str = "system-test-pepper-0123456789";

/// The operator token of test services.
pub const TEST_OPERATOR_TOKEN: &str = "system-test-operator-token";

pub use mfg_common::testing::Running;

/// Returns a traced client channel to a service, carrying the test operator token.
pub fn operator_channel(service: &Running) -> TracedChannel {
    service.channel_with(TEST_OPERATOR_TOKEN)
}

/// Starts the tenant service on a database URL.
pub async fn start_tenant(database_url: &str) -> Running {
    let config =
        mfg_tenant::Config::new(database_url, TEST_PEPPER).with_admin_token(TEST_OPERATOR_TOKEN);
    Running::start(mfg_proto::service_names::TENANT, |listener, shutdown| {
        mfg_tenant::run(config, listener, shutdown)
    })
    .await
}

/// Starts the storage service on a database URL, asking the tenant service at `tenant`.
pub async fn start_storage(database_url: &str, tenant: SocketAddr) -> Running {
    let config = mfg_storage::Config::new(database_url, tenant.to_string())
        .with_admin_token(TEST_OPERATOR_TOKEN);
    Running::start(mfg_proto::service_names::TELEMETRY, |listener, shutdown| {
        mfg_storage::run(config, listener, shutdown)
    })
    .await
}

/// The options of `mfg up` for a test: every listener on a port 0 of 127.0.0.1, and the test
/// pepper on PostgreSQL.
pub fn up_args(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    demo: bool,
) -> mfg::up::UpArgs {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = mfg::up::UpArgs::new(data_dir, any);
    args.data.database_url = database_url.map(str::to_owned);
    args.pepper.key_pepper = database_url.map(|_| mfg_common::config::Secret::new(TEST_PEPPER));
    args.demo = demo;
    args
}

/// Everything `mfg up` starts, on port-0 listeners.
#[derive(Debug)]
pub struct Platform {
    /// The gateway's base URL, e.g. `http://127.0.0.1:39123`.
    pub base: String,
    /// The operator token.
    pub operator_token: String,
    /// Where each part listens.
    pub addresses: mfg::up::Addresses,
    platform: mfg::platform::Platform,
}

impl Platform {
    /// Runs `mfg up` with a data directory and, optionally, a PostgreSQL URL.
    pub async fn up(data_dir: &std::path::Path, database_url: Option<&str>) -> Self {
        Self::start(data_dir, database_url, false).await
    }

    /// Runs `mfg up --demo` on SQLite in a data directory.
    pub async fn up_demo(data_dir: &std::path::Path) -> Self {
        Self::start(data_dir, None, true).await
    }

    async fn start(data_dir: &std::path::Path, database_url: Option<&str>, demo: bool) -> Self {
        Self::up_with(up_args(data_dir, database_url, demo)).await
    }

    /// Runs `mfg up` with these options (their addresses should be port 0s).
    pub async fn up_with(args: mfg::up::UpArgs) -> Self {
        let platform = mfg::platform::PlatformBuilder::new(args)
            .start(CancellationToken::new())
            .await
            .expect("mfg up");
        let addresses = platform.addresses.clone();
        let operator_token = std::fs::read_to_string(
            addresses
                .admin_token_file
                .as_ref()
                .expect("generated token"),
        )
        .expect("operator token file")
        .trim()
        .to_owned();
        let platform = Self {
            base: format!("http://{}", addresses.gateway),
            operator_token,
            addresses,
            platform,
        };
        platform.wait_ready().await;
        platform
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let url = format!("{}/readyz", self.base);
        loop {
            if let Ok(response) = reqwest_lite::get(&url).await
                && response == 200
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the platform did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the tenant's onboarding made it active (at most 20 s).
    pub async fn wait_until_active(&self, tenant: &str) {
        let path = format!("/v1/tenants/{tenant}");
        self.wait_until(
            &path,
            "state",
            "TENANT_STATE_ACTIVE",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Reads `path` as the operator until its `field` is `value`, for at most `within`;
    /// returns what it read last.
    pub async fn wait_until(
        &self,
        path: &str,
        field: &str,
        value: &str,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, found) = self
                .call(reqwest::Method::GET, path, &self.operator_token, None)
                .await;
            assert!(status.is_success(), "GET {path}: {status} {found}");
            if found[field] == value {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{field} is not {value} after {within:?}: {found}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a request to the gateway with `token` (see [`http_call`]).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let http = reqwest::Client::new();
        http_call(&http, &self.base, method, path, Some(token), body).await
    }

    /// The platform's parts, to stop and restart the storage service.
    pub fn parts(&mut self) -> &mut mfg::platform::Platform {
        &mut self.platform
    }

    /// Stops everything and waits for it to drain.
    pub async fn stop(self) {
        self.platform.stop().await.expect("stopped cleanly");
    }
}

/// A minimal HTTP GET for readiness polling, without pulling an HTTP client into the library.
mod reqwest_lite {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Returns the status code of `GET url` (`http://host:port/path` only).
    pub async fn get(url: &str) -> std::io::Result<u16> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        let code = std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok(code)
    }
}

/// Sends a request to the gateway, with a bearer token and a JSON body if given, and returns
/// the status and the JSON body; every gateway answer is JSON, so anything else fails the test.
pub async fn http_call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = http.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{status} with a non-JSON body: {text:?}"));
    (status, value)
}

/// Creates a tenant named `name` with the defaults; returns its id.
pub async fn create_tenant(
    tenants: &mut mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient<TracedChannel>,
    name: &str,
) -> String {
    use mfg_proto::tenant::v1 as tpb;
    let id = tenants
        .create_tenant(tpb::CreateTenantRequest {
            tenant: Some(tpb::Tenant {
                name: name.to_owned(),
                ..Default::default()
            }),
        })
        .await
        .expect("tenant created")
        .into_inner()
        .tenant
        .expect("a tenant")
        .id;
    wait_until_onboarded(tenants, &id).await;
    id
}

/// Waits until a tenant is no longer being onboarded (at most 20 s): at once when its tenant
/// service hands nothing to a provisioning service.
pub async fn wait_until_onboarded(
    tenants: &mut mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient<TracedChannel>,
    id: &str,
) {
    use mfg_proto::tenant::v1 as tpb;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tenant = tenants
            .get_tenant(tpb::GetTenantRequest {
                tenant_id: id.to_owned(),
            })
            .await
            .expect("the tenant")
            .into_inner()
            .tenant
            .expect("a tenant");
        if tenant.state() != tpb::TenantState::Provisioning {
            assert_eq!(tenant.state(), tpb::TenantState::Active, "{tenant:?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tenant is still provisioning after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a tenant named `name` through the tenant service, and a key of it with `scopes`;
/// returns the tenant's id and the key's secret.
pub async fn tenant_with_key(
    tenants: &mut mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient<TracedChannel>,
    name: &str,
    scopes: &[mfg_proto::tenant::v1::Scope],
) -> (String, String) {
    use mfg_proto::tenant::v1 as tpb;
    let tenant = create_tenant(tenants, name).await;
    let key = tenants
        .create_api_key(tpb::CreateApiKeyRequest {
            tenant_id: tenant.clone(),
            display_name: String::new(),
            scopes: scopes.iter().map(|&s| s.into()).collect(),
        })
        .await
        .expect("key created")
        .into_inner()
        .secret;
    (tenant, key)
}

/// A tenant made over REST by the operator, with a machine `press-1` and a key.
#[derive(Debug)]
pub struct RestTenant {
    /// The tenant's id.
    pub id: String,
    /// The secret of its key.
    pub key: String,
}

impl Platform {
    /// Creates, over REST, a tenant from `tenant` (its JSON), its machine `press-1` and a key
    /// of `scope` (`SCOPE_WRITE`…).
    pub async fn rest_tenant(&self, tenant: serde_json::Value, scope: &str) -> RestTenant {
        let http = reqwest::Client::new();
        let operator = Some(self.operator_token.as_str());
        let call = |path: String, body: serde_json::Value| {
            let http = http.clone();
            async move {
                let (status, answer) = http_call(
                    &http,
                    &self.base,
                    reqwest::Method::POST,
                    &path,
                    operator,
                    Some(body),
                )
                .await;
                assert!(status.is_success(), "POST {path}: {status} {answer}");
                answer
            }
        };
        let created = call("/v1/tenants".to_owned(), tenant).await;
        let id = created["id"].as_str().expect("a tenant id").to_owned();
        self.wait_until_active(&id).await;
        call(
            format!("/v1/tenants/{id}/machines"),
            serde_json::json!({"machineId": "press-1"}),
        )
        .await;
        let key = call(
            format!("/v1/tenants/{id}/api-keys"),
            serde_json::json!({"scopes": [scope]}),
        )
        .await;
        let key = key["secret"].as_str().expect("a key secret").to_owned();
        RestTenant { id, key }
    }
}

/// Installs, for the whole process, the W3C propagator and a tracer that records finished
/// spans in memory. Call once, in a test binary of its own.
pub fn install_in_memory_tracer() -> (
    opentelemetry_sdk::trace::InMemorySpanExporter,
    opentelemetry_sdk::trace::SdkTracerProvider,
) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber of this process");
    (exporter, provider)
}
