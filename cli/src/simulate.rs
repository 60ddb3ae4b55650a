//! `mfg simulate` and the demo of `mfg up --demo`: machines streaming realistic telemetry over
//! `StreamTelemetry`.
//!
//! Each machine is a task with its own [`Uplink`] (one stream per machine, as real machines
//! connect). Its metrics follow a profile (spindle speed, temperatures, vibration, power, part
//! count, …): a daily-ish wave, slow drift over a shift, noise, rare spikes, counters that only
//! grow, and outages during which the machine sends nothing. Sample timestamps are exact
//! multiples of the sampling period, so a restarted simulator never overwrites what it sent.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use mfg_common::{
    grpc::{TracedChannel, lazy_channel},
    shutdown::CancellationToken,
};
use mfg_proto::{
    storage::v1::telemetry_service_client::TelemetryServiceClient,
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use tokio::task::JoinSet;
use tonic::Code;

use mfg_uplink::{Uplink, UplinkOptions, UplinkStats};

mod machine;

use machine::Machine;
pub use machine::metric_names;

/// Options of `mfg simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Where the platform is: the simulated tenants, machines and keys are created through
    /// the tenant service, and readings streamed to the storage service.
    #[command(flatten)]
    pub addrs: mfg_common::config::PlatformAddrs,
    /// The operator token; read from `<data-dir>/admin-token` when unset.
    #[command(flatten)]
    pub operator: mfg_common::config::OperatorArgs,
    /// The data directory of `mfg up`, where its generated operator token is.
    #[command(flatten)]
    pub data_dir: mfg_common::config::DataDir,
    /// Tenants, named `<prefix>-1` … (created if missing, reused if present).
    #[arg(long, default_value_t = 3)]
    pub tenants: usize,
    /// Machines per tenant.
    #[arg(long, default_value_t = 15)]
    pub machines: usize,
    /// Metrics per machine.
    #[arg(long, default_value_t = 20)]
    pub metrics: usize,
    /// Samples per second of each metric.
    #[arg(long, default_value_t = 1.0)]
    pub hz: f64,
    /// How often a machine sends what it sampled (at least once per sample at low rates).
    #[arg(long = "flush-every", default_value = "100ms", value_parser = mfg_common::config::parse_duration)]
    pub flush_every: Duration,
    /// Stop after this long; runs until Ctrl-C when unset.
    #[arg(long, value_parser = mfg_common::config::parse_duration)]
    pub duration: Option<Duration>,
    /// The prefix of the tenants' names.
    #[arg(long = "tenant-prefix", default_value = "sim")]
    pub tenant_prefix: String,
    /// Batches in flight per machine stream.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The tenants' names.
    pub tenants: Vec<String>,
    /// Machines per tenant.
    pub machines: usize,
    /// Metrics per machine.
    pub metrics: usize,
    /// Samples per second of each metric.
    pub hz: f64,
    /// How often a machine sends what it sampled.
    pub flush_every: Duration,
    /// Batches in flight per machine stream.
    pub window: usize,
    /// The first machine of the first tenant overheats for a while soon after the start, so
    /// that an alert opens and resolves within the first minute (the demo).
    pub overheat_first_machine: bool,
}

impl Scenario {
    /// The brief's production: 3 tenants with 15 machines each, 20 metrics at 1 Hz.
    pub fn demo() -> Self {
        Self {
            tenants: ["acme-presses", "borealis-plastics", "cascade-cnc"]
                .map(String::from)
                .to_vec(),
            machines: 15,
            metrics: 20,
            hz: 1.0,
            flush_every: Duration::from_millis(100),
            window: 8,
            overheat_first_machine: true,
        }
    }

    /// Readings per second, all machines together.
    pub fn rate(&self) -> f64 {
        (self.tenants.len() * self.machines * self.metrics) as f64 * self.hz
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.tenants.is_empty(), "--tenants must be at least 1");
        anyhow::ensure!(self.machines > 0, "--machines must be at least 1");
        anyhow::ensure!(self.metrics > 0, "--metrics must be at least 1");
        anyhow::ensure!(
            self.hz.is_finite() && self.hz > 0.0 && self.hz <= 1_000.0,
            "--hz must be in (0, 1000]"
        );
        anyhow::ensure!(self.window > 0, "--window must be at least 1");
        Ok(())
    }
}

