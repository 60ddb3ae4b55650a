//! The `mfg` command as a library, so that tests start exactly what `mfg up` starts.

pub mod bench;
pub mod ingest_bench;
pub mod up;
