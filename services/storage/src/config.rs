//! The storage service's configuration.

use std::net::SocketAddr;

use mfg_common::{
    config::{DatabaseArgs, Secret, ServerArgs},
    secret_file,
};

use crate::ingest::WriterOptions;

/// The storage service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(
        long = "listen-addr",
        env = "MFG_STORAGE_ADDR",
        default_value = "127.0.0.1:50052"
    )]
    pub listen_addr: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The tenant service (`host:port` or `http://host:port`), asked about keys, tenants and
    /// machines.
    #[arg(
        long = "tenant-addr",
        env = "MFG_TENANT_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub tenant_addr: String,
    /// The operator token, accepted from callers and used to call the tenant service. Required
    /// with PostgreSQL; with SQLite, when unset, the one kept beside the database file.
    #[arg(long = "admin-token", env = "MFG_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// How many inserts into the hot tier run at once.
    #[arg(
        long = "ingest-writers",
        env = "MFG_INGEST_WRITERS",
        default_value_t = 2
    )]
    pub ingest_writers: usize,
    /// How many batches may wait for a writer before ingest pushes back.
    #[arg(long = "ingest-queue", env = "MFG_INGEST_QUEUE", default_value_t = 256)]
    pub ingest_queue: usize,
    /// The most readings one insert (one commit) gathers from waiting batches.
    #[arg(
        long = "ingest-group-rows",
        env = "MFG_INGEST_GROUP_ROWS",
        default_value_t = 20_000
    )]
    pub ingest_group_rows: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Config {
    /// Returns a configuration with defaults, for tests and embedding.
    pub fn new(database_url: impl Into<String>, tenant_addr: impl Into<String>) -> Self {
        let writer = WriterOptions::default();
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: DatabaseArgs::new(database_url),
            tenant_addr: tenant_addr.into(),
            admin_token: None,
            ingest_writers: writer.writers,
            ingest_queue: writer.queue,
            ingest_group_rows: writer.max_group_rows,
            server: ServerArgs::default(),
        }
    }

    /// Sets the operator token.
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(Secret::new(token));
        self
    }

    /// Returns the operator token.
    pub fn operator_token(&self) -> Result<String, String> {
        secret_file::service_operator_token(self.admin_token.as_ref(), &self.database.url)
    }

    /// The writer's sizing.
    pub fn writer(&self) -> WriterOptions {
        WriterOptions {
            writers: self.ingest_writers,
            queue: self.ingest_queue,
            max_group_rows: self.ingest_group_rows,
        }
    }
}
