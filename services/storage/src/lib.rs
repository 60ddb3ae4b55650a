//! Storage: the storage service: telemetry ingest, the hot, warm and cold tiers, queries, alert rules and alert fan-out.
//!
//! A library with one entry, [`run`], which serves on a listener the caller bound. It has no
//! state yet, so it is SERVING as soon as it listens; its RPCs answer UNIMPLEMENTED until its
//! issue is built, and it checks credentials from then on, as the tenant service does.

pub mod api;
pub mod archive;
pub mod config;
pub mod domain;
pub mod object_store;

use mfg_common::{grpc, shutdown::CancellationToken};
use mfg_proto::service_names;
use mfg_proto::storage::v1::{
    alert_service_server::AlertServiceServer, telemetry_service_server::TelemetryServiceServer,
};
use tokio::net::TcpListener;

pub use crate::config::Config;

/// Runs the storage service on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (health, routes) =
        grpc::standard_routes(&[service_names::TELEMETRY, service_names::ALERT]).await?;
    let routes = routes
        .add_service(TelemetryServiceServer::new(api::TelemetryApi))
        .add_service(AlertServiceServer::new(api::AlertApi));
    health.set_serving(true).await;
    grpc::serve(
        listener,
        routes,
        health,
        None,
        shutdown,
        config.server.shutdown_grace,
    )
    .await
}
