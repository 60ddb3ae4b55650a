//! Conversions between the alert contract and the domain. Enum values the contract leaves
//! unspecified, or that it does not know, become violations naming their field, reported
//! together with the domain's own checks.

use mfg_common::{FieldViolation, Violations};
use mfg_proto::storage::v1::{self as pb, alert_condition::Kind};
use pbjson_types::{Duration, FieldMask};

use crate::{
    alerting::domain::{
        alert::{Alert, AlertEvent, AlertState, BudgetBasis, BudgetBreach, EventType},
        alert_rule::{
            AlertRule, Comparison, Condition, MachineSelector, RuleField, RulePatch, RuleSpec,
            Severity,
        },
    },
    error::{Result, StorageError},
    telemetry::api::convert::timestamp,
};

const COMPARISONS: &str = "COMPARISON_GREATER, COMPARISON_GREATER_OR_EQUAL, COMPARISON_LESS or \
                           COMPARISON_LESS_OR_EQUAL";

fn micros(duration: Option<&Duration>) -> i64 {
    duration.map_or(0, |d| {
        d.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(d.nanos) / 1_000)
    })
}

fn duration(micros: i64) -> Duration {
    Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

fn severity(value: i32) -> Option<Severity> {
    match pb::Severity::try_from(value) {
        Ok(pb::Severity::Critical) => Some(Severity::Critical),
        Ok(pb::Severity::Major) => Some(Severity::Major),
        Ok(pb::Severity::Minor) => Some(Severity::Minor),
        Ok(pb::Severity::Warning) => Some(Severity::Warning),
        Ok(pb::Severity::Unspecified) | Err(_) => None,
    }
}

/// Converts a severity to the contract's.
pub fn severity_to_proto(severity: Severity) -> pb::Severity {
    match severity {
        Severity::Critical => pb::Severity::Critical,
        Severity::Major => pb::Severity::Major,
        Severity::Minor => pb::Severity::Minor,
        Severity::Warning => pb::Severity::Warning,
    }
}

fn comparison(value: i32, field: String, violations: &mut Violations) -> Comparison {
    match pb::Comparison::try_from(value) {
        Ok(pb::Comparison::Greater) => Comparison::Greater,
        Ok(pb::Comparison::GreaterOrEqual) => Comparison::GreaterOrEqual,
        Ok(pb::Comparison::Less) => Comparison::Less,
        Ok(pb::Comparison::LessOrEqual) => Comparison::LessOrEqual,
        Ok(pb::Comparison::Unspecified) | Err(_) => {
            violations.add(field, format!("is required: {COMPARISONS}"));
            Comparison::Greater
        }
    }
}

fn comparison_to_proto(comparison: Comparison) -> pb::Comparison {
    match comparison {
        Comparison::Greater => pb::Comparison::Greater,
        Comparison::GreaterOrEqual => pb::Comparison::GreaterOrEqual,
        Comparison::Less => pb::Comparison::Less,
        Comparison::LessOrEqual => pb::Comparison::LessOrEqual,
    }
}

fn condition(
    given: Option<pb::AlertCondition>,
    field: &str,
    violations: &mut Violations,
) -> Option<Condition> {
    let kind = given?.kind;
    Some(match kind {
        Some(Kind::Threshold(threshold)) => Condition::Threshold {
            comparison: comparison(
                threshold.comparison,
                format!("{field}.threshold.comparison"),
                violations,
            ),
            value: threshold.value,
            for_micros: micros(threshold.for_duration.as_ref()),
            clear_value: threshold.clear_value,
        },
        Some(Kind::RateOfChange(rate)) => Condition::RateOfChange {
            comparison: comparison(
                rate.comparison,
                format!("{field}.rate_of_change.comparison"),
                violations,
            ),
            per_second: rate.per_second,
            window_micros: micros(rate.window.as_ref()),
        },
        Some(Kind::NoData(no_data)) => Condition::NoData {
            duration_micros: micros(no_data.duration.as_ref()),
        },
        Some(Kind::AnyOf(any_of)) => Condition::AnyOf(
            any_of
                .conditions
                .into_iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let field = format!("{field}.any_of.conditions[{i}]");
                    let converted = condition(Some(c), &field, violations);
                    if converted.is_none() {
                        violations.add(field, "must be one of threshold, rate_of_change, no_data");
                    }
                    converted
                })
                .collect(),
        ),
        None => return None,
    })
}

