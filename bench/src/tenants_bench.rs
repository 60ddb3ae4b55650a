//! `mfg bench tenants`: the platform at a tenant count. It creates the tenants (one machine
//! each), loads 30 days of a few readings a day into each, and measures, in this order:
//! - setup: creating the tenants through the tenant service;
//! - ingest: a fixed number of current readings in batches of one series each, 3,000 series in
//!   turn spread over the tenants, so that only the tenancy differs across tenant counts (after
//!   an unmeasured batch a series, as a steady stream keeps the caches warm);
//! - `latest` and a 1-day raw range (after `VACUUM ANALYZE`, as autovacuum would run), one query at a time over the tenants in turn;
//! - the hot tier's partitions and the catalog's size (PostgreSQL);
//! - a tiering job as if 31 days had passed, which must archive every reading;
//! - a restart of the storage service, until it serves.
//!
//! Any failed call fails the benchmark.

use std::{
    io::Write as _,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        GetLatestValuesRequest, IngestBatchRequest, QueryTelemetryRequest, TieringJobState,
    },
    tenant::v1 as tpb,
};

use crate::{
    bench_platform::{BenchPlatform, BenchTenant, OPERATOR, micros_now, timestamp},
    query_bench::{line, measure},
};

/// Options of `mfg bench tenants`.
#[derive(Debug, Clone, clap::Args)]
pub struct TenantsBench {
    /// PostgreSQL (`postgres://…`, an empty database) for both services; SQLite in a temporary
    /// directory when unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// How many tenants.
    #[arg(long, default_value_t = 100)]
    pub tenants: usize,
    /// Days of history loaded into each tenant (at most the hot retention, 30).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Readings a day of each tenant's history.
    #[arg(long = "readings-per-day", default_value_t = 24)]
    pub readings_per_day: u32,
    /// Current readings in the ingest measurement, spread over the tenants.
    #[arg(long = "ingest-readings", default_value_t = 2_000_000)]
    pub ingest_readings: usize,
    /// How many times each query is measured (5,000: about five seconds, long enough for the
    /// p99 to include what happens every second or so; 1,000 swung by 2×).
    #[arg(long, default_value_t = 5_000)]
    pub requests: usize,
    /// Stops after the queries and the catalog, without the tiering job and the restart (to
    /// compare ingest and queries across tenant counts in shorter runs).
    #[arg(long = "skip-tiering")]
    pub skip_tiering: bool,
}

const MACHINE: &str = "m-1";
/// The machine of every tenant that the ingest measurement writes to.
const LOAD_MACHINE: &str = "m-2";
/// Series the ingest measurement writes, whatever the tenant count, so that the database's
/// work is the same and only the tenancy differs: `load-<j>` of `m-2` of each tenant.
const LOAD_SERIES: usize = 3_000;
const METRIC: &str = "temp";
const DAY: i64 = 86_400_000_000;
/// Readings per ingest batch, whatever the tenant count.
const BATCH: usize = 500;
/// Calls in flight while loading.
const CONCURRENCY: usize = 8;

fn reading(micros: i64, value: f64) -> Reading {
    Reading {
        machine_id: MACHINE.to_owned(),
        metric: METRIC.to_owned(),
        ts: Some(timestamp(micros)),
        value,
    }
}

