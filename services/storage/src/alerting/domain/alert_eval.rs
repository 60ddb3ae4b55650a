//! The evaluation of one rule for one machine: a small state machine fed with the series'
//! readings in time order, and with clock ticks for no-data. It says when the rule fires (for
//! the first time, or again while its alert is open) and when it clears; the alert lifecycle
//! turns that into alerts and events.
//!
//! Semantics, per condition:
//! - **threshold**: fires on every reading that compares true once the comparison has held,
//!   reading after reading, for `for` (measured in the readings' timestamps). It clears on the
//!   first reading back past the clear value (hysteresis), or past the threshold without one. A
//!   value flapping between the two raises nothing new: one alert, its count growing on each
//!   reading past the threshold.
//! - **rate of change**: the change per second between the oldest reading in the window and
//!   the newest; fires while it compares true, clears when it does not. Needs two readings.
//! - **no data**: fires once when no reading has arrived for the duration (by the service's
//!   clock, as readings arrive: a machine's clock may be wrong); the next reading clears it. Its
//!   value is the silence, in seconds.
//! - **any of**: fires when any branch fires, clears when every branch is clear.
//!
//! A reading no newer than the last one evaluated for the series (a resend, or a late reading)
//! is not evaluated again.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{alerting::domain::alert_rule::Condition, micros::Micros};

/// What one step of evaluation says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// Nothing changed.
    Quiet,
    /// The rule fires with this value: an alert opens, or the open one counts a repeat.
    Firing(f64),
    /// The rule's condition cleared: its alert resolves.
    Cleared,
}

/// The state of one branch of a condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BranchState {
    /// Whether the branch is firing.
    pub active: bool,
    /// Since when (µs, reading time) a threshold's comparison has held, while it waits for
    /// its "for" duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<Micros>,
    /// When (µs, service clock) a reading last arrived, for no-data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_arrival: Option<Micros>,
    /// The readings of a rate-of-change window; not stored, refilled from the series' stored
    /// readings after a restart ([`RuleState::seed_windows`]).
    #[serde(skip)]
    pub window: VecDeque<(Micros, f64)>,
}

/// The state of one rule for one machine: what is persisted so that a restart continues
/// where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Whether the rule is firing (an alert is open, unless someone resolved it by hand).
    pub active: bool,
    /// The newest reading evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<Micros>,
    /// The branches' states, in the condition's order.
    pub branches: Vec<BranchState>,
}

impl RuleState {
    /// A new state for a condition, as if a reading had arrived at `now` (µs, service clock):
    /// a machine watched for no-data is given the full duration from the moment it is watched.
    pub fn new(condition: &Condition, now: Micros) -> Self {
        Self {
            active: false,
            last_ts: None,
            branches: condition
                .branches()
                .iter()
                .map(|_| BranchState {
                    last_arrival: Some(now),
                    ..BranchState::default()
                })
                .collect(),
        }
    }

    fn fit(&mut self, condition: &Condition, now: Micros) {
        // A rule whose condition changed shape starts afresh.
        if self.branches.len() != condition.branches().len() {
            *self = Self::new(condition, now);
        }
    }

    /// Evaluates a reading `(ts, value)` that arrived at `now` (µs, service clock).
    pub fn on_reading(
        &mut self,
        condition: &Condition,
        ts: Micros,
        value: f64,
        now: Micros,
    ) -> Signal {
        self.fit(condition, now);
        if self.last_ts.is_some_and(|last| ts <= last) {
            return Signal::Quiet;
        }
        self.last_ts = Some(ts);
        let mut fired = None;
        for (branch, state) in condition.branches().iter().zip(&mut self.branches) {
            if let Some(value) = state.on_reading(branch, ts, value, now) {
                fired.get_or_insert(value);
            }
        }
        self.settle(fired)
    }

