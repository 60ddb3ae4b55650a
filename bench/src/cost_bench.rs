//! `mfg bench cost`: the latency of the cost reports over REST. `GET /v1/tenants/{id}/cost` is
//! timed for a month of one tenant's hourly usage, and `GET /v1/cost` for a summary of every
//! tenant, one request at a time:
//! - back to back (the cost service reuses a summary for 5 s);
//! - a few requests more than 5 s apart (the service costs a summary still asked for again
//!   before it is due, in the background);
//! - a new period each request, an hour later than the last, across a midnight (each costs
//!   every tenant: the settled buckets are kept, the month so far is read at most 5 s before).
//!
//! It starts the platform in this process on the database it is given (PostgreSQL, or SQLite
//! files in a temporary directory). It creates `--tenants` tenants and records a month (30 to 31 days) of
//! hourly usage of three meters for each, through `RecordUsage`, as the services meter it:
//! readings ingested, hot storage and machines, hour by hour.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use mfg_proto::{
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};

use crate::bench_platform::{BenchPlatform, OPERATOR, channel, micros_now, timestamp};

/// Options of `mfg bench cost`.
#[derive(Debug, Clone, clap::Args)]
pub struct CostBench {
    /// PostgreSQL (`postgres://…`) for every service; SQLite in a temporary directory when
    /// unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// Tenants, each with a month of hourly usage.
    #[arg(long, default_value_t = 1_000)]
    pub tenants: usize,
    /// Timed requests of each route.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Requests of each route timed apart by more than the 5 s a summary is kept, so that each
    /// costs every tenant again.
    #[arg(long, default_value_t = 5)]
    pub uncached: usize,
}

/// The URL of the n-th request of a timing.
type Url<'a> = dyn Fn(usize) -> String + 'a;

/// An hour in µs.
const HOUR: i64 = 3_600_000_000;
/// A day in µs.
const DAY: i64 = 24 * HOUR;

/// Runs the benchmark and prints its figures.
pub async fn run(args: CostBench) -> anyhow::Result<()> {
    let platform = BenchPlatform::start(args.database_url.as_deref()).await?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg bench cost: {}, {} tenants with a month (30 to 31 days) of hourly usage of 3 meters, {} requests a route",
        platform.backend, args.tenants, args.requests
    )?;
    let loading = Instant::now();
    let tenants = create_tenants(&platform, args.tenants).await?;
    let mut cost = CostServiceClient::new(channel(platform.cost_addr, OPERATOR)?);
    let now = micros_now() / HOUR * HOUR;
    // From 19:00 the day before the day 30 days back, so that the new periods (an hour later
    // each) cross a midnight, as a rolling 30 days does once a day.
    let start = (now - 30 * DAY) / DAY * DAY - 5 * HOUR;
    let mut records: Vec<pb::UsageRecord> = tenants
        .iter()
        .flat_map(|tenant| month_of_usage(tenant, start, now))
        .collect();
    // Hour by hour, every tenant's, as the meters flush it: an hour's rows lie together in the
    // ledger's tables, as they do in service.
    records.sort_by_key(|record| record.start_time.map(|t| t.seconds));
    for chunk in records.chunks(10_000) {
        let counted = cost
            .record_usage(pb::RecordUsageRequest {
                batch_key: String::new(),
                records: chunk.to_vec(),
            })
            .await?
            .into_inner();
        anyhow::ensure!(
            counted.recorded as usize == chunk.len(),
            "{} of {} records counted",
            counted.recorded,
            chunk.len()
        );
    }
    writeln!(
        out,
        "loaded {} records in {:.1} s",
        records.len(),
        loading.elapsed().as_secs_f64()
    )?;

    let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{}", platform.gateway_addr);
    let tenant_route = format!("{base}/v1/tenants/{}/cost", tenants[0]);
    let summary_route = format!("{base}/v1/cost");
    // The summary waits for the tenant snapshot to hold every tenant, and costs the settled
    // days of the month once.
    wait_for_summary(&http, &summary_route, args.tenants).await?;
    let from = |route: &str, hours: usize| {
        let start = start + hours as i64 * HOUR;
        let start = chrono::DateTime::from_timestamp_micros(start).unwrap_or_default();
        let start = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!("{route}?startTime={start}")
    };
    let tenant_30_days = from(&tenant_route, 0);
    let routes: [(&str, &Url, &Url); 2] = [
        (
            "GET /v1/tenants/{id}/cost, a month",
            &|_| tenant_30_days.clone(),
            &|n| from(&tenant_route, n + 1),
        ),
        (
            "GET /v1/cost, month to date",
            &|_| summary_route.clone(),
            &|n| from(&summary_route, n + 1),
        ),
    ];
    for (name, same, new) in routes {
        let latency = time(&http, same, args.requests, Duration::ZERO).await?;
        report(&mut out, name, &latency)?;
        let apart = mfg_cost::costing::FRESH + Duration::from_millis(100);
        let latency = time(&http, same, args.uncached, apart).await?;
        report(
            &mut out,
            &format!("  each {} s apart", apart.as_secs_f64()),
            &latency,
        )?;
        let latency = time(&http, new, args.uncached, Duration::from_millis(100)).await?;
        report(&mut out, "  a new period each (an hour later)", &latency)?;
    }
    platform.stop().await
}

