//! `mfg bench query`: the latency of queries a dashboard makes. It loads a 30-day, 1 Hz series
//! (and 19 more metrics of the same machine) into an in-process storage service, runs the
//! rollup job as an operator would, analyzes the database as autovacuum would, then measures one query at a time over gRPC:
//! - `GetLatestValues` of the machine's 20 metrics;
//! - the 30-day series downsampled to about 500 buckets, at a step of whole minutes (served by
//!   the warm tier) and at exactly a 500th of the range (whole minutes from the warm tier, the
//!   minutes a bucket boundary splits from raw readings);
//! - the same range in hour buckets.

use std::{io::Write as _, time::Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        Aggregation, GetLatestValuesRequest, QueryTelemetryRequest, StreamTelemetryRequest,
        TelemetryBatch, TieringJobState,
    },
    tenant::v1 as tpb,
};

use crate::bench_platform::{BenchPlatform, BenchTenant, OPERATOR, micros_now, timestamp};

/// Options of `mfg bench query`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryBench {
    /// PostgreSQL (`postgres://…`) for both services; SQLite in a temporary directory when unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// Days of 1 Hz readings in the long series (at most the hot retention, 30).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// How many times each query is measured.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
}

const MACHINE: &str = "press-01";
const SERIES: &str = "temperature_c";

fn reading(metric: &str, micros: i64, value: f64) -> Reading {
    Reading {
        machine_id: String::new(),
        metric: metric.to_owned(),
        ts: Some(timestamp(micros)),
        value,
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: QueryBench) -> anyhow::Result<()> {
    anyhow::ensure!((1..=30).contains(&args.days), "--days must be in 1..=30");
    if let Some(url) = &args.database_url {
        crate::bench_platform::ensure_empty(url).await?;
    }
    let platform = BenchPlatform::start(args.database_url.as_deref()).await?;
    let tenant = platform
        .tenant([MACHINE.to_owned()], &[tpb::Scope::Write])
        .await?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg bench query: {}, a {}-day 1 Hz series and 19 more metrics of one machine, {} requests per query, one at a time",
        platform.backend, args.days, args.requests
    )?;

    // The long series ends a minute ago, at a whole second; it starts `days` days before, less
    // ten minutes, inside the hot retention.
    let end = (micros_now() - 60_000_000) / 1_000_000 * 1_000_000;
    let start = end - i64::from(args.days) * 86_400_000_000 + 600_000_000;
    let loaded = Instant::now();
    let readings = load(&platform, &tenant, start, end).await?;
    let load_time = loaded.elapsed();
    writeln!(
        out,
        "{:<44} {readings} readings in {:.1} s ({:.0} readings/s)",
        "loaded over StreamTelemetry",
        load_time.as_secs_f64(),
        readings as f64 / load_time.as_secs_f64()
    )?;

    let mut operator = platform.telemetry(OPERATOR)?;
    let rolled = Instant::now();
    let job = operator.run_tiering_job(None).await?;
    anyhow::ensure!(
        job.state() == TieringJobState::Succeeded,
        "the tiering job failed: {:?}",
        job.failures
    );
    writeln!(
        out,
        "{:<44} {} buckets in {:.1} s",
        "rollup (a tiering job)",
        job.report.unwrap_or_default().rollup_buckets_written,
        rolled.elapsed().as_secs_f64()
    )?;

    if let Some(url) = &args.database_url {
        let analyzed = Instant::now();
        crate::bench_platform::analyze(url).await?;
        writeln!(
            out,
            "{:<44} {:.1} s",
            "VACUUM ANALYZE (as autovacuum would)",
            analyzed.elapsed().as_secs_f64()
        )?;
    }

    let latest = {
        let request = GetLatestValuesRequest {
            tenant_id: tenant.id.clone(),
            machine_id: MACHINE.to_owned(),
        };
        let answer = operator
            .get_latest_values(request.clone())
            .await?
            .into_inner();
        anyhow::ensure!(
            answer.values.len() == 20,
            "expected 20 latest values, got {}",
            answer.values.len()
        );
        measure(args.requests * 10, || {
            let mut client = operator.clone();
            let request = request.clone();
            async move {
                client.get_latest_values(request).await?;
                Ok(())
            }
        })
        .await?
    };
    writeln!(out, "{}", line("latest values (20 metrics)", &latest))?;

    let range = |step_seconds: i64| QueryTelemetryRequest {
        tenant_id: tenant.id.clone(),
        machine_id: MACHINE.to_owned(),
        metric: SERIES.to_owned(),
        start: Some(timestamp(start)),
        end: Some(timestamp(end)),
        step: Some(pbjson_types::Duration {
            seconds: step_seconds,
            nanos: 0,
        }),
        aggregation: Aggregation::Avg.into(),
    };
    let seconds = (end - start) / 1_000_000;
    let minutes_step = (seconds / 500 + 59) / 60 * 60;
    for (name, step, requests) in [
        (
            format!("{} days, step {} min (warm)", args.days, minutes_step / 60),
            minutes_step,
            args.requests,
        ),
        (
            format!(
                "{} days, step {} s (warm, split minutes raw)",
                args.days,
                seconds / 500
            ),
            seconds / 500,
            args.requests,
        ),
        (
            format!("{} days, step 1 h (warm)", args.days),
            3_600,
            args.requests,
        ),
    ] {
        let request = range(step);
        let answer = operator
            .query_telemetry(request.clone())
            .await?
            .into_inner();
        let counted: u64 = answer.buckets.iter().map(|b| b.count).sum();
        anyhow::ensure!(
            counted == (end - start) as u64 / 1_000_000,
            "{name}: the buckets hold {counted} readings"
        );
        let figures = measure(requests, || {
            let mut client = operator.clone();
            let request = request.clone();
            async move {
                client.query_telemetry(request).await?;
                Ok(())
            }
        })
        .await?;
        let tiers: Vec<String> = answer
            .tiers()
            .map(|t| t.as_str_name().trim_start_matches("TIER_").to_lowercase())
            .collect();
        writeln!(
            out,
            "{}  {} buckets from {}",
            line(&name, &figures),
            answer.buckets.len(),
            tiers.join("+")
        )?;
    }
    platform.stop().await
}

