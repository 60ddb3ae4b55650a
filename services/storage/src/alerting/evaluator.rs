//! The evaluator: every accepted reading of a metric some rule watches is evaluated as it
//! arrives, before and without waiting for its database write.
//!
//! - **Sharded by series.** A reading goes to the shard its (tenant, machine, metric) hashes
//!   to; each shard is one task owning the states of its series' rules, so shards run in
//!   parallel without locks and a series' readings are evaluated in order.
//! - **Bounded.** At most `max_in_flight` batches wait for or are under evaluation, across
//!   shards (the brief's 100 concurrent evaluations).
//! - **Shedding without losing alerts.** When no slot is free, or a shard is behind, the
//!   shard's new readings are coalesced per series into the lowest, the highest and the latest
//!   reading, evaluated in time order once the shard catches up. A threshold crossing is never
//!   missed (the extremes are kept), a no-data clear neither (the latest is kept); rates of
//!   change are measured on the kept readings. Every coalesced reading is counted in
//!   [`Evaluator::coalesced`] and logged.
//! - **No data** is checked by each shard every `tick`, by the service's clock.
//! - **State that matters survives a restart:** a shard sends a rule's state to the journal
//!   whenever what is persisted of it changes (firing, a "for" timer starting or stopping), and
//!   checkpoints no-data arrivals every `checkpoint`.
//! - **Rate-of-change windows** are not stored: a state's windows are rebuilt from the series'
//!   stored readings at its first reading in the process, restored or new.
//! - **Machines that are gone** (deleted from the tenant, found by the
//!   [machine sweep](super::sweep)) are forgotten: their states are dropped, and a rule that
//!   lists one by id stops watching it for no-data until it reports again.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use mfg_common::{clock::SharedClock, metering::UsageMeter, shutdown::CancellationToken};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use uuid::Uuid;

mod history;

pub use history::SeriesHistory;
mod state;

mod machines;
mod shard;

use machines::Control;
pub use machines::MachineRef;
use shard::Shard;

use super::{index::RuleIndex, journal::Journal};
use crate::{
    alerting::{domain::alert_eval::RuleState, store::RuleStateKey},
    directory::MachineLabels,
    micros::Micros,
    telemetry::{
        domain::ingest::Reading,
        ingest::{AcceptedBatch, IngestObserver},
    },
};

/// The evaluator's settings.
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    /// How many shards (tasks) evaluate in parallel.
    pub shards: usize,
    /// How many batches may wait for or be under evaluation at once.
    pub max_in_flight: usize,
    /// How often no-data is checked.
    pub tick: Duration,
    /// How often no-data arrivals are stored.
    pub checkpoint: Duration,
    /// Where the evaluations of each tenant's rules are counted for its cost, if they are.
    pub meter: Option<UsageMeter>,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        Self {
            shards: std::thread::available_parallelism().map_or(2, usize::from),
            max_in_flight: 100,
            tick: Duration::from_secs(1),
            checkpoint: Duration::from_secs(5),
            meter: None,
        }
    }
}

/// One accepted reading, as the evaluator sees it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
    /// When it was measured.
    pub ts: Micros,
    /// The value.
    pub value: f64,
    /// The machine's labels.
    pub labels: MachineLabels,
}

struct Work {
    _permit: OwnedSemaphorePermit,
    tenant: Uuid,
    arrival: Micros,
    readings: Vec<Observed>,
}

/// A series' readings kept while its shard is behind.
struct Coalesced {
    labels: MachineLabels,
    arrival: Micros,
    kept: [(Micros, f64); 3],
}

type SeriesRef = (Uuid, String, String);

#[derive(Default)]
struct Overflow {
    /// Set while readings are being coalesced: new readings of the shard are coalesced too,
    /// so that none overtakes an older one.
    active: bool,
    series: HashMap<SeriesRef, Coalesced>,
}

struct ShardHandle {
    queue: mpsc::Sender<Work>,
    control: mpsc::Sender<Control>,
    overflow: Arc<Mutex<Overflow>>,
    wake: Arc<Notify>,
}

/// The handle of the evaluator's shards.
#[derive(Clone)]
pub struct Evaluator {
    inner: Arc<Inner>,
}

