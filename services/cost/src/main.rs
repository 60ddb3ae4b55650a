//! The cost service as a standalone binary.

use anyhow::Context as _;
use clap::Parser;
use mfg_common::telemetry::{self, TelemetryArgs};

/// The cost service of the Manufacturing Platform.
#[derive(Debug, Parser)]
#[command(name = "mfg-cost", version)]
struct Cli {
    #[command(flatten)]
    config: mfg_cost::Config,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// Every binary's allocator (docs/decisions/0017-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = telemetry::init(&cli.telemetry, "mfg-cost")?;
    let addr = mfg_common::config::PlatformAddrs::listen(&cli.config.addrs.cost, "cost-addr")
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, "cost service listening");
    let result = mfg_cost::run(cli.config, listener, mfg_common::shutdown::on_signal()).await;
    telemetry.shutdown();
    result
}
