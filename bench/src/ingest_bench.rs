//! `mfg bench ingest`: readings per second end to end over `StreamTelemetry` into the hot tier,
//! with acks only after durable writes; then ack latency at half that rate; then, on
//! PostgreSQL, a raw `COPY` of as many readings into the same tables, the database's own
//! limit on this machine.
//!
//! It starts a tenant service and a storage service in this process on the database it is
//! given (PostgreSQL, or SQLite files in a temporary directory), creates a tenant with machines
//! and a write key, and streams from `--streams` concurrent streams, one per machine.

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use hdrhistogram::Histogram;
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        StreamTelemetryRequest, TelemetryBatch, telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1 as tpb,
};
use tokio::sync::{Semaphore, mpsc};

use crate::bench_platform::{BenchPlatform, micros_now, timestamp};

/// Options of `mfg bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestBench {
    /// PostgreSQL (`postgres://…`) for both services; SQLite in a temporary directory when unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// Concurrent machine streams.
    #[arg(long, default_value_t = 32)]
    pub streams: usize,
    /// Readings per batch (metrics × timestamps).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Metrics per machine.
    #[arg(long, default_value_t = 10)]
    pub metrics: usize,
    /// Batches in flight per stream.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Length of the phase at the max rate.
    #[arg(long, default_value = "10s", value_parser = mfg_common::config::parse_duration)]
    pub duration: Duration,
    /// Length of the paced phase, where ack latency is measured: long enough to hold several
    /// checkpoints (one every ~15 s at half the max on default settings), which make its tail.
    #[arg(long = "paced-duration", default_value = "60s", value_parser = mfg_common::config::parse_duration)]
    pub paced_duration: Duration,
    /// Only measure ack latency at this paced rate (readings/s), e.g. half a measured maximum.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Also print, per second of each phase, how many acks took longer than this (e.g. `50ms`),
    /// to tell a steady tail from stalls.
    #[arg(long = "slow-acks", value_parser = mfg_common::config::parse_duration)]
    pub slow_acks: Option<Duration>,
    /// Only compare the max rate with usage metering on (flushed every 5 s, as by default) and
    /// off: this many rounds of both, alternately, the storage service restarted for each.
    #[arg(long = "metering-ab")]
    pub metering_ab: Option<usize>,
}

/// What one phase of load measured.
pub(crate) struct Phase {
    readings: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    /// Acks over `--slow-acks`, by second of the phase.
    slow: BTreeMap<u64, u32>,
}

impl Phase {
    fn line(&self, name: &str) -> String {
        let q = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "{name:<34} {:>10.0} readings/s  ack p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.readings as f64 / self.elapsed.as_secs_f64(),
            q(0.5),
            q(0.99),
            self.latency.max() as f64 / 1000.0
        )
    }

    /// The `--slow-acks` timeline, when asked for.
    fn slow_line(&self, threshold: Option<Duration>) -> Option<String> {
        let threshold = threshold?;
        let seconds: Vec<String> = self
            .slow
            .iter()
            .map(|(second, count)| format!("{second} s: {count}"))
            .collect();
        Some(format!(
            "  acks over {} ms by second of the phase: {}",
            threshold.as_millis(),
            if seconds.is_empty() {
                "none".to_owned()
            } else {
                seconds.join(", ")
            }
        ))
    }

    pub(crate) fn rate(&self) -> f64 {
        self.readings as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: IngestBench) -> anyhow::Result<()> {
    let mut platform = BenchPlatform::start(args.database_url.as_deref()).await?;
    let tenant = platform
        .tenant(
            (0..args.streams).map(|m| format!("m{m}")),
            &[tpb::Scope::Write],
        )
        .await?;
    let client = platform.telemetry(&tenant.key)?;
    let backend = platform.backend;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg bench ingest: {backend}, {} streams, batches of {} readings, window {}, \
         {} s at the max, {} s paced",
        args.streams,
        args.batch,
        args.window,
        args.duration.as_secs(),
        args.paced_duration.as_secs()
    )?;
    // Timestamps advance 1 ms per step from far enough back that the last is not in the future,
    // so every reading is new.
    if let Some(url) = &args.database_url {
        writeln!(out, "server: {}", server_settings(url).await?)?;
        writeln!(out, "{}", checkpoint(url).await)?;
    }
    let report = |out: &mut std::io::Stdout, phase: &Phase, name: &str| -> std::io::Result<()> {
        writeln!(out, "{}", phase.line(name))?;
        if let Some(slow) = phase.slow_line(args.slow_acks) {
            writeln!(out, "{slow}")?;
        }
        Ok(())
    };
    // At most 2 million readings a second, of `metrics` readings a step, for every phase.
    let phases = match args.metering_ab {
        Some(rounds) => rounds as u64 * 2 * (args.duration.as_secs() + 2),
        None => 2 * args.duration.as_secs() + args.paced_duration.as_secs() + 2,
    };
    let clock = Arc::new(Timeline::new(
        phases * 2_000_000 / args.metrics.max(1) as u64,
    ));
    if let Some(rounds) = args.metering_ab {
        metering_ab(&mut platform, &client, &args, &clock, rounds).await?;
        return platform.stop().await;
    }
    let warm = load(&client, &args, clock.clone(), None, Duration::from_secs(2)).await?;
    drop(warm);
    if let Some(rate) = args.rate {
        // Only the paced phase, on a database that has not just absorbed a maximum-rate run.
        let paced = load(&client, &args, clock, Some(rate), args.paced_duration).await?;
        report(&mut out, &paced, &format!("paced at {rate:.0} readings/s"))?;
        return platform.stop().await;
    }
    let max = load(&client, &args, clock.clone(), None, args.duration).await?;
    report(&mut out, &max, "max rate (StreamTelemetry)")?;
    let half = load(
        &client,
        &args,
        clock.clone(),
        Some(max.rate() / 2.0),
        args.paced_duration,
    )
    .await?;
    report(&mut out, &half, "at half the max rate")?;

    if let Some(url) = &args.database_url {
        let rows = max.readings as usize;
        let copies = raw_copy(url, &tenant.id, rows).await?;
        for (what, copy) in [
            ("raw COPY into the same tables", copies.text),
            ("binary COPY, two connections", copies.binary_two),
        ] {
            writeln!(
                out,
                "{what:<34} {:>10.0} readings/s  ({rows} rows in {:.2} s; ingest is {:.2}x of it)",
                rows as f64 / copy.as_secs_f64(),
                copy.as_secs_f64(),
                max.rate() / (rows as f64 / copy.as_secs_f64())
            )?;
        }
    }
    platform.stop().await
}