    /// Evaluates the passing of time to `now` (µs, service clock): no-data branches fire.
    pub fn on_tick(&mut self, condition: &Condition, now: Micros) -> Signal {
        self.fit(condition, now);
        let mut fired = None;
        for (branch, state) in condition.branches().iter().zip(&mut self.branches) {
            if let Condition::NoData { duration_micros } = branch {
                let silent_since = state.last_arrival.unwrap_or(now);
                if !state.active && now - silent_since >= *duration_micros {
                    state.active = true;
                    fired.get_or_insert((now - silent_since) as f64 / 1e6);
                }
            }
        }
        self.settle(fired)
    }

    /// The longest rate-of-change window of a condition (µs), if it has one.
    pub fn rate_window(condition: &Condition) -> Option<i64> {
        condition
            .branches()
            .iter()
            .filter_map(|branch| match branch {
                Condition::RateOfChange { window_micros, .. } => Some(*window_micros),
                _ => None,
            })
            .max()
    }

    /// Refills the rate-of-change windows of a state restored after a restart (they are not
    /// stored) with the series' stored readings up to the last one evaluated, oldest first.
    /// The next reading trims them to its window.
    pub fn seed_windows(&mut self, condition: &Condition, history: &[(Micros, f64)]) {
        let last = self.last_ts.unwrap_or(Micros::MAX);
        for (branch, state) in condition.branches().iter().zip(&mut self.branches) {
            if matches!(branch, Condition::RateOfChange { .. }) && state.window.is_empty() {
                state
                    .window
                    .extend(history.iter().copied().filter(|(ts, _)| *ts <= last));
            }
        }
    }

    fn settle(&mut self, fired: Option<f64>) -> Signal {
        if let Some(value) = fired {
            self.active = true;
            Signal::Firing(value)
        } else if self.active && self.branches.iter().all(|b| !b.active) {
            self.active = false;
            Signal::Cleared
        } else {
            Signal::Quiet
        }
    }
}