/// A tenant ready to stream: its id, a key of write scope and its machines.
#[derive(Debug, Clone)]
pub struct SimTenant {
    /// The tenant's name.
    pub name: String,
    /// The tenant's id.
    pub id: String,
    /// An API key of write scope, created for this run.
    pub key: String,
    /// Its key's id, to revoke it afterwards.
    pub key_id: String,
    /// Its machines' ids.
    pub machines: Vec<String>,
}

/// How long a new tenant's onboarding may take before the simulation gives up on it.
const ONBOARDING: Duration = Duration::from_secs(30);

/// Waits until the provisioning service has onboarded `tenant` (at once when the tenant service
/// hands nothing to it): its readings are refused until then.
async fn wait_until_onboarded(
    tenants: &mut TenantServiceClient<TracedChannel>,
    tenant: &tpb::Tenant,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + ONBOARDING;
    let mut state = tenant.state();
    while state == tpb::TenantState::Provisioning {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "tenant {} is still provisioning after {ONBOARDING:?}",
            tenant.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let found = tenants
            .get_tenant(tpb::GetTenantRequest {
                tenant_id: tenant.id.clone(),
            })
            .await
            .with_context(|| format!("cannot read tenant {}", tenant.name))?
            .into_inner()
            .tenant
            .context("no tenant")?;
        anyhow::ensure!(
            found.state() != tpb::TenantState::ProvisioningFailed,
            "the onboarding of tenant {} failed: {}",
            tenant.name,
            found.provisioning_error
        );
        state = found.state();
    }
    Ok(())
}

