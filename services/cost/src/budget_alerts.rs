//! Budget alerts: every check, each tenant's month-to-date and forecast cost is compared with
//! the thresholds of its budget, and each threshold crossed is raised once a month as an alert
//! of the storage service's journal (`RaiseBudgetAlert`), which gives it the lifecycle and the
//! fan-out of every alert. When a month is over, its alerts are resolved
//! (`ResolveBudgetAlerts`).
//!
//! The check keeps nothing in memory: what was raised is in the ledger (`budget_alerts`), so
//! several cost processes on one database raise each breach once. A process claims a breach
//! under an alert id before it raises it; a claim whose process failed is taken over after
//! [`CLAIM_LEASE`] with the same id, which the storage service raises once.

use std::time::Duration;

use chrono::{DateTime, Datelike as _, Utc};
use mfg_common::{grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::storage::v1::{self as spb, alert_service_client::AlertServiceClient};
use uuid::Uuid;

use crate::{
    api::Ready,
    domain::budget::{self, Basis, Breach, Severity},
    error::{CostError, Result},
    store::buckets::Grain,
};

/// How long a claimed breach waits for its alert before another check raises it.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(1);

/// How many days of a month end before its forecast is alerted on: a forecast from less is
/// too unsteady (one day's cost stands for the month).
pub const FORECAST_AFTER_DAYS: i64 = 2;

/// What one check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Alerts raised.
    pub raised: usize,
    /// Tenants whose alerts of past months were resolved.
    pub ended: usize,
}

/// Raises the tenants' budget alerts through the storage service.
#[derive(Debug, Clone)]
pub struct BudgetAlerts {
    storage: AlertServiceClient<TracedChannel>,
}

/// A month as budget alerts name it, `YYYY-MM`.
pub fn month_of(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

impl BudgetAlerts {
    /// Raises through a client of the storage service that carries the operator token.
    pub fn new(storage: AlertServiceClient<TracedChannel>) -> Self {
        Self { storage }
    }

    /// Checks every `interval` until `shutdown`. A failed check is logged and the next one
    /// tries again.
    pub async fn run(&self, ready: &Ready, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.check(ready).await {
                Ok(checked) if checked != Checked::default() => {
                    tracing::info!(?checked, "budget alerts checked");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "the budget check failed; the next retries"),
            }
        }
    }

    /// Resolves the alerts of the months that ended, then raises the breaches of this month
    /// not raised yet.
    pub async fn check(&self, ready: &Ready) -> Result<Checked> {
        let now: DateTime<Utc> = ready.clock.system_now().into();
        let month = month_of(now);
        let ended = self.end_past_months(ready, &month).await?;
        let raised = ready.store().raised_breaches(&month).await?;
        let mut checked = Checked { raised: 0, ended };
        for (breach, limit, cost) in breaches(ready, now, &month).await? {
            if raised.contains(&breach) {
                continue;
            }
            // One breach failing holds up no other; its claim lapses and a later check retries.
            match self.raise(ready, &breach, limit, cost, now).await {
                Ok(true) => checked.raised += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, ?breach, "a budget alert was not raised"),
            }
        }
        Ok(checked)
    }

    /// Resolves the tenants' alerts of the months before `month` that are not ended; returns
    /// for how many tenants.
    async fn end_past_months(&self, ready: &Ready, month: &str) -> Result<usize> {
        let mut ended = 0;
        for tenant in ready.store().unended_breaches(month).await? {
            match self.end(ready, tenant, month).await {
                Ok(()) => ended += 1,
                Err(error) => tracing::warn!(%error, %tenant, "budget alerts did not end"),
            }
        }
        Ok(ended)
    }

    /// Resolves a tenant's alerts of the months before `month`, and records it.
    async fn end(&self, ready: &Ready, tenant: Uuid, month: &str) -> Result<()> {
        self.storage
            .clone()
            .resolve_budget_alerts(spb::ResolveBudgetAlertsRequest {
                tenant_id: tenant.to_string(),
                before_month: month.to_owned(),
            })
            .await
            .map_err(|status| failed("resolving budget alerts", &status))?;
        ready.store().end_breaches(tenant, month).await
    }

    /// Claims a breach and raises its alert; `false` when another process holds the claim.
    async fn raise(
        &self,
        ready: &Ready,
        breach: &Breach,
        limit: f64,
        cost: f64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let store = ready.store();
        let Some(alert_id) = store
            .claim_breach(breach, Uuid::now_v7(), now, now - CLAIM_LEASE)
            .await?
        else {
            return Ok(false);
        };
        let request = spb::RaiseBudgetAlertRequest {
            tenant_id: breach.tenant.to_string(),
            alert_id: alert_id.to_string(),
            breach: Some(spb::BudgetBreach {
                month: breach.month.clone(),
                basis: match breach.basis {
                    Basis::Actual => spb::BudgetBasis::Actual,
                    Basis::Forecast => spb::BudgetBasis::Forecast,
                }
                .into(),
                threshold: breach.threshold.parse().unwrap_or_default(),
                limit_usd: limit,
                cost_usd: cost,
            }),
            severity: match breach.severity() {
                Severity::Major => spb::Severity::Major,
                Severity::Minor => spb::Severity::Minor,
                Severity::Warning => spb::Severity::Warning,
            }
            .into(),
        };
        self.storage
            .clone()
            .raise_budget_alert(request)
            .await
            .map_err(|status| failed("raising a budget alert", &status))?;
        store.breach_raised(breach).await?;
        Ok(true)
    }
}

/// Every threshold crossed this month, by every tenant with a budget, with its limit and the
/// cost that crossed it. The forecast counts from the month's [`FORECAST_AFTER_DAYS`]th day
/// on.
async fn breaches(
    ready: &Ready,
    now: DateTime<Utc>,
    month: &str,
) -> Result<Vec<(Breach, f64, f64)>> {
    let tenants = ready.tenants().all().await;
    if !tenants
        .iter()
        .any(|t| t.deleted.is_none() && t.monthly_budget_usd > 0.0)
    {
        return Ok(Vec::new());
    }
    let version = ready.costing.version().await?;
    let forecasts = ready
        .forecasts
        .of_month(&ready.costing, now, version)
        .await?;
    let forecast_counts = (now - Grain::Month.floor(now)).num_days() >= FORECAST_AFTER_DAYS;
    let set = ready.store().all_budget_thresholds().await?;
    let mut found = Vec::new();
    for tenant in tenants.iter().filter(|t| t.deleted.is_none()) {
        let (limit, Some(forecast)) =
            (tenant.monthly_budget_usd, forecasts.tenants.get(&tenant.id))
        else {
            continue;
        };
        let thresholds = set
            .get(&tenant.id)
            .map_or(&budget::DEFAULT_THRESHOLDS[..], Vec::as_slice);
        let mut costs = vec![(Basis::Actual, forecast.month_to_date)];
        if forecast_counts {
            costs.push((Basis::Forecast, forecast.expected));
        }
        for (basis, cost) in costs {
            for threshold in budget::crossed(thresholds, limit, cost) {
                let breach = Breach {
                    tenant: tenant.id,
                    month: month.to_owned(),
                    basis,
                    threshold: threshold.to_string(),
                };
                found.push((breach, limit, cost));
            }
        }
    }
    Ok(found)
}

/// A failed call to the storage service: a later check tries again.
fn failed(what: &str, status: &tonic::Status) -> CostError {
    CostError::Upstream(format!(
        "{what}: the storage service answered {:?}: {}",
        status.code(),
        status.message()
    ))
}