fn condition_to_proto(condition: Condition) -> pb::AlertCondition {
    let kind = match condition {
        Condition::Threshold {
            comparison,
            value,
            for_micros,
            clear_value,
        } => Kind::Threshold(pb::ThresholdCondition {
            comparison: comparison_to_proto(comparison).into(),
            value,
            for_duration: (for_micros > 0).then(|| duration(for_micros)),
            clear_value,
        }),
        Condition::RateOfChange {
            comparison,
            per_second,
            window_micros,
        } => Kind::RateOfChange(pb::RateOfChangeCondition {
            comparison: comparison_to_proto(comparison).into(),
            per_second,
            window: Some(duration(window_micros)),
        }),
        Condition::NoData { duration_micros } => Kind::NoData(pb::NoDataCondition {
            duration: Some(duration(duration_micros)),
        }),
        Condition::AnyOf(conditions) => Kind::AnyOf(pb::AnyOfCondition {
            conditions: conditions.into_iter().map(condition_to_proto).collect(),
        }),
    };
    pb::AlertCondition { kind: Some(kind) }
}

/// The spec a request's rule sets, and what could not be converted.
fn spec(rule: pb::AlertRule) -> (RuleSpec, Vec<FieldViolation>) {
    let mut violations = Violations::new();
    let selector = rule.selector.unwrap_or_default();
    let spec = RuleSpec {
        display_name: rule.display_name,
        metric: rule.metric,
        selector: MachineSelector {
            machine_ids: selector.machine_ids,
            labels: selector.labels.into_iter().collect(),
        },
        severity: severity(rule.severity),
        condition: condition(rule.condition, "rule.condition", &mut violations),
        disabled: rule.disabled,
    };
    (spec, violations.finish().err().unwrap_or_default())
}

/// Converts the rule of a create request, validated in full.
pub fn new_rule(rule: Option<pb::AlertRule>) -> Result<RuleSpec> {
    let rule = rule.ok_or_else(|| StorageError::invalid("rule", "is required"))?;
    let (spec, converted) = spec(rule);
    let mut violations = Violations::new();
    spec.validate("rule.", &mut violations);
    let mut all = converted;
    all.extend(violations.finish().err().unwrap_or_default());
    if all.is_empty() {
        Ok(spec)
    } else {
        Err(StorageError::InvalidArgument(all))
    }
}

/// Converts an update: the fields the mask names and their new values. The values are
/// validated once applied to the stored rule.
pub fn rule_patch(rule: Option<pb::AlertRule>, mask: Option<FieldMask>) -> Result<RulePatch> {
    let rule = rule.ok_or_else(|| StorageError::invalid("rule", "is required"))?;
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(StorageError::invalid(
            "update_mask",
            "is required: name the fields to change, or `*` for all of them",
        ));
    }
    let mut violations = Violations::new();
    let mut fields = Vec::new();
    for path in &paths {
        match RuleField::parse(path) {
            Ok(named) => {
                for field in named {
                    if !fields.contains(field) {
                        fields.push(*field);
                    }
                }
            }
            Err(description) => violations.add("update_mask", description),
        }
    }
    let (values, converted) = spec(rule);
    // Only what the update changes is checked here: a `condition` left out of the mask may be
    // anything.
    let changes_condition = fields.contains(&RuleField::Condition);
    let mut all = violations.finish().err().unwrap_or_default();
    all.extend(
        converted
            .into_iter()
            .filter(|v| changes_condition || !v.field.starts_with("rule.condition")),
    );
    if all.is_empty() {
        Ok(RulePatch { fields, values })
    } else {
        Err(StorageError::InvalidArgument(all))
    }
}

/// Converts a stored rule.
pub fn rule(rule: AlertRule) -> pb::AlertRule {
    let severity = severity_to_proto(rule.severity());
    pb::AlertRule {
        rule_id: rule.rule_id.to_string(),
        tenant_id: rule.tenant_id.to_string(),
        display_name: rule.spec.display_name,
        metric: rule.spec.metric,
        selector: Some(pb::MachineSelector {
            machine_ids: rule.spec.selector.machine_ids,
            labels: rule.spec.selector.labels.into_iter().collect(),
        }),
        severity: severity.into(),
        condition: rule.spec.condition.map(condition_to_proto),
        disabled: rule.spec.disabled,
        create_time: Some(timestamp(rule.create_time)),
        update_time: Some(timestamp(rule.update_time)),
    }
}

/// Parses the state a list is filtered by; unspecified lists all.
pub fn state_filter(value: i32) -> Result<Option<AlertState>> {
    match pb::AlertState::try_from(value) {
        Ok(pb::AlertState::Unspecified) => Ok(None),
        Ok(pb::AlertState::Open) => Ok(Some(AlertState::Open)),
        Ok(pb::AlertState::Acknowledged) => Ok(Some(AlertState::Acknowledged)),
        Ok(pb::AlertState::Resolved) => Ok(Some(AlertState::Resolved)),
        Err(_) => Err(StorageError::invalid(
            "state",
            format!("{value} is not an alert state"),
        )),
    }
}

