//! Alerts and their lifecycle: open → acknowledged → resolved. One rule firing for one machine
//! is one alert while it is not resolved; repeats count on it. A budget alert, raised by the
//! cost service when a tenant's cost crosses a threshold of its monthly limit, lives the same
//! life. Every change is an event with a cursor, the position in the event log that
//! subscribers resume from.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alerting::domain::alert_rule::{AlertRule, Severity};
use crate::micros::Micros;

/// Who resolves an alert whose condition cleared.
pub const SYSTEM: &str = "system";

/// The lifecycle state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Firing, nobody has acknowledged it.
    Open,
    /// Somebody is on it.
    Acknowledged,
    /// Cleared, by its condition or by hand.
    Resolved,
}

impl AlertState {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Resolved]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// Which cost a budget threshold is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetBasis {
    /// The month-to-date cost.
    Actual,
    /// The forecast cost of the month.
    Forecast,
}

/// What a budget alert is about: a tenant's cost crossed a threshold of its monthly limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetBreach {
    /// The month, `YYYY-MM` (UTC).
    pub month: String,
    /// Which cost crossed it.
    pub basis: BudgetBasis,
    /// The threshold, a fraction of the limit.
    pub threshold: f64,
    /// The monthly limit, USD.
    pub limit_usd: f64,
    /// The cost that crossed it, USD.
    pub cost_usd: f64,
}

/// The metric of a budget alert.
pub const BUDGET_METRIC: &str = "cost_usd";

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id (a UUIDv7: ids sort by when the alert opened).
    pub alert_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// The rule that raised it; nil for a budget alert.
    pub rule_id: Uuid,
    /// The machine it is about; empty for a budget alert.
    pub machine_id: String,
    /// The metric it is about.
    pub metric: String,
    /// Its severity.
    pub severity: Severity,
    /// Its lifecycle state.
    pub state: AlertState,
    /// How many times the rule fired while the alert was not resolved.
    pub count: u64,
    /// When it first fired (the reading's time; the service's time for no-data).
    pub first_seen: Micros,
    /// When it last fired.
    pub last_seen: Micros,
    /// The value that first triggered it.
    pub trigger_value: f64,
    /// The latest value seen while it was not resolved.
    pub last_value: f64,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When.
    pub acknowledge_time: Option<Micros>,
    /// Who resolved it: a caller, or [`SYSTEM`].
    pub resolved_by: Option<String>,
    /// When.
    pub resolve_time: Option<Micros>,
    /// For a budget alert, the threshold crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetBreach>,
}

impl Alert {
    /// A new alert of a rule firing for a machine with `value` at `at`.
    pub fn open(rule: &AlertRule, machine_id: &str, value: f64, at: Micros) -> Self {
        Self {
            alert_id: Uuid::now_v7(),
            tenant_id: rule.tenant_id,
            rule_id: rule.rule_id,
            machine_id: machine_id.to_owned(),
            metric: rule.spec.metric.clone(),
            severity: rule.severity(),
            state: AlertState::Open,
            count: 1,
            first_seen: at,
            last_seen: at,
            trigger_value: value,
            last_value: value,
            acknowledged_by: None,
            acknowledge_time: None,
            resolved_by: None,
            resolve_time: None,
            budget: None,
        }
    }

    /// A new budget alert of a tenant, under the id its raiser chose, at `at`.
    pub fn budget(
        tenant_id: Uuid,
        alert_id: Uuid,
        breach: BudgetBreach,
        severity: Severity,
        at: Micros,
    ) -> Self {
        Self {
            alert_id,
            tenant_id,
            rule_id: Uuid::nil(),
            machine_id: String::new(),
            metric: BUDGET_METRIC.to_owned(),
            severity,
            state: AlertState::Open,
            count: 1,
            first_seen: at,
            last_seen: at,
            trigger_value: breach.cost_usd,
            last_value: breach.cost_usd,
            acknowledged_by: None,
            acknowledge_time: None,
            resolved_by: None,
            resolve_time: None,
            budget: Some(breach),
        }
    }

    /// Counts a repeat firing.
    pub fn repeat(&mut self, value: f64, at: Micros) {
        self.count += 1;
        self.last_seen = self.last_seen.max(at);
        self.last_value = value;
    }

    /// Acknowledges an open alert; `false` when it is not open (nothing changes).
    pub fn acknowledge(&mut self, by: &str, at: Micros) -> bool {
        if self.state != AlertState::Open {
            return false;
        }
        self.state = AlertState::Acknowledged;
        self.acknowledged_by = Some(by.to_owned());
        self.acknowledge_time = Some(at);
        true
    }

    /// Resolves an alert that is not resolved; `false` when it is (nothing changes).
    pub fn resolve(&mut self, by: &str, at: Micros) -> bool {
        if self.state == AlertState::Resolved {
            return false;
        }
        self.state = AlertState::Resolved;
        self.resolved_by = Some(by.to_owned());
        self.resolve_time = Some(at);
        true
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The alert was raised.
    Opened,
    /// The rule fired again while the alert was not resolved.
    Updated,
    /// Somebody acknowledged it.
    Acknowledged,
    /// It was resolved.
    Resolved,
}

impl EventType {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Updated => "updated",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Opened,
            Self::Updated,
            Self::Acknowledged,
            Self::Resolved,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// One event of an alert's life.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// Its position in its tenant's event log: 1, 2, 3… (after a restart of a database server
    /// that commits fast, past the time in µs). 0 until the database gives it out.
    pub cursor: u64,
    /// Its identity: a write retried after an ambiguous commit stores it once.
    pub event_id: Uuid,
    /// What happened.
    pub kind: EventType,
    /// The alert after the event.
    pub alert: Alert,
    /// When it happened (µs, the service's clock).
    pub time: Micros,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::domain::alert_rule::{MachineSelector, RuleSpec};

    fn rule() -> AlertRule {
        AlertRule {
            rule_id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            spec: RuleSpec {
                display_name: String::new(),
                metric: "temp".to_owned(),
                selector: MachineSelector::default(),
                severity: Some(Severity::Minor),
                condition: None,
                disabled: false,
            },
            create_time: Micros(0),
            update_time: Micros(0),
        }
    }

    #[test]
    fn the_lifecycle_goes_one_way_and_repeats_count() {
        let mut alert = Alert::open(&rule(), "press-1", 81.0, Micros(10));
        alert.repeat(85.0, Micros(11));
        alert.repeat(84.0, Micros(12));
        assert_eq!(
            (
                alert.count,
                alert.last_seen,
                alert.trigger_value,
                alert.last_value
            ),
            (3, Micros(12), 81.0, 84.0)
        );
        assert!(alert.acknowledge("key:abc", Micros(20)));
        assert!(!alert.acknowledge("key:def", Micros(21)), "once");
        assert_eq!(alert.acknowledged_by.as_deref(), Some("key:abc"));
        assert!(alert.resolve(SYSTEM, Micros(30)));
        assert!(!alert.resolve("key:abc", Micros(31)), "once");
        assert!(
            !alert.acknowledge("key:abc", Micros(32)),
            "a resolved alert stays resolved"
        );
        assert_eq!(alert.state, AlertState::Resolved);
        assert_eq!(alert.resolve_time, Some(Micros(30)));
    }
}
