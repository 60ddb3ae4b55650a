//! Conversions of cost reports to the contract, and of a request's period from it.

use chrono::{DateTime, Utc};
use mfg_proto::{common::v1::Tier as PbTier, cost::v1 as pb};
use pbjson_types::Timestamp;
use uuid::Uuid;

use super::convert::{meter_to_proto, split_to_proto, time, timestamp};
use crate::{
    costing::{Period, TenantReport},
    domain::{
        daily::DailyCost,
        meter::Tier,
        report::{Line, Summary, TenantCost},
    },
    error::{CostError, Result},
    tenants::Tenant,
};

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
pub fn tenant_report(report: &TenantReport, period: Period) -> pb::CostReport {
    pb::CostReport {
        days: report.days.iter().map(day).collect(),
        ..cost_report(&report.cost, &report.tenant, period)
    }
}

/// The operator's summary: every tenant's report without its days.
pub fn summary(
    tenants: &[Tenant],
    summary: &Summary,
    period: Period,
) -> pb::GetCostSummaryResponse {
    pb::GetCostSummaryResponse {
        reports: summary
            .tenants
            .iter()
            .zip(tenants)
            .map(|(cost, tenant)| cost_report(cost, tenant, period))
            .collect(),
        shared_usd: summary.shared.usd(),
        split: split_to_proto(summary.split).into(),
        total_usd: summary.total.usd(),
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
