//! A tenant's budget: its monthly limit (the tenant's `monthlyBudgetUsd`) and the fractions of
//! it whose crossing, by actual or forecast cost, is alerted on: one [`Breach`] per threshold,
//! cost and month.

use mfg_common::{FieldViolation, Violations};
use uuid::Uuid;

/// The thresholds of a tenant that has not set its own: half, four fifths and all of the limit.
pub const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];

/// The most thresholds a budget has.
pub const MAX_THRESHOLDS: usize = 10;

/// Checks thresholds given by a caller (`field` names them) and returns them ascending: 1 to
/// [`MAX_THRESHOLDS`] fractions, each above 0 and at most 10 (1,000% of the limit), none twice.
pub fn thresholds(given: &[f64], field: &str) -> Result<Vec<f64>, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    if given.is_empty() || given.len() > MAX_THRESHOLDS {
        violations.add(
            field,
            format!("must hold 1 to {MAX_THRESHOLDS} fractions of the limit, e.g. [0.5, 0.8, 1.0]"),
        );
    }
    for (i, &t) in given.iter().enumerate() {
        if !(t.is_finite() && t > 0.0 && t <= 10.0) {
            violations.add(
                format!("{field}[{i}]"),
                "must be a fraction of the limit above 0 and at most 10, e.g. 0.8",
            );
        }
    }
    let mut sorted = given.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        violations.add(field, "must not hold a threshold twice");
    }
    violations.finish()?;
    Ok(sorted)
}

/// The highest of `thresholds` that `cost` reaches against `limit`; zero for none, or without
/// a limit.
pub fn highest_crossed(thresholds: &[f64], limit: f64, cost: f64) -> f64 {
    if limit <= 0.0 {
        return 0.0;
    }
    thresholds
        .iter()
        .copied()
        .filter(|t| cost >= t * limit)
        .fold(0.0, f64::max)
}

/// Which cost a threshold is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// The month-to-date cost.
    Actual,
    /// The forecast cost of the month.
    Forecast,
}

impl Basis {
    /// Its stored name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Actual => "actual",
            Self::Forecast => "forecast",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Actual, Self::Forecast]
            .into_iter()
            .find(|basis| basis.name() == name)
    }
}

/// How bad a breach is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The month's actual cost reached the limit.
    Major,
    /// The actual cost reached 80% of it, or the forecast reached it.
    Minor,
    /// Any other threshold.
    Warning,
}

/// One threshold of a tenant's budget crossed by one of its costs in a month: alerted once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Breach {
    /// The tenant.
    pub tenant: Uuid,
    /// The month, `YYYY-MM` (UTC).
    pub month: String,
    /// Which cost crossed it.
    pub basis: Basis,
    /// The threshold, as written (`0.8`): a fraction of the limit.
    pub threshold: String,
}

impl Breach {
    /// The breach's severity.
    pub fn severity(&self) -> Severity {
        let threshold: f64 = self.threshold.parse().unwrap_or(0.0);
        match self.basis {
            Basis::Actual if threshold >= 1.0 => Severity::Major,
            Basis::Actual if threshold >= 0.8 => Severity::Minor,
            Basis::Forecast if threshold >= 1.0 => Severity::Minor,
            Basis::Actual | Basis::Forecast => Severity::Warning,
        }
    }
}

/// Every threshold that `cost` reaches against `limit`, ascending; none without a limit.
pub fn crossed(thresholds: &[f64], limit: f64, cost: f64) -> impl Iterator<Item = f64> + '_ {
    thresholds
        .iter()
        .copied()
        .filter(move |t| limit > 0.0 && cost >= t * limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_checked_and_sorted() {
        assert_eq!(thresholds(&[1.0, 0.5], "b").unwrap(), [0.5, 1.0]);
        let refused =
            thresholds(&[0.5, 0.0, 0.5, f64::NAN], "budget.alert_thresholds").unwrap_err();
        let fields: Vec<&str> = refused.iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"budget.alert_thresholds[1]"), "{fields:?}");
        assert!(fields.contains(&"budget.alert_thresholds[3]"), "{fields:?}");
        assert!(thresholds(&[], "b").is_err());
        assert!(thresholds(&[0.1; 11], "b").is_err());
    }

    #[test]
    fn the_highest_threshold_reached_counts() {
        assert_eq!(highest_crossed(&DEFAULT_THRESHOLDS, 100.0, 85.0), 0.8);
        assert_eq!(highest_crossed(&DEFAULT_THRESHOLDS, 100.0, 100.0), 1.0);
        assert_eq!(highest_crossed(&DEFAULT_THRESHOLDS, 100.0, 10.0), 0.0);
        assert_eq!(highest_crossed(&DEFAULT_THRESHOLDS, 0.0, 10.0), 0.0);
        let all: Vec<f64> = crossed(&DEFAULT_THRESHOLDS, 100.0, 85.0).collect();
        assert_eq!(all, [0.5, 0.8]);
        assert_eq!(crossed(&DEFAULT_THRESHOLDS, 0.0, 85.0).count(), 0);
    }

    #[test]
    fn the_actual_limit_is_the_most_severe() {
        let breach = |basis, threshold: &str| Breach {
            tenant: Uuid::nil(),
            month: "2026-12".to_owned(),
            basis,
            threshold: threshold.to_owned(),
        };
        assert_eq!(breach(Basis::Actual, "1").severity(), Severity::Major);
        assert_eq!(breach(Basis::Actual, "0.8").severity(), Severity::Minor);
        assert_eq!(breach(Basis::Forecast, "1.2").severity(), Severity::Minor);
        assert_eq!(breach(Basis::Forecast, "0.8").severity(), Severity::Warning);
        assert_eq!(breach(Basis::Actual, "0.5").severity(), Severity::Warning);
    }
}
