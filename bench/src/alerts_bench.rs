//! `mfg bench alerts`: how fast an alert reaches its subscribers.
//!
//! It starts a tenant service, a storage service and the gateway in this process on the
//! database it is given, creates a tenant, a probe machine with a rule on its `probe` metric
//! (fires above 50, clears at 50 or below), and measures:
//! 1. **idle**: one probe reading at a time, alternately 60 and 40, each raising an event
//!    (opened, then resolved); the time from sending it on `StreamTelemetry` to its event
//!    arriving at a `SubscribeAlerts` subscriber, and at an SSE client of the gateway;
//! 2. **under load**: the same, a probe every `--probe-interval`, while other machines stream
//!    `--load-rate` readings/s (half the maximum `mfg bench ingest` measures) of ten metrics,
//!    each watched by a rule that never fires, so every reading is evaluated;
//! 3. **fan-out**: `--subscribers` gRPC subscribers, and `--fan-out-rate` events a second for
//!    `--duration`; deliveries per second, and the latency of each delivery.

use std::{
    io::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use mfg_common::{config::Secret, grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        self as pb, alert_condition::Kind, alert_service_client::AlertServiceClient,
        subscribe_alerts_request::Message as Inbound,
        subscribe_alerts_response::Message as Outbound,
        telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1 as tpb,
};
use mfg_storage::AlertCommit;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    bench_platform::{BenchPlatform, OPERATOR, channel, micros_now, on_own_runtime, timestamp},
    ingest_bench::{self, IngestBench},
};

/// Options of `mfg bench alerts`.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertsBench {
    /// PostgreSQL (`postgres://…`) for the services; SQLite in a temporary directory when unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// Probe readings measured idle.
    #[arg(long, default_value_t = 500)]
    pub probes: usize,
    /// Readings per second of the background load [default: half of `mfg bench ingest`'s
    /// maximum on the 2-vCPU machine of docs/BENCHMARKS.md: 335000 on PostgreSQL (658–676k
    /// readings/s), 250000 on SQLite (~505k)].
    #[arg(long = "load-rate")]
    pub load_rate: Option<f64>,
    /// How often a probe is sent under load.
    #[arg(long = "probe-interval", default_value = "10ms", value_parser = mfg_common::config::parse_duration)]
    pub probe_interval: Duration,
    /// Worker threads of the probe's runtime; 0: a current-thread runtime (the probe's tasks
    /// and its connections on one thread).
    #[arg(long = "probe-threads", default_value_t = 0)]
    pub probe_threads: usize,
    /// Subscribers of the fan-out phase.
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,
    /// Alert events per second in the fan-out phase.
    #[arg(long = "fan-out-rate", default_value_t = 100)]
    pub fan_out_rate: u32,
    /// When alert events are published (`--alert-commit` of the storage service; PostgreSQL
    /// only): `fast`, once committed, or `durable`, once flushed.
    #[arg(long = "alert-commit", value_enum, default_value_t = AlertCommit::Fast)]
    pub alert_commit: AlertCommit,
    /// Length of the load and fan-out phases.
    #[arg(long, default_value = "10s", value_parser = mfg_common::config::parse_duration)]
    pub duration: Duration,
}

const PROBE: &str = "probe";
const FAN: &str = "fan";
const FAN_MACHINES: usize = 50;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

fn line(name: &str, latency: &Histogram<u64>) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "{name:<44} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} events)",
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.max()),
        latency.len()
    )
}

fn rule(metric: &str, value: f64, clear: Option<f64>) -> pb::AlertRule {
    pb::AlertRule {
        metric: metric.to_owned(),
        severity: pb::Severity::Major.into(),
        condition: Some(pb::AlertCondition {
            kind: Some(Kind::Threshold(pb::ThresholdCondition {
                comparison: pb::Comparison::Greater.into(),
                value,
                for_duration: None,
                clear_value: clear,
            })),
        }),
        ..Default::default()
    }
}

