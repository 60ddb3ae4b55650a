//! Alert rules: what a tenant watches (a metric of selected machines), how bad it is, and when
//! it fires. Validation names each offending field by its path in the contract
//! (`rule.condition.threshold.clear_value`), so the gRPC and REST errors point at it.
//!
//! Durations are microseconds, like every time in the storage domain. The limits keep the
//! evaluator's memory per series bounded: a rate-of-change window holds at most one hour of
//! readings, a "for" timer at most a day.

use std::collections::BTreeMap;

use mfg_common::{
    FieldViolation, Violations,
    labels::{validate_display_name, validate_labels},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{micros::Micros, telemetry::domain::ingest::MAX_METRIC_CHARS};

/// The most rules one tenant may have.
pub const MAX_RULES_PER_TENANT: u64 = 1_000;
/// The most machine ids one selector may list.
pub const MAX_SELECTED_MACHINES: usize = 100;
/// The most conditions of one `any_of`.
pub const MAX_ANY_OF: usize = 8;
/// The longest "for" duration of a threshold.
pub const MAX_FOR_MICROS: i64 = 24 * HOUR_MICROS;
/// The shortest and longest rate-of-change window.
pub const RATE_WINDOW_MICROS: (i64, i64) = (SECOND_MICROS, HOUR_MICROS);
/// The shortest and longest no-data duration.
pub const NO_DATA_MICROS: (i64, i64) = (SECOND_MICROS, 7 * 24 * HOUR_MICROS);

const SECOND_MICROS: i64 = 1_000_000;
const HOUR_MICROS: i64 = 3_600 * SECOND_MICROS;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Production is stopped or about to be.
    Critical,
    /// Production is affected.
    Major,
    /// Production may be affected.
    Minor,
    /// Worth a look.
    Warning,
}

impl Severity {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Major => "major",
            Self::Minor => "minor",
            Self::Warning => "warning",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Critical, Self::Major, Self::Minor, Self::Warning]
            .into_iter()
            .find(|severity| severity.as_str() == name)
    }
}

/// How a value is compared with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `value > threshold`.
    #[serde(rename = ">")]
    Greater,
    /// `value >= threshold`.
    #[serde(rename = ">=")]
    GreaterOrEqual,
    /// `value < threshold`.
    #[serde(rename = "<")]
    Less,
    /// `value <= threshold`.
    #[serde(rename = "<=")]
    LessOrEqual,
}

impl Comparison {
    /// Whether `value` compares true with `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Greater => value > threshold,
            Self::GreaterOrEqual => value >= threshold,
            Self::Less => value < threshold,
            Self::LessOrEqual => value <= threshold,
        }
    }

    /// Whether the comparison fires on high values (`>`, `>=`).
    pub const fn is_upper(self) -> bool {
        matches!(self, Self::Greater | Self::GreaterOrEqual)
    }
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The value compares true with a threshold for a while.
    Threshold {
        /// The comparison.
        comparison: Comparison,
        /// The threshold.
        value: f64,
        /// How long the comparison must hold before it fires (µs); zero fires at once.
        for_micros: i64,
        /// With hysteresis: it clears only once the value is back past this threshold.
        clear_value: Option<f64>,
    },
    /// The rate of change per second, over a window, compares true with a limit.
    RateOfChange {
        /// The comparison.
        comparison: Comparison,
        /// The limit, in units per second.
        per_second: f64,
        /// The window (µs).
        window_micros: i64,
    },
    /// No reading arrives for a while.
    NoData {
        /// How long the silence must last (µs).
        duration_micros: i64,
    },
    /// Any of the conditions holds.
    AnyOf(Vec<Condition>),
}

