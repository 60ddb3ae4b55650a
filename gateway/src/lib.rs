//! The REST-to-gRPC gateway at the edge of the platform.
//!
//! No business logic: it authenticates the caller, checks what the caller may do, translates
//! REST/JSON (grpc-gateway conventions, proto3 JSON) into the RPCs the contract's
//! `google.api.http` annotations name, and the answers back, errors included.

pub mod auth;
pub mod config;
pub mod console;
pub mod contract;
pub mod error;
pub mod json;
pub mod limits;
pub mod observability;
pub mod openapi;
pub mod routes;
pub mod transcode;

use std::sync::Arc;

use axum::{Router, error_handling::HandleErrorLayer, extract::DefaultBodyLimit, http::StatusCode};
use mfg_common::{
    ErrorCode,
    auth::{Authenticator, KeyCache},
    clock::system_clock,
    grpc::{TracedChannel, lazy_channel},
    metering::UsageMeter,
    shutdown::CancellationToken,
};
use mfg_proto::{
    cost::v1::cost_service_client::CostServiceClient, service_names,
    storage::v1::alert_service_client::AlertServiceClient,
    tenant::v1::tenant_service_client::TenantServiceClient,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub use crate::config::Config;
use crate::error::ApiError;

/// What every handler shares: clients of the upstream services and the authenticator.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    shutdown: CancellationToken,
}

#[derive(Debug)]
struct Inner {
    openapi: axum::body::Bytes,
    isolation: limits::Isolation,
    metrics: Arc<observability::Metrics>,
    alerts: AlertServiceClient<TracedChannel>,
    channels: Upstreams,
    auth: Authenticator,
    meter: UsageMeter,
}

#[derive(Debug)]
struct Upstreams {
    tenant: TracedChannel,
    storage: TracedChannel,
    cost: TracedChannel,
    provisioning: TracedChannel,
}

impl AppState {
    /// Connects (lazily) to the upstream services of a configuration.
    pub fn new(config: &Config, operator_token: &str) -> anyhow::Result<Self> {
        contract::rpcs()?;
        // After its own checks, the gateway calls the services with the operator credential.
        let channel = |addr: &str| -> anyhow::Result<TracedChannel> {
            Ok(lazy_channel(&mfg_common::grpc::http_uri(addr))?.with_bearer(operator_token)?)
        };
        let channels = Upstreams {
            tenant: channel(&config.addrs.tenant)?,
            storage: channel(&config.addrs.storage)?,
            cost: channel(&config.addrs.cost)?,
            provisioning: channel(&config.addrs.provisioning)?,
        };
        let tenant = TenantServiceClient::new(channels.tenant.clone());
        let keys = KeyCache::new(
            tenant.clone(),
            system_clock(),
            config.options.key_cache_ttl,
            100_000,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                openapi: serde_json::to_vec(&openapi::document()?)?.into(),
                isolation: limits::Isolation::new(
                    config.options.shared_concurrency,
                    config.options.dedicated_concurrency,
                ),
                metrics: Arc::default(),
                alerts: AlertServiceClient::new(channels.storage.clone()),
                auth: Authenticator::new(operator_token, keys),
                channels,
                meter: UsageMeter::new("gateway", system_clock()),
            }),
            shutdown: CancellationToken::new(),
        })
    }

    /// Ends long-lived responses (event streams) when `shutdown` is cancelled.
    #[must_use]
    pub fn stopping_on(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Cancelled when the gateway stops.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn upstreams(&self) -> Vec<(&'static str, &'static str, TracedChannel)> {
        let c = &self.inner.channels;
        vec![
            ("tenant", service_names::TENANT, c.tenant.clone()),
            ("storage", service_names::TELEMETRY, c.storage.clone()),
            ("cost", service_names::COST, c.cost.clone()),
            (
                "provisioning",
                service_names::PROVISIONING,
                c.provisioning.clone(),
            ),
        ]
    }

    /// The OpenAPI document, rendered once at start-up.
    pub fn openapi(&self) -> axum::body::Bytes {
        self.inner.openapi.clone()
    }

    /// The channel to the service that serves `service` (a full name), if the gateway knows it.
    pub fn channel_of(&self, service: &str) -> Option<TracedChannel> {
        let c = &self.inner.channels;
        Some(match service {
            service_names::TENANT => c.tenant.clone(),
            service_names::TELEMETRY | service_names::ALERT => c.storage.clone(),
            service_names::COST => c.cost.clone(),
            service_names::PROVISIONING | service_names::AUDIT => c.provisioning.clone(),
            _ => return None,
        })
    }

    /// A client of the storage service's alert API.
    pub fn alerts(&self) -> AlertServiceClient<TracedChannel> {
        self.inner.alerts.clone()
    }

    /// Where the tenants' API requests are counted for their cost.
    pub fn meter(&self) -> &UsageMeter {
        &self.inner.meter
    }

    /// The tenants' rate limiters and pools.
    pub fn isolation(&self) -> &limits::Isolation {
        &self.inner.isolation
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> Arc<observability::Metrics> {
        self.inner.metrics.clone()
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }
}

/// Returns the gateway's router: the routes, JSON errors for unknown routes and wrong methods,
/// the body size limit and the per-request timeout.
pub fn router(state: AppState, config: &Config) -> Router {
    let timeout = config.options.request_timeout;
    let metrics = state.metrics();
    let openapi = state.openapi();
    Router::new()
        .merge(routes::health::routes())
        .merge(
            transcode::routes()
                .merge(routes::alerts::routes())
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    limits::admission,
                )),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::Unimplemented,
                "this route does not take that method",
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .with_state(state)
        .merge(console::routes())
        .route(
            "/metrics",
            axum::routing::get(observability::serve_metrics).with_state(metrics.clone()),
        )
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let json = [(http::header::CONTENT_TYPE, "application/json")];
                std::future::ready((json, openapi.clone()))
            }),
        )
        .layer(DefaultBodyLimit::max(config.options.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(
                    move |_: tower::BoxError| async move {
                        ApiError::new(
                            ErrorCode::DeadlineExceeded,
                            format!("the request took longer than {} ms", timeout.as_millis()),
                        )
                    },
                ))
                .timeout(timeout),
        )
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observability::record,
        ))
        .layer(observability::trace_layer())
}

