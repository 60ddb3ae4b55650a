//! Rate-of-change windows are not stored: a state restored after a restart refills them from
//! the series' stored readings at its first new reading.

use super::{Observed, Shard};
use crate::{
    domain::{alert_eval::RuleState, alert_rule::Condition},
    store::{Range, RuleStateKey, SeriesKey},
};

impl Shard {
    /// Refills the rate-of-change windows of a restored state with the readings of its series
    /// stored within the window before `reading`. Without them (the store failed), its windows
    /// fill from new readings, as a new state's do.
    pub(super) async fn seed(
        &mut self,
        key: &RuleStateKey,
        condition: &Condition,
        reading: &Observed,
    ) {
        let history = &self.history;
        let (Some(window), Some(last)) = (
            RuleState::rate_window(condition),
            self.states.get(key).and_then(|state| state.last_ts),
        ) else {
            return;
        };
        let range = Range {
            start_micros: reading.ts.saturating_sub(window),
            end_micros: last.saturating_add(1),
        };
        let series = SeriesKey {
            machine_id: reading.machine_id.clone(),
            metric: reading.metric.clone(),
        };
        let points = async {
            let Some(tenant) = history.find_tenant(key.tenant_id).await? else {
                return Ok(Vec::new());
            };
            let Some(series) = history.find_series(tenant, &series).await? else {
                return Ok(Vec::new());
            };
            history.points(series, range).await
        };
        match points.await {
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
