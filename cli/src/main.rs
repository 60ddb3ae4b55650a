//! `mfg`, the Manufacturing Platform's command: runs any of its services.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mfg_common::{
    shutdown,
    telemetry::{self, TelemetryArgs},
};
use tokio::net::TcpListener;

/// The Manufacturing Platform: machine telemetry, alerts, tiered storage and cost, per tenant.
#[derive(Debug, Parser)]
#[command(name = "mfg", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would buy nothing"
)]
enum Command {
    /// Runs the four services and the REST gateway in one process, on SQLite files in the data
    /// directory unless `--database-url` names PostgreSQL.
    Up(mfg::up::UpArgs),
    /// Measures the platform (runs `mfg-bench`, built next to `mfg` with `cargo build --release
    /// -p mfg-bench`; `mfg bench --help` lists the benchmarks).
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark and its options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Streams realistic telemetry from simulated machines over gRPC, with a live progress line;
    /// reconnects and resends by itself. Creates its tenants and machines through the tenant
    /// service as the operator.
    Simulate(mfg::simulate::SimulateArgs),
    /// Runs one service, for independent deployment.
    Serve {
        #[command(subcommand)]
        service: Service,
    },
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start-up; the configurations are kept by value as the services take them"
)]
enum Service {
    /// The tenant service: tenants, API keys, machines.
    Tenant(mfg_tenant::Config),
    /// The storage service: telemetry, tiers, queries, alerts.
    Storage(mfg_storage::Config),
    /// The cost service: usage, cost, budgets.
    Cost(mfg_cost::Config),
    /// The provisioning service: tenant onboarding.
    Provisioning(mfg_provisioning::Config),
    /// The REST gateway.
    Gateway(mfg_gateway::Config),
}

async fn bind(addr: &str, part: &str, name: &str) -> anyhow::Result<TcpListener> {
    let addr = mfg_common::config::PlatformAddrs::listen(addr, &format!("{part}-addr"))
        .map_err(anyhow::Error::msg)?;
    bind_socket(addr, name).await
}

async fn bind_socket(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, service = name, "listening");
    Ok(listener)
}

/// The `MFG_*` variables among `vars` that no option of any command reads: most likely typos,
/// which would otherwise be ignored in silence. `MFG_TEST_*` belong to the test suite.
fn unknown_variables(vars: impl Iterator<Item = String>) -> Vec<String> {
    fn known(command: &clap::Command, into: &mut std::collections::HashSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                into.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            known(sub, into);
        }
    }
    let mut names = std::collections::HashSet::new();
    known(&<Cli as clap::CommandFactory>::command(), &mut names);
    let mut unknown: Vec<String> = vars
        .filter(|name| name.starts_with("MFG_") && !name.starts_with("MFG_TEST_"))
        .filter(|name| !names.contains(name))
        .collect();
    unknown.sort();
    unknown
}

/// Warns of each `MFG_*` variable that nothing reads.
fn warn_of_unknown_variables() {
    for name in unknown_variables(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())) {
        tracing::warn!(variable = %name, "no option reads this environment variable; is it misspelt?");
    }
}

/// Runs `mfg-bench` from the directory of this binary with `args`, and exits with its status.
fn run_bench(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("the path of mfg")?;
    let bench = exe.with_file_name(format!("mfg-bench{}", std::env::consts::EXE_SUFFIX));
    let status = std::process::Command::new(&bench)
        .args(args)
        .status()
        .with_context(|| {
            format!(
                "cannot run {}: build it with `cargo build --release -p mfg-bench`",
                bench.display()
            )
        })?;
    std::process::exit(status.code().unwrap_or(1));
}

