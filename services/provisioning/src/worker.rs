//! The worker: claims runs with work to do, one at a time under a lease, and runs their steps
//! in order, storing each step's state before its call and after (decision 0014).
//!
//! A worker that dies mid-step leaves the step `running` and its lease to expire; the next
//! claim (this process after a restart, or another replica) runs the step again under the
//! same key. While a step's call lasts, the worker extends the lease every [`HEARTBEAT`], so a
//! call longer than the lease (the export of a large tenant) is not taken over and started
//! again by another worker; a call that hangs ends at its deadline
//! ([`crate::steps::CALL_DEADLINE`]). A step that failed with a retryable error leaves the run waiting for its backoff
//! (`not_before`), and the run is claimed again once it has passed.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use mfg_common::{clock::SharedClock, shutdown::CancellationToken};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    domain::run::{Failure, Run},
    error::Result,
    steps::{StepCall, Steps},
    store::ProvisioningStore,
};

/// How long a claim lasts without a write. Each stored step extends it, and so does each
/// [`HEARTBEAT`] while a step's call lasts.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often the lease of a run is extended while one of its steps' calls lasts: a third of
/// the lease, so that two missed beats still keep it.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// How often the worker looks for runs when nothing wakes it: runs whose backoff passed, and
/// runs left by a worker that died.
pub const POLL: Duration = Duration::from_millis(500);

/// Works the runs of the store.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Arc<dyn ProvisioningStore>,
    steps: Steps,
    clock: SharedClock,
    /// This worker's name in the leases it holds.
    owner: Uuid,
    /// How many times a step is started before a retryable failure fails its run.
    max_attempts: u32,
    wake: Arc<Notify>,
}

impl Worker {
    /// A worker over `store`, calling `steps`, on `clock`, starting a step at most
    /// `max_attempts` times.
    pub fn new(
        store: Arc<dyn ProvisioningStore>,
        steps: Steps,
        clock: SharedClock,
        max_attempts: u32,
    ) -> Self {
        Self {
            store,
            steps,
            clock,
            owner: Uuid::now_v7(),
            max_attempts: max_attempts.max(1),
            wake: Arc::default(),
        }
    }

    /// Wakes the worker: a run was started or resumed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Works runs with `workers` loops at once until `shutdown`, each holding leases under a
    /// name of its own, as several replicas would: one run is worked by one loop at a time.
    pub async fn run_many(&self, workers: usize, shutdown: CancellationToken) {
        let loops = (0..workers.max(1)).map(|_| {
            let worker = Self {
                owner: Uuid::now_v7(),
                ..self.clone()
            };
            let shutdown = shutdown.clone();
            async move { worker.run(shutdown).await }
        });
        futures::future::join_all(loops).await;
    }

