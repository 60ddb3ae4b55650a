//! Usage metering where the work is done: the services count what each tenant uses in memory
//! and hand it to the cost service's `RecordUsage` every few seconds.
//!
//! - **Counts** (readings ingested, requests, points scanned, evaluations) are added as they
//!   happen ([`UsageMeter::add`]): one short lock of a map per call, never a wait on the network.
//! - **Levels** (bytes stored, machines registered) are set when sampled
//!   ([`UsageMeter::set_levels`]) and held until the next sample: each flush records the level
//!   over the interval since the last.
//! - **Flushes** close an interval: its records are sent in calls of [`RECORDS_PER_CALL`], each
//!   under a batch key made of this process's source (the service and a UUID of this run), the
//!   interval's number and the call's place. A flush that fails is kept and sent again, with
//!   the same keys, ahead of newer ones, so a retried or repeated flush is counted once.
//!
//! **What a crash loses:** the usage of the interval not yet flushed and of the flushes not yet
//! acknowledged (at most [`MAX_UNSENT`] intervals, while the cost service is down); never more,
//! and nothing is counted twice, since a new run never sends an old run's records. A graceful
//! stop flushes once more first.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use mfg_proto::cost::v1::{
    self as pb, Meter, RecordUsageRequest, cost_service_client::CostServiceClient,
};
use pbjson_types::Timestamp;
use uuid::Uuid;

use crate::{
    clock::SharedClock, config::MeteringArgs, grpc::TracedChannel, shutdown::CancellationToken,
};

/// How many closed intervals are kept while the cost service cannot be reached: an hour of
/// five-second flushes. Older ones are dropped, with a warning.
pub const MAX_UNSENT: usize = 720;

/// The most records one `RecordUsage` carries (the cost service takes up to 10,000).
pub const RECORDS_PER_CALL: usize = 5_000;

/// Counts and levels of usage per tenant and meter, flushed to the cost service.
#[derive(Debug, Clone)]
pub struct UsageMeter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: String,
    clock: SharedClock,
    counts: Mutex<HashMap<(Uuid, Meter), f64>>,
    levels: Mutex<HashMap<(Uuid, Meter), f64>>,
    flushes: Mutex<Flushes>,
}

/// The intervals closed so far.
#[derive(Debug)]
struct Flushes {
    /// The number of the next interval.
    next: u64,
    /// When the open interval started.
    since: SystemTime,
    /// Closed intervals not yet acknowledged, oldest first, with their numbers.
    unsent: VecDeque<(u64, Vec<pb::UsageRecord>)>,
}

impl UsageMeter {
    /// A meter of `service` (e.g. `storage`) for this run of the process.
    pub fn new(service: &str, clock: SharedClock) -> Self {
        let since = clock.system_now();
        Self {
            inner: Arc::new(Inner {
                source: format!("{service}/{}", Uuid::now_v7()),
                clock,
                counts: Mutex::default(),
                levels: Mutex::default(),
                flushes: Mutex::new(Flushes {
                    next: 0,
                    since,
                    unsent: VecDeque::new(),
                }),
            }),
        }
    }

    /// Counts `quantity` of `meter` used by `tenant` now.
    pub fn add(&self, tenant: Uuid, meter: Meter, quantity: f64) {
        if quantity > 0.0 {
            *lock(&self.inner.counts).entry((tenant, meter)).or_default() += quantity;
        }
    }

    /// Sets every tenant's level of `meter` from now on; a tenant not in `levels` holds none.
    pub fn set_levels(&self, meter: Meter, levels: impl IntoIterator<Item = (Uuid, f64)>) {
        let mut held = lock(&self.inner.levels);
        held.retain(|(_, m), _| *m != meter);
        held.extend(
            levels
                .into_iter()
                .filter(|(_, level)| *level > 0.0)
                .map(|(tenant, level)| ((tenant, meter), level)),
        );
    }

    /// Closes the open interval: its counts, and the levels held over it, become records to
    /// send. Returns how many.
    pub fn close_interval(&self) -> usize {
        let now = self.inner.clock.system_now();
        let counts = std::mem::take(&mut *lock(&self.inner.counts));
        let levels = lock(&self.inner.levels).clone();
        let mut flushes = lock(&self.inner.flushes);
        let (number, since) = (flushes.next, flushes.since);
        flushes.next += 1;
        flushes.since = now;
        let records: Vec<pb::UsageRecord> = counts
            .into_iter()
            .chain(levels)
            .map(|((tenant, meter), quantity)| pb::UsageRecord {
                tenant_id: tenant.to_string(),
                meter: meter.into(),
                quantity,
                start_time: Some(timestamp(since)),
                end_time: Some(timestamp(now.max(since))),
                idempotency_key: String::new(),
            })
            .collect();
        let closed = records.len();
        if closed > 0 {
            flushes.unsent.push_back((number, records));
        }
        while flushes.unsent.len() > MAX_UNSENT {
            let dropped = flushes.unsent.pop_front().map_or(0, |(_, r)| r.len());
            tracing::warn!(
                dropped,
                "usage records dropped: the cost service has not taken them for an hour"
            );
        }
        closed
    }

    /// Closes the open interval and sends every closed one, oldest first, until one fails;
    /// what was not acknowledged is sent again next time, with the same keys.
    pub async fn flush(
        &self,
        cost: &mut CostServiceClient<TracedChannel>,
    ) -> Result<(), tonic::Status> {
        self.close_interval();
        loop {
            let Some(interval) = lock(&self.inner.flushes).unsent.front().cloned() else {
                return Ok(());
            };
            for request in self.requests(&interval) {
                cost.record_usage(request).await?;
            }
            lock(&self.inner.flushes).unsent.pop_front();
        }
    }

