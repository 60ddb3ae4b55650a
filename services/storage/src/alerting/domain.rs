//! Alerting's domain: rules, their evaluation and the alert lifecycle.

pub mod alert;
pub mod alert_eval;
pub mod alert_rule;