fn report(out: &mut std::io::Stdout, name: &str, latency: &Histogram<u64>) -> std::io::Result<()> {
    let q = |q: f64| latency.value_at_quantile(q) as f64 / 1_000.0;
    writeln!(
        out,
        "{name:<40} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} requests)",
        q(0.5),
        q(0.99),
        latency.max() as f64 / 1_000.0,
        latency.len()
    )
}

/// Creates `count` tenants through the tenant service, 16 at a time; their ids.
async fn create_tenants(platform: &BenchPlatform, count: usize) -> anyhow::Result<Vec<String>> {
    let tenants = TenantServiceClient::new(channel(platform.tenant_addr, OPERATOR)?);
    futures::stream::iter(0..count)
        .map(|n| {
            let mut tenants = tenants.clone();
            async move {
                let tenant = tenants
                    .create_tenant(tpb::CreateTenantRequest {
                        tenant: Some(tpb::Tenant {
                            name: format!("cost-bench-{n}"),
                            plan: if n % 10 == 0 {
                                tpb::Plan::Dedicated
                            } else {
                                tpb::Plan::Shared
                            }
                            .into(),
                            ..Default::default()
                        }),
                    })
                    .await?
                    .into_inner()
                    .tenant
                    .context("no tenant")?;
                anyhow::Ok(tenant.id)
            }
        })
        .buffered(16)
        .try_collect()
        .await
}

/// A tenant's hourly usage over `[start, end)`: readings ingested, hot storage and machines.
fn month_of_usage(tenant: &str, start: i64, end: i64) -> Vec<pb::UsageRecord> {
    let hours = (end - start) / HOUR;
    (0..hours)
        .flat_map(|h| {
            let from = start + h * HOUR;
            [
                (pb::Meter::IngestedReadings, 1_080_000.0 + (h % 7) as f64),
                (pb::Meter::HotStorage, 5e9 + h as f64 * 1e7),
                (pb::Meter::Machines, 15.0),
            ]
            .map(|(meter, quantity)| pb::UsageRecord {
                tenant_id: tenant.to_owned(),
                meter: meter.into(),
                quantity,
                start_time: Some(timestamp(from)),
                end_time: Some(timestamp(from + HOUR)),
                idempotency_key: format!("bench/{tenant}/{}/{h}", meter.as_str_name()),
            })
        })
        .collect()
}

/// Calls the summary until it reports `tenants` tenants (the cost service's snapshot of them
/// is refreshed every 5 s).
async fn wait_for_summary(
    http: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    tenants: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get(http, url).await?;
        let summary: serde_json::Value = serde_json::from_slice(&body)?;
        let reported = summary["reports"].as_array().map_or(0, Vec::len);
        if reported == tenants {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the summary reports {reported} of {tenants} tenants after a minute"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Times `requests` GETs of `url(n)` for the n-th, one at a time and `apart` from each other,
/// after 10 untimed when they are not apart.
async fn time(
    http: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &Url<'_>,
    requests: usize,
    apart: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let untimed = if apart.is_zero() { 10 } else { 0 };
    for i in 0..requests + untimed {
        tokio::time::sleep(apart).await;
        let url = url(i);
        let started = Instant::now();
        get(http, &url).await?;
        if i >= untimed {
            latency.record((started.elapsed().as_micros() as u64).max(1))?;
        }
    }
    Ok(latency)
}

/// The body of a GET of `url` with the operator token; an error unless it answers 200.
async fn get(
    http: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
) -> anyhow::Result<Bytes> {
    let request = hyper::Request::get(url)
        .header("authorization", format!("Bearer {OPERATOR}"))
        .body(Full::new(Bytes::new()))?;
    let response = http.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status == hyper::StatusCode::OK,
        "GET {url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}
