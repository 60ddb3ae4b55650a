//! The storage service's configuration.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use mfg_common::{
    config::{
        AuditArgs, DataArgs, DatabaseArgs, MeteringArgs, OperatorArgs, PlatformAddrs, Secret,
        ServerArgs, parse_duration,
    },
    db::Backend,
    secret_file,
};

use crate::{
    alerting::EvaluatorConfig,
    telemetry::{
        ingest::WriterOptions,
        object_store::{LocalStore, ObjectStore, S3Config, S3Store},
        tiering::{JobOptions, TieringOptions},
    },
};

/// When the alert journal publishes a write's events (`--alert-commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertCommit {
    /// Once committed, before the WAL flush; kept until flushed, and written again after a
    /// restart of the database server.
    Fast,
    /// Once flushed to disk.
    Durable,
}

/// The storage service's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the platform's parts are: the service listens on `--storage-addr` and asks the
    /// tenant service at `--tenant-addr` about keys, tenants and machines.
    #[command(flatten)]
    pub addrs: PlatformAddrs,
    /// Where its data is: `<data-dir>/storage.db` unless `--database-url` is given.
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub options: StorageOptions,
    /// How usage is metered for the cost service at `--cost-addr`.
    #[command(flatten)]
    pub metering: MeteringArgs,
    /// Whether changes of rules and alerts made by hand go to the audit log.
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where the service's metrics are registered (served by whoever runs it).
    #[arg(skip)]
    pub metrics: mfg_common::metrics::Registry,
    /// Observers of ingest beside alerting, given by whoever embeds the service.
    #[arg(skip)]
    pub observers: Vec<Arc<dyn crate::telemetry::ingest::IngestObserver>>,
}

/// What the storage service does, apart from where it listens, whom it calls and where its
/// database is: `mfg up` takes the same options.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageOptions {
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
    /// The directory of the cold tier when no S3 bucket is set. Default: `archive` beside the
    /// SQLite database file, or `./mfg-archive` with PostgreSQL.
    #[arg(long = "archive-dir", env = "MFG_ARCHIVE_DIR")]
    pub archive_dir: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
    /// How often a tiering job (rollup, archive and retention for every tenant) starts; `0s`
    /// starts them only on demand (`StartTieringJob`).
    #[arg(
        long = "tiering-interval",
        env = "MFG_TIERING_INTERVAL",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub tiering_interval: Duration,
    /// How many tenants a tiering job works on at once.
    #[arg(
        long = "tiering-parallelism",
        env = "MFG_TIERING_PARALLELISM",
        default_value_t = 2,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub tiering_parallelism: u16,
    /// How long a replica holds a running tiering job without renewing its lease; the job of a
    /// replica that died is taken over after this long.
    #[arg(
        long = "tiering-lease",
        env = "MFG_TIERING_LEASE",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub tiering_lease: Duration,
    /// Days after which archived objects move to infrequent-access storage (S3 lifecycle, at
    /// least 30); `0` keeps them in the standard class.
    #[arg(
        long = "archive-transition-days",
        env = "MFG_ARCHIVE_TRANSITION_DAYS",
        default_value_t = 90
    )]
    pub archive_transition_days: u32,
    /// How many batches of readings may wait for or be under alert evaluation at once; past
    /// that, readings are coalesced per series until the evaluator catches up.
    #[arg(
        long = "alert-evaluations",
        env = "MFG_ALERT_EVALUATIONS",
        default_value_t = 100
    )]
    pub alert_evaluations: usize,
    /// How many recent alert events the live fan-out keeps for subscribers that read slower
    /// than events come; one further behind is told it lagged and resumed from the stored log.
    #[arg(
        long = "alert-fan-out",
        env = "MFG_ALERT_FAN_OUT",
        default_value_t = 4_096
    )]
    pub alert_fan_out: usize,
    /// When the alert journal publishes a write's events, on PostgreSQL. `fast` (the default):
    /// once committed, before its WAL is flushed (`synchronous_commit = off` for the journal
    /// only), keeping each write until the server's log is flushed past it and writing it
    /// again if the server restarted meanwhile. `durable`: once flushed. See
    /// docs/decisions/0009-alerts.md. SQLite commits as it always does.
    #[arg(
        long = "alert-commit",
        env = "MFG_ALERT_COMMIT",
        value_enum,
        default_value_t = AlertCommit::Fast
    )]
    pub alert_commit: AlertCommit,
    /// How many shards evaluate alert rules in parallel; default: one per core.
    #[arg(long = "alert-shards", env = "MFG_ALERT_SHARDS")]
    pub alert_shards: Option<usize>,
    /// How often the machines with alert rule states or unresolved alerts are checked with the
    /// tenant service: the alerts of a deleted machine are resolved, and its no-data watch
    /// stops (`0s`: never).
    #[arg(
        long = "alert-machine-sweep",
        env = "MFG_ALERT_MACHINE_SWEEP",
        default_value = "60s",
        value_parser = mfg_common::config::parse_duration
    )]
    pub alert_machine_sweep: Duration,
    /// How many alert subscriptions (gRPC `SubscribeAlerts`, and SSE through the gateway) one
    /// API key may hold open at once.
    #[arg(
        long = "alert-subscribers-per-key",
        env = "MFG_ALERT_SUBSCRIBERS_PER_KEY",
        default_value_t = 32
    )]
    pub alert_subscribers_per_key: usize,
    /// How many alert subscriptions one tenant may hold open at once, all its keys together.
    #[arg(
        long = "alert-subscribers-per-tenant",
        env = "MFG_ALERT_SUBSCRIBERS_PER_TENANT",
        default_value_t = 256
    )]
    pub alert_subscribers_per_tenant: usize,
}

