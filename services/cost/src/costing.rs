//! Cost reports from the ledger, the price history and the tenants: the one place that reads
//! them together, so that a tenant's report and the operator's summary are the same arithmetic
//! ([`summarize`]) over the same inputs, and agree to the cent. A summary is kept a few seconds
//! ([`Costing`]), so that the reports of many tenants cost one summary, not one each.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use mfg_common::clock::SharedClock;

use crate::{
    domain::{
        daily::{DailyCost, daily},
        meter::Accrual,
        price_book::PriceHistory,
        report::{Summary, TenantCost, Usage, summarize},
    },
    error::Result,
    forecasts::SETTLED,
    settled::SettledBuckets,
    store::{CostStore, buckets::Grain},
    tenants::{Directory, Tenant},
};

/// A period to report on: `[start, end)`, with `end` no later than now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Its start.
    pub start: DateTime<Utc>,
    /// Its end.
    pub end: DateTime<Utc>,
    /// Now: a period that ends now takes everything recorded from its start on.
    pub now: DateTime<Utc>,
}

/// One tenant's report with its days.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantReport {
    /// The tenant.
    pub tenant: Tenant,
    /// Its cost over the period.
    pub cost: TenantCost,
    /// The same per day.
    pub days: Vec<DailyCost>,
    /// The period, as it was costed (a period that ends now ends when it was).
    pub period: Period,
}

/// Every tenant that lived in a period, costed, with the prices it was costed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Costed {
    /// The period.
    pub period: Period,
    /// The tenants, in the order of the summary's reports.
    pub tenants: Vec<Tenant>,
    /// Their costs and the platform's.
    pub summary: Summary,
    /// The price books.
    pub prices: PriceHistory,
}

/// How long a summary of a period that ends now is reused: as long as the services take to
/// flush their usage, so a report is no staler than the metering behind it.
pub const FRESH: Duration = Duration::from_secs(5);

/// The most summaries kept.
const KEPT: usize = 64;

/// Costs periods from the ledger, the price history and the tenants, keeping recent summaries
/// (a summary of every tenant is what a tenant's report is a part of, so that the two agree).
#[derive(Debug)]
pub struct Costing {
    store: Arc<dyn CostStore>,
    tenants: Arc<Directory>,
    clock: SharedClock,
    kept: Mutex<HashMap<PeriodKey, (Instant, Arc<Costed>)>>,
    /// The ledger's settled buckets, read once.
    settled: SettledBuckets,
    /// How many times the summaries kept were forgotten: one costed before the last time is
    /// not kept.
    forgotten: std::sync::atomic::AtomicU64,
}

/// A period's start, and its end unless it ends now.
type PeriodKey = (DateTime<Utc>, Option<DateTime<Utc>>);

