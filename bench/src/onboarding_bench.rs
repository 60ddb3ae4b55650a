//! `mfg bench onboarding`: how long a new tenant takes from `POST /v1/tenants` to
//! `TENANT_STATE_ACTIVE`, through the gateway, with the provisioning service onboarding it:
//! tenants created one at a time, then many at once. It fails when a tenant does not become
//! active or a run ends with a failed step.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};

use crate::bench_platform::{BenchPlatform, OPERATOR};

/// Options of `mfg bench onboarding`.
#[derive(Debug, Clone, clap::Args)]
pub struct OnboardingBench {
    /// PostgreSQL (`postgres://…`) for every service; SQLite in a temporary directory (the
    /// embedded default) when unset.
    #[arg(long = "database-url")]
    pub database_url: Option<String>,
    /// Tenants created one at a time, each timed to active.
    #[arg(long, default_value_t = 50)]
    pub sequential: usize,
    /// Tenants created at once, all of which must become active.
    #[arg(long, default_value_t = 100)]
    pub at_once: usize,
}

/// How long a tenant may take to become active before the benchmark fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the benchmark and prints its figures.
pub async fn run(args: OnboardingBench) -> anyhow::Result<()> {
    let platform = BenchPlatform::start_onboarding(args.database_url.as_deref()).await?;
    let base = format!("http://{}", platform.gateway_addr);
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let mut out = std::io::stdout();
    writeln!(
        out,
        "mfg bench onboarding: {}, {} tenants one at a time, then {} at once",
        platform.backend, args.sequential, args.at_once
    )?;

    let mut one_at_a_time = histogram()?;
    for n in 0..args.sequential {
        let took = onboard(&http, &base, &format!("one-{n}")).await?;
        one_at_a_time.record(micros(took))?;
    }
    report(&mut out, "one at a time", &one_at_a_time)?;

    let started = Instant::now();
    let took: Vec<Duration> = futures::stream::iter(0..args.at_once)
        .map(|n| {
            let (http, base) = (http.clone(), base.clone());
            async move { onboard(&http, &base, &format!("many-{n}")).await }
        })
        .buffer_unordered(args.at_once.max(1))
        .try_collect()
        .await?;
    let all = started.elapsed();
    let mut at_once = histogram()?;
    for took in took {
        at_once.record(micros(took))?;
    }
    report(&mut out, &format!("{} at once", args.at_once), &at_once)?;
    writeln!(out, "  all active after {:.2} s", all.as_secs_f64())?;
    platform.stop().await
}

/// The benchmark's HTTP client.
type Http = Client<HttpConnector, Full<Bytes>>;

/// Creates tenant `name` and waits until it is active and its run succeeded with no failed
/// step; how long that took from the request.
async fn onboard(http: &Http, base: &str, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let created = call(
        http,
        hyper::Method::POST,
        &format!("{base}/v1/tenants"),
        Some(json!({"name": name})),
    )
    .await?;
    let id = created["id"].as_str().context("no tenant id")?.to_owned();
    let tenant_url = format!("{base}/v1/tenants/{id}");
    loop {
        let tenant = call(http, hyper::Method::GET, &tenant_url, None).await?;
        match tenant["state"].as_str() {
            Some("TENANT_STATE_ACTIVE") => break,
            Some("TENANT_STATE_PROVISIONING") => {}
            _ => anyhow::bail!("tenant {name} did not become active: {tenant}"),
        }
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "tenant {name} is still provisioning after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    let runs = call(
        http,
        hyper::Method::GET,
        &format!("{tenant_url}/provisioning-runs"),
        None,
    )
    .await?;
    let run = &runs["runs"][0];
    anyhow::ensure!(
        run["state"] == "RUN_STATE_SUCCEEDED",
        "tenant {name}: {run}"
    );
    for step in run["steps"].as_array().context("no steps")? {
        anyhow::ensure!(
            step["state"] == "STEP_STATE_SUCCEEDED",
            "tenant {name}: {step}"
        );
    }
    Ok(took)
}

/// A call with the operator token; an error unless it succeeds.
async fn call(
    http: &Http,
    method: hyper::Method,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let request = hyper::Request::builder()
        .method(method.clone())
        .uri(url)
        .header("authorization", format!("Bearer {OPERATOR}"))
        .header("content-type", "application/json")
        .body(Full::new(body))?;
    let response = http.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body: Value = serde_json::from_slice(&body)
        .with_context(|| format!("{method} {url}: {status}, not JSON"))?;
    anyhow::ensure!(status.is_success(), "{method} {url}: {status} {body}");
    Ok(body)
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn micros(took: Duration) -> u64 {
    (took.as_micros() as u64).max(1)
}

fn report(out: &mut std::io::Stdout, name: &str, latency: &Histogram<u64>) -> std::io::Result<()> {
    let q = |q: f64| latency.value_at_quantile(q) as f64 / 1_000.0;
    writeln!(
        out,
        "{name:<20} to active: p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  ({} tenants)",
        q(0.5),
        q(0.99),
        latency.max() as f64 / 1_000.0,
        latency.len()
    )
}