    /// Works runs until `shutdown`: every run it can claim, then again when woken or after
    /// [`POLL`].
    pub async fn run(&self, shutdown: CancellationToken) {
        loop {
            loop {
                match self.work_one().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => {
                        tracing::warn!(%error, "provisioning runs could not be worked on");
                        break;
                    }
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims one run with work to do now and works it until it ends, waits for a backoff, or
    /// its lease is lost. Returns whether it claimed one.
    pub async fn work_one(&self) -> Result<bool> {
        let now = self.now();
        let Some(mut run) = self.store.claim(self.owner, now, lease_end(now)).await? else {
            return Ok(false);
        };
        let worked = self.work(&mut run).await;
        self.store.release(run.id, self.owner).await?;
        worked?;
        Ok(true)
    }

    /// Runs the run's steps in order while it has one due, then tells the tenant service how
    /// it ended. Stops where it lost the run's lease: its new owner goes on.
    async fn work(&self, run: &mut Run) -> Result<()> {
        if !self.run_steps(run).await? || !self.undo_steps(run).await? {
            return Ok(());
        }
        if let Some(succeeded) = run.to_report() {
            let error = run.failure().unwrap_or_default();
            match self
                .steps
                .report(run.tenant, run.id, succeeded, error)
                .await
            {
                Ok(()) => run.reported = true,
                // Refused for good (the tenant is gone, say): asking again would not help.
                Err(Failure::Permanent(error)) => {
                    tracing::warn!(run = %run.id, %error, "the tenant service refused a run's outcome");
                    run.reported = true;
                }
                Err(Failure::Retryable(error) | Failure::NotUntil(_, error)) => {
                    tracing::warn!(run = %run.id, %error, "could not report a run's outcome");
                    run.not_before = self.now() + chrono::Duration::seconds(1);
                }
            }
            self.save(run).await?;
        }
        Ok(())
    }

    /// Runs the run's steps in order while it has one due. False when it lost the lease.
    async fn run_steps(&self, run: &mut Run) -> Result<bool> {
        while let Some(at) = run.next_step() {
            if run.not_before > self.now() {
                return Ok(true);
            }
            run.start_step(at, self.now());
            if !self.save(run).await? {
                return Ok(false);
            }
            let key = run.step_key(at);
            let call = StepCall {
                tenant: run.tenant,
                key: &key,
                offboarding: run.offboarding,
                now: self.now(),
            };
            let step = self
                .steps
                .run(run.steps[at].name, &call, self.store.as_ref());
            let Some(outcome) = self.keeping_lease(run, step).await else {
                return Ok(false);
            };
            if let Err(failure) = &outcome {
                tracing::info!(run = %run.id, step = %key, ?failure, "a provisioning step failed");
            }
            run.end_step(at, outcome, self.now(), self.max_attempts);
            if !self.save(run).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Undoes the run's steps newest first while it is rolling back and has one due. False
    /// when it lost the lease.
    async fn undo_steps(&self, run: &mut Run) -> Result<bool> {
        while let Some(at) = run.next_undo() {
            if run.not_before > self.now() {
                return Ok(true);
            }
            let key = run.step_key(at);
            let undo = self.steps.undo(run.steps[at].name, run.tenant, &key);
            let Some(outcome) = self.keeping_lease(run, undo).await else {
                return Ok(false);
            };
            if let Err(failure) = &outcome {
                tracing::info!(run = %run.id, step = %key, ?failure, "undoing a step failed");
            }
            run.end_undo(at, outcome, self.now());
            if !self.save(run).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Awaits a call of one of `run`'s steps while storing the run as it is every
    /// [`HEARTBEAT`], which extends its lease. `None`, with the call dropped, once the lease
    /// is lost: another worker has the run now, and what this call did it does again. A store
    /// that fails to answer loses nothing yet: the lease may still hold at the next beat.
    async fn keeping_lease<T>(&self, run: &Run, call: impl Future<Output = T>) -> Option<T> {
        while_renewed(call, HEARTBEAT, || async {
            match self.save(run).await {
                Ok(kept) => kept,
                Err(error) => {
                    tracing::warn!(run = %run.id, %error, "could not extend the lease of a provisioning run");
                    true
                }
            }
        })
        .await
    }

    /// Stores the run if this worker still holds it, extending the lease. False when it lost
    /// it: another worker has the run now.
    async fn save(&self, run: &Run) -> Result<bool> {
        let saved = self
            .store
            .save(run, self.owner, lease_end(self.now()))
            .await?;
        if !saved {
            tracing::warn!(run = %run.id, "lost the lease of a provisioning run");
        }
        Ok(saved)
    }

    /// The time, to the microsecond, as the store keeps it.
    fn now(&self) -> DateTime<Utc> {
        mfg_common::clock::micros(self.clock.system_now())
    }
}

fn lease_end(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(LEASE).unwrap_or_default()
}

/// Awaits `work`, calling `renew` every `every` meanwhile; `None`, with `work` dropped, as soon
/// as `renew` answers false.
async fn while_renewed<T, R>(
    work: impl Future<Output = T>,
    every: Duration,
    mut renew: impl FnMut() -> R,
) -> Option<T>
where
    R: Future<Output = bool>,
{
    let mut work = std::pin::pin!(work);
    let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = beats.tick() => {
                if !renew().await {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_longer_than_the_lease_is_renewed_each_beat() {
        let beats = AtomicU32::new(0);
        let work = async {
            tokio::time::sleep(Duration::from_secs(95)).await;
            "done"
        };
        let renew = || async {
            beats.fetch_add(1, Ordering::SeqCst);
            true
        };
        assert_eq!(while_renewed(work, HEARTBEAT, renew).await, Some("done"));
        assert_eq!(beats.load(Ordering::SeqCst), 9, "at 10, 20, … 90 s");
    }

    #[tokio::test(start_paused = true)]
    async fn work_is_dropped_once_the_lease_is_lost() {
        let finished = AtomicU32::new(0);
        let beats = AtomicU32::new(0);
        let work = async {
            tokio::time::sleep(Duration::from_secs(95)).await;
            finished.fetch_add(1, Ordering::SeqCst);
        };
        let renew = || async { beats.fetch_add(1, Ordering::SeqCst) < 2 };
        let started = tokio::time::Instant::now();
        assert_eq!(while_renewed(work, HEARTBEAT, renew).await, None);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(30),
            "lost at the third beat"
        );
        assert_eq!(finished.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn work_shorter_than_a_beat_renews_nothing() {
        let beats = AtomicU32::new(0);
        let work = tokio::time::sleep(Duration::from_secs(3));
        let renew = || async {
            beats.fetch_add(1, Ordering::SeqCst);
            true
        };
        assert_eq!(while_renewed(work, HEARTBEAT, renew).await, Some(()));
        assert_eq!(beats.load(Ordering::SeqCst), 0);
    }
}
