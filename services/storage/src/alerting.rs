//! Alerting: the tenants' rules ([`Alerting`]), their evaluation on the ingest path
//! ([`Evaluator`], over the rules' [`index::RuleIndex`]), and the alert lifecycle written by one
//! [`Journal`], whose events subscribers receive.

pub mod evaluator;
pub mod index;
pub mod journal;
pub mod rules;

pub use evaluator::{Evaluator, EvaluatorConfig};
pub use journal::Journal;
pub use rules::Alerting;
