//! What the storage service meters for the cost service (`mfg_common::metering`):
//! - readings ingested: the new readings of each committed batch (repeats are not stored, so
//!   not counted), through the ingest observer seam;
//! - query points: the readings a query answered with, raw or summarized in its buckets, and
//!   the latest values read;
//! - alert evaluations: each reading's evaluation by each rule that selects it, counted by the
//!   evaluator (`alerting::EvaluatorConfig::meter`);
//! - hot, warm and cold storage, as levels sampled every [`FOOTPRINT_FLUSHES`] flushes
//!   ([`storage_levels`] of the store's footprint) and held until the next sample. The hot and warm tiers are tables every tenant shares: their
//!   size as the database reports it (tables and indexes) is split between the tenants in
//!   proportion to their readings in the hot tier, and to their series-hours in the warm tier
//!   (the hour rollups it holds for them). The cold tier's objects are each one tenant's, with
//!   their sizes in the archive's manifest.

use mfg_common::metering::UsageMeter;
use mfg_proto::cost::v1::Meter;
use uuid::Uuid;

use crate::telemetry::{
    ingest::{IngestObserver, Outcome},
    query::SeriesAnswer,
    store::Footprint,
};

/// How many flushes apart the tiers' sizes are sampled: a minute at the default 5 s.
pub const FOOTPRINT_FLUSHES: u32 = 12;

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

/// Each tenant's bytes in each tier: its share of the shared tiers, its own cold objects.
pub fn storage_levels(footprint: &Footprint) -> [(Meter, Vec<(Uuid, f64)>); 3] {
    let share = |bytes: u64, weight: &dyn Fn(usize) -> u64| -> Vec<(Uuid, f64)> {
        let total: u64 = (0..footprint.tenants.len()).map(weight).sum();
        footprint
            .tenants
            .iter()
            .enumerate()
            .filter(|_| total > 0)
            .map(|(i, t)| (t.tenant, bytes as f64 * weight(i) as f64 / total as f64))
            .collect()
    };
    let tenants = &footprint.tenants;
    [
        (
            Meter::HotStorage,
            share(footprint.hot_bytes, &|i| tenants[i].hot_readings),
        ),
        (
            Meter::WarmStorage,
            share(footprint.warm_bytes, &|i| tenants[i].warm_hours),
        ),
        (
            Meter::ColdStorage,
            tenants
                .iter()
                .map(|t| (t.tenant, t.cold_bytes as f64))
                .collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::store::TenantFootprint;

    #[test]
    fn shared_tiers_are_split_by_readings_and_series_hours() {
        let tenant = |n: u128, hot_readings, warm_hours, cold_bytes| TenantFootprint {
            tenant: Uuid::from_u128(n),
            hot_readings,
            warm_hours,
            cold_bytes,
        };
        let footprint = Footprint {
            hot_bytes: 1_000,
            warm_bytes: 300,
            tenants: vec![tenant(1, 3, 1, 50), tenant(2, 1, 2, 0)],
        };
        let [(hot, hot_levels), (warm, warm_levels), (cold, cold_levels)] =
            storage_levels(&footprint);
        assert_eq!(
            (hot, warm, cold),
            (Meter::HotStorage, Meter::WarmStorage, Meter::ColdStorage)
        );
        assert_eq!(
            hot_levels,
            [(Uuid::from_u128(1), 750.0), (Uuid::from_u128(2), 250.0)]
        );
        assert_eq!(
            warm_levels,
            [(Uuid::from_u128(1), 100.0), (Uuid::from_u128(2), 200.0)]
        );
        assert_eq!(
            cold_levels,
            [(Uuid::from_u128(1), 50.0), (Uuid::from_u128(2), 0.0)]
        );
        // Nothing to split by: nobody is charged for an empty tier's overhead.
        let empty = Footprint {
            tenants: vec![tenant(1, 0, 0, 0)],
            ..footprint
        };
        assert!(storage_levels(&empty)[0].1.is_empty());
    }
}
