//! Telemetry's domain: what ingest accepts, the rollup arithmetic that the warm tier, queries
//! and tiering share, and tiering jobs.

pub mod ingest;
mod rollup;
pub mod tiering;

pub use rollup::{Aggregation, Rollup, roll_up};