/// Creates (or finds) the scenario's tenants and machines, and a write key per tenant.
pub async fn prepare(
    tenants: &mut TenantServiceClient<TracedChannel>,
    scenario: &Scenario,
) -> anyhow::Result<Vec<SimTenant>> {
    let mut prepared = Vec::new();
    let per_tenant = scenario.machines as f64 * scenario.metrics as f64 * scenario.hz;
    for name in &scenario.tenants {
        let created = tenants
            .create_tenant(tpb::CreateTenantRequest {
                tenant: Some(tpb::Tenant {
                    name: name.clone(),
                    display_name: format!("{name} (simulated)"),
                    plan: tpb::Plan::Shared.into(),
                    limits: Some(tpb::Limits {
                        max_machines: scenario.machines.max(100) as u32,
                        ingest_readings_per_second: (per_tenant * 2.0).max(10_000.0) as u32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            })
            .await;
        let tenant = match created {
            Ok(response) => response.into_inner().tenant.context("no tenant")?,
            Err(status) if status.code() == Code::AlreadyExists => find_tenant(tenants, name)
                .await?
                .with_context(|| format!("tenant {name} exists but is not listed"))?,
            Err(status) => {
                return Err(status).with_context(|| format!("cannot create tenant {name}"));
            }
        };
        wait_until_onboarded(tenants, &tenant).await?;
        let mut machines = Vec::with_capacity(scenario.machines);
        for m in 0..scenario.machines {
            let machine_id = machine_name(m);
            let created = tenants
                .create_machine(tpb::CreateMachineRequest {
                    tenant_id: tenant.id.clone(),
                    machine: Some(tpb::Machine {
                        machine_id: machine_id.clone(),
                        display_name: format!("{machine_id} of {name}"),
                        ..Default::default()
                    }),
                })
                .await;
            match created {
                Ok(_) => {}
                Err(status) if status.code() == Code::AlreadyExists => {}
                Err(status) => {
                    return Err(status)
                        .with_context(|| format!("cannot register {machine_id} of {name}"));
                }
            }
            machines.push(machine_id);
        }
        let key = tenants
            .create_api_key(tpb::CreateApiKeyRequest {
                tenant_id: tenant.id.clone(),
                display_name: "mfg simulate".to_owned(),
                scopes: vec![tpb::Scope::Write.into()],
            })
            .await
            .with_context(|| format!("cannot create a key for {name}"))?
            .into_inner();
        prepared.push(SimTenant {
            name: name.clone(),
            id: tenant.id,
            key: key.secret,
            key_id: key.api_key.map(|k| k.key_id).unwrap_or_default(),
            machines,
        });
    }
    Ok(prepared)
}

async fn find_tenant(
    tenants: &mut TenantServiceClient<TracedChannel>,
    name: &str,
) -> anyhow::Result<Option<tpb::Tenant>> {
    let mut page_token = String::new();
    loop {
        let page = tenants
            .list_tenants(tpb::ListTenantsRequest {
                page_size: 1_000,
                page_token,
                show_deleted: false,
            })
            .await?
            .into_inner();
        if let Some(tenant) = page.tenants.into_iter().find(|t| t.name == name) {
            return Ok(Some(tenant));
        }
        if page.next_page_token.is_empty() {
            return Ok(None);
        }
        page_token = page.next_page_token;
    }
}

/// Machines named by kind and number: `press-01`, `cnc-02`, `moulder-03`, `conveyor-04`, ….
pub fn machine_name(index: usize) -> String {
    const KINDS: [&str; 4] = ["press", "cnc", "moulder", "conveyor"];
    format!("{}-{:02}", KINDS[index % KINDS.len()], index + 1)
}

/// Streams every machine of `tenants` until `stop` is cancelled, then waits (at most `drain`)
/// for the acks of what was sent.
pub async fn stream(
    storage_addr: &str,
    tenants: &[SimTenant],
    scenario: &Scenario,
    stats: Arc<UplinkStats>,
    stop: CancellationToken,
    drain: Duration,
) -> anyhow::Result<()> {
    let channel = lazy_channel(&format!("http://{storage_addr}"))?;
    let abort = CancellationToken::new();
    let mut machines = JoinSet::new();
    let mut seed = 0u64;
    for tenant in tenants {
        let client = TelemetryServiceClient::new(channel.clone().with_bearer(&tenant.key)?);
        for machine_id in &tenant.machines {
            seed += 1;
            let uplink = Uplink::start(
                client.clone(),
                UplinkOptions {
                    window: scenario.window,
                    ..UplinkOptions::default()
                },
                stats.clone(),
                abort.clone(),
            );
            let mut machine = Machine::new(machine_id.clone(), scenario, seed);
            if seed == 1 && scenario.overheat_first_machine {
                // From 2 s to 40 s from now: the temperature rule fires, then clears.
                let now = machine::micros_now();
                machine.overheat(now + 2_000_000, now + 40_000_000);
            }
            machines.spawn(machine.run(uplink, scenario.clone(), stop.clone()));
        }
    }
    // The drain deadline starts when `stop` is cancelled; until then the machines stream.
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(drain).await;
    };
    tokio::pin!(deadline);
    let mut first_error = None;
    loop {
        tokio::select! {
            joined = machines.join_next() => {
                let Some(joined) = joined else { break };
                let outcome = joined
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r.map_err(anyhow::Error::from));
                if let Err(error) = outcome
                    && first_error.is_none()
                {
                    // One machine refused for good (a revoked key, a suspended tenant): say
                    // so, and stop the rest.
                    stop.cancel();
                    first_error = Some(error);
                }
            }
            () = &mut deadline => {
                abort.cancel();
                anyhow::bail!(
                    "{} readings were still unacked {} s after stopping",
                    stats.sent.load(Ordering::Relaxed).saturating_sub(stats.acked()),
                    drain.as_secs()
                );
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Prints a progress line every `every` until `stop`: readings/s, sent, acked, unacked, p99 ack
/// latency of the interval, reconnects. With `live`, rewrites one line (for a terminal).
pub async fn progress(
    stats: Arc<UplinkStats>,
    every: Duration,
    prefix: &str,
    live: bool,
    stop: CancellationToken,
) {
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => break,
        }
        let acked = stats.acked();
        let now = Instant::now();
        let rate = (acked - last.1) as f64 / (now - last.0).as_secs_f64();
        last = (now, acked);
        let recent = stats.take_recent();
        let line = format!(
            "{prefix}[{:>5}s] {:>9.0} readings/s · sent {} · acked {} (dup {}, rejected {}) · unacked {} · ack p99 {:.1} ms · reconnects {}",
            start.elapsed().as_secs(),
            rate,
            stats.sent.load(Ordering::Relaxed),
            acked,
            stats.duplicates.load(Ordering::Relaxed),
            stats.rejected.load(Ordering::Relaxed),
            stats.sent.load(Ordering::Relaxed).saturating_sub(acked),
            recent.value_at_quantile(0.99) as f64 / 1_000.0,
            stats.reconnects.load(Ordering::Relaxed),
        );
        let mut out = std::io::stdout().lock();
        let _ = if live {
            write!(out, "\r\x1b[2K{line}")
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    }
    if live {
        let _ = writeln!(std::io::stdout());
    }
}

/// Runs `mfg simulate`.
pub fn run(args: SimulateArgs, shutdown: CancellationToken) -> mfg_common::startup::Running {
    Box::pin(serve(args, shutdown))
}

async fn serve(args: SimulateArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let scenario = Scenario {
        tenants: (1..=args.tenants)
            .map(|i| format!("{}-{i}", args.tenant_prefix))
            .collect(),
        machines: args.machines,
        metrics: args.metrics,
        hz: args.hz,
        flush_every: args.flush_every,
        window: args.window,
        overheat_first_machine: false,
    };
    scenario.validate()?;
    let token = match &args.operator.admin_token {
        Some(token) => token.expose().to_owned(),
        None => {
            let path = args.data_dir.path.join("admin-token");
            std::fs::read_to_string(&path)
                .with_context(|| {
                    format!(
                        "no --admin-token or MFG_ADMIN_TOKEN, and cannot read {}",
                        path.display()
                    )
                })?
                .trim()
                .to_owned()
        }
    };
    let mut tenants = TenantServiceClient::new(
        lazy_channel(&format!("http://{}", args.addrs.tenant))?.with_bearer(&token)?,
    );
    let prepared = prepare(&mut tenants, &scenario)
        .await
        .context("cannot prepare the simulated tenants")?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg simulate: {} tenants × {} machines × {} metrics at {} Hz = {:.0} readings/s to {}",
        scenario.tenants.len(),
        scenario.machines,
        scenario.metrics,
        scenario.hz,
        scenario.rate(),
        args.addrs.storage
    )?;
    for tenant in &prepared {
        writeln!(out, "  {} {}", tenant.id, tenant.name)?;
    }

    let stop = shutdown.child_token();
    if let Some(duration) = args.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.cancel();
        });
    }
    let stats = Arc::new(UplinkStats::default());
    let printer = tokio::spawn(progress(
        stats.clone(),
        Duration::from_secs(1),
        "",
        std::io::stdout().is_terminal(),
        stop.clone(),
    ));
    let streamed = stream(
        &args.addrs.storage,
        &prepared,
        &scenario,
        stats.clone(),
        stop.clone(),
        Duration::from_secs(30),
    )
    .await;
    stop.cancel();
    let _ = printer.await;
    for tenant in &prepared {
        let _ = tenants
            .revoke_api_key(tpb::RevokeApiKeyRequest {
                tenant_id: tenant.id.clone(),
                key_id: tenant.key_id.clone(),
            })
            .await;
    }
    let total = stats.total_latency();
    writeln!(
        std::io::stdout(),
        "sent {} readings, acked {} (stored {}, duplicates {}, rejected {}); ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} reconnects, {} batches resent",
        stats.sent.load(Ordering::Relaxed),
        stats.acked(),
        stats.accepted.load(Ordering::Relaxed),
        stats.duplicates.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
        total.value_at_quantile(0.5) as f64 / 1_000.0,
        total.value_at_quantile(0.99) as f64 / 1_000.0,
        total.max() as f64 / 1_000.0,
        stats.reconnects.load(Ordering::Relaxed),
        stats.resent.load(Ordering::Relaxed),
    )?;
    streamed
}
