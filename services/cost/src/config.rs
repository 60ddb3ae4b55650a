//! The cost service's configuration.

use std::net::SocketAddr;

use mfg_common::config::{PlatformAddrs, ServerArgs};

/// The cost service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the platform's parts are; the service listens on `--cost-addr`.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addrs: PlatformAddrs::all(SocketAddr::from(([127, 0, 0, 1], 0))),
            server: ServerArgs::default(),
        }
    }
}
