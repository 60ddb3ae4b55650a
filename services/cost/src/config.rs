//! The cost service's configuration.

use std::net::SocketAddr;

use mfg_common::config::ServerArgs;

/// The cost service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(
        long = "listen-addr",
        env = "MFG_COST_ADDR",
        default_value = "127.0.0.1:50053"
    )]
    pub listen_addr: SocketAddr,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: ServerArgs::default(),
        }
    }
}
