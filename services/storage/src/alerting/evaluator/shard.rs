//! One shard of the evaluator: a task that owns the rule states of the series that hash to it,
//! evaluates their readings in order, checks no-data on each tick and checkpoints arrivals.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use mfg_common::{clock::SharedClock, metering::UsageMeter, shutdown::CancellationToken};
use mfg_proto::cost::v1::Meter;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use super::{
    EvaluatorConfig, Observed, Overflow, SeriesHistory, Work, lock,
    machines::{Control, MachineRef, is_forgotten},
    shard_of,
    state::{has_no_data, persisted_view},
};
use crate::{
    alerting::{
        domain::alert_eval::{RuleState, Signal},
        index::RuleIndex,
        journal::{Command, Journal},
        store::RuleStateKey,
    },
    micros::Micros,
};

/// One shard's task.
pub(super) struct Shard {
    pub(super) number: usize,
    pub(super) count: usize,
    pub(super) index: Arc<RuleIndex>,
    pub(super) journal: Journal,
    pub(super) clock: SharedClock,
    pub(super) states: HashMap<RuleStateKey, RuleState>,
    /// States whose no-data arrival changed since the last checkpoint.
    pub(super) dirty: HashSet<RuleStateKey>,
    /// Machines that are gone: not seeded for no-data until they report again.
    pub(super) forgotten: HashSet<MachineRef>,
    /// Restored states whose rate-of-change windows are still to be refilled.
    pub(super) unseeded: HashSet<RuleStateKey>,
    /// The stored readings those windows are refilled from.
    pub(super) history: Arc<dyn SeriesHistory>,
    pub(super) overflow: Arc<Mutex<Overflow>>,
    pub(super) wake: Arc<Notify>,
    pub(super) meter: Option<UsageMeter>,
}