impl Condition {
    fn validate(&self, field: &str, nested: bool, violations: &mut Violations) {
        match self {
            Self::Threshold {
                comparison,
                value,
                for_micros,
                clear_value,
            } => {
                let field = format!("{field}.threshold");
                if !value.is_finite() {
                    violations.add(format!("{field}.value"), "must be a finite number");
                }
                if !(0..=MAX_FOR_MICROS).contains(for_micros) {
                    violations.add(
                        format!("{field}.for_duration"),
                        "must be between 0 and 24 hours",
                    );
                }
                if let Some(clear) = clear_value {
                    let on_clearing_side = if comparison.is_upper() {
                        clear <= value
                    } else {
                        clear >= value
                    };
                    if !clear.is_finite() {
                        violations.add(format!("{field}.clear_value"), "must be a finite number");
                    } else if value.is_finite() && !on_clearing_side {
                        let side = if comparison.is_upper() {
                            "at or below"
                        } else {
                            "at or above"
                        };
                        violations.add(
                            format!("{field}.clear_value"),
                            format!(
                                "must be {side} the threshold {value}: the alert clears once the \
                                 value is back past it"
                            ),
                        );
                    }
                }
            }
            Self::RateOfChange {
                per_second,
                window_micros,
                ..
            } => {
                let field = format!("{field}.rate_of_change");
                if !per_second.is_finite() {
                    violations.add(format!("{field}.per_second"), "must be a finite number");
                }
                if !(RATE_WINDOW_MICROS.0..=RATE_WINDOW_MICROS.1).contains(window_micros) {
                    violations.add(
                        format!("{field}.window"),
                        "must be between 1 second and 1 hour",
                    );
                }
            }
            Self::NoData { duration_micros } => {
                if !(NO_DATA_MICROS.0..=NO_DATA_MICROS.1).contains(duration_micros) {
                    violations.add(
                        format!("{field}.no_data.duration"),
                        "must be between 1 second and 7 days",
                    );
                }
            }
            Self::AnyOf(conditions) => {
                let field = format!("{field}.any_of.conditions");
                if nested {
                    violations.add(
                        field,
                        "may not hold another any_of: list its conditions in the outer one",
                    );
                    return;
                }
                if !(2..=MAX_ANY_OF).contains(&conditions.len()) {
                    violations.add(
                        field.clone(),
                        format!("must hold 2 to {MAX_ANY_OF} conditions"),
                    );
                }
                for (i, condition) in conditions.iter().enumerate() {
                    condition.validate(&format!("{field}[{i}]"), true, violations);
                }
            }
        }
    }

    /// The conditions to evaluate: this one, or those of an `any_of`.
    pub fn branches(&self) -> &[Self] {
        match self {
            Self::AnyOf(conditions) => conditions,
            single => std::slice::from_ref(single),
        }
    }
}

/// Which machines a rule watches: the listed ids, or the machines carrying all the labels;
/// empty selects every machine of the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineSelector {
    /// Machine ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine_ids: Vec<String>,
    /// Labels a machine must all carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl MachineSelector {
    /// Whether the selector picks a machine with these labels.
    pub fn selects(&self, machine_id: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.machine_ids.is_empty() || self.machine_ids.iter().any(|id| id == machine_id))
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }

    fn validate(&self, field: &str, violations: &mut Violations) {
        if !self.machine_ids.is_empty() && !self.labels.is_empty() {
            violations.add(field, "select machines by ids or by labels, not both");
        }
        if self.machine_ids.len() > MAX_SELECTED_MACHINES {
            violations.add(
                format!("{field}.machine_ids"),
                format!("at most {MAX_SELECTED_MACHINES} machine ids; select more by labels"),
            );
        }
        for (i, id) in self.machine_ids.iter().enumerate() {
            let valid = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                violations.add(
                    format!("{field}.machine_ids[{i}]"),
                    format!("`{id}` is not a machine id: 1 to 64 of A-Z, a-z, 0-9, `.`, `_`, `-`"),
                );
            } else if self.machine_ids[..i].contains(id) {
                violations.add(
                    format!("{field}.machine_ids[{i}]"),
                    format!("`{id}` is listed twice"),
                );
            }
        }
        violations.check(&format!("{field}.labels"), validate_labels(&self.labels));
    }
}

/// What a client sets on a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// A human-readable name.
    pub display_name: String,
    /// The metric it watches.
    pub metric: String,
    /// The machines it watches.
    pub selector: MachineSelector,
    /// The severity of its alerts; `None` only before validation.
    pub severity: Option<Severity>,
    /// When it fires; `None` only before validation.
    pub condition: Option<Condition>,
    /// Whether it is switched off.
    pub disabled: bool,
}

