//! Cost: the cost service: usage metering, the price book, per-tenant cost with shared costs split, budgets, forecasts and recommendations.
//!
//! A library with one entry, [`run`], which serves on a listener the caller bound. It has no
//! state yet, so it is SERVING as soon as it listens; its RPCs answer UNIMPLEMENTED until its
//! issue is built, and it checks credentials from then on, as the tenant service does.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod store;

use mfg_common::{grpc, shutdown::CancellationToken};
use mfg_proto::cost::v1::cost_service_server::CostServiceServer;
use mfg_proto::service_names;
use tokio::net::TcpListener;

pub use crate::config::Config;

/// Runs the cost service on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (health, routes) = grpc::standard_routes(&[service_names::COST]).await?;
    let routes = routes.add_service(CostServiceServer::new(api::CostApi));
    health.set_serving(true).await;
    grpc::serve(listener, routes, health, None, shutdown, &config.server).await
}
