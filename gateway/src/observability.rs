//! What the gateway tells operators: an HTTP span per request that continues the caller's W3C
//! trace (the gRPC client layer carries it on to the services, so one REST call is one trace),
//! and Prometheus metrics at `/metrics`: request counts and latency histograms per route, method
//! and status class. Every label takes a bounded set of values, whatever callers send: a route
//! of the router (or `unmatched`), a standard method (or `other`), a status class (`2xx`…).

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use tower_http::trace::{MakeSpan, TraceLayer};

/// Opens the span of an HTTP request as a child of the caller's trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeHttpSpan;

impl<B> MakeSpan<B> for MakeHttpSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> tracing::Span {
        let route = route_of(request);
        let span = tracing::info_span!(
            "http.request",
            otel.name = %format!("{} {route}", request.method()),
            otel.kind = "server",
            http.request.method = %request.method(),
            http.route = %route,
            trace_id = tracing::field::Empty,
        );
        mfg_common::trace_context::continue_trace(&span, request.headers());
        span
    }
}

/// The HTTP tracing layer.
pub fn trace_layer() -> TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    MakeHttpSpan,
> {
    TraceLayer::new_for_http().make_span_with(MakeHttpSpan)
}

/// The route template the router matched (`/v1/tenants/{tenant_id}`), never the raw path.
fn route_of<B>(request: &http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned())
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: &'static str,
}

/// The method's name if it is one of HTTP's standard methods, `other` otherwise.
fn method_label(method: &http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mfg_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to ~3 s.
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ])
        });
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
        }
    }
}

impl Metrics {
    /// Registers the same metrics in the process's registry too, which `--metrics-addr`
    /// serves (with `mfg up`, beside the services').
    pub fn register_in(&self, registry: &mfg_common::metrics::Registry) {
        registry.register(
            "gateway_http_requests",
            "HTTP requests answered",
            self.requests.clone(),
        );
        registry.register(
            "gateway_http_request_duration_seconds",
            "Time to answer an HTTP request",
            self.latency.clone(),
        );
    }

    /// Renders the metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

/// Middleware counting and timing every request.
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_of(&request);
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: status_class(response.status()),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The content type of `/metrics`: the OpenMetrics text format, which Prometheus scrapes (the
/// OpenAPI document says the same).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE))],
        metrics.render(),
    )
}
