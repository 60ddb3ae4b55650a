//! The tenant service's configuration.

use std::net::SocketAddr;

use mfg_common::config::{DatabaseArgs, Secret, ServerArgs};

use crate::domain::KeyHasher;

/// The tenant service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(
        long = "listen-addr",
        env = "MFG_TENANT_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub listen_addr: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Server-side secret (at least 16 bytes) that API key hashes are keyed with. Keep it
    /// stable: changing it invalidates every key.
    #[arg(long = "key-pepper", env = "MFG_KEY_PEPPER", hide_env_values = true)]
    pub key_pepper: Secret,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Config {
    /// Returns a configuration with defaults, for tests and embedding.
    pub fn new(database_url: impl Into<String>, key_pepper: impl Into<String>) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: DatabaseArgs::new(database_url),
            key_pepper: Secret::new(key_pepper),
            server: ServerArgs::default(),
        }
    }

    /// Checks the configuration once, at start-up, and returns the key hasher it defines.
    pub fn validate(&self) -> Result<KeyHasher, String> {
        mfg_common::db::validate_url(&self.database.url)?;
        KeyHasher::new(self.key_pepper.expose().as_bytes())
    }
}
