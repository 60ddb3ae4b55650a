//! The tiering jobs end to end, on both database backends and both object stores (a local
//! directory, and the S3-compatible server `scripts/test.sh` starts): rollups that late readings
//! re-roll, days archived to Parquet and dropped from the hot tier only once stored, queries
//! that give the same answer whichever tiers serve them, retention, and a failed upload that
//! deletes nothing.

mod support;

use std::{collections::BTreeMap, sync::Arc};

use mfg_proto::{
    common::v1::{Reading, Tier},
    storage::v1::{
        Aggregation, GetLatestValuesRequest, IngestBatchRequest, QueryTelemetryRequest,
        TieringJobState, TieringReport,
    },
};
use mfg_storage::{
    archive,
    object_store::{LocalStore, ObjectStore, S3Config, S3Store},
};
use support::{Backend, Platform, micros, now_micros, reading, ts};

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Where the cold tier lives in a test.
#[derive(Debug, Clone, Copy)]
enum Cold {
    Directory,
    S3,
}

fn s3_endpoint() -> String {
    std::env::var("MFG_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "S3 tests need an S3-compatible server: run `scripts/test.sh`, which starts one, or \
             set MFG_TEST_S3_ENDPOINT"
        )
    })
}

fn s3_config(bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        endpoint: Some(s3_endpoint()),
        region: "us-east-1".to_owned(),
        path_style: true,
        credentials: Some(("test".to_owned(), "test".to_owned())),
    }
}

/// Starts a platform whose cold tier is `cold`, and returns a handle on the same object store.
/// With `create_bucket: false` the S3 bucket does not exist yet.
async fn start(
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
            let platform = Platform::start_configured(backend, 1_000_000, clock, move |mut c| {
                c.options.s3.bucket = Some(bucket);
                c.options.s3.endpoint = Some(endpoint);
                c.options.s3.path_style = true;
                c.options.s3.access_key_id = Some("test".to_owned());
                c.options.s3.secret_access_key = Some(mfg_common::config::Secret::new("test"));
                c
            })
            .await;
            (platform, Arc::new(s3.clone()), Some(s3))
        }
    }
}

fn day_start(micros: i64) -> i64 {
    micros.div_euclid(DAY) * DAY
}

