//! The `mfg` command as a library, so that tests start exactly what `mfg up` starts.

pub mod alerts_bench;
pub mod bench;
pub mod bench_platform;
pub mod data_dir;
pub mod demo;
pub mod ingest_bench;
pub mod query_bench;
pub mod simulate;
pub mod streams_bench;
pub mod tenants_bench;
pub mod up;
pub mod uplink;