impl BranchState {
    /// Evaluates a reading; returns the value the branch fires with, if it fires.
    fn on_reading(
        &mut self,
        condition: &Condition,
        ts: Micros,
        value: f64,
        now: Micros,
    ) -> Option<f64> {
        match condition {
            Condition::Threshold {
                comparison,
                value: threshold,
                for_micros,
                clear_value,
            } => {
                if comparison.holds(value, *threshold) {
                    let since = *self.pending_since.get_or_insert(ts);
                    if self.active || ts - since >= *for_micros {
                        self.active = true;
                        return Some(value);
                    }
                } else {
                    self.pending_since = None;
                    let clear = clear_value.unwrap_or(*threshold);
                    if self.active && !comparison.holds(value, clear) {
                        self.active = false;
                    }
                }
                None
            }
            Condition::RateOfChange {
                comparison,
                per_second,
                window_micros,
            } => {
                self.window.push_back((ts, value));
                while self
                    .window
                    .front()
                    .is_some_and(|(first, _)| *first < ts - *window_micros)
                {
                    self.window.pop_front();
                }
                let (first_ts, first_value) = *self.window.front()?;
                if first_ts == ts {
                    return None;
                }
                let rate = (value - first_value) / ((ts - first_ts) as f64 / 1e6);
                self.active = comparison.holds(rate, *per_second);
                self.active.then_some(rate)
            }
            Condition::NoData { .. } => {
                self.last_arrival = Some(now);
                self.active = false;
                None
            }
            Condition::AnyOf(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::domain::alert_rule::Comparison;

    const S: i64 = 1_000_000;

    fn threshold(for_s: i64, clear: Option<f64>) -> Condition {
        Condition::Threshold {
            comparison: Comparison::Greater,
            value: 80.0,
            for_micros: for_s * S,
            clear_value: clear,
        }
    }

    /// Feeds one reading a second from t = 1 s; returns the signals.
    fn feed(condition: &Condition, values: &[f64]) -> Vec<Signal> {
        let mut state = RuleState::new(condition, Micros(0));
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let t = Micros((i as i64 + 1) * S);
                state.on_reading(condition, t, *v, t)
            })
            .collect()
    }

    fn firings(signals: &[Signal]) -> (usize, usize) {
        let fired = signals
            .iter()
            .filter(|s| matches!(s, Signal::Firing(_)))
            .count();
        let cleared = signals.iter().filter(|s| **s == Signal::Cleared).count();
        (fired, cleared)
    }

    #[test]
    fn a_threshold_fires_on_each_reading_past_it_and_clears_below_it() {
        let signals = feed(&threshold(0, None), &[70.0, 81.0, 85.0, 79.0, 90.0]);
        assert_eq!(
            signals,
            [
                Signal::Quiet,
                Signal::Firing(81.0),
                Signal::Firing(85.0),
                Signal::Cleared,
                Signal::Firing(90.0),
            ]
        );
    }

    #[test]
    fn hysteresis_keeps_a_flapping_value_in_one_alert() {
        let flapping = [81.0, 79.0, 81.5, 78.0, 80.5, 79.5, 82.0, 74.0, 76.0];
        let without = feed(&threshold(0, None), &flapping);
        assert_eq!(
            firings(&without).1,
            4,
            "without hysteresis it clears each time"
        );
        let with = feed(&threshold(0, Some(75.0)), &flapping);
        assert_eq!(
            with.iter().position(|s| *s == Signal::Cleared),
            Some(7),
            "it clears only once back below 75"
        );
        assert_eq!(
            firings(&with),
            (4, 1),
            "one alert: fired, 3 repeats, 1 clear"
        );
    }

    #[test]
    fn a_for_duration_needs_the_comparison_to_hold_throughout() {
        // Past 80 for 3 s: at 1, 2, 3, 4 s it has held for 0, 1, 2, 3 s.
        let signals = feed(&threshold(3, None), &[81.0, 82.0, 83.0, 84.0]);
        assert_eq!(signals[..3], [Signal::Quiet; 3]);
        assert_eq!(signals[3], Signal::Firing(84.0));
        // A dip restarts the timer.
        let signals = feed(&threshold(3, None), &[81.0, 82.0, 70.0, 83.0, 84.0, 85.0]);
        assert!(signals[..5].iter().all(|s| *s == Signal::Quiet));
        assert_eq!(signals[5], Signal::Quiet, "held 2 s since the dip");
    }

    #[test]
    fn a_pending_timer_survives_its_state_being_stored_and_loaded() {
        let condition = threshold(3, None);
        let mut state = RuleState::new(&condition, Micros(0));
        assert_eq!(
            state.on_reading(&condition, Micros(S), 81.0, Micros(S)),
            Signal::Quiet
        );
        assert_eq!(
            state.on_reading(&condition, Micros(2 * S), 82.0, Micros(2 * S)),
            Signal::Quiet
        );
        let stored = serde_json::to_string(&state).unwrap();
        let mut loaded: RuleState = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            loaded.on_reading(&condition, Micros(4 * S), 83.0, Micros(4 * S)),
            Signal::Firing(83.0)
        );
        assert_eq!(
            loaded.on_reading(&condition, Micros(4 * S), 83.0, Micros(4 * S)),
            Signal::Quiet,
            "a resend is not evaluated twice"
        );
    }

    #[test]
    fn rate_of_change_compares_the_slope_over_the_window() {
        let condition = Condition::RateOfChange {
            comparison: Comparison::Greater,
            per_second: 2.0,
            window_micros: 3 * S,
        };
        // Slopes over up to 3 s: +1/s, then a jump of 10 in 1 s, then flat.
        let signals = feed(&condition, &[0.0, 1.0, 2.0, 12.0, 12.0, 12.0, 12.0, 12.0]);
        assert_eq!(signals[..3], [Signal::Quiet; 3]);
        assert_eq!(signals[3], Signal::Firing(4.0), "12 over 3 s");
        assert!(matches!(signals[4], Signal::Firing(r) if (r - 11.0 / 3.0).abs() < 1e-9));
        assert!(matches!(signals[5], Signal::Firing(r) if (r - 10.0 / 3.0).abs() < 1e-9));
        assert_eq!(signals[6], Signal::Cleared, "the jump left the window");
        assert_eq!(signals[7], Signal::Quiet);
    }

