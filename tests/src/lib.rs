//! Helpers for whole-system tests: start services on port-0 listeners, wait for them to be
//! SERVING by polling health (never a fixed sleep), and stop them cleanly.

use std::{future::Future, net::SocketAddr, time::Duration};

use mfg_common::{grpc::TracedChannel, shutdown::CancellationToken, testing};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic_health::ServingStatus;

/// The pepper test tenant services hash keys with.
pub const TEST_PEPPER: &str = "system-test-pepper-0123456789";

/// A service running in this process.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts a service with `run(listener, shutdown)` and waits until `service` is SERVING.
    pub async fn start<F, Fut>(service: &str, run: F) -> Self
    where
        F: FnOnce(TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (listener, addr) = testing::listener().await;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(listener, shutdown.clone()));
        testing::wait_for_health(
            addr,
            service,
            ServingStatus::Serving,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|last| panic!("{service} did not become SERVING: {last}"));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// Returns a traced client channel to the service.
    pub fn channel(&self) -> TracedChannel {
        mfg_common::grpc::lazy_channel(&format!("http://{}", self.addr)).expect("valid address")
    }

    /// Stops the service and waits for it to drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("service task")
            .expect("service stopped cleanly");
    }
}

/// Starts the tenant service on a database URL.
pub async fn start_tenant(database_url: &str) -> Running {
    let config = mfg_tenant::Config::new(database_url, TEST_PEPPER);
    Running::start(mfg_proto::service_names::TENANT, |listener, shutdown| {
        mfg_tenant::run(config, listener, shutdown)
    })
    .await
}