impl RuleSpec {
    /// Checks every field, reporting each violation under `prefix` (e.g. `rule.`).
    pub fn validate(&self, prefix: &str, violations: &mut Violations) {
        violations.check(
            &format!("{prefix}display_name"),
            validate_display_name(&self.display_name),
        );
        let metric_chars = self.metric.chars().count();
        if metric_chars == 0 {
            violations.add(format!("{prefix}metric"), "is required");
        } else if metric_chars > MAX_METRIC_CHARS {
            violations.add(
                format!("{prefix}metric"),
                format!("must be at most {MAX_METRIC_CHARS} characters"),
            );
        }
        self.selector
            .validate(&format!("{prefix}selector"), violations);
        if self.severity.is_none() {
            violations.add(
                format!("{prefix}severity"),
                "is required: SEVERITY_CRITICAL, SEVERITY_MAJOR, SEVERITY_MINOR or \
                 SEVERITY_WARNING",
            );
        }
        match &self.condition {
            None => violations.add(
                format!("{prefix}condition"),
                "is required: threshold, rate_of_change, no_data or any_of",
            ),
            Some(condition) => condition.validate(&format!("{prefix}condition"), false, violations),
        }
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Its id (a UUIDv7, so ids sort by creation).
    pub rule_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// What the client set.
    pub spec: RuleSpec,
    /// When it was created.
    pub create_time: Micros,
    /// When it was last changed.
    pub update_time: Micros,
}

impl AlertRule {
    /// The severity; rules are validated before they are stored.
    pub fn severity(&self) -> Severity {
        self.spec.severity.unwrap_or(Severity::Warning)
    }
}

/// The fields of a rule an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    /// `display_name`.
    DisplayName,
    /// `metric`.
    Metric,
    /// `selector`.
    Selector,
    /// `severity`.
    Severity,
    /// `condition`.
    Condition,
    /// `disabled`.
    Disabled,
}

impl RuleField {
    /// Every field, what `*` names.
    pub const ALL: [Self; 6] = [
        Self::DisplayName,
        Self::Metric,
        Self::Selector,
        Self::Severity,
        Self::Condition,
        Self::Disabled,
    ];

    /// Parses an update-mask path. `selector` and `condition` change whole: a path into them
    /// (`condition.threshold.value`, as a PATCH body implies) names all of the field.
    pub fn parse(path: &str) -> Result<&'static [Self], String> {
        let path = match path.split_once('.') {
            Some((field @ ("selector" | "condition"), _)) => field,
            _ => path,
        };
        Ok(match path {
            "*" => &Self::ALL,
            "display_name" => &[Self::DisplayName],
            "metric" => &[Self::Metric],
            "selector" => &[Self::Selector],
            "severity" => &[Self::Severity],
            "condition" => &[Self::Condition],
            "disabled" => &[Self::Disabled],
            "rule_id" | "tenant_id" | "create_time" | "update_time" => {
                return Err(format!("`{path}` is set by the service"));
            }
            other => {
                return Err(format!(
                    "`{other}` is not a field of AlertRule that can change"
                ));
            }
        })
    }
}

/// A change of a rule: the new values of the named fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RulePatch {
    /// The fields to change.
    pub fields: Vec<RuleField>,
    /// Their new values (other fields are ignored).
    pub values: RuleSpec,
}