/// A gRPC subscriber of a tenant's events.
async fn subscribe(
    client: &AlertServiceClient<TracedChannel>,
    tenant_id: &str,
) -> anyhow::Result<(
    mpsc::Sender<pb::SubscribeAlertsRequest>,
    tonic::Streaming<pb::SubscribeAlertsResponse>,
)> {
    let (requests, receiver) = mpsc::channel(1);
    requests
        .send(pb::SubscribeAlertsRequest {
            message: Some(Inbound::Subscribe(pb::AlertSubscription {
                tenant_id: tenant_id.to_owned(),
                ..Default::default()
            })),
        })
        .await?;
    let events = client
        .clone()
        .subscribe_alerts(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    Ok((requests, events))
}

/// An SSE client of the gateway: yields the `data` of each event.
struct Sse {
    body: hyper::body::Incoming,
    buffer: String,
}

impl Sse {
    async fn open(
        gateway: std::net::SocketAddr,
        tenant_id: &str,
        token: &str,
    ) -> anyhow::Result<Self> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let request = hyper::Request::get(format!(
            "http://{gateway}/v1/tenants/{tenant_id}/alert-events"
        ))
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())?;
        let response = client.request(request).await?;
        anyhow::ensure!(response.status().is_success(), "SSE: {}", response.status());
        Ok(Self {
            body: response.into_body(),
            buffer: String::new(),
        })
    }

    async fn next(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return Ok(data.to_owned());
                }
                continue;
            }
            let frame = self.body.frame().await.context("the SSE stream ended")??;
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data)?);
            }
        }
    }
}

/// Sends probe readings and times their events at a gRPC subscriber and an SSE client.
struct Probe {
    requests: mpsc::Sender<pb::StreamTelemetryRequest>,
    _acks: tokio::task::JoinHandle<()>,
    events: tonic::Streaming<pb::SubscribeAlertsResponse>,
    _subscription: mpsc::Sender<pb::SubscribeAlertsRequest>,
    sse: Sse,
    sequence: u64,
    base: i64,
}

impl Probe {
    /// One probe: a reading that flips the rule; waits for both events.
    async fn once(&mut self) -> anyhow::Result<(u64, u64)> {
        self.sequence += 1;
        let value = if self.sequence % 2 == 1 { 60.0 } else { 40.0 };
        let ts = self.base + self.sequence as i64 * 1_000;
        let sent = Instant::now();
        self.requests
            .send(pb::StreamTelemetryRequest {
                batch: Some(pb::TelemetryBatch {
                    sequence: self.sequence,
                    machine_id: PROBE.to_owned(),
                    readings: vec![Reading {
                        machine_id: String::new(),
                        metric: PROBE.to_owned(),
                        ts: Some(timestamp(ts)),
                        value,
                    }],
                }),
            })
            .await?;
        let grpc = loop {
            let message = self
                .events
                .next()
                .await
                .context("the subscription ended")??;
            if let Some(Outbound::Event(event)) = message.message
                && event.alert.as_ref().is_some_and(|a| a.machine_id == PROBE)
            {
                break sent.elapsed().as_micros() as u64;
            }
        };
        let sse = loop {
            let data = self.sse.next().await?;
            if data.contains("\"machineId\":\"probe\"") {
                break sent.elapsed().as_micros() as u64;
            }
        };
        Ok((grpc.max(1), sse.max(1)))
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: AlertsBench) -> anyhow::Result<()> {
    let commit = args.alert_commit;
    let load_rate = args.load_rate.unwrap_or(if args.database_url.is_some() {
        335_000.0
    } else {
        250_000.0
    });
    // The fan-out's subscribers all use one key of one tenant, and so do the probes.
    let subscribers = args.subscribers + 16;
    let platform = BenchPlatform::start_with(args.database_url.as_deref(), move |mut config| {
        config.options.alert_commit = commit;
        config.with_alert_subscribers(subscribers, subscribers)
    })
    .await?;
    let shutdown = CancellationToken::new();
    let gateway = start_gateway(&platform, &shutdown).await?;
    let load_machines = 16;
    let machines = std::iter::once(PROBE.to_owned())
        .chain((0..load_machines).map(|m| format!("m{m}")))
        .chain((0..FAN_MACHINES).map(|m| format!("fan-{m}")));
    let tenant = platform
        .tenant(
            machines,
            &[tpb::Scope::Write, tpb::Scope::Read, tpb::Scope::Admin],
        )
        .await?;
    let alerts = AlertServiceClient::new(channel(platform.storage_addr, &tenant.key)?);
    let create = |rule: pb::AlertRule| {
        let mut alerts = alerts.clone();
        let tenant_id = tenant.id.clone();
        async move {
            alerts
                .create_alert_rule(pb::CreateAlertRuleRequest {
                    tenant_id,
                    rule: Some(rule),
                    ..Default::default()
                })
                .await
        }
    };
    create(rule(PROBE, 50.0, None)).await?;
    create(rule(FAN, 0.0, None)).await?;
    // The load's ten metrics are watched too, by rules that never fire.
    for metric in 0..10 {
        create(rule(&format!("metric-{metric}"), 1e12, None)).await?;
    }

    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg bench alerts: {}{}, {} idle probes, load {:.0} readings/s, {} subscribers at {} events/s, {} s phases",
        platform.backend,
        match (args.database_url.is_some(), commit) {
            (false, _) => "",
            (true, AlertCommit::Fast) => " (alert commit: fast)",
            (true, AlertCommit::Durable) => " (alert commit: durable)",
        },
        args.probes,
        load_rate,
        args.subscribers,
        args.fan_out_rate,
        args.duration.as_secs()
    )?;

