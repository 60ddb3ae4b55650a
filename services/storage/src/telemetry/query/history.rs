//! The history of a series as alerting reads it: its readings in the hot tier, where the
//! windows it refills (minutes to hours back) always are.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    alerting::SeriesHistory,
    error::Result,
    micros::Micros,
    telemetry::store::{Range, SeriesKey, TelemetryStore},
};

/// Telemetry's side of [`SeriesHistory`], over the telemetry store.
#[derive(Debug, Clone)]
pub struct StoredHistory {
    store: Arc<dyn TelemetryStore>,
}

impl StoredHistory {
    /// Reads the history of series from `store`.
    pub fn new(store: Arc<dyn TelemetryStore>) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl SeriesHistory for StoredHistory {
    async fn readings(
        &self,
        tenant: Uuid,
        series: &SeriesKey,
        range: Range,
    ) -> Result<Vec<(Micros, f64)>> {
        let Some(tenant) = self.store.find_tenant(tenant).await? else {
            return Ok(Vec::new());
        };
        let Some(series) = self.store.find_series(tenant, series).await? else {
            return Ok(Vec::new());
        };
        self.store.points(series, range).await
    }
}