impl RulePatch {
    /// Applies the patch to a rule's spec and validates the result.
    pub fn apply(&self, mut spec: RuleSpec) -> Result<RuleSpec, Vec<FieldViolation>> {
        let values = self.values.clone();
        for field in &self.fields {
            match field {
                RuleField::DisplayName => spec.display_name.clone_from(&values.display_name),
                RuleField::Metric => spec.metric.clone_from(&values.metric),
                RuleField::Selector => spec.selector.clone_from(&values.selector),
                RuleField::Severity => spec.severity = values.severity,
                RuleField::Condition => spec.condition.clone_from(&values.condition),
                RuleField::Disabled => spec.disabled = values.disabled,
            }
        }
        let mut violations = Violations::new();
        spec.validate("rule.", &mut violations);
        violations.finish().map(|()| spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(comparison: Comparison, value: f64, clear_value: Option<f64>) -> Condition {
        Condition::Threshold {
            comparison,
            value,
            for_micros: 0,
            clear_value,
        }
    }

    fn spec(condition: Condition) -> RuleSpec {
        RuleSpec {
            display_name: "Spindle too hot".to_owned(),
            metric: "spindle_temp_c".to_owned(),
            selector: MachineSelector::default(),
            severity: Some(Severity::Major),
            condition: Some(condition),
            disabled: false,
        }
    }

    fn fields(spec: &RuleSpec) -> Vec<String> {
        let mut violations = Violations::new();
        spec.validate("rule.", &mut violations);
        violations
            .finish()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_valid_rule_passes() {
        assert!(fields(&spec(threshold(Comparison::Greater, 80.0, Some(75.0)))).is_empty());
        assert!(fields(&spec(threshold(Comparison::Less, 10.0, Some(12.0)))).is_empty());
    }

    #[test]
    fn each_invalid_field_is_named() {
        let mut bad = spec(threshold(Comparison::Greater, 80.0, Some(85.0)));
        bad.metric = String::new();
        bad.severity = None;
        bad.selector.machine_ids = vec!["press 1".to_owned()];
        assert_eq!(
            fields(&bad),
            [
                "rule.metric",
                "rule.selector.machine_ids[0]",
                "rule.severity",
                "rule.condition.threshold.clear_value",
            ]
        );
        let nested = spec(Condition::AnyOf(vec![
            Condition::NoData { duration_micros: 0 },
            Condition::AnyOf(vec![]),
        ]));
        assert_eq!(
            fields(&nested),
            [
                "rule.condition.any_of.conditions[0].no_data.duration",
                "rule.condition.any_of.conditions[1].any_of.conditions",
            ]
        );
        let window = spec(Condition::RateOfChange {
            comparison: Comparison::Greater,
            per_second: f64::NAN,
            window_micros: 2 * HOUR_MICROS,
        });
        assert_eq!(
            fields(&window),
            [
                "rule.condition.rate_of_change.per_second",
                "rule.condition.rate_of_change.window",
            ]
        );
    }

    #[test]
    fn selectors_match_ids_or_all_labels() {
        let labels: BTreeMap<_, _> = [("line".to_owned(), "a".to_owned())].into();
        let everything = MachineSelector::default();
        assert!(everything.selects("press-01", &BTreeMap::new()));
        let by_id = MachineSelector {
            machine_ids: vec!["press-01".to_owned()],
            ..MachineSelector::default()
        };
        assert!(by_id.selects("press-01", &labels));
        assert!(!by_id.selects("press-02", &labels));
        let by_labels = MachineSelector {
            labels: labels.clone(),
            ..MachineSelector::default()
        };
        assert!(by_labels.selects("press-02", &labels));
        assert!(!by_labels.selects("press-02", &BTreeMap::new()));
    }

    #[test]
    fn conditions_round_trip_through_their_stored_form() {
        let condition = Condition::AnyOf(vec![
            threshold(Comparison::GreaterOrEqual, 1.5, None),
            Condition::NoData {
                duration_micros: 60_000_000,
            },
        ]);
        let stored = serde_json::to_string(&condition).unwrap();
        assert_eq!(
            stored,
            r#"{"any_of":[{"threshold":{"comparison":">=","value":1.5,"for_micros":0,"clear_value":null}},{"no_data":{"duration_micros":60000000}}]}"#
        );
        assert_eq!(
            serde_json::from_str::<Condition>(&stored).unwrap(),
            condition
        );
    }

    #[test]
    fn a_patch_changes_only_the_named_fields_and_validates_the_result() {
        let current = spec(threshold(Comparison::Greater, 80.0, None));
        let mut values = spec(threshold(Comparison::Greater, 90.0, None));
        values.metric = "other".to_owned();
        let patch = RulePatch {
            fields: vec![RuleField::Condition],
            values,
        };
        let patched = patch.apply(current.clone()).unwrap();
        assert_eq!(patched.metric, current.metric);
        assert_eq!(
            patched.condition,
            Some(threshold(Comparison::Greater, 90.0, None))
        );
        let clear = RulePatch {
            fields: vec![RuleField::Severity],
            values: RuleSpec {
                severity: None,
                ..current.clone()
            },
        };
        assert!(clear.apply(current).is_err());
    }
}
