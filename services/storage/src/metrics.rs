//! The storage service's Prometheus metrics: readings and batches ingested, rejections by
//! reason, ack latency, open streams, alert evaluation and fan-out, tiering runs, and the
//! database pool. Labels take bounded values only (no tenant, machine or key ids).

use std::sync::{Arc, OnceLock};

use mfg_common::{
    db::DbPool,
    metrics::{PoolCollector, Registry},
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _},
    metrics::{
        MetricType, counter::ConstCounter, counter::Counter, family::Family, gauge::ConstGauge,
        gauge::Gauge, histogram::Histogram,
    },
};

use crate::{
    alerting::SubscriberCaps,
    service::ReadyStorage,
    telemetry::{domain::ingest::RejectReason, ingest::Outcome},
};

/// Seconds, from 100 µs to ~10 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadingLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    /// `stream` or `unary`.
    via: &'static str,
    /// `acked`, or the gRPC code that refused the whole batch.
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    outcome: &'static str,
}

/// How readings came in.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    /// `StreamTelemetry`.
    Stream,
    /// `IngestBatch` (and REST ingest, through it).
    Unary,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Unary => "unary",
        }
    }
}

/// The metrics the storage service records as it works.
#[derive(Debug)]
pub struct StorageMetrics {
    readings: Family<ReadingLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    batches: Family<BatchLabels, Counter>,
    ack_latency: Histogram,
    open_streams: Gauge,
    subscribers_lagged: Counter,
    tiering_runs: Family<RunLabels, Counter>,
    tiering_seconds: Histogram,
}

impl StorageMetrics {
    /// Registers the storage service's metrics, and the collectors that read the alerting and
    /// the pool at each scrape, into `registry`.
    pub fn register(
        registry: &Registry,
        ready: ReadyStorage,
        subscribers: Arc<SubscriberCaps>,
        pool: Arc<OnceLock<DbPool>>,
        max_connections: u32,
    ) -> Arc<Self> {
        let metrics = Arc::new(Self {
            readings: Family::default(),
            rejections: Family::default(),
            batches: Family::default(),
            ack_latency: Histogram::new(LATENCY_BUCKETS),
            open_streams: Gauge::default(),
            subscribers_lagged: Counter::default(),
            tiering_runs: Family::default(),
            tiering_seconds: Histogram::new(LATENCY_BUCKETS),
        });
        let m = &metrics;
        registry.register(
            "storage_readings",
            "Readings ingested: accepted, duplicate or rejected",
            m.readings.clone(),
        );
        registry.register(
            "storage_readings_rejected",
            "Readings rejected, by reason",
            m.rejections.clone(),
        );
        registry.register(
            "storage_batches",
            "Batches ingested, by how they came and how they were answered",
            m.batches.clone(),
        );
        registry.register(
            "storage_ack_latency_seconds",
            "Time from a batch's arrival to its ack (durable)",
            m.ack_latency.clone(),
        );
        registry.register(
            "storage_open_streams",
            "Open StreamTelemetry streams",
            m.open_streams.clone(),
        );
        registry.register(
            "storage_alert_subscribers_lagged",
            "Times a subscriber fell behind the live fan-out and was resumed from the log",
            m.subscribers_lagged.clone(),
        );
        registry.register(
            "storage_tiering_runs",
            "Runs of the rollup, archive and retention jobs, by outcome",
            m.tiering_runs.clone(),
        );
        registry.register(
            "storage_tiering_duration_seconds",
            "How long a tiering run took",
            m.tiering_seconds.clone(),
        );
        registry.register_collector(AlertingCollector { ready, subscribers });
        registry.register_collector(PoolCollector::new("storage", pool, max_connections));
        metrics
    }