/// The max rate with usage metering on and off, `rounds` times each, alternately (on first in
/// odd rounds, off first in even ones), each after a restart of the storage service and a
/// warm-up; prints each phase and the mean difference.
async fn metering_ab(
    platform: &mut BenchPlatform,
    client: &TelemetryServiceClient<mfg_common::grpc::TracedChannel>,
    args: &IngestBench,
    clock: &Arc<Timeline>,
    rounds: usize,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for metered in order {
            let interval = if metered {
                Duration::from_secs(5)
            } else {
                Duration::ZERO
            };
            platform.restart_storage_metering(interval).await?;
            drop(load(client, args, clock.clone(), None, Duration::from_secs(2)).await?);
            let phase = load(client, args, clock.clone(), None, args.duration).await?;
            let name = format!(
                "round {}, metering {}",
                round + 1,
                if metered { "on" } else { "off" }
            );
            writeln!(out, "{}", phase.line(&name))?;
            if metered { &mut on } else { &mut off }.push(phase.rate());
        }
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    // Each round's two phases ran back to back: their ratio is the least disturbed by the
    // machine's drift (checkpoints, the page cache), and the median of the ratios by outliers.
    let mut ratios: Vec<f64> = on.iter().zip(&off).map(|(on, off)| on / off).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(1.0);
    writeln!(
        out,
        "metering on: {:.0} readings/s, off: {:.0} readings/s (means); median of the rounds' on/off: {:+.1}%",
        mean(&on),
        mean(&off),
        (median - 1.0) * 100.0
    )?;
    Ok(())
}

/// The timestamps of a run's readings: step `n` is `n` ms after the base, and each batch takes
/// the next steps, so that no two readings of a series share a timestamp.
#[derive(Debug)]
pub struct Timeline {
    base: i64,
    next: AtomicU64,
}

impl Timeline {
    /// A timeline that starts an hour ago, and further back by `steps` ms (the steps the run
    /// may take at most), so that its last readings are not in the future.
    pub fn new(steps: u64) -> Self {
        Self {
            base: micros_now() - 3_600_000_000 - steps as i64 * 1_000,
            next: AtomicU64::new(0),
        }
    }

    /// The first of `steps` steps taken, as µs since the epoch.
    fn take(&self, steps: usize) -> i64 {
        self.base + self.next.fetch_add(steps as u64, Ordering::Relaxed) as i64 * 1_000
    }
}

