//! Connections that never speak, or never finish their headers, are closed: on the gateway
//! (HTTP/1 header-read timeout, which also bounds an idle kept-alive connection) and on the
//! gRPC ports (the HTTP/2 preface must come within the handshake timeout).

use std::time::Duration;

use mfg_common::testing::{Running, TestDatabase, listener};
use mfg_tests::{TEST_OPERATOR_TOKEN, TEST_PEPPER};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

const HANDSHAKE: Duration = Duration::from_millis(300);

/// Connects, sends `said`, and returns how long the server took to close the connection.
async fn closed_after(addr: std::net::SocketAddr, said: &[u8]) -> Duration {
    let started = tokio::time::Instant::now();
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(said).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{addr} kept a connection that said {said:?}"))
        .ok();
    started.elapsed()
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed() {
    let db = TestDatabase::sqlite();
    let url = db.url.clone();
    let tenant = Running::start(mfg_proto::service_names::TENANT, |listener, shutdown| {
        let mut config =
            mfg_tenant::Config::new(&url, TEST_PEPPER).with_admin_token(TEST_OPERATOR_TOKEN);
        config.server.connections.handshake_timeout = HANDSHAKE;
        mfg_tenant::run(config, listener, shutdown)
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let upstream = tenant.addr.to_string();
    let mut config =
        mfg_gateway::Config::new(dir.path(), &upstream, &upstream, &upstream, &upstream);
    config.operator.admin_token = Some(mfg_common::config::Secret::new(TEST_OPERATOR_TOKEN));
    config.server.connections.handshake_timeout = HANDSHAKE;
    let (gateway_listener, gateway) = listener().await;
    let shutdown = mfg_common::shutdown::CancellationToken::new();
    let served = tokio::spawn(mfg_gateway::run(config, gateway_listener, shutdown.clone()));

    for (what, addr, said) in [
        ("gRPC, silent", tenant.addr, &b""[..]),
        (
            "gRPC, half a preface",
            tenant.addr,
            &b"PRI * HTTP/2.0\r\n"[..],
        ),
        ("gateway, silent", gateway, &b""[..]),
        (
            "gateway, unfinished headers",
            gateway,
            &b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[..],
        ),
    ] {
        let took = closed_after(addr, said).await;
        assert!(
            took >= HANDSHAKE / 2 && took < HANDSHAKE * 10,
            "{what}: closed after {took:?}"
        );
    }

    // A kept-alive HTTP/1 connection is answered, then closed once idle.
    let mut socket = TcpStream::connect(gateway).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut buf))
        .await
        .expect("an idle kept-alive connection is closed")
        .unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    shutdown.cancel();
    served.await.unwrap().unwrap();
    tenant.stop().await;
}