impl Shard {
    pub(super) async fn run(
        mut self,
        mut queue: mpsc::Receiver<Work>,
        mut controls: mpsc::Receiver<Control>,
        config: EvaluatorConfig,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpoint = tokio::time::interval(config.checkpoint);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                // What was accepted is evaluated, and the arrivals stored, before the end.
                queue.close();
                while let Some(work) = queue.recv().await {
                    self.evaluate(work.tenant, work.arrival, work.readings).await;
                }
                self.drain_overflow().await;
                self.checkpoint().await;
                return;
            }
            work = queue.recv() => {
                let Some(work) = work else { return };
                self.evaluate(work.tenant, work.arrival, work.readings).await;
            }
            Some(control) = controls.recv() => self.control(control).await,
            () = self.wake.notified() => {}
            _ = tick.tick() => self.tick().await,
            _ = checkpoint.tick() => self.checkpoint().await}
            if queue.is_empty() {
                self.drain_overflow().await;
            }
        }
    }

    /// Evaluates what was coalesced, once the queue holds nothing older.
    async fn drain_overflow(&mut self) {
        let series = {
            let mut overflow = lock(&self.overflow);
            overflow.active = false;
            std::mem::take(&mut overflow.series)
        };
        for ((tenant, machine_id, metric), coalesced) in series {
            let mut kept = coalesced.kept.to_vec();
            kept.sort_by_key(|(ts, _)| *ts);
            kept.dedup_by_key(|(ts, _)| *ts);
            let readings = kept
                .into_iter()
                .map(|(ts, value)| Observed {
                    machine_id: machine_id.clone(),
                    metric: metric.clone(),
                    ts,
                    value,
                    labels: coalesced.labels.clone(),
                })
                .collect();
            self.evaluate(tenant, coalesced.arrival, readings).await;
        }
    }

    async fn evaluate(&mut self, tenant: Uuid, arrival: Micros, readings: Vec<Observed>) {
        let index = self.index.snapshot();
        let Some(rules) = index.tenant(tenant) else {
            return;
        };
        let mut evaluations = 0_u64;
        for reading in readings {
            // Only a registered machine's readings are accepted: one that was gone is back.
            if !self.forgotten.is_empty() {
                self.forgotten
                    .retain(|(t, m)| !(*t == tenant && *m == reading.machine_id));
            }
            for rule in rules.of_metric(&reading.metric) {
                let Some(condition) = rule.spec.condition.as_ref() else {
                    continue;
                };
                if !rule
                    .spec
                    .selector
                    .selects(&reading.machine_id, &reading.labels)
                {
                    continue;
                }
                let key = RuleStateKey {
                    tenant_id: tenant,
                    rule_id: rule.rule_id,
                    machine_id: reading.machine_id.clone(),
                };
                let restored = !self.unseeded.is_empty() && self.unseeded.remove(&key);
                let new = !self.states.contains_key(&key);
                if new {
                    self.states
                        .insert(key.clone(), RuleState::new(condition, arrival));
                }
                if restored || (new && RuleState::rate_window(condition).is_some()) {
                    self.seed(&key, condition, &reading).await;
                }
                let Some(state) = self.states.get_mut(&key) else {
                    continue;
                };
                evaluations += 1;
                let before = persisted_view(state);
                let signal = state.on_reading(condition, reading.ts, reading.value, arrival);
                let changed = persisted_view(state) != before;
                if has_no_data(condition) {
                    self.dirty.insert(key);
                }
                if signal != Signal::Quiet || changed {
                    let command = Command::Signal {
                        rule: rule.clone(),
                        machine_id: reading.machine_id.clone(),
                        signal,
                        at: reading.ts,
                        state: changed.then(|| state.clone()),
                    };
                    // Fails only when the service stops.
                    let _ = self.journal.send(command).await;
                }
            }
        }
        if let Some(meter) = &self.meter {
            meter.add(tenant, Meter::AlertEvaluations, evaluations as f64);
        }
    }

    /// Checks no-data: seeds the states of machines a rule lists by id (watched since the rule
    /// was last changed), fires the silent ones, and forgets the states of rules that are gone
    /// or switched off.
    async fn tick(&mut self) {
        let now = Micros::of(self.clock.system_now());
        let index = self.index.snapshot();
        // The forgotten machines this shard's rules still list: only they need remembering.
        let mut listed_forgotten = HashSet::new();
        for (tenant, rules) in index.tenants() {
            for rule in rules.enabled() {
                let Some(condition) = rule.spec.condition.as_ref() else {
                    continue;
                };
                if !has_no_data(condition) {
                    continue;
                }
                for machine in &rule.spec.selector.machine_ids {
                    if shard_of(self.count, *tenant, machine, &rule.spec.metric) != self.number {
                        continue;
                    }
                    if is_forgotten(&self.forgotten, *tenant, machine) {
                        listed_forgotten.insert((*tenant, machine.clone()));
                    } else {
                        self.states
                            .entry(RuleStateKey {
                                tenant_id: *tenant,
                                rule_id: rule.rule_id,
                                machine_id: machine.clone(),
                            })
                            .or_insert_with(|| RuleState::new(condition, rule.update_time));
                    }
                }
            }
        }
        self.forgotten = listed_forgotten;
        let mut signals = Vec::new();
        self.states.retain(|key, state| {
            let Some(rule) = index
                .tenant(key.tenant_id)
                .and_then(|rules| rules.rule(key.rule_id))
                .filter(|rule| !rule.spec.disabled)
            else {
                return false;
            };
            let Some(condition) = rule.spec.condition.as_ref() else {
                return false;
            };
            if has_no_data(condition) {
                let signal = state.on_tick(condition, now);
                if signal != Signal::Quiet {
                    signals.push(Command::Signal {
                        rule: rule.clone(),
                        machine_id: key.machine_id.clone(),
                        signal,
                        at: now,
                        state: Some(state.clone()),
                    });
                }
            }
            true
        });
        for command in signals {
            let _ = self.journal.send(command).await;
        }
    }

    /// Stores the no-data arrivals that changed.
    async fn checkpoint(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let states = self
            .dirty
            .drain()
            .filter_map(|key| {
                let state = self.states.get(&key)?.clone();
                Some((key, Some(state)))
            })
            .collect();
        let _ = self.journal.send(Command::States(states)).await;
    }
}
