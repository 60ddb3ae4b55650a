//! The Manufacturing Platform's benchmarks, each a subcommand of `mfg-bench` (and of `mfg
//! bench`, which runs `mfg-bench` when it is built next to it). They start what they measure,
//! compare against a reference in the same run where the goal names one, and fail when a call
//! fails. Figures go into docs/BENCHMARKS.md.

pub mod alerts_bench;
pub mod bench;
pub mod bench_platform;
pub mod cost_bench;
pub mod ingest_bench;
pub mod onboarding_bench;
pub mod query_bench;
pub mod streams_bench;
pub mod tenants_bench;
