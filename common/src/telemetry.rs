//! Logs and traces: a `tracing` subscriber writing text or JSON logs, and an OpenTelemetry tracer
//! that exports over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The tracer and the W3C
//! propagator are installed even without an endpoint, so every log line of a request carries its
//! `trace_id` and trace context flows between services.

use anyhow::Context as _;
use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging and tracing options.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log filter, in `tracing` directive syntax (e.g. `info,mfg_tenant=debug`); default
    /// `info`, and `warn` for `mfg up --demo`, whose requests would fill the screen.
    #[arg(long = "log-filter", env = "MFG_LOG", global = true)]
    pub log_filter: Option<String>,
    /// Log format.
    #[arg(long = "log-format", env = "MFG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// OTLP/gRPC collector endpoint (e.g. `http://127.0.0.1:4317`); traces are exported only
    /// when it is set.
    #[arg(
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        global = true
    )]
    pub otlp_endpoint: Option<String>,
    /// The service name reported in traces; defaults to the name of the service that runs.
    #[arg(long = "service-name", env = "OTEL_SERVICE_NAME", global = true)]
    pub service_name: Option<String>,
}

impl Default for TelemetryArgs {
    fn default() -> Self {
        Self {
            log_filter: None,
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            service_name: None,
        }
    }
}

/// Keeps the tracer provider alive; [`TelemetryGuard::shutdown`] flushes pending spans.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes pending spans and stops exporting.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "failed to flush spans");
        }
    }
}

/// Installs the process's subscriber and, with an OTLP endpoint, its tracer provider.
///
/// Call once per process, inside the Tokio runtime, before anything logs.
pub fn init(args: &TelemetryArgs, default_service_name: &str) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let service_name = args
        .service_name
        .clone()
        .unwrap_or_else(|| default_service_name.to_owned());

    // A tracer provider is installed even without an exporter, so that every request gets a
    // trace id (carried by its log lines) and trace context flows between services.
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service_name.clone())
            .build(),
    );
    if let Some(endpoint) = &args.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .context("cannot build the OTLP span exporter")?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());

    let directives = args.log_filter.as_deref().unwrap_or("info");
    let filter = EnvFilter::try_new(directives)
        .with_context(|| format!("invalid log filter `{directives}`"))?;
    let fmt_layer = match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
    };
    let otel_layer =
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name.clone()));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .context("a tracing subscriber is already installed")?;

    if let Some(endpoint) = &args.otlp_endpoint {
        tracing::info!(%endpoint, service = %service_name, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}