/// Streams the long series from `start` to `end` at 1 Hz over four streams, and one reading a
/// minute of 19 more metrics over the last hour. Returns how many readings were stored.
async fn load(
    platform: &BenchPlatform,
    tenant: &BenchTenant,
    start: i64,
    end: i64,
) -> anyhow::Result<u64> {
    const STREAMS: i64 = 4;
    const BATCH: i64 = 10_000;
    let client = platform.telemetry(&tenant.key)?;
    let span = (end - start) / STREAMS;
    let mut tasks = Vec::new();
    for stream in 0..STREAMS {
        let mut client = client.clone();
        let from = start + stream * span;
        let to = if stream == STREAMS - 1 {
            end
        } else {
            from + span
        };
        tasks.push(tokio::spawn(async move {
            let batches = futures::stream::iter((from..to).step_by(BATCH as usize * 1_000_000))
                .enumerate()
                .map(move |(i, first)| {
                    let readings = (0..BATCH)
                        .map(|s| first + s * 1_000_000)
                        .take_while(|&ts| ts < to)
                        .map(|ts| {
                            let hour = (ts / 3_600_000_000) as f64;
                            reading(SERIES, ts, 60.0 + 10.0 * (hour / 24.0).sin())
                        })
                        .collect();
                    StreamTelemetryRequest {
                        batch: Some(TelemetryBatch {
                            sequence: i as u64 + 1,
                            machine_id: MACHINE.to_owned(),
                            readings,
                        }),
                    }
                });
            let mut acks = client.stream_telemetry(batches).await?.into_inner();
            let mut stored = 0u64;
            while let Some(ack) = acks.next().await {
                let ack = ack?.ack.unwrap_or_default();
                anyhow::ensure!(ack.rejected.is_empty(), "rejected: {:?}", ack.rejected);
                stored += u64::from(ack.accepted);
            }
            anyhow::Ok(stored)
        }));
    }
    let mut stored = 0;
    for task in tasks {
        stored += task.await??;
    }
    let others: Vec<Reading> = (1..20)
        .flat_map(|m| {
            (0..60).map(move |i| reading(&format!("metric_{m:02}"), end - i * 60_000_000, 1.0))
        })
        .collect();
    let mut client = client.clone();
    let answer = client
        .ingest_batch(mfg_proto::storage::v1::IngestBatchRequest {
            tenant_id: tenant.id.clone(),
            readings: others
                .into_iter()
                .map(|r| Reading {
                    machine_id: MACHINE.to_owned(),
                    ..r
                })
                .collect(),
        })
        .await
        .context("the other metrics")?
        .into_inner();
    Ok(stored + u64::from(answer.accepted))
}

/// Runs `call` `requests` times, one at a time, after a tenth as many unmeasured.
pub(crate) async fn measure<F, Fut>(requests: usize, call: F) -> anyhow::Result<Histogram<u64>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for _ in 0..requests / 10 {
        call().await?;
    }
    for _ in 0..requests {
        let started = Instant::now();
        call().await?;
        latency.record((started.elapsed().as_micros() as u64).max(1))?;
    }
    Ok(latency)
}

pub(crate) fn line(name: &str, latency: &Histogram<u64>) -> String {
    let q = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{name:<44} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        q(0.5),
        q(0.99),
        latency.max() as f64 / 1000.0
    )
}