/// Streams readings from `args.streams` machines for `duration`, at `rate` readings/s or as
/// fast as acks allow, with timestamps from `clock`; a reading refused fails the phase.
pub(crate) async fn load(
    client: &TelemetryServiceClient<mfg_common::grpc::TracedChannel>,
    args: &IngestBench,
    clock: Arc<Timeline>,
    rate: Option<f64>,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let steps = (args.batch / args.metrics).max(1);
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let slow: Arc<Mutex<BTreeMap<u64, u32>>> = Arc::default();
    let readings = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    // With a rate, each stream sends one batch per interval.
    let interval = rate
        .map(|rate| Duration::from_secs_f64((steps * args.metrics * args.streams) as f64 / rate));
    let mut tasks = Vec::new();
    for stream in 0..args.streams {
        let mut client = client.clone();
        let latency = latency.clone();
        let slow = slow.clone();
        let slow_acks = args.slow_acks;
        let readings = readings.clone();
        let clock = clock.clone();
        let window = args.window;
        let metrics = args.metrics;
        let streams = args.streams;
        tasks.push(tokio::spawn(async move {
            let (requests, receiver) = mpsc::channel(window);
            let mut acks = client
                .stream_telemetry(tokio_stream::wrappers::ReceiverStream::new(receiver))
                .await?
                .into_inner();
            let permits = Arc::new(Semaphore::new(window));
            let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
            let reader = {
                let permits = permits.clone();
                let sent = sent.clone();
                tokio::spawn(async move {
                    while let Some(ack) = acks.next().await {
                        let ack = ack?.ack.unwrap_or_default();
                        anyhow::ensure!(
                            ack.rejected.is_empty(),
                            "{} readings of a batch were refused, e.g. {:?}",
                            ack.rejected.len(),
                            ack.rejected.first()
                        );
                        let at = sent.lock().expect("lock").pop_front();
                        if let Some(at) = at {
                            let took = at.elapsed();
                            let micros = took.as_micros() as u64;
                            latency.lock().expect("lock").record(micros.max(1))?;
                            if slow_acks.is_some_and(|threshold| took > threshold) {
                                let second = (at - start).as_secs();
                                *slow.lock().expect("lock").entry(second).or_default() += 1;
                            }
                        }
                        readings.fetch_add(u64::from(ack.accepted), Ordering::Relaxed);
                        permits.add_permits(1);
                    }
                    anyhow::Ok(())
                })
            };
            let mut sequence = 0;
            // Paced streams start spread over one interval, as independent machines do, rather
            // than all at once in bursts.
            let mut next_send = Instant::now()
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(stream as f64 / streams as f64)
                });
            while Instant::now() < deadline {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next_send.into()).await;
                    next_send += interval;
                }
                permits.acquire().await?.forget();
                let first = clock.take(steps);
                let batch: Vec<Reading> = (0..steps)
                    .flat_map(|step| {
                        let micros = first + step as i64 * 1_000;
                        (0..metrics).map(move |metric| Reading {
                            machine_id: String::new(),
                            metric: format!("metric-{metric}"),
                            ts: Some(timestamp(micros)),
                            value: (micros % 1_000) as f64 * 0.5,
                        })
                    })
                    .collect();
                sequence += 1;
                sent.lock().expect("lock").push_back(Instant::now());
                requests
                    .send(StreamTelemetryRequest {
                        batch: Some(TelemetryBatch {
                            sequence,
                            machine_id: format!("m{stream}"),
                            readings: batch,
                        }),
                    })
                    .await?;
            }
            drop(requests);
            reader.await??;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();
    let latency = latency.lock().expect("lock").clone();
    let slow = std::mem::take(&mut *slow.lock().expect("lock"));
    Ok(Phase {
        readings: readings.load(Ordering::Relaxed),
        elapsed,
        latency,
        slow,
    })
}

