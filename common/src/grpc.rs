//! The gRPC server bootstrap every service uses: health (NOT_SERVING until ready), reflection
//! listing the services of the process, the tracing layer, and a graceful shutdown that drains
//! with a timeout. Also the traced client channel services use to call each other.

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    service::Routes,
    transport::{Channel, Endpoint, Server},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::AuthLayer,
    trace_context::{InjectTraceContext, InjectTraceContextLayer},
};

/// A client channel that propagates trace context.
pub type TracedChannel = InjectTraceContext<Channel>;

/// Returns a channel to `uri` (e.g. `http://127.0.0.1:50051`) that connects on first use and
/// reconnects by itself.
pub fn lazy_channel(uri: &str) -> Result<TracedChannel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(uri.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(tower::Layer::layer(
        &InjectTraceContextLayer,
        endpoint.connect_lazy(),
    ))
}

/// The health of the services of one process, as seen by `grpc.health.v1.Health`.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: Arc<[&'static str]>,
}

impl Health {
    /// Marks the process and each of its services serving or not serving.
    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for service in self.services.iter() {
            self.reporter.set_service_status(service, status).await;
        }
    }
}

/// Returns the routes every server carries, health and reflection, with every service of the
/// process NOT_SERVING until [`Health::set_serving`] says otherwise.
pub async fn standard_routes(services: &[&'static str]) -> anyhow::Result<(Health, Routes)> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health {
        reporter,
        services: services.into(),
    };
    health.set_serving(false).await;

    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mfg_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection");
    for service in services {
        reflection = reflection.with_service_name(*service);
    }
    let routes = Routes::new(health_service).add_service(reflection.build_v1()?);
    Ok((health, routes))
}

/// Serves `routes` on `listener` until `shutdown` is cancelled, then marks the process
/// NOT_SERVING, stops accepting, and lets in-flight calls finish for at most `grace`. With an
/// [`AuthLayer`], every call but health and reflection must carry `authorization: Bearer`.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    health: Health,
    auth: Option<AuthLayer>,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let drain = CancellationToken::new();
    let server = Server::builder()
        .tcp_nodelay(true)
        .layer(crate::trace_context::server_layer())
        .layer(tower::util::option_layer(auth))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            drain.clone().cancelled_owned(),
        );
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        () = shutdown.cancelled() => {}
    }
    tracing::info!(%addr, grace_ms = grace.as_millis() as u64, "draining");
    health.set_serving(false).await;
    drain.cancel();
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            tracing::warn!(%addr, "calls still running after the shutdown grace period were cut");
            Ok(())
        }
    }
}
