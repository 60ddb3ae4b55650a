//! The storage service's domain. So far the rollup arithmetic that the warm tier, queries and
//! tiering share; ingest and alerting rules come with their issues.

mod rollup;

pub use rollup::{Aggregation, Rollup, bucket_start, roll_up};
