//! The machine sweep: what is left of machines deleted from their tenant.
//!
//! Machines belong to the tenant service, which does not call the storage service. Once the
//! directory's cache of a deleted machine expires its readings are refused, but its unresolved
//! alerts would stay open for good, and a no-data rule that lists it by id would raise one for
//! good. So every `interval` the sweep asks the directory about each machine the evaluator
//! holds rule states of or that has an unresolved alert. One that is no longer registered is
//! forgotten by the evaluator (its states dropped, here and in the store, and no longer
//! watched for no-data), and then its alerts are resolved by the system. A forgotten machine
//! that is registered again is watched again; one that reports again is, at once.
//!
//! A machine the directory cannot answer for (the tenant service is unreachable) is left as it
//! is: only a definite "not registered" forgets anything.

use std::{collections::HashSet, time::Duration};

use futures::StreamExt as _;
use mfg_common::shutdown::CancellationToken;

use super::{Evaluator, Journal, evaluator::MachineRef};
use crate::directory::Directory;

/// How many machines are checked with the tenant service at once.
const CONCURRENT_CHECKS: usize = 16;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Machines found gone, forgotten and their alerts resolved.
    pub gone: usize,
    /// Forgotten machines found registered again.
    pub restored: usize,
    /// Machines that could not be checked.
    pub unchecked: usize,
}

/// The sweep.
#[derive(Debug, Clone)]
pub struct MachineSweep {
    directory: Directory,
    evaluator: Evaluator,
    journal: Journal,
}

/// Whether the directory knows the machine: `None` when it cannot tell.
async fn registered(directory: &Directory, machine: &MachineRef) -> Option<bool> {
    match directory.machine_exists(machine.0, &machine.1).await {
        Ok(known) => Some(known),
        Err(error) => {
            tracing::debug!(%error, tenant = %machine.0, machine = %machine.1, "cannot check a machine");
            None
        }
    }
}

impl MachineSweep {
    /// A sweep over the evaluator's and the journal's machines.
    pub fn new(directory: Directory, evaluator: Evaluator, journal: Journal) -> Self {
        Self {
            directory,
            evaluator,
            journal,
        }
    }

    /// Sweeps at once, then every `interval`, until shutdown.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            let outcome = self.once().await;
            if outcome.gone > 0 || outcome.restored > 0 {
                tracing::info!(
                    gone = outcome.gone,
                    restored = outcome.restored,
                    "machine sweep: alerts of deleted machines resolved"
                );
            }
            if outcome.unchecked > 0 {
                tracing::warn!(
                    unchecked = outcome.unchecked,
                    "machine sweep: some machines could not be checked with the tenant service"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Sweeps once.
    pub async fn once(&self) -> SweepOutcome {
        let (mut watched, forgotten) = self.evaluator.machines().await;
        // Empty when the service stops; then there is nothing to resolve either.
        watched.extend(self.journal.open_machines().await.unwrap_or_default());
        let watched = self.check(watched).await;
        let forgotten = self.check(forgotten).await;
        let mut outcome = SweepOutcome::default();
        for (machine, known) in watched {
            match known {
                Some(false) => {
                    // States first: what a shard sends the journal is then ahead of the
                    // resolve, so nothing of the machine's is raised after it.
                    self.evaluator.forget_machine(machine.clone()).await;
                    if let Err(error) = self.journal.machine_gone(machine.0, machine.1).await {
                        tracing::warn!(%error, "resolving the alerts of a deleted machine failed");
                        outcome.unchecked += 1;
                        continue;
                    }
                    outcome.gone += 1;
                }
                Some(true) => {}
                None => outcome.unchecked += 1,
            }
        }
        for (machine, known) in forgotten {
            if known == Some(true) {
                self.evaluator.restore_machine(machine).await;
                outcome.restored += 1;
            }
        }
        outcome
    }

    async fn check(&self, machines: HashSet<MachineRef>) -> Vec<(MachineRef, Option<bool>)> {
        futures::stream::iter(machines)
            .map(|machine| async move {
                let known = registered(&self.directory, &machine).await;
                (machine, known)
            })
            .buffer_unordered(CONCURRENT_CHECKS)
            .collect()
            .await
    }
}
