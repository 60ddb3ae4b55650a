//! Rate-of-change windows are not stored: they are rebuilt from the series' stored readings at
//! a state's first reading in this process, whether the state was restored after a restart or
//! is new (a restart forgets the windows of states that had nothing to save).

use uuid::Uuid;

use super::{Observed, Shard};
use crate::{
    alerting::{
        domain::{alert_eval::RuleState, alert_rule::Condition},
        store::RuleStateKey,
    },
    error::Result,
    micros::Micros,
    telemetry::store::{Range, SeriesKey},
};

/// The stored readings of a series, as alerting reads them; telemetry implements it
/// ([`crate::telemetry::query::StoredHistory`]).
#[async_trait::async_trait]
pub trait SeriesHistory: Send + Sync + std::fmt::Debug {
    /// A tenant's series' readings in a range, oldest first; none for a series never stored.
    async fn readings(
        &self,
        tenant: Uuid,
        series: &SeriesKey,
        range: Range,
    ) -> Result<Vec<(Micros, f64)>>;
}

impl Shard {
    /// Fills the rate-of-change windows of a state with the readings of its series stored
    /// within the window before `reading`: up to the last reading it evaluated, for a restored
    /// state; before `reading`, for a new one. Without them (the store failed), its windows
    /// fill from new readings.
    pub(super) async fn seed(
        &mut self,
        key: &RuleStateKey,
        condition: &Condition,
        reading: &Observed,
    ) {
        let history = &self.history;
        let Some(window) = RuleState::rate_window(condition) else {
            return;
        };
        let end = match self.states.get(key).and_then(|state| state.last_ts) {
            Some(last) => last.saturating_add(1),
            None => reading.ts,
        };
        let range = Range {
            start: reading.ts.saturating_sub(window),
            end,
        };
        if range.start >= range.end {
            return;
        }
        let series = SeriesKey {
            machine_id: reading.machine_id.clone(),
            metric: reading.metric.clone(),
        };
        match history.readings(key.tenant_id, &series, range).await {
            Ok(points) => {
                if let Some(state) = self.states.get_mut(key) {
                    state.seed_windows(condition, &points);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "refilling a rate-of-change window failed: it fills from new readings");
            }
        }
    }
}
