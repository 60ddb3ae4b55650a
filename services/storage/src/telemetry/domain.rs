//! Telemetry's domain: what ingest accepts, the rollup arithmetic that the warm tier, queries
//! and tiering share, and tiering jobs.

pub mod ingest;
mod rollup;
pub mod tiering;

pub use rollup::{Aggregation, Field, Fields, Rollup, roll_up};