    // The probe and the load are clients on other machines: each runs on its own runtime.
    let (idle_tx, idle_rx) = tokio::sync::oneshot::channel();
    let (load_started, load_started_rx) = tokio::sync::oneshot::channel::<Instant>();
    let probes = {
        let (storage, tenant_id, key) =
            (platform.storage_addr, tenant.id.clone(), tenant.key.clone());
        let (count, duration, interval) = (args.probes, args.duration, args.probe_interval);
        on_own_runtime("bench-probe", args.probe_threads, move || async move {
            let mut probe = start_probe(storage, &tenant_id, &key, gateway).await?;
            // Warm up: connections, caches, the first series.
            for _ in 0..20 {
                probe.once().await?;
            }
            let (mut idle_grpc, mut idle_sse) = (histogram(), histogram());
            for _ in 0..count {
                let (grpc, sse) = probe.once().await?;
                idle_grpc.record(grpc)?;
                idle_sse.record(sse)?;
            }
            let _ = idle_tx.send((idle_grpc, idle_sse));
            // Under load: a probe every `interval` while the load streams.
            let started = load_started_rx.await?;
            let (mut busy_grpc, mut busy_sse) = (histogram(), histogram());
            let deadline = started + duration;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                tokio::time::sleep_until(next.into()).await;
                next = (next + interval).max(Instant::now());
                let (grpc, sse) = probe.once().await?;
                busy_grpc.record(grpc)?;
                busy_sse.record(sse)?;
            }
            Ok((busy_grpc, busy_sse))
        })
    };
    let probes = tokio::spawn(probes);
    let Ok((idle_grpc, idle_sse)) = idle_rx.await else {
        probes.await??;
        anyhow::bail!("the probe stopped before its idle phase ended");
    };
    writeln!(out, "{}", line("idle: SubscribeAlerts", &idle_grpc))?;
    writeln!(out, "{}", line("idle: SSE at the gateway", &idle_sse))?;

    let load_args = IngestBench {
        database_url: None,
        streams: load_machines,
        batch: 1_000,
        metrics: 10,
        window: 4,
        duration: args.duration,
        paced_duration: args.duration,
        rate: Some(load_rate),
        slow_acks: None,
        metering_ab: None,
    };
    let (storage, key) = (platform.storage_addr, tenant.key.clone());
    let load = tokio::spawn(on_own_runtime("bench-load", 2, move || async move {
        let telemetry = TelemetryServiceClient::new(channel(storage, &key)?);
        let clock = Arc::new(ingest_bench::Timeline::new(0));
        let rate = load_args.rate;
        ingest_bench::load(&telemetry, &load_args, clock, rate, load_args.duration).await
    }));
    let _ = load_started.send(Instant::now());
    let (busy_grpc, busy_sse) = probes.await??;
    let phase = load.await??;
    writeln!(
        out,
        "{}",
        line(
            &format!(
                "under load ({:.0} readings/s): SubscribeAlerts",
                phase.rate()
            ),
            &busy_grpc
        )
    )?;
    writeln!(out, "{}", line("under load: SSE at the gateway", &busy_sse))?;

    fan_out(&platform, &tenant.id, &tenant.key, &args, &mut out).await?;
    shutdown.cancel();
    platform.stop().await
}

async fn start_gateway(
    platform: &BenchPlatform,
    shutdown: &CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let dir = std::env::temp_dir();
    let mut config = mfg_gateway::Config::new(
        &dir,
        &platform.tenant_addr.to_string(),
        &platform.storage_addr.to_string(),
        "127.0.0.1:9",
        "127.0.0.1:9",
    );
    config.operator.admin_token = Some(Secret::new(OPERATOR.to_owned()));
    tokio::spawn(mfg_gateway::run(config, listener, shutdown.clone()));
    Ok(addr)
}

