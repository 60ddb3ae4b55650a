//! Cost reports from the ledger, the price history and the tenants: the one place that reads
//! them together, so that a tenant's report and the operator's summary are the same arithmetic
//! ([`summarize`]) over the same inputs, and agree to the cent. A summary is kept a few seconds
//! ([`Costing`]), so that the reports of many tenants cost one summary, not one each; and one
//! that clients keep asking for is costed again before it is due ([`Costing::keep_warm`]), so
//! that they do not wait for it. A request reads the ledger's version once, first
//! ([`Costing::version`]), and its summaries are costed from the ledger at that version or
//! later. The price history is kept [`FRESH`] too: a change of prices takes effect when it is
//! made, so another process sees it within [`FRESH`], as it sees the usage of a period that
//! ends now.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use mfg_common::clock::{SharedClock, micros};
use mfg_common::shutdown::CancellationToken;

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
    /// When the ledger was read for it ([`crate::settled::Sums::as_of`]).
    pub as_of: DateTime<Utc>,
}

/// How long a summary of a period that ends now is reused: as long as the services take to
/// flush their usage, so a report is no staler than the metering behind it.
pub const FRESH: Duration = Duration::from_secs(5);

/// How long before it is due a summary still asked for is costed again.
const AHEAD: Duration = Duration::from_secs(2);

/// How long after it was last asked for a summary is kept costed ahead of time.
const WARM_FOR: Duration = Duration::from_secs(20);

/// How often the summaries asked for are looked at, to cost those due within [`AHEAD`] again.
const WARM_EVERY: Duration = Duration::from_secs(1);

/// The most summaries kept.
const KEPT: usize = 64;

/// Costs periods from the ledger, the price history and the tenants, keeping recent summaries
/// (a summary of every tenant is what a tenant's report is a part of, so that the two agree).
#[derive(Debug)]
pub struct Costing {
    store: Arc<dyn CostStore>,
    tenants: Arc<Directory>,
    clock: SharedClock,
    kept: Mutex<HashMap<PeriodKey, Kept>>,
    /// The ledger's version the summaries kept were costed at: late usage recorded by any
    /// process moves it, and they are forgotten.
    version: Mutex<Option<i64>>,
    /// The ledger's settled buckets, read once.
    settled: SettledBuckets,
    /// The price history, with when it was read: reused [`FRESH`], as the summaries of a
    /// period that ends now are (a change of prices takes effect when it is made, so a period
    /// that ended before is costed the same), and forgotten with them.
    prices: Mutex<Option<(DateTime<Utc>, PriceHistory)>>,
    /// How many times the summaries kept were forgotten: one costed before the last time is
    /// not kept.
    forgotten: AtomicU64,
}

/// A period's start, and its end unless it ends now.
type PeriodKey = (DateTime<Utc>, Option<DateTime<Utc>>);

/// A summary kept.
#[derive(Debug)]
struct Kept {
    costed: Arc<Costed>,
    /// When it was last asked for.
    asked: DateTime<Utc>,
    /// How many times it was asked for: one asked for once (a period a client looked at, and
    /// left) is not costed ahead of time.
    asks: u32,
}