/// The server settings that decide how a write-heavy load behaves, for the record.
async fn server_settings(url: &str) -> anyhow::Result<String> {
    use sqlx::Row as _;
    let pool = sqlx::PgPool::connect(url).await?;
    let rows = sqlx::query(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name IN \
         ('server_version', 'shared_buffers', 'max_wal_size', 'min_wal_size', \
          'wal_compression', 'synchronous_commit') ORDER BY name",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(rows
        .iter()
        .map(|r| format!("{} {}", r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Starts the phases from a checkpoint, if the bench may ask for one (a superuser or
/// `pg_checkpoint`): a new database's first checkpoint also syncs every file `CREATE DATABASE`
/// copied from its template, a stall of the set-up, not of ingest. Says what it did.
async fn checkpoint(url: &str) -> String {
    let done = async {
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
        sqlx::query("CHECKPOINT").execute(&mut connection).await?;
        sqlx::Connection::close(connection).await
    };
    match done.await {
        Ok(()) => "a checkpoint before the phases".to_owned(),
        Err(e) => format!(
            "no checkpoint before the phases ({e}): in a new database, the first one also syncs \
             the files CREATE DATABASE copied"
        ),
    }
}

/// How long the reference COPYs of the same number of rows took.
struct Copies {
    /// Text, one connection.
    text: Duration,
    /// Binary, two connections (one per core of the bench machine), half the rows each.
    binary_two: Duration,
}

/// COPYs `rows` new readings of the tenant's series into `readings` twice, with new keys each
/// time: as text over one connection, then binary over two, and returns how long each took.
async fn raw_copy(url: &str, tenant_id: &str, rows: usize) -> anyhow::Result<Copies> {
    use sqlx::Row as _;
    let pool = sqlx::PgPool::connect(url).await?;
    let series: Vec<i64> = sqlx::query(
        "SELECT s.series_id FROM series s JOIN storage_tenants t USING (tenant_no) \
         WHERE t.tenant_id = $1::uuid",
    )
    .bind(tenant_id)
    .fetch_all(&pool)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    anyhow::ensure!(!series.is_empty(), "no series to copy into");
    // Two and four hours ago, before anything the load phases wrote: new keys. The partitions
    // of those days are created first, as ingest creates them, and not timed.
    let base = micros_now() - 7_200_000_000;
    let binary_base = base - 7_200_000_000;
    let end = base + (rows / series.len()) as i64 * 1_000 + 1_000;
    let store = mfg_storage::store::PostgresStore::new(pool.clone());
    let tenant_no = mfg_storage::telemetry::store::SeriesId(series[0]).tenant();
    // The bench's tenant has the default hot retention, whose class its days live in.
    let class = 30;
    for day in [binary_base, base, end].map(|micros| mfg_storage::micros::Micros(micros).day()) {
        mfg_storage::telemetry::store::TelemetryStore::ensure_day(&store, tenant_no, day, class)
            .await?;
    }
    let mut text = String::with_capacity(rows * 48);
    for i in 0..rows {
        let series_id = series[i % series.len()];
        let micros = base + (i / series.len()) as i64 * 1_000;
        let ts = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
        text.push_str(&format!(
            "{series_id}\t{}\t{}\t{class}\n",
            ts.format("%Y-%m-%d %H:%M:%S%.6f+00"),
            (i % 1_000) as f64 * 0.5
        ));
    }
    let start = Instant::now();
    let mut connection = pool.acquire().await?;
    let mut copy = connection
        .copy_in_raw("COPY readings (series_id, ts, value, class) FROM STDIN")
        .await?;
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let text_took = start.elapsed();
    drop(connection);

    let halves: Vec<Vec<u8>> = (0..2)
        .map(|half| binary_rows(&series, binary_base, rows, class, half))
        .collect();
    let start = Instant::now();
    futures::future::try_join_all(halves.iter().map(|data| copy_binary(&pool, data))).await?;
    let binary_two = start.elapsed();
    pool.close().await;
    Ok(Copies {
        text: text_took,
        binary_two,
    })
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Every other row from `half` on, in PostgreSQL's binary COPY format: a header, then per row
/// four fields (int8 series, timestamptz as µs since 2000, float8 value, int4 class), then the
/// trailer.
fn binary_rows(series: &[i64], base: i64, rows: usize, class: u32, half: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(rows / 2 * 46 + 32);
    data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    data.extend_from_slice(&0_i32.to_be_bytes());
    data.extend_from_slice(&0_i32.to_be_bytes());
    for i in (half..rows).step_by(2) {
        let micros = base + (i / series.len()) as i64 * 1_000;
        data.extend_from_slice(&4_i16.to_be_bytes());
        for field in [
            series[i % series.len()].to_be_bytes(),
            (micros - PG_EPOCH_MICROS).to_be_bytes(),
            ((i % 1_000) as f64 * 0.5).to_be_bytes(),
        ] {
            data.extend_from_slice(&8_i32.to_be_bytes());
            data.extend_from_slice(&field);
        }
        data.extend_from_slice(&4_i32.to_be_bytes());
        data.extend_from_slice(&class.to_be_bytes());
    }
    data.extend_from_slice(&(-1_i16).to_be_bytes());
    data
}

/// One binary COPY on a connection of its own.
async fn copy_binary(pool: &sqlx::PgPool, data: &[u8]) -> anyhow::Result<()> {
    let mut connection = pool.acquire().await?;
    let mut copy = connection
        .copy_in_raw("COPY readings (series_id, ts, value, class) FROM STDIN (FORMAT binary)")
        .await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    Ok(())
}
