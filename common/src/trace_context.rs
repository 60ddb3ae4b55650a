//! W3C trace-context propagation across gRPC calls: a client layer injects the current span's
//! context into outgoing request headers, and the server layer continues the caller's trace in
//! the span it opens for each request.

use std::task::{Context, Poll};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
};
use tower_http::{
    classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier},
    trace::{MakeSpan, TraceLayer},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes the current span's trace context into headers (`traceparent`, `tracestate`).
pub fn inject_current(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers))
    });
}

/// Reads a caller's trace context from headers.
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// A tower layer for gRPC clients that injects the current trace context into every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectTraceContextLayer;

impl<S> tower::Layer<S> for InjectTraceContextLayer {
    type Service = InjectTraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectTraceContext {
            inner,
            authorization: None,
        }
    }
}

/// The service made by [`InjectTraceContextLayer`]; it can also carry the caller's credential.
#[derive(Debug, Clone)]
pub struct InjectTraceContext<S> {
    inner: S,
    authorization: Option<HeaderValue>,
}

impl<S> InjectTraceContext<S> {
    /// Sends `authorization: Bearer <token>` with every request that has none of its own.
    pub fn with_bearer(mut self, token: &str) -> Result<Self, http::header::InvalidHeaderValue> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }
}

impl<S, B> tower::Service<http::Request<B>> for InjectTraceContext<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        inject_current(request.headers_mut());
        if let Some(authorization) = &self.authorization
            && !request.headers().contains_key(http::header::AUTHORIZATION)
        {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
        }
        self.inner.call(request)
    }
}

/// Opens the server span of a gRPC request as a child of the caller's trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeServerSpan;

impl<B> MakeSpan<B> for MakeServerSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> tracing::Span {
        let path = request.uri().path();
        let span = tracing::info_span!(
            "grpc.request",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %path,
            trace_id = tracing::field::Empty,
        );
        continue_trace(&span, request.headers());
        span
    }
}

/// Makes `span` a child of the trace context in `headers`, if any, and records the trace id in
/// its `trace_id` field (which must be declared), so that every log line inside carries it.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    use opentelemetry::trace::TraceContextExt as _;
    let parent = extract(headers);
    let remote = parent.span().span_context().trace_id();
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "cannot continue the caller's trace");
    }
    let own = span.context().span().span_context().trace_id();
    let trace_id = if own != opentelemetry::trace::TraceId::INVALID {
        own
    } else {
        remote
    };
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The server-side tracing layer: one span per request, continuing the caller's trace.
pub type ServerTraceLayer = TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, MakeServerSpan>;

/// Returns the server-side tracing layer. Answers that are the caller's doing (invalid
/// argument, not found, permission denied…) are not logged as failures; server-side codes are.
pub fn server_layer() -> ServerTraceLayer {
    let classifier = [
        GrpcCode::Cancelled,
        GrpcCode::InvalidArgument,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Unauthenticated,
        // A dependency that is down (logged as a warning where it is found), or a stop telling
        // open streams to reconnect: not a failure of the call to log as an error.
        GrpcCode::Unavailable,
    ]
    .into_iter()
    .fold(
        GrpcErrorsAsFailures::new(),
        GrpcErrorsAsFailures::with_success,
    );
    TraceLayer::new(SharedClassifier::new(classifier)).make_span_with(MakeServerSpan)
}

/// The W3C trace id of the current span, empty when it is part of no trace.
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt as _;
    let id = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id();
    if id == opentelemetry::trace::TraceId::INVALID {
        String::new()
    } else {
        id.to_string()
    }
}
