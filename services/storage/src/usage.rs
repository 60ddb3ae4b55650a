//! What the cost service's recommendations need to know of how a tenant uses the tiers
//! (`GetTenantUsageFacts`): how far back its queries read raw hot readings in the last
//! [`READS_DAYS`] days ([`raw_reads`]), how its series changed over the last day (from their
//! minute rollups), which of its machines sent readings in the last [`ACTIVE_DAYS`] days (from
//! their hour rollups), and what a reading takes in the archive.
//!
//! Rollups lag the hot tier by the tiering interval at most: the last minutes' readings are
//! not in these facts yet, which a day's shape and a week's activity do not notice.

pub mod raw_reads;
pub mod store;

use std::sync::Arc;

use chrono::Days;
use mfg_common::clock::SharedClock;
use uuid::Uuid;

pub use self::{
    raw_reads::RawReads,
    store::{SeriesShape, UsageStore},
};
use crate::{error::Result, micros::Micros, store::TenantNo, telemetry::store::TelemetryStore};

/// The days of raw reads a recommendation of hot retention rests on.
pub const READS_DAYS: u64 = 30;
/// The days without readings that make a machine idle.
pub const ACTIVE_DAYS: i64 = 7;

const DAY_MICROS: i64 = 86_400_000_000;

/// How a tenant uses the tiers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageFacts {
    /// How many days of its readings the hot tier holds.
    pub hot_days_held: u32,
    /// The age in days of the oldest raw hot reading its queries read in the last
    /// [`READS_DAYS`] days.
    pub oldest_raw_read_days: Option<u32>,
    /// Its series over the last day.
    pub series: Vec<SeriesShape>,
    /// Its machines that sent readings in the last [`ACTIVE_DAYS`] days.
    pub active_machines: Vec<String>,
    /// The bytes a reading takes in the cold tier.
    pub cold_bytes_per_reading: f64,
}

/// Reads the facts of the tenants' usage.
#[derive(Debug, Clone)]
pub struct Usage {
    store: Arc<dyn UsageStore>,
    telemetry: Arc<dyn TelemetryStore>,
    reads: Arc<RawReads>,
    clock: SharedClock,
}

impl Usage {
    /// Reads from the usage and telemetry stores, with the raw reads counted in memory.
    pub fn new(
        store: Arc<dyn UsageStore>,
        telemetry: Arc<dyn TelemetryStore>,
        reads: Arc<RawReads>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            telemetry,
            reads,
            clock,
        }
    }

    /// Where the raw reads are counted.
    pub fn raw_reads(&self) -> &Arc<RawReads> {
        &self.reads
    }

    /// A tenant's facts; `tenant_no` is its number, `None` while it has stored nothing.
    pub async fn facts(&self, tenant: Uuid, tenant_no: Option<TenantNo>) -> Result<UsageFacts> {
        let now = Micros::of(self.clock.system_now());
        let since = now
            .day()
            .checked_sub_days(Days::new(READS_DAYS))
            .unwrap_or_default();
        let oldest_raw_read_days = self.reads.oldest(tenant, since).await?;
        let Some(no) = tenant_no else {
            return Ok(UsageFacts {
                oldest_raw_read_days,
                ..UsageFacts::default()
            });
        };
        let (hot_days, series, active_machines, cold_bytes_per_reading) = tokio::try_join!(
            self.telemetry.hot_days(no),
            self.store.series_shapes(no, Micros(now.0 - DAY_MICROS)),
            self.store
                .active_machines(no, Micros(now.0 - ACTIVE_DAYS * DAY_MICROS)),
            self.store.cold_bytes_per_reading(no),
        )?;
        Ok(UsageFacts {
            hot_days_held: u32::try_from(hot_days.len()).unwrap_or(u32::MAX),
            oldest_raw_read_days,
            series,
            active_machines,
            cold_bytes_per_reading,
        })
    }
}