    #[test]
    fn a_restored_rate_window_is_refilled_from_history() {
        let condition = Condition::RateOfChange {
            comparison: Comparison::Greater,
            per_second: 2.0,
            window_micros: 3 * S,
        };
        let mut state = RuleState::new(&condition, Micros(0));
        assert_eq!(
            state.on_reading(&condition, Micros(0), 0.0, Micros(0)),
            Signal::Quiet
        );
        assert_eq!(
            state.on_reading(&condition, Micros(S), 10.0, Micros(S)),
            Signal::Firing(10.0)
        );
        // A restart: what is stored of the state, without its window.
        let mut restored: RuleState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert!(restored.branches[0].window.is_empty());
        let mut unseeded = restored.clone();
        // A reading stored after the last one evaluated is not taken twice.
        restored.seed_windows(
            &condition,
            &[(Micros(0), 0.0), (Micros(S), 10.0), (Micros(2 * S), 99.0)],
        );
        assert_eq!(
            restored.branches[0].window,
            [(Micros(0), 0.0), (Micros(S), 10.0)]
        );
        // Refilled, the jump is still in the window: firing at 5/s at 2 s, 10/3 a second at 3 s.
        assert_eq!(
            restored.on_reading(&condition, Micros(2 * S), 10.0, Micros(2 * S)),
            Signal::Firing(5.0)
        );
        assert!(matches!(
            restored.on_reading(&condition, Micros(3 * S), 10.0, Micros(3 * S)),
            Signal::Firing(r) if (r - 10.0 / 3.0).abs() < 1e-9
        ));
        // Without, it would clear at once on a flat second.
        assert_eq!(
            unseeded.on_reading(&condition, Micros(2 * S), 10.0, Micros(2 * S)),
            Signal::Quiet
        );
        assert_eq!(
            unseeded.on_reading(&condition, Micros(3 * S), 10.0, Micros(3 * S)),
            Signal::Cleared
        );
    }

    #[test]
    fn no_data_fires_once_after_the_silence_and_clears_on_the_next_reading() {
        let condition = Condition::NoData {
            duration_micros: 60 * S,
        };
        let mut state = RuleState::new(&condition, Micros(0));
        assert_eq!(state.on_tick(&condition, Micros(59 * S)), Signal::Quiet);
        assert_eq!(
            state.on_tick(&condition, Micros(60 * S)),
            Signal::Firing(60.0)
        );
        assert_eq!(
            state.on_tick(&condition, Micros(90 * S)),
            Signal::Quiet,
            "once"
        );
        assert_eq!(
            state.on_reading(&condition, Micros(91 * S), 1.0, Micros(91 * S)),
            Signal::Cleared
        );
        assert_eq!(state.on_tick(&condition, Micros(150 * S)), Signal::Quiet);
        assert_eq!(
            state.on_tick(&condition, Micros(151 * S)),
            Signal::Firing(60.0)
        );
    }

    #[test]
    fn any_of_fires_on_any_branch_and_clears_when_all_are_clear() {
        let condition = Condition::AnyOf(vec![
            threshold(0, None),
            Condition::Threshold {
                comparison: Comparison::Less,
                value: 10.0,
                for_micros: 0,
                clear_value: Some(20.0),
            },
        ]);
        // 15 is clear of the first branch but not of the second (hysteresis up to 20).
        let signals = feed(&condition, &[50.0, 85.0, 5.0, 15.0, 50.0, 25.0]);
        assert_eq!(
            signals,
            [
                Signal::Quiet,
                Signal::Firing(85.0),
                Signal::Firing(5.0),
                Signal::Quiet,
                Signal::Cleared,
                Signal::Quiet,
            ]
        );
    }
}