/// How often the gateway pings an idle HTTP/2 client, and how long it waits for the answer.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the gateway on `listener` until `shutdown` is cancelled, then drains for at most the
/// configured grace period.
///
/// Its own accept loop rather than `axum::serve`, which sets no timer: without one, hyper
/// enforces no header-read timeout, and a client that never finishes its headers, or keeps an
/// idle connection, holds it forever. Here HTTP/1 headers (and the wait for the next request
/// of a kept-alive connection) are bounded by `--handshake-timeout`, HTTP/2 clients are pinged,
/// and each peer may hold at most `--max-connections-per-peer` connections.
pub fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> mfg_common::startup::Running {
    Box::pin(serve(config, listener, shutdown))
}

async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };

    let token = config.operator_token()?;
    let state = AppState::new(&config, &token)?.stopping_on(shutdown.clone());
    state.metrics().register_in(&config.metrics);
    let metering_stop = CancellationToken::new();
    let flusher = config.metering.enabled().then(|| {
        let cost = CostServiceClient::new(state.inner.channels.cost.clone());
        tokio::spawn(state.meter().clone().run(
            cost,
            config.metering.interval,
            metering_stop.clone(),
        ))
    });
    let app = router(state, &config);
    let limits = config.server.connections.limits();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    let graceful = GracefulShutdown::new();
    // Boxed, not pinned on the stack: dropping it must close the listener.
    let mut incoming = Box::pin(mfg_common::connections::admit(listener, limits));
    loop {
        let admitted = tokio::select! {
            () = shutdown.cancelled() => break,
            admitted = incoming.next() => admitted,
        };
        let Some(Ok(io)) = admitted else { continue };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    // Dropping the listener stops accepting; open connections finish their requests.
    drop(incoming);
    if tokio::time::timeout(config.server.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the shutdown grace period were cut");
    }
    // The last requests' usage.
    metering_stop.cancel();
    if let Some(flusher) = flusher {
        let _ = flusher.await;
    }
    Ok(())
}
