//! The ingest path that `StreamTelemetry`, `IngestBatch` and the REST route share.
//!
//! A batch is checked (tenant state, each reading, machines, the tenant's rate), its series are
//! resolved to ids (cached), and its rows go to the [`Writer`]: a few tasks that gather the
//! batches waiting in a bounded queue into one insert, commit it, and only then answer each
//! batch. One durable commit carries many batches (group commit), and a full queue makes
//! callers wait, which on a stream stops reading it and lets HTTP/2 flow control push back on
//! the client.
//!
//! The same tenant, machine, metric and timestamp is stored once: the first write wins, and a
//! later one, whatever its value, counts as a duplicate.

mod observer;

pub use observer::{AcceptedBatch, IngestObserver};

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use chrono::NaiveDate;
use mfg_common::clock::SharedClock;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    directory::{Directory, MachineLabels},
    error::{Result, StorageError},
    store::TenantNo,
    telemetry::{
        domain::ingest::{IncomingReading, IngestRate, RejectReason, Rejection, Window, screen},
        store::{Row, SeriesId, SeriesKey, TelemetryStore},
    },
};

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Readings stored.
    pub accepted: u32,
    /// Readings stored before (or earlier in the same batch).
    pub duplicates: u32,
    /// Readings refused, by position.
    pub rejected: Vec<Rejection>,
}

/// How the writer is sized.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// How many inserts run at once.
    pub writers: usize,
    /// How many batches may wait for a writer.
    pub queue: usize,
    /// The most rows one insert gathers.
    pub max_group_rows: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            writers: 2,
            queue: 256,
            max_group_rows: 20_000,
        }
    }
}

struct Job {
    rows: Vec<Row>,
    reply: oneshot::Sender<Result<Vec<bool>>>,
}

/// The group-commit writer: batches in, one durable insert per group, each batch answered with
/// which of its rows were new.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer's tasks. They stop once every clone of the writer is dropped and the
    /// queue is empty.
    pub fn spawn(store: Arc<dyn TelemetryStore>, options: WriterOptions) -> Self {
        let (jobs, receiver) = mpsc::channel(options.queue.max(1));
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..options.writers.max(1) {
            tokio::spawn(write_groups(
                store.clone(),
                receiver.clone(),
                options.max_group_rows,
            ));
        }
        Self { jobs }
    }

    /// Queues rows (no two with the same key) and returns a receiver of the answer: for each
    /// row, whether it is new. Waits while the queue is full.
    pub async fn submit(&self, rows: Vec<Row>) -> Result<oneshot::Receiver<Result<Vec<bool>>>> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { rows, reply })
            .await
            .map_err(|_| StorageError::ShuttingDown)?;
        Ok(answer)
    }
}

