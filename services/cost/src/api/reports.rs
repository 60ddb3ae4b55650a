//! Conversions of cost reports to the contract, and of a request's period from it.

use chrono::{DateTime, Utc};
use mfg_proto::{common::v1::Tier as PbTier, cost::v1 as pb};
use pbjson_types::Timestamp;
use uuid::Uuid;

use super::convert::{meter_to_proto, split_to_proto, time, timestamp};
use crate::{
    costing::{Costed, Period, TenantReport},
    domain::{
        budget,
        daily::DailyCost,
        forecast::Forecast,
        meter::Tier,
        report::{Line, TenantCost},
    },
    error::{CostError, Result},
    forecasts::MonthForecasts,
    tenants::Tenant,
};

/// The confidence of a forecast's band ([`crate::domain::forecast::Z_90`]).
const CONFIDENCE: f64 = 0.9;

/// The period a request names, checked: a start before its end, both valid timestamps.
pub fn period(
    start: Option<&Timestamp>,
    end: Option<&Timestamp>,
    now: DateTime<Utc>,
) -> Result<Period> {
    let start = start
        .map(|t| {
            time(t).ok_or_else(|| CostError::invalid("start_time", "is not a valid timestamp"))
        })
        .transpose()?;
    let end = end
        .map(|t| time(t).ok_or_else(|| CostError::invalid("end_time", "is not a valid timestamp")))
        .transpose()?;
    let period = Period::of(start, end, now);
    if period.start >= period.end {
        return Err(CostError::invalid(
            "start_time",
            format!(
                "must be before the period's end, {} (the end_time given, or now)",
                period.end.to_rfc3339()
            ),
        ));
    }
    Ok(period)
}

/// A tenant id of a request.
pub fn tenant_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| CostError::TenantNotFound(id.to_owned()))
}

/// A tenant's report, with its days.
pub fn tenant_report(report: &TenantReport) -> pb::CostReport {
    pb::CostReport {
        days: report.days.iter().map(day).collect(),
        ..cost_report(&report.cost, &report.tenant, report.period)
    }
}

/// The operator's summary: every tenant's report without its days, with its forecast of the
/// month, and the platform's forecast against its monthly target (if the price book has one).
pub fn summary(costed: &Costed, month: &MonthForecasts) -> pb::GetCostSummaryResponse {
    let summary = &costed.summary;
    let target = costed.prices.latest().1.platform_monthly_target_usd;
    pb::GetCostSummaryResponse {
        reports: summary
            .tenants
            .iter()
            .zip(&costed.tenants)
            .map(|(cost, tenant)| pb::CostReport {
                forecast: forecast_of(month, cost.tenant),
                ..cost_report(cost, tenant, costed.period)
            })
            .collect(),
        shared_usd: summary.shared.usd(),
        split: split_to_proto(summary.split).into(),
        total_usd: summary.total.usd(),
        forecast: Some(forecast(&month.platform, month.month_start)),
        target_monthly_usd: target,
        forecast_vs_target: if target > 0.0 {
            month.platform.expected / target - 1.0
        } else {
            0.0
        },
    }
}

/// A tenant's forecast of the month, when it lived in it.
pub fn forecast_of(month: &MonthForecasts, tenant: Uuid) -> Option<pb::CostForecast> {
    month
        .tenants
        .get(&tenant)
        .map(|f| forecast(f, month.month_start))
}

/// `GetCostForecast`'s answer: the tenant's forecast against its budget and `thresholds`.
pub fn forecast_response(
    month: &MonthForecasts,
    tenant: &Tenant,
    thresholds: &[f64],
) -> pb::GetCostForecastResponse {
    let of_tenant = month.tenants.get(&tenant.id).copied().unwrap_or(Forecast {
        month_to_date: 0.0,
        expected: 0.0,
        low: 0.0,
        high: 0.0,
    });
    let budget = tenant.monthly_budget_usd;
    let crossed = budget::highest_crossed(thresholds, budget, of_tenant.expected);
    pb::GetCostForecastResponse {
        month_start: Some(timestamp(month.month_start)),
        month_to_date_usd: of_tenant.month_to_date,
        forecast_usd: of_tenant.expected,
        budget_usd: budget,
        forecast_threshold_crossed: crossed,
        forecast_low_usd: of_tenant.low,
        forecast_high_usd: of_tenant.high,
        confidence: CONFIDENCE,
    }
}

fn forecast(forecast: &Forecast, month_start: DateTime<Utc>) -> pb::CostForecast {
    pb::CostForecast {
        month_start: Some(timestamp(month_start)),
        month_to_date_usd: forecast.month_to_date,
        forecast_usd: forecast.expected,
        forecast_low_usd: forecast.low,
        forecast_high_usd: forecast.high,
        confidence: CONFIDENCE,
    }
}

fn cost_report(cost: &TenantCost, tenant: &Tenant, period: Period) -> pb::CostReport {
    pb::CostReport {
        tenant_id: cost.tenant.to_string(),
        period_start: Some(timestamp(period.start)),
        period_end: Some(timestamp(period.end)),
        lines: cost.lines.iter().map(line).collect(),
        direct_usd: cost.direct.usd(),
        shared_usd: cost.shared.usd(),
        total_usd: cost.total.usd(),
        budget_usd: tenant.monthly_budget_usd,
        dedicated_usd: cost.dedicated.usd(),
        days: Vec::new(),
        forecast: None,
    }
}

fn line(line: &Line) -> pb::CostLine {
    pb::CostLine {
        meter: meter_to_proto(line.meter).into(),
        quantity: line.quantity,
        unit: line.unit.clone(),
        unit_price_usd: line.unit_price_usd,
        amount_usd: line.amount.usd(),
        tier: match line.meter.tier() {
            Some(Tier::Hot) => PbTier::Hot,
            Some(Tier::Warm) => PbTier::Warm,
            Some(Tier::Cold) => PbTier::Cold,
            None => PbTier::Unspecified,
        }
        .into(),
    }
}

fn day(day: &DailyCost) -> pb::DailyCost {
    pb::DailyCost {
        start_time: Some(timestamp(day.start)),
        direct_usd: day.direct.usd(),
        total_usd: day.total.usd(),
    }
}
