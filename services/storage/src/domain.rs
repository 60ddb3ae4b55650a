//! The storage service's domain: what ingest accepts, and the rollup arithmetic that the warm
//! tier, queries and tiering share.

pub mod ingest;
mod rollup;

pub use rollup::{Aggregation, Rollup, bucket_start, roll_up};