struct Inner {
    index: Arc<RuleIndex>,
    shards: Vec<ShardHandle>,
    permits: Arc<Semaphore>,
    clock: SharedClock,
    coalesced: AtomicU64,
    observed: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("shards", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

fn shard_of(shards: usize, tenant: Uuid, machine: &str, metric: &str) -> usize {
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one((tenant, machine, metric));
    (hash % shards as u64) as usize
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Alert rules see a batch's readings when they are accepted, not after their write.
impl IngestObserver for Evaluator {
    fn accepted(&self, batch: &AcceptedBatch<'_>) {
        self.observe(batch.tenant, batch.readings, batch.machines);
    }
}

impl Evaluator {
    /// Starts the shards with the stored states of the rules in `index`; `history` refills
    /// the rate-of-change windows of those states.
    pub fn start(
        config: EvaluatorConfig,
        index: Arc<RuleIndex>,
        journal: Journal,
        stored: Vec<(RuleStateKey, RuleState)>,
        history: Arc<dyn SeriesHistory>,
        clock: SharedClock,
        shutdown: &CancellationToken,
    ) -> Self {
        let count = config.shards.max(1);
        let snapshot = index.snapshot();
        let mut states: Vec<HashMap<RuleStateKey, RuleState>> = vec![HashMap::new(); count];
        let mut unseeded: Vec<HashSet<RuleStateKey>> = vec![HashSet::new(); count];
        for (key, state) in stored {
            let Some(rule) = snapshot
                .tenant(key.tenant_id)
                .and_then(|rules| rules.rule(key.rule_id))
            else {
                continue;
            };
            let shard = shard_of(count, key.tenant_id, &key.machine_id, &rule.spec.metric);
            let has_rate = rule
                .spec
                .condition
                .as_ref()
                .is_some_and(|c| RuleState::rate_window(c).is_some());
            if has_rate && state.last_ts.is_some() {
                unseeded[shard].insert(key.clone());
            }
            states[shard].insert(key, state);
        }
        let mut shards = Vec::with_capacity(count);
        for (number, (states, unseeded)) in states.into_iter().zip(unseeded).enumerate() {
            let (queue, receiver) = mpsc::channel(config.max_in_flight.max(1));
            let (control, controls) = mpsc::channel(16);
            let handle = ShardHandle {
                queue,
                control,
                overflow: Arc::default(),
                wake: Arc::default(),
            };
            let shard = Shard {
                number,
                count,
                index: index.clone(),
                journal: journal.clone(),
                clock: clock.clone(),
                states,
                dirty: HashSet::new(),
                forgotten: HashSet::new(),
                unseeded,
                history: history.clone(),
                overflow: handle.overflow.clone(),
                wake: handle.wake.clone(),
                meter: config.meter.clone(),
            };
            tokio::spawn(shard.run(receiver, controls, config.clone(), shutdown.clone()));
            shards.push(handle);
        }
        Self {
            inner: Arc::new(Inner {
                index,
                shards,
                permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                clock,
                coalesced: AtomicU64::new(0),
                observed: AtomicU64::new(0),
                last_warning: Mutex::new(None),
            }),
        }
    }

    /// How many readings were coalesced because the evaluator was behind.
    pub fn coalesced(&self) -> u64 {
        self.inner.coalesced.load(Ordering::Relaxed)
    }

    /// How many readings were handed to the rules of their metric.
    pub fn observed(&self) -> u64 {
        self.inner.observed.load(Ordering::Relaxed)
    }

    /// Hands accepted readings of a tenant to the shards; never waits. `labels` holds the
    /// labels of the readings' machines.
    pub fn observe(
        &self,
        tenant: Uuid,
        readings: &[Reading],
        labels: &HashMap<String, Option<MachineLabels>>,
    ) {
        let index = self.inner.index.snapshot();
        let Some(rules) = index.tenant(tenant) else {
            return;
        };
        let count = self.inner.shards.len();
        let mut batches: Vec<Vec<Observed>> = Vec::new();
        for reading in readings {
            if rules.of_metric(&reading.metric).is_empty() {
                continue;
            }
            let Some(Some(machine_labels)) = labels.get(&reading.machine_id) else {
                continue;
            };
            if batches.is_empty() {
                batches.resize_with(count, Vec::new);
            }
            let shard = shard_of(count, tenant, &reading.machine_id, &reading.metric);
            batches[shard].push(Observed {
                machine_id: reading.machine_id.clone(),
                metric: reading.metric.clone(),
                ts: reading.ts,
                value: reading.value,
                labels: machine_labels.clone(),
            });
        }
        let arrival = Micros::of(self.inner.clock.system_now());
        for (shard, readings) in batches.into_iter().enumerate() {
            if !readings.is_empty() {
                self.inner
                    .observed
                    .fetch_add(readings.len() as u64, Ordering::Relaxed);
                self.dispatch(shard, tenant, arrival, readings);
            }
        }
    }

    fn dispatch(&self, shard: usize, tenant: Uuid, arrival: Micros, readings: Vec<Observed>) {
        let handle = &self.inner.shards[shard];
        let mut overflow = lock(&handle.overflow);
        let readings = if overflow.active {
            readings
        } else {
            match self.inner.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let work = Work {
                        _permit: permit,
                        tenant,
                        arrival,
                        readings,
                    };
                    match handle.queue.try_send(work) {
                        Ok(()) => return,
                        Err(
                            mpsc::error::TrySendError::Full(work)
                            | mpsc::error::TrySendError::Closed(work),
                        ) => work.readings,
                    }
                }
                Err(_) => readings,
            }
        };
        overflow.active = true;
        let shed = readings.len() as u64;
        for reading in readings {
            let point = (reading.ts, reading.value);
            overflow
                .series
                .entry((tenant, reading.machine_id, reading.metric))
                .and_modify(|kept| {
                    kept.arrival = arrival;
                    let [low, high, last] = &mut kept.kept;
                    if point.1 < low.1 {
                        *low = point;
                    }
                    if point.1 > high.1 {
                        *high = point;
                    }
                    if point.0 >= last.0 {
                        *last = point;
                    }
                })
                .or_insert(Coalesced {
                    labels: reading.labels,
                    arrival,
                    kept: [point; 3],
                });
        }
        drop(overflow);
        handle.wake.notify_one();
        self.inner.coalesced.fetch_add(shed, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = lock(&self.inner.last_warning);
        if last.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10)) {
            *last = Some(now);
            tracing::warn!(
                coalesced_total = self.coalesced(),
                "alert evaluation is behind: readings are coalesced to each series' lowest, \
                 highest and latest until it catches up"
            );
        }
    }
}
