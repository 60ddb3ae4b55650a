//! The gRPC server bootstrap every service uses: health (NOT_SERVING until ready), reflection
//! listing the services of the process, the tracing layer, and a graceful shutdown that drains
//! with a timeout. Also the traced client channel services use to call each other.

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    service::Routes,
    transport::{Channel, Endpoint, Server},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::AuthLayer,
    config::ServerArgs,
    connections,
    trace_context::{InjectTraceContext, InjectTraceContextLayer},
};

/// A client channel that propagates trace context.
pub type TracedChannel = InjectTraceContext<Channel>;

/// Turns `host:port` into `http://host:port`; URLs pass through.
pub fn http_uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// How long a service's call to another may take on a [`service_channel`] before it fails
/// (CANCELLED, "Timeout expired": how tonic reports a deadline it enforces): as long as the gateway gives a request, so that a service that hangs
/// does not stall its callers' loops (directories, relays, meters) for ever.
pub const SERVICE_CALL_DEADLINE: Duration = Duration::from_secs(30);

/// Returns a channel to `uri` (e.g. `http://127.0.0.1:50051`) that connects on first use and
/// reconnects by itself.
pub fn lazy_channel(uri: &str) -> Result<TracedChannel, tonic::transport::Error> {
    Ok(traced(endpoint(uri)?))
}

/// A [`lazy_channel`] for one service's unary calls to another: each call fails after
/// [`SERVICE_CALL_DEADLINE`], or sooner when its request says so (`Request::set_timeout`,
/// which the callee is told, and which every channel enforces). Not for streams: the deadline would
/// bound how long a stream waits for its response to begin, not its life.
pub fn service_channel(uri: &str) -> Result<TracedChannel, tonic::transport::Error> {
    Ok(traced(endpoint(uri)?.timeout(SERVICE_CALL_DEADLINE)))
}

fn endpoint(uri: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(uri.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true))
}

fn traced(endpoint: Endpoint) -> TracedChannel {
    tower::Layer::layer(&InjectTraceContextLayer, endpoint.connect_lazy())
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

    // v1alpha too: grpcio's Python reflection client and older tools speak only that.
    let routes = Routes::new(health_service)
        .add_service(reflection(services).build_v1()?)
        .add_service(reflection(services).build_v1alpha()?);
    Ok((health, routes))
}

fn reflection(services: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mfg_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for service in services {
        reflection = reflection.with_service_name(*service);
    }
    reflection
}

/// How often a server pings an HTTP/2 connection's peer, and how long it waits for the answer
/// before closing the connection: a peer that vanished without closing is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many streams one connection may have open at once, and how large a request's headers
/// may be: bounds on what one peer can make the server hold.
const MAX_STREAMS_PER_CONNECTION: u32 = 4_096;
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Serves `routes` on `listener` until `shutdown` is cancelled, then marks the process
/// NOT_SERVING, stops accepting, and lets in-flight calls finish for at most the grace period
/// of `args`. With an [`AuthLayer`], every call but health and reflection must carry
/// `authorization: Bearer`. Connections are bounded as [`crate::connections`] says, and pinged
/// when idle.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    health: Health,
    auth: Option<AuthLayer>,
    shutdown: CancellationToken,
    args: &ServerArgs,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let grace = args.shutdown_grace;
    let drain = CancellationToken::new();
    let server = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .layer(crate::trace_context::server_layer())
        .layer(tower::util::option_layer(auth))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            connections::admit(listener, args.connections.limits()),
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

/// Polls `grpc.health.v1.Health/Check` for `service` at `addr` until it reports `want`, for at
/// most `within`; returns the last status seen otherwise.
pub async fn wait_for_health(
    addr: std::net::SocketAddr,
    service: &str,
    want: ServingStatus,
    within: Duration,
) -> Result<(), String> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_lazy();
    let mut client = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
        {
            Ok(response) if response.get_ref().status == want as i32 => return Ok(()),
            Ok(response) => format!("status {}", response.get_ref().status),
            Err(status) => status.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `attempt` (connect and migrate a service's database) until it succeeds, waiting 100 ms
/// after the first failure and twice as long after each next one, at most 5 s; `None` when
/// `shutdown` comes first.
pub async fn retry_until_ready<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(ready) => return Some(ready),
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "{what} not ready");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return None,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// How often [`keep_health`] checks a ready service's database.
pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Marks the process SERVING, then checks `ping` every [`HEALTH_CHECK_INTERVAL`] and reports
/// each change of health until `shutdown`.
pub async fn keep_health<F, Fut>(
    what: &str,
    health: Health,
    shutdown: CancellationToken,
    mut ping: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tracing::info!("{what} ready");
    health.set_serving(true).await;
    let mut serving = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep(HEALTH_CHECK_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
        let ok = ping().await;
        if ok != serving {
            serving = ok;
            if ok {
                tracing::info!("{what} reachable again");
            } else {
                tracing::warn!("{what} unreachable");
            }
            health.set_serving(ok).await;
        }
    }
}
