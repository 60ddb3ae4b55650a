//! The storage service as a standalone binary.

use anyhow::Context as _;
use clap::Parser;
use mfg_common::telemetry::{self, TelemetryArgs};

/// The storage service of the Manufacturing Platform.
#[derive(Debug, Parser)]
#[command(name = "mfg-storage", version)]
struct Cli {
    #[command(flatten)]
    config: mfg_storage::Config,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// Every binary's allocator (docs/decisions/0017-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = telemetry::init(&cli.telemetry, "mfg-storage")?;
    let addr = mfg_common::config::PlatformAddrs::listen(&cli.config.addrs.storage, "storage-addr")
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, "storage service listening");
    let result = mfg_storage::run(cli.config, listener, mfg_common::shutdown::on_signal()).await;
    telemetry.shutdown();
    result
}
