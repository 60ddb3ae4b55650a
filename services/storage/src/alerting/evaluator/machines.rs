//! Machines that are gone: the shards forget them when the [machine
//! sweep](crate::alerting::sweep) finds them no longer registered, and watch them again when
//! they come back.

use std::collections::HashSet;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Evaluator, Shard};
use crate::alerting::journal::Command;

/// A machine of a tenant.
pub type MachineRef = (Uuid, String);

/// What a shard is told besides readings.
pub(super) enum Control {
    /// Which machines the shard holds states of, and which it has forgotten.
    Machines(oneshot::Sender<(HashSet<MachineRef>, HashSet<MachineRef>)>),
    /// A machine is gone: drop its states and stop watching it.
    Forget(MachineRef, oneshot::Sender<()>),
    /// A forgotten machine is registered again: watch it again.
    Restore(MachineRef),
}

impl Evaluator {
    /// The machines the shards hold rule states of, and those they have forgotten; empty
    /// once the service stops.
    pub async fn machines(&self) -> (HashSet<MachineRef>, HashSet<MachineRef>) {
        let (mut watched, mut forgotten) = (HashSet::new(), HashSet::new());
        for shard in &self.inner.shards {
            let (reply, answer) = oneshot::channel();
            if shard.control.send(Control::Machines(reply)).await.is_err() {
                continue;
            }
            if let Ok((w, f)) = answer.await {
                watched.extend(w);
                forgotten.extend(f);
            }
        }
        (watched, forgotten)
    }

    /// Forgets a machine that is gone: every shard drops its states (and has the journal
    /// delete the stored ones) and stops watching it for no-data, until it reports again or
    /// is [restored](Self::restore_machine). Returns once every shard has done so, so that
    /// whatever a shard sent the journal about the machine is ahead of what is sent next.
    pub async fn forget_machine(&self, machine: MachineRef) {
        for shard in &self.inner.shards {
            let (reply, answer) = oneshot::channel();
            if shard
                .control
                .send(Control::Forget(machine.clone(), reply))
                .await
                .is_ok()
            {
                let _ = answer.await;
            }
        }
    }

    /// Watches a forgotten machine again (it was registered again).
    pub async fn restore_machine(&self, machine: MachineRef) {
        for shard in &self.inner.shards {
            let _ = shard.control.send(Control::Restore(machine.clone())).await;
        }
    }
}

pub(super) fn is_forgotten(forgotten: &HashSet<MachineRef>, tenant: Uuid, machine: &str) -> bool {
    !forgotten.is_empty() && forgotten.iter().any(|(t, m)| *t == tenant && m == machine)
}

impl Shard {
    pub(super) async fn control(&mut self, control: Control) {
        match control {
            Control::Machines(reply) => {
                let watched = self
                    .states
                    .keys()
                    .map(|key| (key.tenant_id, key.machine_id.clone()))
                    .collect();
                let _ = reply.send((watched, self.forgotten.clone()));
            }
            Control::Forget((tenant, machine_id), reply) => {
                let mut removed = Vec::new();
                self.states.retain(|key, _| {
                    let gone = key.tenant_id == tenant && key.machine_id == machine_id;
                    if gone {
                        removed.push((key.clone(), None));
                    }
                    !gone
                });
                self.dirty
                    .retain(|key| !(key.tenant_id == tenant && key.machine_id == machine_id));
                self.forgotten.insert((tenant, machine_id));
                if !removed.is_empty() {
                    let _ = self.journal.send(Command::States(removed)).await;
                }
                let _ = reply.send(());
            }
            Control::Restore(machine) => {
                self.forgotten.remove(&machine);
            }
        }
    }
}
