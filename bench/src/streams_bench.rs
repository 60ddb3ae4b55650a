//! `mfg bench streams`: what an idle machine stream costs the storage service. It runs the
//! storage service as its own process (`mfg serve storage`, so its memory is only its own),
//! opens `--streams` `StreamTelemetry` streams over `--connections` HTTP/2 connections, has each
//! send one batch and wait for its ack, then holds them all open and idle, and reports the
//! growth of the process's resident memory per stream.

use std::{
    io::Write as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use mfg_common::shutdown::CancellationToken;
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        StreamTelemetryRequest, StreamTelemetryResponse, TelemetryBatch,
        telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1 as tpb,
};
use pbjson_types::Timestamp;
use tokio::sync::mpsc;

use crate::bench_platform::{
    OPERATOR, channel, create_tenant, database_urls, start_tenant_service,
};

/// Options of `mfg bench streams`.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamsBench {
    /// PostgreSQL (`postgres://…`) for both services; SQLite in a temporary directory when unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// Streams to hold open.
    #[arg(long, default_value_t = 10_000)]
    pub streams: usize,
    /// HTTP/2 connections to spread them over (one per stream, as machines connect, by
    /// default; fewer, as plant-floor collectors multiplex).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Open only the connections (one health check on each) and no streams: what an idle
    /// HTTP/2 connection costs by itself.
    #[arg(long = "connections-only")]
    pub connections_only: bool,
    /// How long to hold them idle before measuring.
    #[arg(long, default_value = "3s", value_parser = mfg_common::config::parse_duration)]
    pub hold: Duration,
}

/// The storage service's process; killed when dropped.
struct Storage(Child);

impl Drop for Storage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Storage {
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .context("reading /proc/<pid>/status (Linux only)")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

type Held = (
    mpsc::Sender<StreamTelemetryRequest>,
    tonic::Streaming<StreamTelemetryResponse>,
);

/// Runs the benchmark and prints its figures.
pub async fn run(args: StreamsBench) -> anyhow::Result<()> {
    let connections = args
        .connections
        .unwrap_or(args.streams)
        .clamp(1, args.streams);
    let dir = tempfile::tempdir()?;
    let (tenant_url, storage_url) = database_urls(args.database_url.as_deref(), dir.path());
    let shutdown = CancellationToken::new();
    let (tenant_addr, tenant_task) = start_tenant_service(&tenant_url, &shutdown).await?;
    let key = create_tenant(tenant_addr, ["m0".to_owned()], &[tpb::Scope::Write])
        .await?
        .key;

    let storage_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    // The storage service runs as `mfg serve storage`, from the `mfg` built next to this binary.
    let mfg =
        std::env::current_exe()?.with_file_name(format!("mfg{}", std::env::consts::EXE_SUFFIX));
    let storage = Storage(
        Command::new(&mfg)
            .args(["serve", "storage", "--tiering-interval", "0s"])
            .arg("--storage-addr")
            .arg(storage_addr.to_string())
            .arg("--database-url")
            .arg(&storage_url)
            .arg("--tenant-addr")
            .arg(tenant_addr.to_string())
            // Every connection comes from 127.0.0.1: one peer, as many connections as machines.
            .arg("--max-connections-per-peer")
            .arg((connections + 16).to_string())
            .arg("--archive-dir")
            .arg(dir.path().join("archive"))
            .env("MFG_ADMIN_TOKEN", OPERATOR)
            .env("MFG_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} serve storage", mfg.display()))?,
    );
    mfg_common::grpc::wait_for_health(
        storage_addr,
        mfg_proto::service_names::TELEMETRY,
        tonic_health::ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await
    .map_err(anyhow::Error::msg)?;

    let channels = (0..connections)
        .map(|_| channel(storage_addr, &key))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let clients: Vec<_> = channels
        .iter()
        .map(|channel| TelemetryServiceClient::new(channel.clone()))
        .collect();
    let base = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64 - 600_000_000;

    // Warm up: the key cache, the series cache, the pools, one of each allocation.
    let warm = open(&clients, 0, 200.min(args.streams), base).await?;
    drop(warm);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = storage.rss_kib()?;

    let started = Instant::now();
    if args.connections_only {
        let warmed = 200.min(args.streams);
        futures::stream::iter(&channels[warmed.min(channels.len())..])
            .map(|channel| {
                let mut health =
                    tonic_health::pb::health_client::HealthClient::new(channel.clone());
                async move {
                    health
                        .check(tonic_health::pb::HealthCheckRequest {
                            service: mfg_proto::service_names::TELEMETRY.to_owned(),
                        })
                        .await
                }
            })
            .buffer_unordered(256)
            .try_collect::<Vec<_>>()
            .await?;
        let opened = started.elapsed();
        tokio::time::sleep(args.hold).await;
        let after = storage.rss_kib()?;
        let count = channels.len().saturating_sub(warmed).max(1);
        writeln!(
            std::io::stdout(),
            "mfg bench streams --connections-only: {count} idle connections opened in {:.1} s; RSS {:.1} → {:.1} MiB: {:.1} KB per idle connection",
            opened.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 * 1.024 / count as f64
        )?;
        drop(storage);
        shutdown.cancel();
        tenant_task.await??;
        return Ok(());
    }
    let held = open(&clients, 1_000, args.streams, base).await?;
    let opened = started.elapsed();
    tokio::time::sleep(args.hold).await;
    let after = storage.rss_kib()?;
    let per_stream = (after.saturating_sub(before)) as f64 * 1024.0 / args.streams as f64;

    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg bench streams: {} streams over {} connections held by one storage process ({})",
        args.streams,
        connections,
        if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    )?;
    writeln!(
        out,
        "  opened and acked in {:.1} s; RSS {:.1} MiB before, {:.1} MiB with them idle: {:.1} KB per idle stream",
        opened.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        per_stream / 1000.0
    )?;
    drop(held);
    drop(storage);
    shutdown.cancel();
    tenant_task.await??;
    Ok(())
}

/// Opens `count` streams round-robin over `clients`; each sends one batch of one reading and
/// waits for its ack. Returns them open.
async fn open(
    clients: &[TelemetryServiceClient<mfg_common::grpc::TracedChannel>],
    offset: usize,
    count: usize,
    base: i64,
) -> anyhow::Result<Vec<Held>> {
    futures::stream::iter(0..count)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            async move {
                let (requests, receiver) = mpsc::channel(1);
                let micros = base + ((offset + i) as i64) * 1_000;
                requests
                    .send(StreamTelemetryRequest {
                        batch: Some(TelemetryBatch {
                            sequence: 1,
                            machine_id: "m0".to_owned(),
                            readings: vec![Reading {
                                machine_id: String::new(),
                                metric: "idle".to_owned(),
                                ts: Some(Timestamp {
                                    seconds: micros.div_euclid(1_000_000),
                                    nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
                                }),
                                value: 1.0,
                            }],
                        }),
                    })
                    .await?;
                let mut acks = client
                    .stream_telemetry(tokio_stream::wrappers::ReceiverStream::new(receiver))
                    .await?
                    .into_inner();
                let ack = acks.message().await?.context("no ack")?;
                anyhow::ensure!(
                    ack.ack.is_some_and(|a| a.accepted == 1),
                    "the reading was not stored"
                );
                anyhow::Ok((requests, acks))
            }
        })
        .buffer_unordered(256)
        .try_collect()
        .await
}