async fn write_groups(
    store: Arc<dyn TelemetryStore>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    max_group_rows: usize,
) {
    loop {
        let mut group = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut rows = first.rows.len();
            group.push(first);
            while rows < max_group_rows {
                match receiver.try_recv() {
                    Ok(job) => {
                        rows += job.rows.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        write_group(store.as_ref(), group).await;
    }
}

async fn write_group(store: &dyn TelemetryStore, group: Vec<Job>) {
    // A key may come twice in one group (a client resending while its first try still waits):
    // the first is written, the later ones are duplicates.
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(group.iter().map(|j| j.rows.len()).sum());
    let mut first_in_group = Vec::with_capacity(rows.capacity());
    for job in &group {
        for row in &job.rows {
            let first = seen.insert((row.series_id, row.ts));
            first_in_group.push(first);
            if first {
                rows.push(*row);
            }
        }
    }
    match store.insert(&rows).await {
        Ok(new) => {
            let mut new = new.into_iter();
            let mut firsts = first_in_group.into_iter();
            for job in group {
                let answer: Vec<bool> = job
                    .rows
                    .iter()
                    .map(|_| firsts.next() == Some(true) && new.next() == Some(true))
                    .collect();
                let _ = job.reply.send(Ok(answer));
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows = rows.len(), "a group of readings was not stored");
            for job in group {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}

/// A batch on its way to the hot tier.
#[derive(Debug)]
pub struct Pending {
    tenant: Uuid,
    observers: Observers,
    indices: Vec<u32>,
    duplicates_in_batch: u32,
    rejected: Vec<Rejection>,
    answer: Option<oneshot::Receiver<Result<Vec<bool>>>>,
}

impl Pending {
    /// Waits until the batch is durable, shows it to the observers, and returns what became
    /// of it.
    pub async fn outcome(self) -> Result<Outcome> {
        let mut rejected = self.rejected;
        rejected.sort_by_key(|r| r.index);
        let outcome = match self.answer {
            None => Outcome {
                accepted: 0,
                duplicates: self.duplicates_in_batch,
                rejected,
            },
            Some(answer) => {
                let new = answer.await.map_err(|_| StorageError::ShuttingDown)??;
                debug_assert_eq!(new.len(), self.indices.len());
                let accepted = new.iter().filter(|n| **n).count() as u32;
                Outcome {
                    accepted,
                    duplicates: self.duplicates_in_batch + (new.len() as u32 - accepted),
                    rejected,
                }
            }
        };
        for observer in self.observers.iter() {
            observer.committed(self.tenant, &outcome);
        }
        Ok(outcome)
    }
}

/// The ingest path.
#[derive(Debug, Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn TelemetryStore>,
    directory: Directory,
    clock: SharedClock,
    writer: Writer,
    tenants: Mutex<HashMap<Uuid, TenantNo>>,
    series: Mutex<HashMap<(TenantNo, SeriesKey), SeriesId>>,
    days: Mutex<HashSet<(TenantNo, NaiveDate)>>,
    rates: Mutex<HashMap<Uuid, IngestRate>>,
    observers: Observers,
}

/// The observers of ingest, shared with the batches on their way.
type Observers = Arc<[Arc<dyn IngestObserver>]>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ingest {
    /// Creates the ingest path over a store, with its writer; every batch is shown to the
    /// `observers`.
    pub fn new(
        store: Arc<dyn TelemetryStore>,
        directory: Directory,
        clock: SharedClock,
        options: WriterOptions,
        observers: Vec<Arc<dyn IngestObserver>>,
    ) -> Self {
        let writer = Writer::spawn(store.clone(), options);
        Self {
            inner: Arc::new(Inner {
                store,
                directory,
                clock,
                writer,
                tenants: Mutex::default(),
                series: Mutex::default(),
                days: Mutex::default(),
                rates: Mutex::default(),
                observers: observers.into(),
            }),
        }
    }

    /// The tenant directory.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// Returns a tenant's number, registering it with the store on first sight.
    pub async fn tenant_no(&self, tenant: Uuid) -> Result<TenantNo> {
        if let Some(no) = lock(&self.inner.tenants).get(&tenant) {
            return Ok(*no);
        }
        let no = self.inner.store.register_tenant(tenant).await?;
        lock(&self.inner.tenants).insert(tenant, no);
        Ok(no)
    }

    /// Returns a tenant's number if it was ever registered (numbers never change, so a known
    /// one is answered from memory).
    pub async fn find_tenant_no(&self, tenant: Uuid) -> Result<Option<TenantNo>> {
        if let Some(no) = lock(&self.inner.tenants).get(&tenant) {
            return Ok(Some(*no));
        }
        let found = self.inner.store.find_tenant(tenant).await?;
        if let Some(no) = found {
            lock(&self.inner.tenants).insert(tenant, no);
        }
        Ok(found)
    }

    /// Ingests a batch and waits until it is durable.
    pub async fn ingest(
        &self,
        tenant: Uuid,
        default_machine: &str,
        readings: Vec<IncomingReading>,
    ) -> Result<Outcome> {
        self.submit(tenant, default_machine, readings)
            .await?
            .outcome()
            .await
    }

    /// Checks a batch and queues its rows; the returned [`Pending`] resolves once they are
    /// durable. Fails as a whole when the tenant may not write now (deleted, suspended, over
    /// its rate) or a dependency is down; bad readings are rejected one by one.
    pub async fn submit(
        &self,
        tenant: Uuid,
        default_machine: &str,
        readings: Vec<IncomingReading>,
    ) -> Result<Pending> {
        let info = self.inner.directory.writable_tenant(tenant).await?;
        let window = Window::at(self.inner.clock.system_now(), info.hot_days);
        let (valid, mut rejected) = screen(readings, default_machine, window);

        // Unknown machines, checked once per machine of the batch.
        let mut machines: HashMap<String, Option<MachineLabels>> = HashMap::new();
        for reading in &valid {
            if !machines.contains_key(&reading.machine_id) {
                let labels = self
                    .inner
                    .directory
                    .machine(tenant, &reading.machine_id)
                    .await?;
                machines.insert(reading.machine_id.clone(), labels);
            }
        }
        let (valid, unknown): (Vec<_>, Vec<_>) = valid
            .into_iter()
            .partition(|r| matches!(machines.get(&r.machine_id), Some(Some(_))));
        rejected.extend(unknown.into_iter().map(|r| {
            Rejection::new(
                r.index,
                RejectReason::UnknownMachine,
                format!(
                    "machine `{}` is not registered with the tenant",
                    r.machine_id
                ),
            )
        }));

        if !valid.is_empty() {
            self.take_rate(&info.id, valid.len(), info.ingest_per_second)?;
            let batch = AcceptedBatch {
                tenant,
                readings: &valid,
                machines: &machines,
            };
            for observer in self.inner.observers.iter() {
                observer.accepted(&batch);
            }
        }

        // Series ids, from the cache or the store.
        let tenant_no = self.tenant_no(tenant).await?;
        let mut ids = Vec::with_capacity(valid.len());
        let mut missing = Vec::new();
        {
            let series = lock(&self.inner.series);
            for reading in &valid {
                let key = SeriesKey {
                    machine_id: reading.machine_id.clone(),
                    metric: reading.metric.clone(),
                };
                let id = series.get(&(tenant_no, key.clone())).copied();
                if id.is_none() {
                    missing.push(key);
                }
                ids.push(id);
            }
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            let resolved = self.inner.store.resolve_series(tenant_no, &missing).await?;
            let mut series = lock(&self.inner.series);
            for (key, id) in missing.into_iter().zip(resolved) {
                series.insert((tenant_no, key), id);
            }
            for (slot, reading) in ids.iter_mut().zip(&valid) {
                if slot.is_none() {
                    let key = SeriesKey {
                        machine_id: reading.machine_id.clone(),
                        metric: reading.metric.clone(),
                    };
                    *slot = series.get(&(tenant_no, key)).copied();
                }
            }
        }

        // The days' partitions, created once per process.
        let days: HashSet<NaiveDate> = valid.iter().map(|r| r.ts.day()).collect();
        for day in days {
            if !lock(&self.inner.days).contains(&(tenant_no, day)) {
                self.inner
                    .store
                    .ensure_day(tenant_no, day, info.hot_days)
                    .await?;
                lock(&self.inner.days).insert((tenant_no, day));
            }
        }

        // Rows, without repeats inside the batch.
        let mut seen = HashSet::with_capacity(valid.len());
        let mut rows = Vec::with_capacity(valid.len());
        let mut indices = Vec::with_capacity(valid.len());
        let mut duplicates_in_batch = 0;
        for (reading, id) in valid.iter().zip(ids) {
            let series_id = id
                .ok_or_else(|| StorageError::Internal("a series id was not resolved".to_owned()))?;
            if seen.insert((series_id, reading.ts)) {
                rows.push(Row {
                    series_id,
                    ts: reading.ts,
                    value: reading.value,
                });
                indices.push(reading.index);
            } else {
                duplicates_in_batch += 1;
            }
        }
        let answer = if rows.is_empty() {
            None
        } else {
            Some(self.inner.writer.submit(rows).await?)
        };
        Ok(Pending {
            tenant,
            observers: self.inner.observers.clone(),
            indices,
            duplicates_in_batch,
            rejected,
            answer,
        })
    }

    fn take_rate(&self, tenant: &Uuid, readings: usize, per_second: u32) -> Result<()> {
        let now = self.inner.clock.now();
        let mut rates = lock(&self.inner.rates);
        let rate = rates
            .entry(*tenant)
            .or_insert_with(|| IngestRate::new(per_second, now));
        rate.take(readings, per_second, now)
            .map_err(|retry_after| StorageError::RateLimited {
                tenant: tenant.to_string(),
                per_second,
                retry_after,
            })
    }
}
