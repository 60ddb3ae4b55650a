//! `mfg`, the Manufacturing Platform's command: runs any of its services.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mfg_common::{
    shutdown,
    telemetry::{self, TelemetryArgs},
};
use tokio::net::TcpListener;

/// The Manufacturing Platform: machine telemetry, alerts, tiered storage and cost, per tenant.
#[derive(Debug, Parser)]
#[command(name = "mfg", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the four services and the REST gateway in one process, on SQLite files in the data
    /// directory unless `--database-url` names PostgreSQL.
    Up(mfg::up::UpArgs),
    /// Measures the platform; the figures go into docs/BENCHMARKS.md.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// Streams realistic telemetry from simulated machines over gRPC, with a live progress line;
    /// reconnects and resends by itself. Creates its tenants and machines through the tenant
    /// service as the operator.
    Simulate(mfg::simulate::SimulateArgs),
    /// Runs one service, for independent deployment.
    Serve {
        #[command(subcommand)]
        service: Service,
    },
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// REST through the gateway against gRPC straight to the tenant service: the gateway's
    /// overhead at p50, and throughput with p99 under concurrency. Needs a running `mfg up`.
    Gateway(mfg::bench::GatewayBench),
    /// Readings per second over StreamTelemetry into the hot tier, ack latency at half that
    /// rate, and (on PostgreSQL) a raw COPY into the same tables. Starts its own services.
    Ingest(mfg::ingest_bench::IngestBench),
    /// Alert latency from a reading to its event (gRPC and SSE), idle and under load, and the
    /// fan-out to many subscribers.
    Alerts(mfg::alerts_bench::AlertsBench),
    /// Latency of `latest` and of a 30-day series downsampled to about 500 buckets, one query
    /// at a time. Loads its own data into services it starts.
    Query(mfg::query_bench::QueryBench),
    /// Resident memory per idle machine stream, with 10,000 streams held by one storage
    /// process (run as its own process).
    Streams(mfg::streams_bench::StreamsBench),
}

#[derive(Debug, Subcommand)]
enum Service {
    /// The tenant service: tenants, API keys, machines.
    Tenant(mfg_tenant::Config),
    /// The storage service: telemetry, tiers, queries, alerts.
    Storage(mfg_storage::Config),
    /// The cost service: usage, cost, budgets.
    Cost(mfg_cost::Config),
    /// The provisioning service: tenant onboarding.
    Provisioning(mfg_provisioning::Config),
    /// The REST gateway.
    Gateway(mfg_gateway::Config),
}

async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, service = name, "listening");
    Ok(listener)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service = match cli.command {
        Command::Up(args) => {
            let telemetry = telemetry::init(&cli.telemetry, "mfg")?;
            let result = mfg::up::run(args, shutdown::on_signal()).await;
            telemetry.shutdown();
            return result;
        }
        Command::Bench {
            bench: Bench::Gateway(args),
        } => return mfg::bench::gateway(args).await,
        Command::Bench {
            bench: Bench::Ingest(args),
        } => return mfg::ingest_bench::run(args).await,
        Command::Bench {
            bench: Bench::Query(args),
        } => return mfg::query_bench::run(args).await,
        Command::Bench {
            bench: Bench::Alerts(args),
        } => return mfg::alerts_bench::run(args).await,
        Command::Bench {
            bench: Bench::Streams(args),
        } => return mfg::streams_bench::run(args).await,
        Command::Simulate(args) => {
            let telemetry = telemetry::init(&cli.telemetry, "mfg-simulate")?;
            let result = mfg::simulate::run(args, shutdown::on_signal()).await;
            telemetry.shutdown();
            return result;
        }
        Command::Serve { service } => service,
    };
    let name = match &service {
        Service::Tenant(_) => "mfg-tenant",
        Service::Storage(_) => "mfg-storage",
        Service::Cost(_) => "mfg-cost",
        Service::Provisioning(_) => "mfg-provisioning",
        Service::Gateway(_) => "mfg-gateway",
    };
    let telemetry = telemetry::init(&cli.telemetry, name)?;
    let stop = shutdown::on_signal();
    let result = match service {
        Service::Tenant(config) => {
            mfg_tenant::run(config.clone(), bind(config.listen_addr, name).await?, stop).await
        }
        Service::Storage(config) => {
            mfg_storage::run(config.clone(), bind(config.listen_addr, name).await?, stop).await
        }
        Service::Cost(config) => {
            mfg_cost::run(config.clone(), bind(config.listen_addr, name).await?, stop).await
        }
        Service::Provisioning(config) => {
            mfg_provisioning::run(config.clone(), bind(config.listen_addr, name).await?, stop).await
        }
        Service::Gateway(config) => {
            mfg_gateway::run(config.clone(), bind(config.listen_addr, name).await?, stop).await
        }
    };
    telemetry.shutdown();
    result
}
