//! The tenant service's configuration.

use std::{net::SocketAddr, str::FromStr};

use mfg_common::{
    config::{
        AuditArgs, DataArgs, DatabaseArgs, MeteringArgs, OperatorArgs, PlatformAddrs, Secret,
        ServerArgs,
    },
    db::Backend,
    secret_file,
};
use sqlx::sqlite::SqliteConnectOptions;

use crate::domain::KeyHasher;

/// The tenant service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the platform's parts are; the service listens on `--tenant-addr`.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    /// Where its data is: `<data-dir>/tenant.db` unless `--database-url` is given.
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub pepper: PepperArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// How registered machines are metered for the cost service at `--cost-addr`.
    #[command(flatten)]
    pub metering: MeteringArgs,
    #[command(flatten)]
    pub onboarding: OnboardingArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where the service's metrics are registered (served by whoever runs it).
    #[arg(skip)]
    pub metrics: mfg_common::metrics::Registry,
}

/// How new tenants are onboarded.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OnboardingArgs {
    /// Hand each new tenant to the provisioning service at `--provisioning-addr`, which
    /// onboards it: the tenant is provisioning until its run succeeds, and its readings are
    /// refused until then. `false`: a new tenant is active at once, and onboarding is started
    /// by hand (`POST /v1/tenants/{id}/provisioning-runs`).
    #[arg(
        long = "provision-tenants",
        env = "MFG_PROVISION_TENANTS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub hand_off: bool,
}

impl OnboardingArgs {
    /// No hand-off, as the tenant service starts on its own in tests.
    pub const OFF: Self = Self { hand_off: false };
    /// Every new tenant handed to the provisioning service, as `mfg up` runs.
    pub const ON: Self = Self { hand_off: true };
}

/// The API key pepper: one flag for `mfg serve tenant` and `mfg up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PepperArgs {
    /// Server-side secret (at least 16 bytes) that API key hashes are keyed with. Keep it
    /// stable: changing it invalidates every key. Required with PostgreSQL; with SQLite, when
    /// unset, one is generated on first start and kept (mode 0600) beside the database file.
    #[arg(long = "key-pepper", env = "MFG_KEY_PEPPER", hide_env_values = true)]
    pub key_pepper: Option<Secret>,
}

/// Why a PostgreSQL deployment will not start without a pepper, in its operator's terms.
pub const PEPPER_REQUIRED: &str = "with PostgreSQL, set --key-pepper (or MFG_KEY_PEPPER) to a \
     secret of at least 16 characters: API keys are stored as hashes keyed with it, so it must \
     stay the same across restarts and replicas (e.g. `openssl rand -base64 32`, kept in your \
     secret store)";

impl Config {
    /// The service's database.
    pub fn database(&self) -> DatabaseArgs {
        self.data.database("tenant")
    }

    /// Returns a configuration with defaults, for tests and embedding.
    pub fn new(database_url: impl Into<String>, key_pepper: impl Into<String>) -> Self {
        Self {
            addrs: PlatformAddrs::all(SocketAddr::from(([127, 0, 0, 1], 0))),
            data: DataArgs::on(database_url),
            pepper: PepperArgs {
                key_pepper: Some(Secret::new(key_pepper)),
            },
            operator: OperatorArgs::default(),
            metering: MeteringArgs::OFF,
            onboarding: OnboardingArgs::OFF,
            audit: AuditArgs::OFF,
            server: ServerArgs::default(),
            metrics: mfg_common::metrics::Registry::default(),
        }
    }

    /// Sets the operator token.
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.operator.admin_token = Some(Secret::new(token));
        self
    }

    /// Returns the operator token: the configured one, or, on SQLite, the one kept beside the
    /// database file (generated on first start).
    pub fn operator_token(&self) -> Result<String, String> {
        secret_file::service_operator_token(
            self.operator.admin_token.as_ref(),
            &self.database().url,
        )
    }

    /// Checks the configuration once, at start-up, and returns the key hasher it defines,
    /// creating the embedded default's pepper file if needed.
    pub fn validate(&self) -> Result<KeyHasher, String> {
        let backend = mfg_common::db::validate_url(&self.database().url)?;
        match (&self.pepper.key_pepper, backend) {
            (Some(pepper), _) => KeyHasher::new(pepper.expose().as_bytes()),
            (None, Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(&self.database().url)
                    .map_err(|e| e.to_string())?;
                let path = options.get_filename().with_file_name("key-pepper");
                KeyHasher::new(&secret_file::load_or_create(&path, || {
                    secret_file::random_bytes(32)
                })?)
            }
            (None, Backend::Postgres) => Err(PEPPER_REQUIRED.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_keeps_one_generated_pepper() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/tenant.db").display());
        let mut config = Config::new(&url, "unused-pepper-0123456789");
        config.pepper.key_pepper = None;
        let first = config.validate().unwrap();
        let second = config.validate().unwrap();
        let secret = "mfg_x";
        assert!(
            second.verify(secret, &first.hash(secret)),
            "the same pepper on every start"
        );
        let path = dir.path().join("data/key-pepper");
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn postgres_needs_an_explicit_pepper() {
        let mut config = Config::new(
            "postgres://postgres@127.0.0.1/x",
            "unused-pepper-0123456789",
        );
        config.pepper.key_pepper = None;
        assert!(config.validate().unwrap_err().contains("--key-pepper"));
    }
}
