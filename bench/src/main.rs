//! `mfg-bench`: measures the platform; the figures go into docs/BENCHMARKS.md. Its own binary,
//! so that `mfg` does not link the load generators (`cargo build --release -p mfg-bench`).

use clap::{Parser, Subcommand};

/// Measures the Manufacturing Platform.
#[derive(Debug, Parser)]
#[command(name = "mfg-bench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// REST through the gateway against gRPC straight to the tenant service: the gateway's
    /// overhead at p50, and throughput with p99 under concurrency. Needs a running `mfg up`.
    Gateway(mfg_bench::bench::GatewayBench),
    /// Readings per second over StreamTelemetry into the hot tier, ack latency at half that
    /// rate, and (on PostgreSQL) a raw COPY into the same tables. Starts its own services.
    Ingest(mfg_bench::ingest_bench::IngestBench),
    /// Alert latency from a reading to its event (gRPC and SSE), idle and under load, and the
    /// fan-out to many subscribers.
    Alerts(mfg_bench::alerts_bench::AlertsBench),
    /// Latency of `latest` and of a 30-day series downsampled to about 500 buckets, one query
    /// at a time. Loads its own data into services it starts.
    Query(mfg_bench::query_bench::QueryBench),
    /// The platform at a tenant count: setup, ingest, `latest` and a 1-day range, partitions,
    /// a tiering job over everything, and a restart. Starts its own services.
    Tenants(mfg_bench::tenants_bench::TenantsBench),
    /// Latency of the cost reports over REST: one tenant's month of hourly usage, and the
    /// summary of many tenants. Starts its own services and loads its own usage.
    Cost(mfg_bench::cost_bench::CostBench),
    /// Onboarding: from `POST /v1/tenants` to an active tenant, one at a time and many at
    /// once, on the embedded default unless given a database. Starts its own services.
    Onboarding(mfg_bench::onboarding_bench::OnboardingBench),
    /// Resident memory per idle machine stream, with 10,000 streams held by one storage
    /// process (run as its own process).
    Streams(mfg_bench::streams_bench::StreamsBench),
}

/// Every binary's allocator (docs/decisions/0017-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Gateway(args) => mfg_bench::bench::gateway(args).await,
        Bench::Ingest(args) => mfg_bench::ingest_bench::run(args).await,
        Bench::Query(args) => mfg_bench::query_bench::run(args).await,
        Bench::Tenants(args) => mfg_bench::tenants_bench::run(args).await,
        Bench::Alerts(args) => mfg_bench::alerts_bench::run(args).await,
        Bench::Streams(args) => mfg_bench::streams_bench::run(args).await,
        Bench::Cost(args) => mfg_bench::cost_bench::run(args).await,
        Bench::Onboarding(args) => mfg_bench::onboarding_bench::run(args).await,
    }
}
