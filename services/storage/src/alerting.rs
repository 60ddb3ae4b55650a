//! Alerting: the tenants' rules ([`Alerting`]), their evaluation on the ingest path
//! ([`Evaluator`], over the rules' [`index::RuleIndex`]), and the alert lifecycle written by one
//! [`Journal`], whose events subscribers receive; the [`MachineSweep`] resolves what deleted
//! machines leave open.

pub mod api;
pub mod domain;
pub mod evaluator;
pub mod index;
pub mod journal;
pub mod rules;
pub mod store;
pub mod subscribers;
pub mod sweep;
pub mod unflushed;

pub use evaluator::{Evaluator, EvaluatorConfig, SeriesHistory};
pub use journal::Journal;
pub use rules::Alerting;
pub use subscribers::SubscriberCaps;
pub use sweep::MachineSweep;