impl Costing {
    /// Costs over `store`, for the tenants of `tenants`.
    pub fn new(store: Arc<dyn CostStore>, tenants: Arc<Directory>, clock: SharedClock) -> Self {
        Self {
            store,
            tenants,
            clock,
            kept: Mutex::default(),
            version: Mutex::default(),
            settled: SettledBuckets::default(),
            prices: Mutex::default(),
            forgotten: AtomicU64::new(0),
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

    /// Every tenant that lived in `period`, costed, from the ledger as it is now
    /// ([`Self::summary_at`] the version read now).
    pub async fn summary(&self, period: Period) -> Result<Arc<Costed>> {
        let version = self.version().await?;
        self.summary_at(period, version).await
    }

    /// Every tenant that lived in `period`, costed, from the ledger at `version` or later
    /// ([`Self::version`]). A summary of a period that ends now is reused while the ledger was
    /// read for it less than [`FRESH`] before (its end is then when it was costed); one of a
    /// period that ended more than [`SETTLED`] ago, while it is among the [`KEPT`] latest,
    /// and while the ledger's version stays.
    pub async fn summary_at(&self, period: Period, version: i64) -> Result<Arc<Costed>> {
        let key = key(period);
        if let Some(kept) = lock(&self.kept).get_mut(&key)
            && (settled(kept.costed.period) || age(kept.costed.as_of, period.now) < FRESH)
        {
            kept.asked = period.now;
            kept.asks = kept.asks.saturating_add(1);
            return Ok(kept.costed.clone());
        }
        self.cost_and_keep(period, Some(period.now), version).await
    }

    /// Costs `period` and keeps it, as asked for at `asked` (`None`: costed ahead of time),
    /// unless a price change or a late record made it out of date while it was costed.
    async fn cost_and_keep(
        &self,
        period: Period,
        asked: Option<DateTime<Utc>>,
        version: i64,
    ) -> Result<Arc<Costed>> {
        let forgotten = self.forgotten.load(Ordering::Acquire);
        let costed = Arc::new(self.cost(period, version).await?);
        let mut kept = lock(&self.kept);
        if self.forgotten.load(Ordering::Acquire) != forgotten {
            return Ok(costed);
        }
        if kept.len() >= KEPT {
            kept.retain(|_, k| age(k.costed.as_of, period.now) < FRESH);
            if kept.len() >= KEPT {
                kept.clear();
            }
        }
        let earlier = kept.get(&key(period)).map(|k| (k.asked, k.asks));
        let (asked, asks) = match (earlier, asked) {
            (Some((last, asks)), Some(now)) => (last.max(now), asks.saturating_add(1)),
            (Some(earlier), None) => earlier,
            (None, now) => (now.unwrap_or(DateTime::<Utc>::MIN_UTC), 1),
        };
        kept.insert(
            key(period),
            Kept {
                costed: costed.clone(),
                asked,
                asks,
            },
        );
        Ok(costed)
    }

    /// Costs again, until `shutdown`, each summary of a period that ends now that was asked
    /// for more than once, last in the last [`WARM_FOR`], and is due within [`AHEAD`]. A
    /// period asked for once is not: a client that looks at many periods once each would
    /// have them all costed again, on the cores its requests need. A client that keeps asking
    /// (a console, say) finds it costed, from the ledger read at most [`FRESH`] before.
    /// Reports are then as fresh as before, and none waits for its summary. As soon as they
    /// are wanted, it reads the settled buckets that reports will want next
    /// ([`SettledBuckets::read_ahead`]).
    pub async fn keep_warm(&self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(WARM_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.settled.wanted() => {
                    if let Err(error) = self.read_ahead().await {
                        tracing::warn!(%error, "could not read the buckets reports want ahead");
                    }
                    continue;
                }
                _ = ticks.tick() => {}
            }
            let now = micros(self.clock.system_now());
            if let Err(error) = self.warm(now).await {
                tracing::warn!(%error, "could not cost the reports asked for ahead of time");
            }
        }
    }

    /// Reads the settled buckets that reports want ahead ([`SettledBuckets::read_ahead`]).
    async fn read_ahead(&self) -> Result<()> {
        let version = self.version().await?;
        self.settled.read_ahead(self.store(), version).await
    }

    /// One look of [`Self::keep_warm`]: reads the settled buckets that reports will want
    /// ([`SettledBuckets::read_ahead`]), and costs again the summaries asked for in the last
    /// [`WARM_FOR`] that are due within [`AHEAD`] of `now`, after reading their open tails
    /// again.
    pub async fn warm(&self, now: DateTime<Utc>) -> Result<()> {
        let due: Vec<DateTime<Utc>> = lock(&self.kept)
            .iter()
            .filter(|((_, end), k)| {
                end.is_none()
                    && k.asks > 1
                    && age(k.asked, now) < WARM_FOR
                    && age(k.costed.as_of, now) >= FRESH.saturating_sub(AHEAD)
            })
            .map(|((start, _), _)| *start)
            .collect();
        if due.is_empty() && !self.settled.wants_ahead() {
            return Ok(());
        }
        let version = self.version().await?;
        self.settled.read_ahead(self.store(), version).await?;
        if due.is_empty() {
            return Ok(());
        }
        let ahead = chrono::Duration::from_std(FRESH.saturating_sub(AHEAD)).unwrap_or_default();
        self.settled
            .refresh_open(self.store(), version, now, ahead)
            .await?;
        for start in due {
            let period = Period {
                start,
                end: now,
                now,
            };
            self.cost_and_keep(period, None, version).await?;
        }
        Ok(())
    }

    /// Every tenant that lived in `period`, costed now from the ledger at `version` or later,
    /// and not kept (for callers that keep what they need of it).
    pub async fn cost(&self, period: Period, version: i64) -> Result<Costed> {
        let prices = self.prices(period.now).await?;
        summary(
            self.store(),
            &self.tenants,
            &self.settled,
            version,
            prices,
            period,
        )
        .await
    }

    /// The ledger's version, read now: what a request reads the ledger at, once, however many
    /// summaries it asks for. When it moved (usage recorded late, by this process or another,
    /// into a period taken as settled), the summaries and buckets kept are forgotten.
    pub async fn version(&self) -> Result<i64> {
        let version = self.store.ledger_version().await?;
        let moved = {
            let mut kept = lock(&self.version);
            let moved = kept.is_some_and(|v| v < version);
            if kept.is_none_or(|v| v < version) {
                *kept = Some(version);
            }
            moved
        };
        if moved {
            self.forget();
        }
        Ok(version)
    }

    /// The price history, as read less than [`FRESH`] before `now`, or read now.
    async fn prices(&self, now: DateTime<Utc>) -> Result<PriceHistory> {
        if let Some((read, prices)) = lock(&self.prices).as_ref()
            && age(*read, now) < FRESH
            && *read <= now
        {
            return Ok(prices.clone());
        }
        let forgotten = self.forgotten.load(Ordering::Acquire);
        let prices = self.store.price_history().await?;
        let mut kept = lock(&self.prices);
        if self.forgotten.load(Ordering::Acquire) == forgotten {
            *kept = Some((now, prices.clone()));
        }
        Ok(prices)
    }

    /// Forgets the summaries and the prices kept, after a change of prices or usage recorded
    /// late.
    pub fn forget(&self) {
        let mut kept = lock(&self.kept);
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        kept.clear();
        *lock(&self.prices) = None;
    }

    /// One tenant's report: its part of the summary, so that it agrees with it, and its days.
    pub async fn tenant(
        &self,
        tenant: Tenant,
        period: Period,
        version: i64,
    ) -> Result<TenantReport> {
        let costed = self.summary_at(period, version).await?;
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
    version: i64,
    prices: PriceHistory,
    period: Period,
) -> Result<Costed> {
    let tenants: Vec<Tenant> = directory
        .all()
        .await
        .iter()
        .filter(|t| t.lived_in(period.start, period.end))
        .cloned()
        .collect();
    let (usage, as_of) = usage(store, settled, version, &prices, period).await?;
    let plans: Vec<_> = tenants.iter().map(|t| (t.id, t.plan)).collect();
    let summary = summarize(&plans, &usage, &prices, period.start, period.end);
    Ok(Costed {
        period,
        tenants,
        summary,
        prices,
        as_of,
    })
}

/// The key a period's summary is kept under.
fn key(period: Period) -> PeriodKey {
    let ends_now = period.end >= period.now;
    (period.start, (!ends_now).then_some(period.end))
}

/// How long before `now` `then` was (zero if after).
fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or_default()
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
/// it (the hours that start in the book's part, summed), and when the ledger was read for it.
async fn usage(
    store: &dyn CostStore,
    settled: &SettledBuckets,
    version: i64,
    prices: &PriceHistory,
    period: Period,
) -> Result<(Vec<Usage>, DateTime<Utc>)> {
    let mut usage = Vec::new();
    let mut as_of = period.now;
    for (start, end, _) in prices.over(period.start, period.end) {
        let open = end >= period.now;
        let sums = settled
            .sums(store, version, start, (!open).then_some(end), period.now)
            .await?;
        as_of = as_of.min(sums.as_of);
        for summed in sums.sums {
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
    Ok((usage, as_of))
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
