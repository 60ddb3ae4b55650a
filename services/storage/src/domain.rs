//! The storage service's domain: what ingest accepts, the rollup arithmetic that the warm
//! tier, queries and tiering share, tiering jobs, alert rules, their evaluation and the alert lifecycle.

pub mod alert;
pub mod alert_eval;
pub mod alert_rule;
pub mod ingest;
mod rollup;
pub mod tiering;

pub use rollup::{Aggregation, Rollup, bucket_start, roll_up};
