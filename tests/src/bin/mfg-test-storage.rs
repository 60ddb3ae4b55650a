//! The storage service as a process of its own, for the tests that kill it (`kill -9`) and
//! start it again (`tests/metering_crash.rs`): `mfg serve storage`'s options, served on
//! `--storage-addr` until SIGINT or SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;

/// `mfg serve storage`'s options.
#[derive(Debug, clap::Parser)]
struct Args {
    #[command(flatten)]
    config: mfg_storage::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { config } = Args::parse();
    let addr = config.addrs.storage.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    mfg_storage::run(config, listener, mfg_common::shutdown::on_signal()).await
}
