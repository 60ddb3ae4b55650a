//! Provisioning: the provisioning service: the onboarding workflow of a tenant.
//!
//! A library with one entry, [`run`], which serves on a listener the caller bound. It has no
//! state yet, so it is SERVING as soon as it listens; its RPCs answer UNIMPLEMENTED until its
//! issue is built, and it checks credentials from then on, as the tenant service does.

pub mod api;
pub mod config;

use mfg_common::{grpc, shutdown::CancellationToken};
use mfg_proto::provisioning::v1::provisioning_service_server::ProvisioningServiceServer;
use mfg_proto::service_names;
use tokio::net::TcpListener;

pub use crate::config::Config;

/// Runs the provisioning service on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (health, routes) = grpc::standard_routes(&[service_names::PROVISIONING]).await?;
    let routes = routes.add_service(ProvisioningServiceServer::new(api::ProvisioningApi));
    health.set_serving(true).await;
    grpc::serve(listener, routes, health, None, shutdown, &config.server).await
}