    /// The calls that send a closed interval: its records in chunks, each chunk counted once
    /// under its batch key (the run, the interval and the chunk's place), however often it is
    /// sent. A closed interval's records keep their order, so a chunk keeps its key.
    fn requests(&self, (number, records): &(u64, Vec<pb::UsageRecord>)) -> Vec<RecordUsageRequest> {
        records
            .chunks(RECORDS_PER_CALL)
            .enumerate()
            .map(|(chunk, records)| RecordUsageRequest {
                records: records.to_vec(),
                batch_key: format!("{}/{number}/{chunk}", self.inner.source),
            })
            .collect()
    }

    /// Flushes every `interval` until `shutdown`, then once more.
    pub async fn run(
        self,
        mut cost: CostServiceClient<TracedChannel>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                _ = ticks.tick() => false,
            };
            if let Err(status) = self.flush(&mut cost).await {
                tracing::warn!(
                    code = ?status.code(),
                    message = status.message(),
                    unsent = lock(&self.inner.flushes).unsent.len(),
                    "usage not flushed to the cost service; it is sent again next time"
                );
            }
            if stopping {
                return;
            }
        }
    }

    /// Sets levels from `sample` every `interval` until `shutdown` (the first at once): each
    /// meter it gives, for every tenant. A failed sample keeps the last levels and is logged
    /// as `what` could not be measured.
    pub async fn sample_every<F, Fut, E>(
        &self,
        what: &str,
        interval: Duration,
        shutdown: CancellationToken,
        sample: F,
    ) where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<(Meter, Vec<(Uuid, f64)>)>, E>>,
        E: std::fmt::Display,
    {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match sample().await {
                Ok(levels) => {
                    for (meter, levels) in levels {
                        self.set_levels(meter, levels);
                    }
                }
                Err(error) => tracing::warn!(%error, "could not measure {what} for metering"),
            }
        }
    }

    /// The calls that would send the intervals closed and not yet acknowledged, oldest first.
    pub fn unsent(&self) -> Vec<RecordUsageRequest> {
        let unsent = lock(&self.inner.flushes).unsent.clone();
        unsent
            .iter()
            .flat_map(|interval| self.requests(interval))
            .collect()
    }
}

/// A service's metering: its meter, and the task that flushes it to the cost service when
/// metering is on.
#[derive(Debug)]
pub struct Metering {
    meter: UsageMeter,
    flusher: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
}

impl Metering {
    /// Meters `service`'s usage and, unless `args` turn metering off, flushes it every
    /// interval to the cost service at `cost_addr`, with the operator's token.
    pub fn start(
        service: &str,
        clock: SharedClock,
        args: MeteringArgs,
        cost_addr: &str,
        operator_token: &str,
    ) -> anyhow::Result<Self> {
        let meter = UsageMeter::new(service, clock);
        if !args.enabled() {
            return Ok(Self {
                meter,
                flusher: None,
            });
        }
        let cost = CostServiceClient::new(
            crate::grpc::service_channel(&crate::grpc::http_uri(cost_addr))?
                .with_bearer(operator_token)?,
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(meter.clone().run(cost, args.interval, stop.clone()));
        Ok(Self {
            meter,
            flusher: Some((task, stop)),
        })
    }

    /// The meter, when usage is metered.
    pub fn meter(&self) -> Option<&UsageMeter> {
        self.flusher.as_ref().map(|_| &self.meter)
    }

    /// Flushes the last usage and stops; call it once the service has drained.
    pub async fn stop(self) {
        if let Some((task, stop)) = self.flusher {
            stop.cancel();
            let _ = task.await;
        }
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn an_interval_closes_into_keyed_records_of_counts_and_levels() {
        let clock = Arc::new(ManualClock::new());
        let meter = UsageMeter::new("storage", clock.clone());
        let (acme, globex) = (Uuid::from_u128(1), Uuid::from_u128(2));
        meter.add(acme, Meter::IngestedReadings, 100.0);
        meter.add(acme, Meter::IngestedReadings, 20.0);
        meter.add(globex, Meter::IngestedReadings, 0.0);
        meter.set_levels(Meter::HotStorage, [(acme, 5e9), (globex, 0.0)]);
        clock.advance(Duration::from_secs(5));
        assert_eq!(meter.close_interval(), 2);
        let unsent = meter.unsent();
        assert_eq!(unsent.len(), 1, "one call");
        assert!(unsent[0].batch_key.starts_with("storage/"));
        assert!(
            unsent[0].batch_key.ends_with("/0/0"),
            "{}",
            unsent[0].batch_key
        );
        let mut records = unsent[0].records.clone();
        records.sort_by_key(|r| r.meter);
        assert_eq!(records[0].meter, i32::from(Meter::IngestedReadings));
        assert_eq!(records[0].quantity, 120.0);
        assert_eq!(records[1].quantity, 5e9);
        let [first, second] = [&records[0], &records[1]];
        assert_eq!(
            first.end_time.unwrap().seconds - first.start_time.unwrap().seconds,
            5
        );
        assert_eq!(first.tenant_id, acme.to_string());
        assert!(second.idempotency_key.is_empty(), "the call's key counts");

        // The next interval: the level is held, the counts start again; nothing is resent
        // under a new key.
        clock.advance(Duration::from_secs(5));
        assert_eq!(meter.close_interval(), 1);
        let unsent = meter.unsent();
        assert_eq!(unsent.len(), 2, "two intervals wait, unacknowledged");
        assert_eq!(
            unsent[0].batch_key.replace("/0/0", "/1/0"),
            unsent[1].batch_key
        );
        assert_eq!(unsent[1].records.len(), 1);
        meter.set_levels(Meter::HotStorage, []);
        assert_eq!(meter.close_interval(), 0);
    }
}