fn state_to_proto(state: AlertState) -> pb::AlertState {
    match state {
        AlertState::Open => pb::AlertState::Open,
        AlertState::Acknowledged => pb::AlertState::Acknowledged,
        AlertState::Resolved => pb::AlertState::Resolved,
    }
}

/// Converts an alert.
pub fn alert(alert: Alert) -> pb::Alert {
    let (source, rule_id) = if alert.budget.is_some() {
        (pb::AlertSource::Budget, String::new())
    } else {
        (pb::AlertSource::Rule, alert.rule_id.to_string())
    };
    pb::Alert {
        alert_id: alert.alert_id.to_string(),
        tenant_id: alert.tenant_id.to_string(),
        rule_id,
        machine_id: alert.machine_id,
        metric: alert.metric,
        severity: severity_to_proto(alert.severity).into(),
        state: state_to_proto(alert.state).into(),
        count: alert.count,
        first_seen_time: Some(timestamp(alert.first_seen)),
        last_seen_time: Some(timestamp(alert.last_seen)),
        trigger_value: alert.trigger_value,
        last_value: alert.last_value,
        acknowledged_by: alert.acknowledged_by.unwrap_or_default(),
        acknowledge_time: alert.acknowledge_time.map(timestamp),
        resolved_by: alert.resolved_by.unwrap_or_default(),
        resolve_time: alert.resolve_time.map(timestamp),
        source: source.into(),
        budget: alert.budget.map(budget_to_proto),
    }
}

fn budget_to_proto(breach: BudgetBreach) -> pb::BudgetBreach {
    pb::BudgetBreach {
        month: breach.month,
        basis: match breach.basis {
            BudgetBasis::Actual => pb::BudgetBasis::Actual,
            BudgetBasis::Forecast => pb::BudgetBasis::Forecast,
        }
        .into(),
        threshold: breach.threshold,
        limit_usd: breach.limit_usd,
        cost_usd: breach.cost_usd,
    }
}

/// Parses a month, `YYYY-MM`.
fn month(value: &str, field: &str, violations: &mut Violations) {
    let valid = value.len() == 7
        && chrono::NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").is_ok();
    if !valid {
        violations.add(field, "must be a month, YYYY-MM, e.g. 2026-12");
    }
}

/// Checks a budget alert to raise: its breach and severity.
pub fn budget_alert(request: pb::RaiseBudgetAlertRequest) -> Result<(BudgetBreach, Severity)> {
    let mut violations = Violations::new();
    let breach = request.breach.unwrap_or_default();
    month(&breach.month, "breach.month", &mut violations);
    let basis = match pb::BudgetBasis::try_from(breach.basis) {
        Ok(pb::BudgetBasis::Actual) => BudgetBasis::Actual,
        Ok(pb::BudgetBasis::Forecast) => BudgetBasis::Forecast,
        Ok(pb::BudgetBasis::Unspecified) | Err(_) => {
            violations.add(
                "breach.basis",
                "must be BUDGET_BASIS_ACTUAL or BUDGET_BASIS_FORECAST",
            );
            BudgetBasis::Actual
        }
    };
    for (field, value) in [
        ("breach.threshold", breach.threshold),
        ("breach.limit_usd", breach.limit_usd),
        ("breach.cost_usd", breach.cost_usd),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            violations.add(field, "must be a finite number, zero or more");
        }
    }
    let severity = severity(request.severity);
    if severity.is_none() {
        violations.add("severity", "is required");
    }
    violations.finish().map_err(StorageError::InvalidArgument)?;
    let breach = BudgetBreach {
        month: breach.month,
        basis,
        threshold: breach.threshold,
        limit_usd: breach.limit_usd,
        cost_usd: breach.cost_usd,
    };
    Ok((breach, severity.unwrap_or(Severity::Warning)))
}

/// Checks the month of ResolveBudgetAlerts.
pub fn before_month(value: &str) -> Result<String> {
    let mut violations = Violations::new();
    month(value, "before_month", &mut violations);
    violations.finish().map_err(StorageError::InvalidArgument)?;
    Ok(value.to_owned())
}

/// Converts an event.
pub fn event(event: AlertEvent) -> pb::AlertEvent {
    let kind = match event.kind {
        EventType::Opened => pb::AlertEventType::Opened,
        EventType::Updated => pb::AlertEventType::Updated,
        EventType::Acknowledged => pb::AlertEventType::Acknowledged,
        EventType::Resolved => pb::AlertEventType::Resolved,
    };
    pb::AlertEvent {
        cursor: event.cursor,
        r#type: kind.into(),
        alert: Some(alert(event.alert)),
        event_time: Some(timestamp(event.time)),
    }
}
