//! Cost reports from the ledger, the price history and the tenants: the one place that reads
//! them together, so that a tenant's report and the operator's summary are the same arithmetic
//! ([`summarize`]) over the same inputs, and agree to the cent.

use crate::{
    domain::{
        daily::{DailyCost, daily},
        meter::Accrual,
        price_book::PriceHistory,
        report::{Summary, TenantCost, Usage, summarize},
    },
    error::Result,
    store::{CostStore, buckets::Grain},
    tenants::{Directory, Tenant},
};
use chrono::{DateTime, Utc};

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
}

/// Every tenant that lived in the period, costed, and the platform's total.
pub async fn summary(
    store: &dyn CostStore,
    directory: &Directory,
    period: Period,
) -> Result<(Vec<Tenant>, Summary, PriceHistory)> {
    let tenants: Vec<Tenant> = directory
        .all()
        .await
        .iter()
        .filter(|t| t.lived_in(period.start, period.end))
        .cloned()
        .collect();
    let prices = store.price_history().await?;
    let usage = usage(store, &prices, period).await?;
    let plans: Vec<_> = tenants.iter().map(|t| (t.id, t.plan)).collect();
    let summary = summarize(&plans, &usage, &prices, period.start, period.end);
    Ok((tenants, summary, prices))
}

/// One tenant's report: its part of the summary, so that it agrees with it, and its days.
pub async fn tenant(
    store: &dyn CostStore,
    directory: &Directory,
    tenant: Tenant,
    period: Period,
) -> Result<TenantReport> {
    let (_, summary, prices) = summary(store, directory, period).await?;
    let cost = summary
        .tenants
        .into_iter()
        .find(|c| c.tenant == tenant.id)
        .unwrap_or_else(|| TenantCost::nothing(tenant.id));
    let first_day = Grain::Day.floor(period.start);
    let usage = store
        .usage(Grain::Day, Some(tenant.id), first_day, period.end)
        .await?;
    let days = daily(&cost, &usage, &prices, period.start, period.end);
    Ok(TenantReport { tenant, cost, days })
}

/// The usage of the period, one record per tenant and meter for each price book in force in
/// it: the hours that start in the book's part, summed.
async fn usage(store: &dyn CostStore, prices: &PriceHistory, period: Period) -> Result<Vec<Usage>> {
    let mut usage = Vec::new();
    for (start, end, _) in prices.over(period.start, period.end) {
        let open = end >= period.now;
        for summed in store.sums(None, start, (!open).then_some(end)).await? {
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
