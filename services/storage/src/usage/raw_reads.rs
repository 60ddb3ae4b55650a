//! How far back the tenants' queries read raw hot readings: counted in memory as queries run,
//! and kept in the database every [`FLUSH_EVERY`], the larger age of a tenant's day winning
//! there whichever storage process wrote it. A crash forgets at most that long's reads: the
//! recommendation they feed is advice, and a month of reads stands behind it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::NaiveDate;
use mfg_common::{clock::SharedClock, shutdown::CancellationToken};
use uuid::Uuid;

use super::store::UsageStore;
use crate::{error::Result, micros::Micros};

/// How often the ages read are kept in the database.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);

const DAY_MICROS: u64 = 86_400_000_000;

/// The ages of the raw hot readings the tenants' queries read, by tenant and day.
#[derive(Debug)]
pub struct RawReads {
    store: Arc<dyn UsageStore>,
    clock: SharedClock,
    unsaved: std::sync::Mutex<HashMap<(Uuid, NaiveDate), u32>>,
}

impl RawReads {
    /// Counts into `store`, on `clock`.
    pub fn new(store: Arc<dyn UsageStore>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            unsaved: std::sync::Mutex::default(),
        }
    }

    /// Forgets an offboarded tenant's raw reads: those counted and not saved, then the saved.
    pub async fn forget(&self, tenant: Uuid) -> Result<()> {
        self.unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(of, _), _| *of != tenant);
        self.store.forget_raw_reads(tenant).await
    }

    /// Counts that a query of `tenant` read raw hot readings from `oldest` on.
    pub fn read(&self, tenant: Uuid, oldest: Micros) {
        let now = Micros::of(self.clock.system_now());
        let age = (now.0 - oldest.0)
            .max(0)
            .unsigned_abs()
            .div_ceil(DAY_MICROS);
        let age = u32::try_from(age).unwrap_or(u32::MAX);
        let mut unsaved = self
            .unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept = unsaved.entry((tenant, now.day())).or_default();
        *kept = (*kept).max(age);
    }

    /// The largest age a tenant's queries read on the days from `since`, saved or not.
    pub async fn oldest(&self, tenant: Uuid, since: NaiveDate) -> Result<Option<u32>> {
        let unsaved = self
            .unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|((t, day), _)| *t == tenant && *day >= since)
            .map(|(_, &age)| age)
            .max();
        let saved = self.store.oldest_raw_read(tenant, since).await?;
        Ok(saved.max(unsaved))
    }

    /// Keeps the ages counted since the last save; those not kept are counted again.
    pub async fn save(&self) -> Result<()> {
        let reads: Vec<_> = std::mem::take(
            &mut *self
                .unsaved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .map(|((tenant, day), age)| (tenant, day, age))
        .collect();
        if let Err(error) = self.store.record_raw_reads(&reads).await {
            let mut unsaved = self
                .unsaved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (tenant, day, age) in reads {
                let kept = unsaved.entry((tenant, day)).or_default();
                *kept = (*kept).max(age);
            }
            return Err(error);
        }
        Ok(())
    }

    /// Saves every [`FLUSH_EVERY`] until `shutdown` (the service saves the last ones once its
    /// queries have drained).
    pub async fn save_every(&self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(FLUSH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = self.save().await {
                tracing::warn!(%error, "the ages of raw reads were not saved; the next save retries");
            }
        }
    }
}
