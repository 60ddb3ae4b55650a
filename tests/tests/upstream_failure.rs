//! When the storage service becomes unreachable in the middle of a stream (its connection
//! breaks, as in a crash), an SSE subscriber is told UNAVAILABLE (14), which it retries, as a
//! gRPC subscriber is; never INTERNAL, which means a bug of ours.

use std::time::Duration;

use mfg_common::testing::{TestDatabase, listener};
use mfg_proto::tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient};
use mfg_tests::{TEST_OPERATOR_TOKEN, operator_channel, start_storage, start_tenant};
use tokio::{net::TcpStream, task::JoinSet};

/// A TCP proxy whose connections can all be cut at once, as a crash of the far side would.
struct Proxy {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl Proxy {
    async fn to(upstream: std::net::SocketAddr) -> Self {
        let (listener, addr) = listener().await;
        let connections = std::sync::Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let held = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                held.lock().await.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, connections }
    }

    async fn cut(&self) {
        self.connections.lock().await.abort_all();
    }
}

#[tokio::test]
async fn an_sse_subscriber_is_told_unavailable_when_storage_breaks_away() {
    let tenant_db = TestDatabase::sqlite();
    let storage_db = TestDatabase::sqlite();
    let tenant = start_tenant(&tenant_db.url).await;
    let storage = start_storage(&storage_db.url, tenant.addr).await;
    let proxy = Proxy::to(storage.addr).await;

    let mut tenants = TenantServiceClient::new(operator_channel(&tenant));
    let (tenant_id, key) =
        mfg_tests::tenant_with_key(&mut tenants, "acme", &[tpb::Scope::Read]).await;

    let dir = tempfile::tempdir().unwrap();
    let (tenant_addr, storage_addr) = (tenant.addr.to_string(), proxy.addr.to_string());
    let mut config = mfg_gateway::Config::new(
        dir.path(),
        &tenant_addr,
        &storage_addr,
        &tenant_addr,
        &tenant_addr,
    );
    config.operator.admin_token = Some(mfg_common::config::Secret::new(TEST_OPERATOR_TOKEN));
    let (gateway_listener, gateway) = listener().await;
    let shutdown = mfg_common::shutdown::CancellationToken::new();
    let served = tokio::spawn(mfg_gateway::run(config, gateway_listener, shutdown.clone()));

    let mut response = reqwest::Client::new()
        .get(format!(
            "http://{gateway}/v1/tenants/{}/alert-events",
            tenant_id
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    proxy.cut().await;

    let mut text = String::new();
    let error = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(start) = text.find("event: error") {
                let data = text[start..].lines().find_map(|l| l.strip_prefix("data: "));
                if let Some(data) = data {
                    return serde_json::from_str::<serde_json::Value>(data).unwrap();
                }
            }
            match response.chunk().await.unwrap() {
                Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                None => panic!("the stream ended without an error event: {text}"),
            }
        }
    })
    .await
    .expect("an error event");
    assert_eq!(error["code"], 14, "UNAVAILABLE: {error}");

    shutdown.cancel();
    served.await.unwrap().unwrap();
    storage.stop().await;
    tenant.stop().await;
}