    /// Records an acked batch and its readings.
    pub fn acked(&self, via: Via, outcome: &Outcome, latency: std::time::Duration) {
        self.batch(via, "acked");
        self.ack_latency.observe(latency.as_secs_f64());
        let count = |outcome| self.readings.get_or_create(&ReadingLabels { outcome });
        count("accepted").inc_by(u64::from(outcome.accepted));
        count("duplicate").inc_by(u64::from(outcome.duplicates));
        count("rejected").inc_by(outcome.rejected.len() as u64);
        for rejection in &outcome.rejected {
            self.rejections
                .get_or_create(&RejectionLabels {
                    reason: rejection.reason.label(),
                })
                .inc();
        }
    }

    /// Records a batch refused as a whole (over the rate, suspended, unavailable…).
    pub fn refused(&self, via: Via, code: tonic::Code) {
        self.batch(via, code_label(code));
    }

    fn batch(&self, via: Via, result: &'static str) {
        self.batches
            .get_or_create(&BatchLabels {
                via: via.label(),
                result,
            })
            .inc();
    }

    /// Counts an open stream until the guard is dropped.
    pub fn stream_opened(self: &Arc<Self>) -> OpenStream {
        self.open_streams.inc();
        OpenStream(self.clone())
    }

    /// Records that a subscriber lagged.
    pub fn subscriber_lagged(&self) {
        self.subscribers_lagged.inc();
    }

    /// Records a tiering run.
    pub fn tiering_ran(&self, ok: bool, took: std::time::Duration) {
        let outcome = if ok { "ok" } else { "failed" };
        self.tiering_runs
            .get_or_create(&RunLabels { outcome })
            .inc();
        self.tiering_seconds.observe(took.as_secs_f64());
    }
}

/// An open stream, counted while it lives.
#[derive(Debug)]
pub struct OpenStream(Arc<StorageMetrics>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.dec();
    }
}

impl RejectReason {
    /// The reason as a metric label.
    fn label(self) -> &'static str {
        match self {
            Self::NotFinite => "not_finite",
            Self::UnknownMachine => "unknown_machine",
            Self::TooOld => "too_old",
            Self::InFuture => "in_future",
            Self::InvalidMetric => "invalid_metric",
            Self::BatchLimit => "batch_limit",
            Self::MissingTimestamp => "missing_timestamp",
        }
    }
}

fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "ok",
        C::Cancelled => "cancelled",
        C::Unknown => "unknown",
        C::InvalidArgument => "invalid_argument",
        C::DeadlineExceeded => "deadline_exceeded",
        C::NotFound => "not_found",
        C::AlreadyExists => "already_exists",
        C::PermissionDenied => "permission_denied",
        C::ResourceExhausted => "resource_exhausted",
        C::FailedPrecondition => "failed_precondition",
        C::Aborted => "aborted",
        C::OutOfRange => "out_of_range",
        C::Unimplemented => "unimplemented",
        C::Internal => "internal",
        C::Unavailable => "unavailable",
        C::DataLoss => "data_loss",
        C::Unauthenticated => "unauthenticated",
    }
}

/// Reads the alerting's counters at each scrape: readings evaluated and coalesced, events
/// published, subscribers held.
#[derive(Debug)]
struct AlertingCollector {
    ready: ReadyStorage,
    subscribers: Arc<SubscriberCaps>,
}

impl Collector for AlertingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = |encoder: &mut DescriptorEncoder, name, help, value: usize| {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)
        };
        gauge(
            &mut encoder,
            "mfg_storage_alert_subscribers",
            "Alert subscriptions open (gRPC and SSE)",
            self.subscribers.held(),
        )?;
        let Some(storage) = self.ready.get() else {
            return Ok(());
        };
        let evaluator = storage.alerting.evaluator();
        for (name, help, value) in [
            (
                "mfg_storage_alert_readings_evaluated",
                "Readings handed to the alert rules of their metric",
                evaluator.observed(),
            ),
            (
                "mfg_storage_alert_readings_coalesced",
                "Readings coalesced while alert evaluation was behind",
                evaluator.coalesced(),
            ),
            (
                "mfg_storage_alert_events_published",
                "Alert events published to subscribers, once written",
                storage.alerting.journal().published(),
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}