async fn ingest(platform: &Platform, readings: &[Reading]) {
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
async fn tiering(platform: &Platform, as_of: i64) -> Result<TieringReport, tonic::Status> {
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
type Answer = (Vec<(i64, f64, u64)>, Vec<Tier>);

/// A machine's latest values: (metric, µs, value).
async fn latest(platform: &Platform, machine_id: &str) -> Vec<(String, i64, f64)> {
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

async fn query(platform: &Platform, start: i64, end: i64, step_seconds: i64) -> Answer {
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
fn expected(
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

async fn the_tiers_hold_the_data_and_answer_alike(backend: Backend, cold: Cold) {
    let (platform, objects, _) = start(backend, cold, true).await;
    let today = day_start(now_micros());
    let d0 = today - 3 * DAY;
    let d1 = today - 2 * DAY;

    // Two days of press-1 readings every 20 s, integer values so sums are exact in any order,
    // and some press-2 readings the queries must leave out.
    let mut sent: Vec<(i64, f64)> = (0..2 * DAY / (20 * SECOND))
        .map(|i| (d0 + i * 20 * SECOND, (i % 97) as f64))
        .collect();
    let mut readings: Vec<Reading> = sent
        .iter()
        .map(|&(t, v)| reading("press-1", "temp", t, v))
        .collect();
    readings.extend((0..100).map(|i| reading("press-2", "temp", d0 + i * SECOND, 1e6)));
    ingest(&platform, &readings).await;

    // Hour buckets from a start that is not on a minute; 45 s buckets across the two days;
    // raw points across them.
    let queries = [
        (d0 + 30 * MINUTE + 10 * SECOND, d1 + DAY, 3_600),
        (d1 - 2 * HOUR, d1 + 2 * HOUR, 45),
        (d1 - 10 * MINUTE, d1 + 10 * MINUTE, 0),
    ];
    for (start, end, step) in queries {
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(answer, expected(&sent, start, end, step), "step {step}");
        assert_eq!(tiers, [Tier::Hot]);
    }

    // Rollup: the range comes from the warm tier now (its first hour's whole quarters and
    // minutes too), all but the first 50 s, with the same answer.
    let report = tiering(&platform, now_micros()).await.unwrap();
    assert!(report.rollup_buckets_written > 0, "{report:?}");
    assert_eq!(
        report.objects_written, 0,
        "nothing is past hot retention yet"
    );
    let (start, end, step) = queries[0];
    let (answer, tiers) = query(&platform, start, end, step).await;
    assert_eq!(answer, expected(&sent, start, end, step));
    assert_eq!(tiers, [Tier::Hot, Tier::Warm]);

    // Steps of several minutes or hours merge rollups in the database; steps over a minute
    // that are not whole minutes (5,183 s: a range / 500) merge the minutes no bucket boundary
    // splits and read the split ones raw: the same answers.
    for step in [5_220, 7_200, 5_183, 90] {
        let (start, end) = (d0 + 7 * MINUTE, d1 + DAY);
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(answer, expected(&sent, start, end, step), "step {step}");
        assert!(tiers.contains(&Tier::Warm), "step {step}: {tiers:?}");
    }

    // A late reading into a rolled-up hour re-rolls that bucket.
    let late = (d0 + 2 * HOUR + 5 * SECOND, 1_000.0);
    ingest(&platform, &[reading("press-1", "temp", late.0, late.1)]).await;
    sent.push(late);
    let (answer, _) = query(&platform, start, end, step).await;
    assert_eq!(
        answer,
        expected(&sent, start, end, step),
        "after a late reading"
    );

    // Archive: d0 leaves the hot tier for one Parquet object once 30 days have passed.
    let as_of = d1 + 30 * DAY + MINUTE;
    let report = tiering(&platform, as_of).await.unwrap();
    assert_eq!(report.objects_written, 1, "{report:?}");
    assert_eq!(
        report.readings_archived,
        sent.iter().filter(|(t, _)| *t < d1).count() as u64 + 100
    );
    assert!(report.hot_partitions_dropped >= 1);
    let tenant: uuid::Uuid = platform.tenant_id.parse().unwrap();
    let stored = objects.list(&archive::tenant_prefix(tenant)).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let day0 = chrono::DateTime::from_timestamp_micros(d0)
        .unwrap()
        .format("%Y-%m-%d");
    assert!(
        stored[0]
            .key
            .as_str()
            .contains(&format!("/dt={day0}/part-")),
        "{}",
        stored[0].key
    );
    let archived = archive::decode(objects.get(&stored[0].key).await.unwrap()).unwrap();
    assert_eq!(archived.len() as u64, report.readings_archived);

    // press-2 has nothing left in the hot tier: its latest value comes from the warm tier.
    assert_eq!(
        latest(&platform, "press-2").await,
        [("temp".to_owned(), d0 + 99 * SECOND, 1e6)]
    );
    let (last_ts, last_value) = sent.iter().copied().max_by_key(|(t, _)| *t).unwrap();
    assert_eq!(
        latest(&platform, "press-1").await,
        [("temp".to_owned(), last_ts, last_value)]
    );

    // The same answers, now partly from the cold tier.
    let want_tiers = [
        vec![Tier::Warm, Tier::Cold],
        vec![Tier::Hot, Tier::Cold],
        vec![Tier::Hot, Tier::Cold],
    ];
    for ((start, end, step), want) in queries.into_iter().zip(want_tiers) {
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(
            answer,
            expected(&sent, start, end, step),
            "step {step} after archiving"
        );
        let mut want = want;
        want.sort_by_key(|t| *t as i32);
        assert!(
            want.iter().all(|t| tiers.contains(t)),
            "step {step}: {tiers:?}"
        );
    }

    // Split minutes on the archived day are read from its object: the same answers.
    for step in [5_183, 90] {
        let (start, end) = (d0 + 7 * MINUTE + 3 * SECOND, d1 + DAY);
        let (answer, tiers) = query(&platform, start, end, step).await;
        assert_eq!(
            answer,
            expected(&sent, start, end, step),
            "step {step} after archiving"
        );
        assert!(
            [Tier::Warm, Tier::Cold].iter().all(|t| tiers.contains(t)),
            "step {step}: {tiers:?}"
        );
    }

    // Running again archives nothing twice.
    let again = tiering(&platform, as_of).await.unwrap();
    assert_eq!((again.objects_written, again.readings_archived), (0, 0));
    assert_eq!(
        objects
            .list(&archive::tenant_prefix(tenant))
            .await
            .unwrap()
            .len(),
        1
    );

    // The tenant's prefix has its lifecycle rule.
    let rules = objects.lifecycle_rules().await.unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r.prefix == archive::tenant_prefix(tenant) && r.expire_after_days == 2555 - 30),
        "{rules:?}"
    );

    // Past every retention: the rollups and the objects go.
    let report = tiering(&platform, today + 2556 * DAY).await.unwrap();
    assert!(report.warm_rows_expired > 0, "{report:?}");
    assert!(report.cold_objects_expired >= 1, "{report:?}");
    assert!(
        objects
            .list(&archive::tenant_prefix(tenant))
            .await
            .unwrap()
            .is_empty()
    );
    let (answer, _) = query(&platform, d0, d1 + DAY, 3_600).await;
    assert!(answer.is_empty(), "{answer:?}");
    platform.stop().await;
}

/// An upload that fails deletes nothing; the next run archives the day.
async fn a_failed_upload_deletes_nothing(backend: Backend) {
    let (platform, objects, s3) = start(backend, Cold::S3, false).await;
    let d0 = day_start(now_micros()) - 3 * DAY;
    let sent: Vec<(i64, f64)> = (0..600).map(|i| (d0 + i * MINUTE, i as f64)).collect();
    let readings: Vec<Reading> = sent
        .iter()
        .map(|&(t, v)| reading("press-1", "temp", t, v))
        .collect();
    ingest(&platform, &readings).await;
    let as_of = d0 + 31 * DAY;

    // The missing bucket is the cold tier's state, not a bug of ours: a retryable code with
    // the cause.
    let failed = tiering(&platform, as_of).await.unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unavailable, "{failed:?}");
    assert!(failed.message().contains("NoSuchBucket"), "{failed:?}");
    let (answer, tiers) = query(&platform, d0, d0 + DAY, 0).await;
    assert_eq!(
        answer,
        expected(&sent, d0, d0 + DAY, 0),
        "the hot tier kept the day"
    );
    assert_eq!(tiers, [Tier::Hot]);

    s3.unwrap().ensure_bucket().await.unwrap();
    let report = tiering(&platform, as_of).await.unwrap();
    assert_eq!((report.objects_written, report.readings_archived), (1, 600));
    let tenant: uuid::Uuid = platform.tenant_id.parse().unwrap();
    assert_eq!(
        objects
            .list(&archive::tenant_prefix(tenant))
            .await
            .unwrap()
            .len(),
        1
    );
    let (answer, tiers) = query(&platform, d0, d0 + DAY, 0).await;
    assert_eq!(answer, expected(&sent, d0, d0 + DAY, 0));
    assert_eq!(tiers, [Tier::Cold]);
    platform.stop().await;
}

/// On PostgreSQL a day's partition is shared by the tenants of a retention class and dropped
/// with the last one's archive. Until then a tenant's archived day is answered from its objects
/// alone: the rows still in the partition are neither counted twice nor served as hot.
async fn an_archived_day_in_a_shared_partition_is_counted_once() {
    let (platform, _objects, _) = start(Backend::Postgres, Cold::Directory, true).await;
    let d0 = day_start(now_micros()) - 3 * DAY;
    let sent: Vec<(i64, f64)> = (0..120).map(|i| (d0 + i * MINUTE, i as f64)).collect();
    let readings: Vec<Reading> = sent
        .iter()
        .map(|&(t, v)| reading("press-1", "temp", t, v))
        .collect();
    ingest(&platform, &readings).await;
    // Another tenant's share of the same day (a tenant the directory does not know, so the
    // job leaves it): the partition must outlive this tenant's archive.
    let pool = sqlx::PgPool::connect(platform.storage_url()).await.unwrap();
    let day = chrono::DateTime::from_timestamp_micros(d0)
        .unwrap()
        .date_naive();
    sqlx::query(
        "WITH t AS (INSERT INTO storage_tenants (tenant_id) VALUES (gen_random_uuid()) \
         RETURNING tenant_no) INSERT INTO hot_days SELECT tenant_no, $1, 30 FROM t",
    )
    .bind(day)
    .execute(&pool)
    .await
    .unwrap();

    let report = tiering(&platform, d0 + 31 * DAY).await.unwrap();
    assert_eq!(report.readings_archived, 120);
    let leaves: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname = $1")
        .bind(format!("readings_c30_{}", day.format("%Y%m%d")))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(leaves, 1, "the other tenant's share keeps the partition");
    for step in [0, 600, 3_600] {
        let (answer, tiers) = query(&platform, d0, d0 + DAY, step).await;
        assert_eq!(answer, expected(&sent, d0, d0 + DAY, step), "step {step}");
        assert!(!tiers.contains(&Tier::Hot), "step {step}: {tiers:?}");
    }
    pool.close().await;
    platform.stop().await;
}

/// A reading for a day already archived is stored once (not failing its batch), answered with
/// the archived ones (the first write of a key wins), and archived on the next run as a further
/// part of the day.
async fn late_readings_become_a_further_part(backend: Backend) {
    let (platform, objects, _) = start(backend, Cold::Directory, true).await;
    let d0 = day_start(now_micros()) - 3 * DAY;
    let sent: Vec<(i64, f64)> = (0..60).map(|i| (d0 + i * MINUTE, i as f64)).collect();
    let readings: Vec<Reading> = sent
        .iter()
        .map(|&(t, v)| reading("press-1", "temp", t, v))
        .collect();
    ingest(&platform, &readings).await;
    let as_of = d0 + 31 * DAY;
    assert_eq!(
        tiering(&platform, as_of).await.unwrap().readings_archived,
        60
    );

    // A new reading of the archived day.
    let new = (d0 + 2 * HOUR, 1000.0);
    ingest(&platform, &[reading("press-1", "temp", new.0, new.1)]).await;
    let mut all = sent.clone();
    all.push(new);
    let (answer, tiers) = query(&platform, d0, d0 + DAY, 0).await;
    assert_eq!(answer, expected(&all, d0, d0 + DAY, 0));
    assert_eq!(tiers, [Tier::Hot, Tier::Cold]);
    // Whole buckets from the warm tier, with the late reading the archive lacks.
    let (answer, tiers) = query(&platform, d0, d0 + DAY, 600).await;
    assert_eq!(answer, expected(&all, d0, d0 + DAY, 600));
    assert_eq!(tiers, [Tier::Hot, Tier::Warm]);
    // A resend of an archived reading with another value: the archived one stays, and is
    // counted once.
    ingest(
        &platform,
        &[reading("press-1", "temp", d0 + 5 * MINUTE, -1.0)],
    )
    .await;
    for step in [0, 600, 3_600] {
        let (answer, _) = query(&platform, d0, d0 + DAY, step).await;
        assert_eq!(answer, expected(&all, d0, d0 + DAY, step), "step {step}");
    }

    // The further part holds the new reading only; both late readings leave the hot tier, and
    // the new one joins the warm tier.
    let report = tiering(&platform, as_of).await.unwrap();
    assert_eq!((report.objects_written, report.readings_archived), (1, 1));
    let tenant: uuid::Uuid = platform.tenant_id.parse().unwrap();
    let parts = objects.list(&archive::tenant_prefix(tenant)).await.unwrap();
    assert_eq!(parts.len(), 2, "a further part of the day");
    let (answer, tiers) = query(&platform, d0, d0 + DAY, 0).await;
    assert_eq!(answer, expected(&all, d0, d0 + DAY, 0));
    assert_eq!(tiers, [Tier::Cold]);
    for step in [600, 3_600] {
        let (answer, tiers) = query(&platform, d0, d0 + DAY, step).await;
        assert_eq!(answer, expected(&all, d0, d0 + DAY, step), "step {step}");
        assert_eq!(tiers, [Tier::Warm], "step {step}");
    }

    // A resend of the archived readings only: no further part, and nothing left behind.
    ingest(
        &platform,
        &[reading("press-1", "temp", d0 + 7 * MINUTE, -2.0)],
    )
    .await;
    let report = tiering(&platform, as_of).await.unwrap();
    assert_eq!((report.objects_written, report.readings_archived), (0, 0));
    let (answer, tiers) = query(&platform, d0, d0 + DAY, 600).await;
    assert_eq!(answer, expected(&all, d0, d0 + DAY, 600));
    assert_eq!(tiers, [Tier::Warm]);
    platform.stop().await;
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn late_readings() {
        late_readings_become_a_further_part(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn shared_partition() {
        an_archived_day_in_a_shared_partition_is_counted_once().await;
    }

    #[tokio::test]
    async fn tiers_on_a_directory() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Postgres, Cold::Directory).await;
    }

    #[tokio::test]
    async fn tiers_on_s3() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Postgres, Cold::S3).await;
    }

    #[tokio::test]
    async fn failed_upload() {
        a_failed_upload_deletes_nothing(Backend::Postgres).await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn late_readings() {
        late_readings_become_a_further_part(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn tiers_on_a_directory() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Sqlite, Cold::Directory).await;
    }

    #[tokio::test]
    async fn tiers_on_s3() {
        the_tiers_hold_the_data_and_answer_alike(Backend::Sqlite, Cold::S3).await;
    }

    #[tokio::test]
    async fn failed_upload() {
        a_failed_upload_deletes_nothing(Backend::Sqlite).await;
    }
}