fn load_reading(metric: usize, micros: i64, value: f64) -> Reading {
    Reading {
        machine_id: LOAD_MACHINE.to_owned(),
        metric: format!("load-{metric}"),
        ts: Some(timestamp(micros)),
        value,
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: TenantsBench) -> anyhow::Result<()> {
    anyhow::ensure!((1..=30).contains(&args.days), "--days must be in 1..=30");
    anyhow::ensure!(
        (1..=LOAD_SERIES).contains(&args.tenants),
        "--tenants must be in 1..={LOAD_SERIES}"
    );
    if let Some(url) = &args.database_url {
        crate::bench_platform::ensure_empty(url).await?;
    }
    let mut platform = BenchPlatform::start(args.database_url.as_deref()).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "mfg bench tenants: {}, {} tenants × {} days × {} readings a day",
        platform.backend, args.tenants, args.days, args.readings_per_day
    )?;

    let started = Instant::now();
    let tenants: Vec<BenchTenant> = futures::stream::iter(0..args.tenants)
        .map(|_| {
            let machines = [MACHINE.to_owned(), LOAD_MACHINE.to_owned()];
            platform.tenant(machines, &[tpb::Scope::Write])
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    writeln!(
        out,
        "{:<44} {:.1} s",
        "setup (tenants, machines, keys)",
        secs(started)
    )?;

    let now = micros_now();
    let started = Instant::now();
    let history = load_history(&platform, &tenants, &args, now).await?;
    writeln!(
        out,
        "{:<44} {history} readings in {:.1} s",
        "history",
        secs(started)
    )?;

    // One unmeasured batch a series first, as a steady stream keeps the caches warm; no more
    // readings than the measurement's own (a small run touches fewer series).
    let warm_up_readings = (LOAD_SERIES * BATCH).min(args.ingest_readings);
    let warm_up = ingest(&platform, &tenants, warm_up_readings, 0, now).await?;
    let started = Instant::now();
    let ingested = ingest(&platform, &tenants, args.ingest_readings, 1, now).await?;
    writeln!(
        out,
        "{:<44} {:.0} readings/s ({ingested} readings, batches of {BATCH} of one series, \
         {LOAD_SERIES} series)",
        "ingest, series in turn",
        ingested as f64 / secs(started)
    )?;

    if let Some(url) = &args.database_url {
        let started = Instant::now();
        crate::bench_platform::analyze(url).await?;
        writeln!(
            out,
            "{:<44} {:.1} s",
            "VACUUM ANALYZE (as autovacuum would)",
            secs(started)
        )?;
    }
    query(&platform, &tenants, &args, now, &mut out).await?;
    if let Some(url) = &args.database_url {
        catalog(url, &mut out).await?;
    }
    if args.skip_tiering {
        return platform.stop().await;
    }

    let started = Instant::now();
    let job = platform
        .telemetry(OPERATOR)?
        .run_tiering_job(Some(timestamp(now + 31 * DAY)))
        .await?;
    let report = job.report.unwrap_or_default();
    anyhow::ensure!(
        job.state() == TieringJobState::Succeeded,
        "the tiering job failed: {:?}",
        job.failures
    );
    anyhow::ensure!(
        report.readings_archived == history + warm_up + ingested,
        "the tiering job archived {} of {} readings",
        report.readings_archived,
        history + warm_up + ingested
    );
    writeln!(
        out,
        "{:<44} {:.1} s: {} readings in {} objects, {} tenant days dropped",
        "tiering job (as of now + 31 days)",
        secs(started),
        report.readings_archived,
        report.objects_written,
        report.hot_partitions_dropped
    )?;

    let took = platform.restart_storage().await?;
    writeln!(
        out,
        "{:<44} {:.2} s",
        "restart of the storage service",
        took.as_secs_f64()
    )?;
    platform.stop().await
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// Loads each tenant's history: `readings_per_day` evenly spaced readings a day over the last
/// `days` days (less an hour, inside the hot retention). Returns how many.
async fn load_history(
    platform: &BenchPlatform,
    tenants: &[BenchTenant],
    args: &TenantsBench,
    now: i64,
) -> anyhow::Result<u64> {
    let every = DAY / i64::from(args.readings_per_day.max(1));
    let first = now - i64::from(args.days) * DAY + 3_600_000_000;
    let readings: Vec<Reading> = (0..)
        .map(|i| first + i * every)
        .take_while(|&ts| ts < now - 3_600_000_000)
        .map(|ts| reading(ts, (ts / every % 100) as f64))
        .collect();
    let client = platform.telemetry(OPERATOR)?;
    let counts: Vec<u64> = futures::stream::iter(tenants)
        .map(|tenant| {
            let mut client = client.clone();
            let request = IngestBatchRequest {
                tenant_id: tenant.id.clone(),
                readings: readings.clone(),
            };
            async move { accepted(client.ingest_batch(request).await?.into_inner()) }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}

fn accepted(ack: mfg_proto::storage::v1::IngestBatchResponse) -> anyhow::Result<u64> {
    anyhow::ensure!(
        ack.rejected.is_empty(),
        "readings were rejected: {:?}",
        ack.rejected.first()
    );
    Ok(u64::from(ack.accepted))
}

/// Ingests `total` current readings in batches of [`BATCH`] readings of one series, the
/// [`LOAD_SERIES`] series in turn (series `k` is `load-<k / N>` of tenant `k % N`); returns how
/// many were stored. Each round's readings are new (`round` keeps them apart).
async fn ingest(
    platform: &BenchPlatform,
    tenants: &[BenchTenant],
    total: usize,
    round: i64,
    now: i64,
) -> anyhow::Result<u64> {
    let client = platform.telemetry(OPERATOR)?;
    let batches = total.div_ceil(BATCH);
    let counts: Vec<u64> = futures::stream::iter(0..batches)
        .map(|batch| {
            let mut client = client.clone();
            let series = batch % LOAD_SERIES;
            let tenant = &tenants[series % tenants.len()];
            let metric = series / tenants.len();
            // A series' batches follow one another in time, a millisecond a reading; a round
            // starts 10 minutes after the one before.
            let first = now - 1_800_000_000 + round * 600_000_000;
            let offset = (batch / LOAD_SERIES * BATCH) as i64;
            let readings = (0..BATCH as i64)
                .map(|i| load_reading(metric, first + (offset + i) * 1_000, i as f64))
                .collect();
            let request = IngestBatchRequest {
                tenant_id: tenant.id.clone(),
                readings,
            };
            async move { accepted(client.ingest_batch(request).await?.into_inner()) }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}

/// `latest` and a 1-day range of raw readings, the tenants in turn.
async fn query(
    platform: &BenchPlatform,
    tenants: &[BenchTenant],
    args: &TenantsBench,
    now: i64,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let client = platform.telemetry(OPERATOR)?;
    let next = AtomicUsize::new(0);
    let tenant = || &tenants[next.fetch_add(1, Ordering::Relaxed) % tenants.len()];
    let latest = measure(args.requests, || {
        let mut client = client.clone();
        let request = GetLatestValuesRequest {
            tenant_id: tenant().id.clone(),
            machine_id: MACHINE.to_owned(),
        };
        async move {
            let values = client.get_latest_values(request).await?.into_inner().values;
            anyhow::ensure!(values.len() == 1, "expected one latest value");
            Ok(())
        }
    })
    .await?;
    writeln!(out, "{}", line("latest", &latest))?;
    let day_start = (now - 10 * DAY).div_euclid(DAY) * DAY;
    let expected = u64::from(args.readings_per_day.min(24 * 3600));
    let day = measure(args.requests, || {
        let mut client = client.clone();
        let request = QueryTelemetryRequest {
            tenant_id: tenant().id.clone(),
            machine_id: MACHINE.to_owned(),
            metric: METRIC.to_owned(),
            start: Some(timestamp(day_start)),
            end: Some(timestamp(day_start + DAY)),
            ..Default::default()
        };
        async move {
            let points = client.query_telemetry(request).await?.into_inner().points;
            anyhow::ensure!(
                points.len() as u64 == expected,
                "a day held {} readings",
                points.len()
            );
            Ok(())
        }
    })
    .await?;
    writeln!(out, "{}", line("1-day range, raw", &day))?;
    Ok(())
}

/// The hot tier's leaf partitions and the catalog's size, on PostgreSQL.
async fn catalog(url: &str, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    use sqlx::Row as _;
    let pool = sqlx::PgPool::connect(url)
        .await
        .context("connecting to count partitions")?;
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'readings\\_c%' \
                   AND relkind = 'r'), \
                (SELECT count(*) FROM pg_class), \
                (SELECT sum(pg_total_relation_size(oid))::int8 FROM pg_class \
                   WHERE relnamespace = 'pg_catalog'::regnamespace)",
    )
    .fetch_one(&pool)
    .await?;
    let (leaves, relations, bytes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    writeln!(
        out,
        "{:<44} {leaves} leaves; {relations} relations, catalog {:.1} MB",
        "hot tier partitions",
        bytes as f64 / 1e6
    )?;
    pool.close().await;
    Ok(())
}