/// Every binary's allocator (docs/decisions/0017-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if let Command::Up(args) = &cli.command
        && args.demo
    {
        // The demo prints its own lines (its progress, its alerts); logs are warnings only.
        cli.telemetry
            .log_filter
            .get_or_insert_with(|| "warn".to_owned());
    }
    let service = match cli.command {
        Command::Up(args) => {
            let telemetry = telemetry::init(&cli.telemetry, "mfg")?;
            warn_of_unknown_variables();
            let result = mfg::up::run(args, shutdown::on_signal()).await;
            telemetry.shutdown();
            return result;
        }
        Command::Bench { args } => return run_bench(&args),
        Command::Simulate(args) => {
            let telemetry = telemetry::init(&cli.telemetry, "mfg-simulate")?;
            let result = mfg::simulate::run(args, shutdown::on_signal()).await;
            telemetry.shutdown();
            return result;
        }
        Command::Serve { service } => service,
    };
    let name = match &service {
        Service::Tenant(_) => "mfg-tenant",
        Service::Storage(_) => "mfg-storage",
        Service::Cost(_) => "mfg-cost",
        Service::Provisioning(_) => "mfg-provisioning",
        Service::Gateway(_) => "mfg-gateway",
    };
    let telemetry = telemetry::init(&cli.telemetry, name)?;
    warn_of_unknown_variables();
    let stop = shutdown::on_signal();
    let metrics = mfg_common::metrics::Registry::default();
    let metrics_addr = match &service {
        Service::Tenant(c) => c.server.metrics_addr,
        Service::Storage(c) => c.server.metrics_addr,
        Service::Cost(c) => c.server.metrics_addr,
        Service::Provisioning(c) => c.server.metrics_addr,
        Service::Gateway(c) => c.server.metrics_addr,
    };
    if let Some(addr) = metrics_addr {
        let listener = bind_socket(addr, "metrics").await?;
        tokio::spawn(mfg_common::metrics::serve(
            listener,
            metrics.clone(),
            stop.clone(),
        ));
    }
    let result = match service {
        Service::Tenant(mut config) => {
            config.metrics = metrics;
            mfg_tenant::run(
                config.clone(),
                bind(&config.addrs.tenant, "tenant", name).await?,
                stop,
            )
            .await
        }
        Service::Storage(mut config) => {
            config.metrics = metrics;
            mfg_storage::run(
                config.clone(),
                bind(&config.addrs.storage, "storage", name).await?,
                stop,
            )
            .await
        }
        Service::Cost(config) => {
            mfg_cost::run(
                config.clone(),
                bind(&config.addrs.cost, "cost", name).await?,
                stop,
            )
            .await
        }
        Service::Provisioning(config) => {
            mfg_provisioning::run(
                config.clone(),
                bind(&config.addrs.provisioning, "provisioning", name).await?,
                stop,
            )
            .await
        }
        Service::Gateway(mut config) => {
            config.metrics = metrics;
            mfg_gateway::run(
                config.clone(),
                bind(&config.addrs.gateway, "gateway", name).await?,
                stop,
            )
            .await
        }
    };
    telemetry.shutdown();
    result
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn the_commands_are_well_formed() {
        Cli::command().debug_assert();
    }

    /// `mfg up` takes every option that `mfg serve <service>` takes: one set of flags,
    /// addresses, token and database included.
    #[test]
    fn up_takes_the_services_options() {
        let args = [
            "mfg",
            "up",
            "--archive-dir",
            "/tmp/a",
            "--tiering-interval",
            "1m",
            "--s3-bucket",
            "b",
            "--s3-endpoint",
            "http://127.0.0.1:9000",
            "--s3-path-style",
            "--max-body-bytes",
            "1024",
            "--request-timeout",
            "5s",
            "--shared-concurrency",
            "3",
            "--dedicated-concurrency",
            "2",
            "--key-cache-ttl",
            "500ms",
            "--shutdown-grace",
            "2s",
            "--database-max-connections",
            "4",
            "--database-acquire-timeout",
            "1s",
            "--alert-commit",
            "durable",
            "--alert-fan-out",
            "10",
            "--ingest-writers",
            "1",
            "--handshake-timeout",
            "3s",
            "--max-connections-per-peer",
            "7",
            "--alert-subscribers-per-key",
            "5",
        ];
        let Command::Up(up) = Cli::try_parse_from(args).unwrap().command else {
            panic!("not up");
        };
        assert_eq!(
            up.storage.tiering_interval,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(up.storage.s3.bucket.as_deref(), Some("b"));
        assert_eq!(up.storage.alert_commit, mfg_storage::AlertCommit::Durable);
        assert_eq!(up.gateway.max_body_bytes, 1024);
        assert_eq!(up.server.shutdown_grace, std::time::Duration::from_secs(2));
        assert_eq!(up.server.connections.max_connections_per_peer, 7);
        assert_eq!(up.data.pool.max_connections, 4);

        // Every option of every `mfg serve <service>` is one of `mfg up`'s.
        let command = Cli::command();
        let longs = |path: &[&str]| -> std::collections::BTreeSet<String> {
            let mut command = &command;
            for name in path {
                command = command.find_subcommand(name).unwrap();
            }
            command
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect()
        };
        let up = longs(&["up"]);
        for service in ["tenant", "storage", "cost", "provisioning", "gateway"] {
            let missing: Vec<_> = longs(&["serve", service])
                .into_iter()
                .filter(|long| !up.contains(long))
                .collect();
            assert!(
                missing.is_empty(),
                "mfg up lacks {missing:?} of mfg serve {service}"
            );
        }
    }

    /// A service listens on its own address flag and reaches the others at theirs, as `mfg up`
    /// places them.
    #[test]
    fn a_service_listens_on_its_own_address_flag() {
        let args = [
            "mfg",
            "serve",
            "storage",
            "--storage-addr",
            "0.0.0.0:7000",
            "--tenant-addr",
            "http://tenant:50051",
            "--database-url",
            "sqlite://x.db",
        ];
        let Command::Serve { service } = Cli::try_parse_from(args).unwrap().command else {
            panic!("not serve");
        };
        let Service::Storage(config) = service else {
            panic!("not storage");
        };
        assert_eq!(config.addrs.storage, "0.0.0.0:7000");
        assert_eq!(config.addrs.tenant, "http://tenant:50051");
        assert!(
            mfg_common::config::PlatformAddrs::listen("http://tenant:50051", "tenant-addr")
                .unwrap_err()
                .contains("--tenant-addr")
        );
    }

    /// Without `--database-url`, a service keeps its data where `mfg up` keeps it: its SQLite
    /// file in the data directory.
    #[test]
    fn a_service_keeps_its_data_where_mfg_up_does() {
        let serve = |args: &[&str]| {
            let Command::Serve { service } = Cli::try_parse_from(args).unwrap().command else {
                panic!("not serve");
            };
            service
        };
        let Service::Tenant(tenant) = serve(&["mfg", "serve", "tenant"]) else {
            panic!("not tenant");
        };
        assert_eq!(tenant.database().url, "sqlite://.mfg/tenant.db");
        let Service::Storage(storage) =
            serve(&["mfg", "serve", "storage", "--data-dir", "/srv/mfg"])
        else {
            panic!("not storage");
        };
        assert_eq!(storage.database().url, "sqlite:///srv/mfg/storage.db");
        let Service::Storage(storage) = serve(&[
            "mfg",
            "serve",
            "storage",
            "--database-url",
            "postgres://db/mfg",
        ]) else {
            panic!("not storage");
        };
        assert_eq!(storage.database().url, "postgres://db/mfg");
    }

    #[test]
    fn unknown_variables_are_found() {
        let vars = [
            "MFG_DATA_DIR",
            "MFG_ALERT_COMIT",
            "MFG_TEST_S3_ENDPOINT",
            "HOME",
            "MFG_LOG",
        ];
        assert_eq!(
            unknown_variables(vars.into_iter().map(str::to_owned)),
            ["MFG_ALERT_COMIT"]
        );
    }
}
