//! Alerting: the tenants' rules, and (to come) their evaluation on the ingest path, the alert
//! lifecycle and the fan-out of alert events.

pub mod rules;

pub use rules::AlertRules;
