//! What the directory keeps of the tenant service's answers, and how long each holds.

use std::{collections::HashMap, sync::Arc, time::Instant};

use uuid::Uuid;

use super::{MachineLabels, TenantInfo};

/// The most machines kept: beyond, those that expired are forgotten, and if that is not
/// enough, all.
const MAX_MACHINES_KEPT: usize = 1_000_000;

/// The tenants' records, and how far the listing of their changes has read.
#[derive(Debug, Default)]
pub(super) struct Tenants {
    /// Each tenant's record, and until when it holds by itself.
    by_id: HashMap<Uuid, (Instant, Arc<TenantInfo>)>,
    /// The newest revision listed: the next listing asks for the changes after it.
    pub(super) listed_to: i64,
    /// Until when every record holds: a listing that began a [`super::TENANT_TTL`] before
    /// returned every change committed before it began.
    listed_until: Option<Instant>,
}

impl Tenants {
    /// A tenant's record, if it holds now.
    pub(super) fn fresh(&self, id: Uuid, now: Instant) -> Option<&Arc<TenantInfo>> {
        let (expires, info) = self.by_id.get(&id)?;
        let listed = self.listed_until.is_some_and(|until| now < until);
        (listed || now < *expires).then_some(info)
    }

    /// Keeps a record, holding by itself until `expires`, unless a later revision of it is
    /// held: answers and listings may arrive out of order.
    pub(super) fn keep(&mut self, info: Arc<TenantInfo>, expires: Instant) {
        match self.by_id.get(&info.id) {
            Some((_, held)) if held.revision > info.revision => {}
            _ => {
                self.by_id.insert(info.id, (expires, info));
            }
        }
    }

    /// Records a listing that began at `until` minus the TTL and read the changes up to
    /// `revision`.
    pub(super) fn listed(&mut self, revision: i64, until: Instant) {
        self.listed_to = self.listed_to.max(revision);
        self.listed_until = self.listed_until.max(Some(until));
    }
}

/// What the tenant service answered about a machine.
#[derive(Debug)]
pub(super) struct KnownMachine {
    /// The machine's labels; `None`: not registered.
    pub(super) labels: Option<MachineLabels>,
    /// The tenant's revision it was asked under, when the directory held a fresh record of the
    /// tenant: it holds for as long as a fresh record has the same revision.
    pub(super) revision: Option<i64>,
    /// Until when it holds without a fresh record of the tenant.
    pub(super) expires: Instant,
}

impl KnownMachine {
    /// Whether it still holds, now that the tenant's fresh record (if any) has `revision`.
    pub(super) fn holds(&self, now: Instant, revision: Option<i64>) -> bool {
        match (self.revision, revision) {
            (Some(asked_under), Some(now_at)) => asked_under == now_at,
            _ => now < self.expires,
        }
    }
}

/// Machines by tenant and id.
#[derive(Debug, Default)]
pub(super) struct Machines(HashMap<(Uuid, String), KnownMachine>);

impl Machines {
    /// The answer about a machine, if it still holds.
    pub(super) fn holding(
        &self,
        key: &(Uuid, String),
        now: Instant,
        revision: Option<i64>,
    ) -> Option<&KnownMachine> {
        self.0.get(key).filter(|known| known.holds(now, revision))
    }

    /// Keeps an answer about a machine, within [`MAX_MACHINES_KEPT`].
    pub(super) fn keep(&mut self, key: (Uuid, String), known: KnownMachine, now: Instant) {
        if self.0.len() >= MAX_MACHINES_KEPT {
            self.0.retain(|_, kept| now < kept.expires);
            if self.0.len() >= MAX_MACHINES_KEPT {
                self.0.clear();
            }
        }
        self.0.insert(key, known);
    }
}