async fn start_probe(
    storage: std::net::SocketAddr,
    tenant_id: &str,
    key: &str,
    gateway: std::net::SocketAddr,
) -> anyhow::Result<Probe> {
    let alerts = AlertServiceClient::new(channel(storage, key)?);
    let (subscription, events) = subscribe(&alerts, tenant_id).await?;
    let mut sse = None;
    for _ in 0..50 {
        match Sse::open(gateway, tenant_id, key).await {
            Ok(opened) => {
                sse = Some(opened);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let sse = sse.context("the gateway did not start")?;
    let (requests, receiver) = mpsc::channel(4);
    let mut acks = TelemetryServiceClient::new(channel(storage, key)?)
        .stream_telemetry(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    let acks = tokio::spawn(async move { while let Some(Ok(_)) = acks.next().await {} });
    Ok(Probe {
        requests,
        _acks: acks,
        events,
        _subscription: subscription,
        sse,
        sequence: 0,
        base: micros_now() - 3_000_000_000,
    })
}

/// `subscribers` gRPC subscribers over 10 connections; readings of the fan machines, each
/// firing, at `fan_out_rate` a second; every delivery timed from its reading's send.
async fn fan_out(
    platform: &BenchPlatform,
    tenant_id: &str,
    key: &str,
    args: &AlertsBench,
    out: &mut std::io::Stdout,
) -> anyhow::Result<()> {
    let connections: Vec<AlertServiceClient<TracedChannel>> = (0..10)
        .map(|_| {
            Ok(AlertServiceClient::new(channel(
                platform.storage_addr,
                key,
            )?))
        })
        .collect::<anyhow::Result<_>>()?;
    let events = (u64::from(args.fan_out_rate) * args.duration.as_secs()).max(1);
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; events as usize + 1]));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for s in 0..args.subscribers {
        let (guard, mut stream) = subscribe(&connections[s % connections.len()], tenant_id).await?;
        let sent_at = sent_at.clone();
        let delivered = delivered.clone();
        tasks.push(tokio::spawn(async move {
            let _guard = guard;
            let mut latency = histogram();
            let mut lagged = 0u64;
            while let Some(message) = stream.next().await {
                match message?.message {
                    Some(Outbound::Event(event)) => {
                        let Some(alert) = event.alert else { continue };
                        if !alert.metric.eq(FAN) {
                            continue;
                        }
                        delivered.fetch_add(1, Ordering::Relaxed);
                        let index = alert.last_value as usize;
                        let at = sent_at.lock().expect("lock").get(index).copied().flatten();
                        if let Some(at) = at {
                            latency.record((at.elapsed().as_micros() as u64).max(1))?;
                        }
                        if index as u64 >= events {
                            break;
                        }
                    }
                    Some(Outbound::Lagged(_)) => lagged += 1,
                    None => {}
                }
            }
            anyhow::Ok((latency, lagged))
        }));
    }
    // Readings of value 1, 2, … round-robin over the fan machines, each firing (an event).
    let mut client = platform.telemetry(key)?;
    let base = micros_now() - 2_000_000_000;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.fan_out_rate));
    let started = Instant::now();
    let mut next = started;
    for index in 1..=events {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        sent_at.lock().expect("lock")[index as usize] = Some(Instant::now());
        client
            .ingest_batch(pb::IngestBatchRequest {
                tenant_id: tenant_id.to_owned(),
                readings: vec![Reading {
                    machine_id: format!("fan-{}", index as usize % FAN_MACHINES),
                    metric: FAN.to_owned(),
                    ts: Some(timestamp(base + index as i64 * 1_000)),
                    value: index as f64,
                }],
            })
            .await?;
    }
    let mut latency = histogram();
    let mut lagged = 0;
    for task in tasks {
        let (one, lags) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .context("a subscriber did not receive the last event within 120 s")???;
        latency.add(one)?;
        lagged += lags;
    }
    let elapsed = started.elapsed();
    let delivered = delivered.load(Ordering::Relaxed);
    writeln!(
        out,
        "{}",
        line(
            &format!(
                "fan-out: {} deliveries/s to {} subscribers",
                (delivered as f64 / elapsed.as_secs_f64()).round(),
                args.subscribers
            ),
            &latency
        )
    )?;
    writeln!(
        out,
        "{:<44} {delivered} deliveries of {events} events in {:.1} s, {lagged} lagged",
        "",
        elapsed.as_secs_f64()
    )?;
    Ok(())
}
