//! The gateway's configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use mfg_common::{
    config::{DataDir, MeteringArgs, OperatorArgs, PlatformAddrs, ServerArgs, parse_duration},
    secret_file,
};

/// The gateway's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the platform's parts are: the gateway listens on `--gateway-addr` and calls the
    /// services at theirs.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// Where generated secrets are kept.
    #[command(flatten)]
    pub data_dir: DataDir,
    #[command(flatten)]
    pub options: GatewayOptions,
    /// How API requests are metered for the cost service at `--cost-addr`.
    #[command(flatten)]
    pub metering: MeteringArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where the gateway's metrics are also registered (served at `--metrics-addr` by whoever
    /// runs it); its own `/metrics` serves them too.
    #[arg(skip)]
    pub metrics: mfg_common::metrics::Registry,
}

/// What the gateway does, apart from where it listens and whom it calls: `mfg up` takes the
/// same options.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayOptions {
    /// The largest request body accepted, in bytes.
    #[arg(long = "max-body-bytes", env = "MFG_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How long one request may take before it is answered 504.
    #[arg(long = "request-timeout", env = "MFG_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How many requests of shared-plan tenants may be in flight at once, together.
    #[arg(
        long = "shared-concurrency",
        env = "MFG_SHARED_CONCURRENCY",
        default_value_t = 256
    )]
    pub shared_concurrency: usize,
    /// How many requests of each dedicated-plan tenant may be in flight at once.
    #[arg(
        long = "dedicated-concurrency",
        env = "MFG_DEDICATED_CONCURRENCY",
        default_value_t = 64
    )]
    pub dedicated_concurrency: usize,
    /// How long an API key's authentication is cached (at most 1 s).
    #[arg(long = "key-cache-ttl", env = "MFG_KEY_CACHE_TTL", default_value = "1s", value_parser = parse_duration)]
    pub key_cache_ttl: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shared_concurrency: 256,
            dedicated_concurrency: 64,
            key_cache_ttl: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// Returns a configuration with defaults and the given upstream addresses, for tests and
    /// embedding.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        tenant_addr: &str,
        storage_addr: &str,
        cost_addr: &str,
        provisioning_addr: &str,
    ) -> Self {
        Self {
            addrs: PlatformAddrs {
                gateway: SocketAddr::from(([127, 0, 0, 1], 0)).to_string(),
                tenant: tenant_addr.to_owned(),
                storage: storage_addr.to_owned(),
                cost: cost_addr.to_owned(),
                provisioning: provisioning_addr.to_owned(),
            },
            operator: OperatorArgs::default(),
            data_dir: DataDir::new(data_dir),
            options: GatewayOptions::default(),
            metering: MeteringArgs::OFF,
            server: ServerArgs::default(),
            metrics: mfg_common::metrics::Registry::default(),
        }
    }

    /// Where a generated operator token is kept.
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.path.join("admin-token")
    }

    /// Returns the operator token: the configured one, or the generated one of the data
    /// directory (created on first start).
    pub fn operator_token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.operator.admin_token {
            anyhow::ensure!(
                token.expose().len() >= 16,
                "the admin token must be at least 16 characters"
            );
            return Ok(token.expose().to_owned());
        }
        let path = self.admin_token_path();
        let bytes =
            secret_file::load_or_create(&path, || Ok(secret_file::operator_token()?.into_bytes()))
                .map_err(anyhow::Error::msg)?;
        let token = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{} is not text", path.display()))?;
        Ok(token.trim().to_owned())
    }
}
