//! What the storage service meters for the cost service (`mfg_common::metering`):
//! - readings ingested: the new readings of each committed batch (repeats are not stored, so
//!   not counted), through the ingest observer seam;
//! - query points: the readings a query answered with, raw or summarized in its buckets, and
//!   the latest values read;
//! - alert evaluations: each reading's evaluation by each rule that selects it, counted by the
//!   evaluator (`alerting::EvaluatorConfig::meter`).

use mfg_common::metering::UsageMeter;
use mfg_proto::cost::v1::Meter;
use uuid::Uuid;

use crate::telemetry::{
    ingest::{IngestObserver, Outcome},
    query::SeriesAnswer,
};

/// Counts the readings of committed batches.
#[derive(Debug)]
pub struct IngestMeter(pub UsageMeter);

impl IngestObserver for IngestMeter {
    fn committed(&self, tenant: Uuid, outcome: &Outcome) {
        self.0
            .add(tenant, Meter::IngestedReadings, f64::from(outcome.accepted));
    }
}

/// The points a query answered with: its raw points, or the readings its buckets summarize.
pub fn query_points(answer: &SeriesAnswer) -> f64 {
    let summarized: u64 = answer.buckets.iter().map(|(_, _, count)| count).sum();
    (answer.points.len() as u64 + summarized) as f64
}
