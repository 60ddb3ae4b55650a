//! What the tiering tests share: a platform whose cold tier is a directory or the S3-compatible
//! server `scripts/test.sh` starts, and the calls and expectations they make.

use std::{collections::BTreeMap, sync::Arc};

use mfg_proto::{
    common::v1::{Reading, Tier},
    storage::v1::{
        Aggregation, GetLatestValuesRequest, IngestBatchRequest, QueryTelemetryRequest,
        TieringJobState, TieringReport,
    },
};
use mfg_storage::telemetry::object_store::{
    DEFAULT_ATTEMPT_TIMEOUT, LocalStore, ObjectStore, S3Config, S3Store,
};

use super::{Backend, Platform, micros, ts};

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Where the cold tier lives in a test.
#[derive(Debug, Clone, Copy)]
pub enum Cold {
    Directory,
    S3,
}

pub fn s3_endpoint() -> String {
    std::env::var("MFG_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "S3 tests need an S3-compatible server: run `scripts/test.sh`, which starts one, or \
             set MFG_TEST_S3_ENDPOINT"
        )
    })
}

pub fn s3_config(bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        endpoint: Some(s3_endpoint()),
        region: "us-east-1".to_owned(),
        path_style: true,
        credentials: Some(("test".to_owned(), "test".to_owned())),
        attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
    }
}

/// Starts a platform whose cold tier is `cold`, and returns a handle on the same object store.
/// With `create_bucket: false` the S3 bucket does not exist yet.
pub async fn start(
    backend: Backend,
    cold: Cold,
    create_bucket: bool,
) -> (Platform, Arc<dyn ObjectStore>, Option<S3Store>) {
    let clock = mfg_common::clock::system_clock();
    match cold {
        Cold::Directory => {
            let platform = Platform::start_with_clock(backend, 1_000_000, clock).await;
            let dir = platform.archive.as_ref().unwrap().path().to_owned();
            let objects: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir).unwrap());
            (platform, objects, None)
        }
        Cold::S3 => {
            let bucket = format!(
                "mfg-tiering-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let s3 = S3Store::connect(&s3_config(&bucket)).await;
            if create_bucket {
                s3.ensure_bucket().await.unwrap();
            }
            let endpoint = s3_endpoint();
            let configure = move |mut c: mfg_storage::Config| {
                c.options.s3.bucket = Some(bucket);
                c.options.s3.endpoint = Some(endpoint);
                c.options.s3.path_style = true;
                c.options.s3.access_key_id = Some("test".to_owned());
                c.options.s3.secret_access_key = Some(mfg_common::config::Secret::new("test"));
                c
            };
            // Onboarding puts the tenant's lifecycle rule in the bucket: without one, it
            // could not finish, and the tenant could not write.
            let platform = if create_bucket {
                Platform::start_configured(backend, 1_000_000, clock, configure).await
            } else {
                Platform::start_unprovisioned(backend, 1_000_000, clock, configure).await
            };
            (platform, Arc::new(s3.clone()), Some(s3))
        }
    }
}

pub fn day_start(micros: i64) -> i64 {
    micros.div_euclid(DAY) * DAY
}

pub async fn ingest(platform: &Platform, readings: &[Reading]) {
    for chunk in readings.chunks(5_000) {
        let response = platform
            .operator()
            .ingest_batch(IngestBatchRequest {
                tenant_id: platform.tenant_id.clone(),
                readings: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.accepted as usize,
            chunk.len(),
            "{:?}",
            response.rejected
        );
    }
}

/// Runs a tiering job to its end: what it did, or its first tenant's failure as a status.
pub async fn tiering(platform: &Platform, as_of: i64) -> Result<TieringReport, tonic::Status> {
    let job = platform.operator().run_tiering_job(Some(ts(as_of))).await?;
    match (job.state(), job.failures.first()) {
        (TieringJobState::Succeeded, _) => Ok(job.report.unwrap_or_default()),
        (_, Some(failure)) => Err(tonic::Status::new(
            failure.code.into(),
            failure.message.clone(),
        )),
        (state, None) => panic!("the job ended {state:?} without failures: {job:?}"),
    }
}

/// A query's answer: `(start µs, value, count)` per bucket (or per point, with count 1), and the
/// tiers that served it.
pub type Answer = (Vec<(i64, f64, u64)>, Vec<Tier>);

/// A machine's latest values: (metric, µs, value).
pub async fn latest(platform: &Platform, machine_id: &str) -> Vec<(String, i64, f64)> {
    platform
        .operator()
        .get_latest_values(GetLatestValuesRequest {
            tenant_id: platform.tenant_id.clone(),
            machine_id: machine_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .values
        .into_iter()
        .map(|v| (v.metric, micros(&v.ts.unwrap()), v.value))
        .collect()
}

pub async fn query(platform: &Platform, start: i64, end: i64, step_seconds: i64) -> Answer {
    let response = platform
        .operator()
        .query_telemetry(QueryTelemetryRequest {
            tenant_id: platform.tenant_id.clone(),
            machine_id: "press-1".to_owned(),
            metric: "temp".to_owned(),
            start: Some(ts(start)),
            end: Some(ts(end)),
            step: (step_seconds > 0).then_some(pbjson_types::Duration {
                seconds: step_seconds,
                nanos: 0,
            }),
            aggregation: if step_seconds > 0 {
                Aggregation::Sum.into()
            } else {
                Aggregation::Unspecified.into()
            },
        })
        .await
        .unwrap()
        .into_inner();
    let values = if step_seconds > 0 {
        response
            .buckets
            .iter()
            .map(|b| (micros(b.start.as_ref().unwrap()), b.value, b.count))
            .collect()
    } else {
        response
            .points
            .iter()
            .map(|p| (micros(p.ts.as_ref().unwrap()), p.value, 1))
            .collect()
    };
    let mut tiers: Vec<Tier> = response.tiers().collect();
    tiers.sort_by_key(|t| *t as i32);
    (values, tiers)
}

/// What a query must answer, computed from the readings sent.
pub fn expected(
    readings: &[(i64, f64)],
    start: i64,
    end: i64,
    step_seconds: i64,
) -> Vec<(i64, f64, u64)> {
    let inside = readings.iter().filter(|(t, _)| *t >= start && *t < end);
    if step_seconds == 0 {
        let mut points: Vec<_> = inside.map(|&(t, v)| (t, v, 1)).collect();
        points.sort_by_key(|p| p.0);
        return points;
    }
    let step = step_seconds * SECOND;
    let mut buckets: BTreeMap<i64, (f64, u64)> = BTreeMap::new();
    for &(t, v) in inside {
        let bucket = buckets.entry(t.div_euclid(step) * step).or_default();
        bucket.0 += v;
        bucket.1 += 1;
    }
    buckets
        .into_iter()
        .map(|(s, (sum, n))| (s, sum, n))
        .collect()
}
