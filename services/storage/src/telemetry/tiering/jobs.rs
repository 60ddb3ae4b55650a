//! Tiering jobs: every tenant's tiering as if the time were a job's `as_of`, started on demand
//! (`StartTieringJob`) or at an interval, and run in the background by whichever replica claims
//! it, so no request waits for one.
//!
//! - **One at a time**, across replicas: the store lets one job run; others queue.
//! - **Tenant by tenant**, a few at a time ([`JobOptions::parallelism`]). Each tenant's outcome
//!   is its checkpoint, stored with what its work did; a tenant's failure is recorded and the
//!   others go on. Within a tenant, its rollup position, its days and its manifest are the
//!   checkpoints: a day's work commits on its own.
//! - **A lease**: the runner renews it while it works. When the runner dies the lease runs out
//!   and a replica (the same one restarted, or another) takes the job over and continues from
//!   its last checkpoint. A runner that stops gracefully gives the lease up at once.

use std::{sync::Arc, time::Duration};

use futures::StreamExt as _;
use mfg_common::{ServiceError as _, clock::SharedClock, shutdown::CancellationToken};
use uuid::Uuid;

use crate::telemetry::tiering::Tiering;
use crate::{
    error::{Result, StorageError},
    metrics::StorageMetrics,
    micros::Micros,
    store::{JobStore, TenantNo},
    telemetry::domain::tiering::{Failure, Job},
};

/// Ended jobs kept for `ListTieringJobs` and `GetTieringJob`.
const JOBS_KEPT: u32 = 100;
/// Failures a job reports.
const FAILURES_SHOWN: u32 = 100;
/// How often a waiting `GetTieringJob` looks at a job another replica runs.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// How jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// Tenants worked on at once.
    pub parallelism: usize,
    /// How long a runner holds a job without renewing it; a dead runner's job is taken over
    /// after this long. Renewed every third of it.
    pub lease: Duration,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            parallelism: 2,
            lease: Duration::from_secs(30),
        }
    }
}

/// Starts, runs and reports tiering jobs.
#[derive(Debug, Clone)]
pub struct TieringJobs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tiering: Tiering,
    store: Arc<dyn JobStore>,
    clock: SharedClock,
    options: JobOptions,
    metrics: Arc<StorageMetrics>,
    /// This runner's name in the jobs' `owner`: unique per process.
    owner: String,
    /// Wakes the runner when a job is started here.
    started: tokio::sync::Notify,
    /// Wakes waiting readers when a job ends here.
    ended: tokio::sync::Notify,
}

impl TieringJobs {
    /// Jobs over a tenant's tiering and the jobs' store.
    pub fn new(
        tiering: Tiering,
        store: Arc<dyn JobStore>,
        clock: SharedClock,
        options: JobOptions,
        metrics: Arc<StorageMetrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                tiering,
                store,
                clock,
                options,
                metrics,
                owner: format!("storage-{}", Uuid::new_v4().simple()),
                started: tokio::sync::Notify::new(),
                ended: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Starts a job as if the time were `as_of`; it runs in the background.
    pub async fn start(&self, as_of: Micros) -> Result<Job> {
        let store = &self.inner.store;
        let id = Uuid::now_v7();
        store.create_job(id, as_of, self.now()).await?;
        store.prune_jobs(JOBS_KEPT).await?;
        self.inner.started.notify_one();
        store
            .job(id)
            .await?
            .ok_or_else(|| StorageError::Internal(format!("tiering job `{id}` vanished")))
    }

    /// Starts a job as of now unless one is queued or running: what the interval does, so
    /// that replicas do not pile jobs up.
    pub async fn start_unless_pending(&self) -> Result<Option<Job>> {
        let now = self.now();
        if self.inner.store.has_pending_job(now).await? {
            return Ok(None);
        }
        self.start(now).await.map(Some)
    }

    /// A job and why its failed tenants failed, once it has ended or `wait` has passed.
    pub async fn get(&self, id: Uuid, wait: Duration) -> Result<(Job, Vec<Failure>)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ended = self.inner.ended.notified();
            let job = self
                .inner
                .store
                .job(id)
                .await?
                .ok_or_else(|| StorageError::JobNotFound(id.to_string()))?;
            if job.state.is_final() || tokio::time::Instant::now() >= deadline {
                let failures = if job.tenants_failed > 0 {
                    self.inner.store.job_failures(id, FAILURES_SHOWN).await?
                } else {
                    Vec::new()
                };
                return Ok((job, failures));
            }
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep(WAIT_POLL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The most recent jobs, newest first.
    pub async fn list(&self, limit: u32) -> Result<Vec<Job>> {
        self.inner.store.jobs(limit).await
    }

    /// Runs jobs as they come, until shutdown: those started here at once, those of other
    /// replicas and those whose runner died within a lease.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let started = self.inner.started.notified();
            let ran = match self.claim().await {
                Ok(Some((id, as_of))) => self.run_job(id, as_of, &shutdown).await,
                Ok(None) => Ok(false),
                Err(error) => Err(error),
            };
            if let Err(error) = &ran {
                tracing::warn!(%error, "tiering jobs: the store failed; retrying");
            }
            if matches!(ran, Ok(true)) {
                continue;
            }
            tokio::select! {
            () = started => {}
            () = tokio::time::sleep(self.inner.options.lease) => {}
            () = shutdown.cancelled() => return}
        }
    }

