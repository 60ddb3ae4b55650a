//! Conversions of budgets to and from the contract. A budget's limit is the tenant's
//! `monthlyBudgetUsd` (the tenant service keeps it); its thresholds are the cost service's.

use chrono::{DateTime, Utc};
use mfg_proto::cost::v1 as pb;
use pbjson_types::FieldMask;

use super::convert::timestamp;
use crate::{
    domain::budget,
    error::{CostError, Result},
    tenants::Tenant,
};

/// The fields of a budget an update may name.
const BUDGET_FIELDS: &str = "monthly_limit_usd, alert_thresholds, or `*`";

/// A tenant's budget, with its thresholds (the defaults when `set` is `None`) and when they
/// were set.
pub fn budget(tenant: &Tenant, set: Option<(Vec<f64>, DateTime<Utc>)>) -> pb::Budget {
    let (thresholds, update_time) = match set {
        Some((thresholds, at)) => (thresholds, Some(timestamp(at))),
        None => (budget::DEFAULT_THRESHOLDS.to_vec(), None),
    };
    pb::Budget {
        tenant_id: tenant.id.to_string(),
        monthly_limit_usd: tenant.monthly_budget_usd,
        alert_thresholds: thresholds,
        update_time,
    }
}

/// What an update changes: the limit, the thresholds, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetChange {
    /// The new monthly limit in USD.
    pub monthly_limit_usd: Option<f64>,
    /// The new thresholds, checked and ascending.
    pub thresholds: Option<Vec<f64>>,
}

/// The change an `UpdateBudget` asks for, each field it names checked.
pub fn budget_change(update: Option<pb::Budget>, mask: Option<FieldMask>) -> Result<BudgetChange> {
    let update = update.ok_or_else(|| CostError::invalid("budget", "is required"))?;
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(CostError::invalid(
            "update_mask",
            format!("is required: name the fields to change, {BUDGET_FIELDS}"),
        ));
    }
    let mut violations = Vec::new();
    let mut change = BudgetChange {
        monthly_limit_usd: None,
        thresholds: None,
    };
    for path in &paths {
        let all = path == "*";
        if all || path == "monthly_limit_usd" {
            let usd = update.monthly_limit_usd;
            if usd.is_finite() && usd >= 0.0 {
                change.monthly_limit_usd = Some(usd);
            } else {
                violations.push(mfg_common::FieldViolation::new(
                    "budget.monthly_limit_usd",
                    "must be an amount in USD of at least 0 (0: no budget)",
                ));
            }
        }
        if all || path == "alert_thresholds" {
            match budget::thresholds(&update.alert_thresholds, "budget.alert_thresholds") {
                Ok(thresholds) => change.thresholds = Some(thresholds),
                Err(refused) => violations.extend(refused),
            }
        }
        match path.as_str() {
            "*" | "monthly_limit_usd" | "alert_thresholds" => {}
            "tenant_id" | "update_time" => violations.push(mfg_common::FieldViolation::new(
                "update_mask",
                format!("`{path}` is set by the service"),
            )),
            other => violations.push(mfg_common::FieldViolation::new(
                "update_mask",
                format!("`{other}` is not a field of Budget that can change: {BUDGET_FIELDS}"),
            )),
        }
    }
    if violations.is_empty() {
        Ok(change)
    } else {
        Err(CostError::InvalidArgument(violations))
    }
}