impl Costing {
    /// Costs over `store`, for the tenants of `tenants`.
    pub fn new(store: Arc<dyn CostStore>, tenants: Arc<Directory>, clock: SharedClock) -> Self {
        Self {
            store,
            tenants,
            clock,
            kept: Mutex::default(),
            settled: SettledBuckets::default(),
            forgotten: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The ledger.
    pub fn store(&self) -> &dyn CostStore {
        self.store.as_ref()
    }

    /// The tenants.
    pub fn tenants(&self) -> &Directory {
        &self.tenants
    }

    /// Every tenant that lived in `period`, costed. A summary of a period that ends now is
    /// reused for [`FRESH`] (its end is then when it was made); one of a period that ended
    /// more than [`SETTLED`] ago, while it is among the [`KEPT`] latest.
    pub async fn summary(&self, period: Period) -> Result<Arc<Costed>> {
        let ends_now = period.end >= period.now;
        let key = (period.start, (!ends_now).then_some(period.end));
        let now = self.clock.now();
        if let Some((made, costed)) = lock(&self.kept).get(&key)
            && (settled(costed.period) || now.duration_since(*made) < FRESH)
        {
            return Ok(costed.clone());
        }
        let forgotten = self.forgotten.load(std::sync::atomic::Ordering::Acquire);
        let costed = Arc::new(self.cost(period).await?);
        let mut kept = lock(&self.kept);
        if self.forgotten.load(std::sync::atomic::Ordering::Acquire) != forgotten {
            // Costed from what a price change or a late record has changed since.
            return Ok(costed);
        }
        if kept.len() >= KEPT {
            kept.retain(|_, (made, _)| now.duration_since(*made) < FRESH);
            if kept.len() >= KEPT {
                kept.clear();
            }
        }
        kept.insert(key, (now, costed.clone()));
        Ok(costed)
    }

    /// Every tenant that lived in `period`, costed now, and not kept (for callers that keep
    /// what they need of it).
    pub async fn cost(&self, period: Period) -> Result<Costed> {
        summary(self.store(), &self.tenants, &self.settled, period).await
    }

    /// Forgets the summaries kept, after a change of prices or usage recorded late.
    pub fn forget(&self) {
        let mut kept = lock(&self.kept);
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        kept.clear();
    }

    /// One tenant's report: its part of the summary, so that it agrees with it, and its days.
    pub async fn tenant(&self, tenant: Tenant, period: Period) -> Result<TenantReport> {
        let costed = self.summary(period).await?;
        let period = costed.period;
        let cost = costed
            .summary
            .tenants
            .iter()
            .find(|c| c.tenant == tenant.id)
            .cloned()
            .unwrap_or_else(|| TenantCost::nothing(tenant.id));
        let first_day = Grain::Day.floor(period.start);
        let usage = self
            .store
            .usage(Grain::Day, Some(tenant.id), first_day, period.end)
            .await?;
        let days = daily(&cost, &usage, &costed.prices, period.start, period.end);
        Ok(TenantReport {
            tenant,
            cost,
            days,
            period,
        })
    }
}

/// Every tenant that lived in the period, costed, and the platform's total.
async fn summary(
    store: &dyn CostStore,
    directory: &Directory,
    settled: &SettledBuckets,
    period: Period,
) -> Result<Costed> {
    let tenants: Vec<Tenant> = directory
        .all()
        .await
        .iter()
        .filter(|t| t.lived_in(period.start, period.end))
        .cloned()
        .collect();
    let prices = store.price_history().await?;
    let usage = usage(store, settled, &prices, period).await?;
    let plans: Vec<_> = tenants.iter().map(|t| (t.id, t.plan)).collect();
    let summary = summarize(&plans, &usage, &prices, period.start, period.end);
    Ok(Costed {
        period,
        tenants,
        summary,
        prices,
    })
}

/// Whether a period had settled when it was costed: it had ended more than [`SETTLED`] before.
fn settled(period: Period) -> bool {
    period.now - period.end > SETTLED
}

/// Locks a mutex of this crate's caches, whose state stays whole if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The usage of the period, one record per tenant and meter for each price book in force in
/// it: the hours that start in the book's part, summed.
async fn usage(
    store: &dyn CostStore,
    settled: &SettledBuckets,
    prices: &PriceHistory,
    period: Period,
) -> Result<Vec<Usage>> {
    let mut usage = Vec::new();
    for (start, end, _) in prices.over(period.start, period.end) {
        let open = end >= period.now;
        let sums = settled
            .sums(store, start, (!open).then_some(end), period.now)
            .await?;
        for summed in sums {
            let seconds = (end - start).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            usage.push(Usage {
                tenant: summed.tenant,
                meter: summed.meter,
                start,
                end,
                quantity: match summed.meter.accrual() {
                    Accrual::Count => summed.amount,
                    Accrual::Level => summed.amount / seconds,
                },
            });
        }
    }
    Ok(usage)
}

impl Period {
    /// The period of a request: from `start` (by default the start of the month) to `end`
    /// (by default, and at most, now).
    pub fn of(
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let end = end.map_or(now, |end| end.min(now));
        let start = start.unwrap_or_else(|| Grain::Month.floor(now));
        Self { start, end, now }
    }
}