    async fn claim(&self) -> Result<Option<(Uuid, Micros)>> {
        let now = self.now();
        self.inner
            .store
            .claim_job(&self.inner.owner, now, now + self.lease_micros())
            .await
    }

    /// Runs a claimed job to its end; `true` if it ended here, `false` if the lease was lost or
    /// the service is stopping (the lease is then given up).
    async fn run_job(&self, id: Uuid, as_of: Micros, shutdown: &CancellationToken) -> Result<bool> {
        let started = std::time::Instant::now();
        tracing::info!(job = %id, as_of = as_of.0, "tiering job running");
        let work = self.work(id, as_of);
        let ended = tokio::select! {
            worked = work => {
                worked?;
                true
            }
            () = self.keep_lease(id) => {
                tracing::warn!(job = %id, "tiering job taken over by another runner");
                false
            }
            () = shutdown.cancelled() => {
                self.inner.store.renew_job(id, &self.inner.owner, Micros(0)).await?;
                false
            }
        };
        if !ended
            || !self
                .inner
                .store
                .finish_job(id, &self.inner.owner, self.now())
                .await?
        {
            return Ok(false);
        }
        let job = self.inner.store.job(id).await?;
        let succeeded = job.as_ref().is_some_and(|job| job.tenants_failed == 0);
        self.inner.metrics.tiering_ran(succeeded, started.elapsed());
        self.inner.ended.notify_waiters();
        tracing::info!(job = %id, ?job, "tiering job ended");
        Ok(true)
    }

    /// Creates the partitions ahead, then works on each tenant the job has not done, a few at
    /// a time.
    async fn work(&self, id: Uuid, as_of: Micros) -> Result<()> {
        let store = &self.inner.store;
        if let Err(error) = self.inner.tiering.create_partitions_ahead(self.now()).await {
            // Writes create the partitions they need: this only saves them the wait.
            tracing::warn!(%error, "creating tomorrow's hot partitions failed");
        }
        let tenants = self.inner.tiering.tenants().await?;
        store
            .set_job_tenants(id, u32::try_from(tenants.len()).unwrap_or(u32::MAX))
            .await?;
        let done: std::collections::HashSet<TenantNo> =
            store.job_tenants_done(id).await?.into_iter().collect();
        let checkpoints: Vec<Result<()>> = futures::stream::iter(tenants)
            .filter(|(no, _)| std::future::ready(!done.contains(no)))
            .map(|tenant| self.work_on(id, tenant, as_of))
            .buffer_unordered(self.inner.options.parallelism.max(1))
            .collect()
            .await;
        // A checkpoint that could not be stored leaves the job to be taken over and the tenant
        // redone.
        checkpoints.into_iter().collect()
    }

    /// Runs a tenant's tiering and stores the outcome as its checkpoint.
    async fn work_on(&self, id: Uuid, tenant: (TenantNo, Uuid), as_of: Micros) -> Result<()> {
        let outcome = self.inner.tiering.run_tenant(tenant, as_of).await;
        if let Err(error) = &outcome {
            tracing::warn!(job = %id, tenant = %tenant.1, %error, "tiering failed for a tenant; the next job retries it");
        }
        let outcome =
            outcome.map_err(|error| (error.error_code().grpc_code() as i32, error.to_string()));
        self.inner
            .store
            .finish_job_tenant(id, tenant, outcome, self.now())
            .await
    }

    /// Renews the job's lease every third of it; returns when another runner has it.
    async fn keep_lease(&self, id: Uuid) {
        let every = self.inner.options.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let until = self.now() + self.lease_micros();
            match self
                .inner
                .store
                .renew_job(id, &self.inner.owner, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(job = %id, %error, "renewing a tiering job's lease failed")
                }
            }
        }
    }

    fn now(&self) -> Micros {
        Micros::of(self.inner.clock.system_now())
    }

    fn lease_micros(&self) -> i64 {
        i64::try_from(self.inner.options.lease.as_micros()).unwrap_or(i64::MAX)
    }
}
