//! Queries of one series over a range: raw points or aggregated buckets, and the latest value
//! of every metric of a machine. So far every range is served by the hot tier; the warm and
//! cold tiers join the plan with the tiering jobs.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    domain::{Aggregation, Rollup},
    error::{Result, StorageError},
    ingest::Ingest,
    store::{Latest, Range, SeriesKey, TelemetryStore},
};

/// The most raw points one query returns; longer ranges need an aggregation.
pub const MAX_POINTS: usize = 100_000;
/// The most buckets one query returns.
pub const MAX_BUCKETS: i64 = 100_000;

/// A tier of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Raw readings in the database.
    Hot,
    /// Rollups in the database.
    Warm,
    /// Parquet in object storage.
    Cold,
}

/// What to read.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// The tenant.
    pub tenant: Uuid,
    /// The series.
    pub key: SeriesKey,
    /// The range.
    pub range: Range,
    /// Buckets of this width (µs) with this aggregation, or raw points.
    pub aggregate: Option<(i64, Aggregation)>,
}

/// The answer to a [`SeriesQuery`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesAnswer {
    /// Raw points `(ts µs, value)`, when no aggregation was asked.
    pub points: Vec<(i64, f64)>,
    /// Buckets `(start µs, value, count)`, when one was.
    pub buckets: Vec<(i64, f64, u64)>,
    /// The tiers that served the query.
    pub tiers: Vec<Tier>,
}

/// Answers queries.
#[derive(Debug, Clone)]
pub struct Queries {
    store: Arc<dyn TelemetryStore>,
    ingest: Ingest,
}

impl Queries {
    /// Creates the query side over a store; the ingest path knows the tenants' numbers.
    pub fn new(store: Arc<dyn TelemetryStore>, ingest: Ingest) -> Self {
        Self { store, ingest }
    }

    /// Answers a series query.
    pub async fn series(&self, query: &SeriesQuery) -> Result<SeriesAnswer> {
        let Some(tenant) = self.store.find_tenant(query.tenant).await? else {
            return Ok(SeriesAnswer::default());
        };
        let Some(series) = self.store.find_series(tenant, &query.key).await? else {
            return Ok(SeriesAnswer::default());
        };
        match query.aggregate {
            None => {
                let points = self.store.points(series, query.range).await?;
                if points.len() > MAX_POINTS {
                    return Err(StorageError::invalid(
                        "end",
                        format!(
                            "the range holds more than {MAX_POINTS} readings: narrow it or ask for an aggregation"
                        ),
                    ));
                }
                Ok(SeriesAnswer {
                    tiers: if points.is_empty() {
                        vec![]
                    } else {
                        vec![Tier::Hot]
                    },
                    points,
                    buckets: Vec::new(),
                })
            }
            Some((step, aggregation)) => {
                let rollups = self.store.buckets(series, query.range, step).await?;
                Ok(SeriesAnswer {
                    tiers: if rollups.is_empty() {
                        vec![]
                    } else {
                        vec![Tier::Hot]
                    },
                    points: Vec::new(),
                    buckets: rollups
                        .iter()
                        .map(|(start, rollup): &(i64, Rollup)| {
                            (*start, rollup.value(aggregation), rollup.count)
                        })
                        .collect(),
                })
            }
        }
    }

    /// The last value of every metric of a machine.
    pub async fn latest(&self, tenant: Uuid, machine_id: &str) -> Result<Vec<Latest>> {
        let Some(tenant) = self.store.find_tenant(tenant).await? else {
            return Ok(Vec::new());
        };
        self.store.latest(tenant, machine_id).await
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TelemetryStore> {
        &self.store
    }

    /// The ingest path.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }
}
