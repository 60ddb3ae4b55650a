//! `mfg bench`: load generators whose figures go into `docs/BENCHMARKS.md`. Each run is bounded
//! in time, talks only to the addresses it is given (127.0.0.1 by default), and stops by itself.

use std::{
    io::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use mfg_proto::tenant::v1::{GetTenantRequest, tenant_service_client::TenantServiceClient};

/// Options of `mfg bench gateway`.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayBench {
    /// Where the platform is: the gateway to load, and the tenant service for the direct gRPC
    /// comparison.
    #[command(flatten)]
    pub addrs: mfg_common::config::PlatformAddrs,
    /// The data directory of `mfg up`, where the operator token is.
    #[command(flatten)]
    pub data_dir: mfg_common::config::DataDir,
    /// Concurrent requests in the throughput phase.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Length of each measured phase.
    #[arg(long, default_value = "10s", value_parser = mfg_common::config::parse_duration)]
    pub duration: Duration,
}

/// The figures of one phase.
struct Figures {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Figures {
    /// Fails when any call of the phase failed: figures of failed calls measure nothing.
    fn valid(&self, name: &str) -> anyhow::Result<()> {
        if self.errors > 0 {
            bail!(
                "{name}: {} of {} calls failed; the figures are not valid",
                self.errors,
                self.requests
            );
        }
        Ok(())
    }

    fn line(&self, name: &str) -> String {
        let q = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "{name:<40} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms  errors {}",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            q(0.5),
            q(0.99),
            self.latency.max() as f64 / 1000.0,
            self.errors
        )
    }
}

/// Runs `concurrency` loops of `call` for `duration` after a warm-up, recording latency in µs.
async fn load<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let warm_up = Instant::now() + Duration::from_secs(1);
    let end = warm_up + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latency =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
                let (mut requests, mut errors) = (0u64, 0u64);
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    let ok = call().await;
                    if started >= warm_up {
                        requests += 1;
                        errors += u64::from(!ok);
                        latency.saturating_record(started.elapsed().as_micros() as u64);
                    }
                }
                (requests, errors, latency)
            })
        })
        .collect();
    let mut figures = Figures {
        requests: 0,
        errors: 0,
        elapsed: duration,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    };
    for task in tasks {
        if let Ok((requests, errors, latency)) = task.await {
            figures.requests += requests;
            figures.errors += errors;
            let _ = figures.latency.add(latency);
        }
    }
    figures
}

/// Runs `mfg bench gateway` against a running `mfg up`.
pub async fn gateway(args: GatewayBench) -> anyhow::Result<()> {
    let token_path = args.data_dir.path.join("admin-token");
    let operator = std::fs::read_to_string(&token_path)
        .with_context(|| {
            format!(
                "cannot read the operator token at {}; is `mfg up` running there?",
                token_path.display()
            )
        })?
        .trim()
        .to_owned();
    let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build_http();
    let base = mfg_common::grpc::http_uri(&args.addrs.gateway);

    // A tenant with limits that the benchmark cannot reach, and a read key of it.
    let name = format!("bench-{}", std::process::id());
    let tenant = post_json(
        &http,
        &format!("{base}/v1/tenants"),
        &operator,
        serde_json::json!({"name": name, "plan": "PLAN_DEDICATED", "limits": {"apiRequestsPerSecond": 10_000_000}}),
    )
    .await?;
    let tenant_id = tenant["id"].as_str().context("tenant id")?.to_owned();
    let key = post_json(
        &http,
        &format!("{base}/v1/tenants/{tenant_id}/api-keys"),
        &operator,
        serde_json::json!({"displayName": "bench", "scopes": ["SCOPE_READ"]}),
    )
    .await?;
    let secret = key["secret"].as_str().context("key secret")?.to_owned();

    let url: hyper::Uri = format!("{base}/v1/tenants/{tenant_id}").parse()?;
    let authorization = format!("Bearer {secret}");
    let rest_call = {
        let http = http.clone();
        move || {
            let request = hyper::Request::get(url.clone())
                .header("authorization", authorization.as_str())
                .body(Full::new(Bytes::new()))
                .expect("a valid request");
            let http = http.clone();
            async move {
                match http.request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        ok && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        }
    };
    let channel =
        tonic::transport::Endpoint::from_shared(mfg_common::grpc::http_uri(&args.addrs.tenant))?
            .tcp_nodelay(true)
            .connect()
            .await
            .context("cannot reach the tenant service")?;
    // The direct calls carry the same key the REST calls do: the same work, less the gateway.
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {secret}").parse()?;
    let grpc = TenantServiceClient::new(channel);
    let grpc_call = move || {
        let mut grpc = grpc.clone();
        let mut request = tonic::Request::new(GetTenantRequest {
            tenant_id: tenant_id.clone(),
        });
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        async move { grpc.get_tenant(request).await.is_ok() }
    };

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "mfg bench gateway: {} per phase after 1 s of warm-up",
        humanize(args.duration)
    )?;
    out.flush()?;
    let direct = load(1, args.duration, grpc_call.clone()).await;
    writeln!(out, "{}", direct.line("gRPC GetTenant direct, 1 in flight"))?;
    direct.valid("gRPC GetTenant")?;
    let rest = load(1, args.duration, rest_call.clone()).await;
    writeln!(
        out,
        "{}",
        rest.line("REST GET /v1/tenants/{id}, 1 in flight")
    )?;
    rest.valid("REST GET /v1/tenants/{id}")?;
    let overhead = (rest.latency.value_at_quantile(0.5) as f64
        - direct.latency.value_at_quantile(0.5) as f64)
        / 1000.0;
    writeln!(out, "{:<40} {overhead:>+.3} ms at p50", "gateway overhead")?;
    out.flush()?;
    let direct_n = load(args.concurrency, args.duration, grpc_call).await;
    writeln!(
        out,
        "{}",
        direct_n.line(&format!(
            "gRPC GetTenant direct, {} in flight",
            args.concurrency
        ))
    )?;
    direct_n.valid("gRPC GetTenant")?;
    let rest_n = load(args.concurrency, args.duration, rest_call).await;
    writeln!(
        out,
        "{}",
        rest_n.line(&format!(
            "REST GET /v1/tenants/{{id}}, {} in flight",
            args.concurrency
        ))
    )?;
    rest_n.valid("REST GET /v1/tenants/{id}")?;
    Ok(())
}

fn humanize(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

async fn post_json(
    http: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    token: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let request = hyper::Request::post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = http
        .request(request)
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        bail!("POST {url}: {status} {value}");
    }
    Ok(value)
}