/// Where the cold tier lives when it is an S3 bucket (AWS S3, MinIO or any S3-compatible store).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct S3Args {
    /// The bucket of the cold tier; when set, the archive goes to S3 instead of a directory.
    #[arg(long = "s3-bucket", env = "MFG_S3_BUCKET")]
    pub bucket: Option<String>,
    /// The endpoint of an S3-compatible store (e.g. `http://127.0.0.1:9000` for MinIO); unset
    /// means AWS.
    #[arg(long = "s3-endpoint", env = "MFG_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long = "s3-region", env = "MFG_S3_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Address the bucket by path (`http://host/bucket/key`), as MinIO and test servers want.
    #[arg(long = "s3-path-style", env = "MFG_S3_PATH_STYLE")]
    pub path_style: bool,
    /// The access key id; unset uses the default AWS credential chain (environment, profile,
    /// instance role).
    #[arg(long = "s3-access-key-id", env = "MFG_S3_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// The secret access key, with `--s3-access-key-id`.
    #[arg(
        long = "s3-secret-access-key",
        env = "MFG_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<Secret>,
    /// How long one attempt of an S3 operation may take before it is retried as a timeout.
    #[arg(
        long = "s3-attempt-timeout",
        env = "MFG_S3_ATTEMPT_TIMEOUT",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub attempt_timeout: Duration,
}

impl Default for StorageOptions {
    fn default() -> Self {
        let writer = WriterOptions::default();
        Self {
            ingest_writers: writer.writers,
            ingest_queue: writer.queue,
            ingest_group_rows: writer.max_group_rows,
            archive_dir: None,
            s3: S3Args {
                region: "us-east-1".to_owned(),
                attempt_timeout: crate::telemetry::object_store::DEFAULT_ATTEMPT_TIMEOUT,
                ..S3Args::default()
            },
            tiering_interval: Duration::from_secs(300),
            tiering_parallelism: 2,
            tiering_lease: Duration::from_secs(30),
            archive_transition_days: 90,
            alert_evaluations: 100,
            alert_fan_out: 4_096,
            alert_commit: AlertCommit::Fast,
            alert_shards: None,
            alert_machine_sweep: Duration::from_secs(60),
            alert_subscribers_per_key: 32,
            alert_subscribers_per_tenant: 256,
        }
    }
}

impl Config {
    /// The service's database.
    pub fn database(&self) -> DatabaseArgs {
        self.data.database("storage")
    }

    /// Returns a configuration with defaults, for tests and embedding.
    pub fn new(database_url: impl Into<String>, tenant_addr: impl Into<String>) -> Self {
        Self {
            addrs: PlatformAddrs {
                tenant: tenant_addr.into(),
                ..PlatformAddrs::all(SocketAddr::from(([127, 0, 0, 1], 0)))
            },
            data: DataArgs::on(database_url),
            operator: OperatorArgs::default(),
            options: StorageOptions::default(),
            metering: MeteringArgs::OFF,
            audit: AuditArgs::OFF,
            server: ServerArgs::default(),
            metrics: mfg_common::metrics::Registry::default(),
            observers: Vec::new(),
        }
    }

    /// Meters usage for the cost service at `cost_addr` every `interval`.
    pub fn with_metering(mut self, cost_addr: impl Into<String>, interval: Duration) -> Self {
        self.addrs.cost = cost_addr.into();
        self.metering = MeteringArgs { interval };
        self
    }

    /// Puts the cold tier in a directory.
    pub fn with_archive_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.archive_dir = Some(dir.into());
        self
    }

    /// Sets how often the tiering jobs run (`Duration::ZERO`: on demand only).
    pub fn with_tiering_interval(mut self, interval: Duration) -> Self {
        self.options.tiering_interval = interval;
        self
    }

    /// The directory of the cold tier, when it is not S3.
    pub fn archive_dir(&self) -> Result<PathBuf, String> {
        if let Some(dir) = &self.options.archive_dir {
            return Ok(dir.clone());
        }
        match mfg_common::db::validate_url(&self.database().url)? {
            Backend::Sqlite => {
                use std::str::FromStr as _;
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.database().url)
                    .map_err(|e| e.to_string())?;
                Ok(options.get_filename().with_file_name("archive"))
            }
            Backend::Postgres => Ok(PathBuf::from("mfg-archive")),
        }
    }

    /// Opens the cold tier's object store.
    pub async fn object_store(&self) -> Result<Arc<dyn ObjectStore>, String> {
        let Some(bucket) = &self.options.s3.bucket else {
            let dir = self.archive_dir()?;
            let store = LocalStore::new(&dir).map_err(|e| e.to_string())?;
            return Ok(Arc::new(store));
        };
        let credentials = match (
            &self.options.s3.access_key_id,
            &self.options.s3.secret_access_key,
        ) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.expose().to_owned())),
            (None, None) => None,
            _ => {
                return Err("--s3-access-key-id and --s3-secret-access-key go together".to_owned());
            }
        };
        let store = S3Store::connect(&S3Config {
            bucket: bucket.clone(),
            endpoint: self.options.s3.endpoint.clone(),
            region: self.options.s3.region.clone(),
            path_style: self.options.s3.path_style,
            credentials,
            attempt_timeout: self.options.s3.attempt_timeout,
        })
        .await;
        Ok(Arc::new(store))
    }

    /// The tiering jobs' settings.
    pub fn tiering(&self) -> TieringOptions {
        TieringOptions {
            transition_after_days: Some(self.options.archive_transition_days).filter(|&d| d > 0),
        }
    }

    /// How tiering jobs run.
    pub fn tiering_jobs(&self) -> JobOptions {
        JobOptions {
            parallelism: usize::from(self.options.tiering_parallelism),
            lease: self.options.tiering_lease.max(Duration::from_millis(300)),
        }
    }

    /// Sets the operator token.
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.operator.admin_token = Some(Secret::new(token));
        self
    }

    /// Returns the operator token.
    pub fn operator_token(&self) -> Result<String, String> {
        secret_file::service_operator_token(
            self.operator.admin_token.as_ref(),
            &self.database().url,
        )
    }

    /// Keeps `events` recent alert events for slow subscribers.
    #[must_use]
    pub fn with_alert_fan_out(mut self, events: usize) -> Self {
        self.options.alert_fan_out = events;
        self
    }

    /// Evaluates alerts with at most `batches` in flight, on `shards` shards.
    #[must_use]
    pub fn with_alert_evaluations(mut self, batches: usize, shards: usize) -> Self {
        self.options.alert_evaluations = batches;
        self.options.alert_shards = Some(shards);
        self
    }

    /// Caps the alert subscriptions of one key and of one tenant.
    #[must_use]
    pub fn with_alert_subscribers(mut self, per_key: usize, per_tenant: usize) -> Self {
        self.options.alert_subscribers_per_key = per_key;
        self.options.alert_subscribers_per_tenant = per_tenant;
        self
    }

    /// Sets how often the machines of alerts are checked (`Duration::ZERO`: never).
    #[must_use]
    pub fn with_alert_machine_sweep(mut self, interval: Duration) -> Self {
        self.options.alert_machine_sweep = interval;
        self
    }

    /// The alert evaluator's settings.
    pub fn evaluator(&self) -> EvaluatorConfig {
        let defaults = EvaluatorConfig::default();
        EvaluatorConfig {
            shards: self.options.alert_shards.unwrap_or(defaults.shards).max(1),
            max_in_flight: self.options.alert_evaluations.max(1),
            ..defaults
        }
    }

    /// The writer's sizing.
    pub fn writer(&self) -> WriterOptions {
        WriterOptions {
            writers: self.options.ingest_writers,
            queue: self.options.ingest_queue,
            max_group_rows: self.options.ingest_group_rows,
        }
    }
}
