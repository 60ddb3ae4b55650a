//! Tiering jobs on both backends: one runs at a time across runners, a tenant's failure is
//! recorded while the others go on, and a job whose runner died is taken over and continues
//! from its last finished tenant.

mod support;

use std::time::Duration;

use mfg_common::{config::DatabaseArgs, db::connect};
use mfg_proto::{
    common::v1::Tier,
    storage::v1::{
        GetTieringJobRequest, IngestBatchRequest, QueryTelemetryRequest, TieringJob,
        TieringJobState,
    },
};
use mfg_storage::{
    micros::Micros,
    store::{self, JobStore},
    telemetry::{
        domain::tiering::{JobState, Report},
        store::TelemetryStore,
    },
};
use support::{Backend, Platform, database, now_micros, reading, ts};
use uuid::Uuid;

const DAY: i64 = 86_400_000_000;
const SECOND: i64 = 1_000_000;

/// The store of the platform's storage database: telemetry and jobs.
async fn stores(url: &str) -> (Box<dyn TelemetryStore>, std::sync::Arc<dyn JobStore>) {
    let pool = connect(&DatabaseArgs::new(url)).await.unwrap();
    let telemetry = store::open(pool.clone());
    telemetry.migrate().await.unwrap();
    (telemetry, store::open_jobs(pool))
}

/// A day of readings, three days ago, for a tenant's `press-1`.
async fn ingest_old_day(platform: &Platform, tenant_id: &str) -> i64 {
    let d0 = (now_micros() - 3 * DAY).div_euclid(DAY) * DAY;
    let readings = (0..60)
        .map(|i| reading("press-1", "temp", d0 + i * 60 * SECOND, i as f64))
        .collect();
    let ack = platform
        .operator()
        .ingest_batch(IngestBatchRequest {
            tenant_id: tenant_id.to_owned(),
            readings,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.accepted, 60, "{ack:?}");
    d0
}

/// The tiers that answer for the tenant's day.
async fn tiers(platform: &Platform, tenant_id: &str, d0: i64) -> Vec<Tier> {
    platform
        .operator()
        .query_telemetry(QueryTelemetryRequest {
            tenant_id: tenant_id.to_owned(),
            machine_id: "press-1".to_owned(),
            metric: "temp".to_owned(),
            start: Some(ts(d0)),
            end: Some(ts(d0 + DAY)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tiers()
        .collect()
}

async fn wait_for(platform: &Platform, job_id: &str) -> TieringJob {
    loop {
        let job = platform
            .operator()
            .get_tiering_job(GetTieringJobRequest {
                job_id: job_id.to_owned(),
                wait: Some(pbjson_types::Duration {
                    seconds: 10,
                    nanos: 0,
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        if matches!(
            job.state(),
            TieringJobState::Succeeded | TieringJobState::Failed
        ) {
            return job;
        }
    }
}

/// The store lets one job run at a time, hands a job whose lease ran out to another runner,
/// counts a tenant's checkpoint once, and keeps the most recent jobs.
async fn one_job_runs_at_a_time(backend: Backend) {
    let db = database(backend).await;
    let (_, jobs) = stores(&db.url).await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    jobs.create_job(first, Micros(100), Micros(1_000))
        .await
        .unwrap();
    jobs.create_job(second, Micros(200), Micros(2_000))
        .await
        .unwrap();
    assert!(jobs.has_pending_job(Micros(3_000)).await.unwrap());

    assert_eq!(
        jobs.claim_job("a", Micros(3_000), Micros(5_000))
            .await
            .unwrap(),
        Some((first, Micros(100)))
    );
    assert_eq!(
        jobs.claim_job("b", Micros(4_000), Micros(6_000))
            .await
            .unwrap(),
        None,
        "one runs at a time"
    );
    assert!(!jobs.renew_job(first, "b", Micros(9_000)).await.unwrap());
    // The lease ran out: another runner takes the job over, and the first may not renew it.
    assert_eq!(
        jobs.claim_job("b", Micros(5_001), Micros(8_000))
            .await
            .unwrap(),
        Some((first, Micros(100)))
    );
    assert!(!jobs.renew_job(first, "a", Micros(9_000)).await.unwrap());

    let tenant = (store::TenantNo(7), Uuid::now_v7());
    let report = Report {
        readings_archived: 5,
        ..Report::default()
    };
    jobs.set_job_tenants(first, 2).await.unwrap();
    jobs.finish_job_tenant(first, tenant, Ok(report), Micros(5_500))
        .await
        .unwrap();
    jobs.finish_job_tenant(first, tenant, Ok(report), Micros(5_600))
        .await
        .unwrap();
    let failing = (store::TenantNo(8), Uuid::now_v7());
    jobs.finish_job_tenant(first, failing, Err((14, "down".to_owned())), Micros(5_700))
        .await
        .unwrap();
    assert_eq!(jobs.job_tenants_done(first).await.unwrap().len(), 2);
    assert!(!jobs.finish_job(first, "a", Micros(6_000)).await.unwrap());
    assert!(jobs.finish_job(first, "b", Micros(6_000)).await.unwrap());
    let job = jobs.job(first).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        (job.tenants_total, job.tenants_done, job.tenants_failed),
        (2, 2, 1)
    );
    assert_eq!(job.report.readings_archived, 5, "a checkpoint counts once");
    let failures = jobs.job_failures(first, 10).await.unwrap();
    assert_eq!((failures[0].tenant, failures[0].code), (failing.1, 14));

    assert_eq!(
        jobs.claim_job("a", Micros(7_000), Micros(9_000))
            .await
            .unwrap(),
        Some((second, Micros(200)))
    );
    assert!(jobs.finish_job(second, "a", Micros(8_000)).await.unwrap());
    assert_eq!(
        jobs.job(second).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert!(!jobs.has_pending_job(Micros(8_000)).await.unwrap());
    jobs.prune_jobs(1).await.unwrap();
    let kept: Vec<Uuid> = jobs.jobs(10).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(kept, [second]);
}

/// A tenant whose archive fails is recorded with its error; the other tenant's day is archived.
async fn a_tenants_failure_does_not_stop_the_others(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    let broken = platform.tenant_id.clone();
    let healthy = platform.other_tenant().await;
    let d0 = ingest_old_day(&platform, &broken).await;
    ingest_old_day(&platform, &healthy).await;
    // A pending object under a key no object store takes: archiving the day fails.
    let (telemetry, _) = stores(platform.storage_url()).await;
    let no = telemetry
        .find_tenant(broken.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let day = Micros(d0).day();
    telemetry
        .pending_object(no, day, "../outside")
        .await
        .unwrap();

    let job = platform
        .operator()
        .run_tiering_job(Some(ts(d0 + 31 * DAY)))
        .await
        .unwrap();
    assert_eq!(job.state(), TieringJobState::Failed, "{job:?}");
    assert_eq!(
        (job.tenants_total, job.tenants_done, job.tenants_failed),
        (2, 2, 1)
    );
    assert_eq!(job.failures[0].tenant_id, broken, "{job:?}");
    assert!(job.failures[0].message.contains("outside"), "{job:?}");
    assert_eq!(
        job.report.unwrap().readings_archived,
        60,
        "the healthy tenant's day"
    );
    assert_eq!(tiers(&platform, &healthy, d0).await, [Tier::Cold]);
    assert_eq!(tiers(&platform, &broken, d0).await, [Tier::Hot]);
    platform.stop().await;
}

/// A job whose runner died (its lease ran out, one tenant done) is taken over when the service
/// starts, and continues from there: the tenant done is not done again.
async fn a_job_is_taken_over_after_its_runner_died(backend: Backend) {
    let mut platform = Platform::start(backend, 1_000_000).await;
    let done = platform.tenant_id.clone();
    let left = platform.other_tenant().await;
    let d0 = ingest_old_day(&platform, &done).await;
    ingest_old_day(&platform, &left).await;
    platform.stop_storage().await;

    // A runner claimed the job, finished one tenant and died; its lease has run out.
    let (telemetry, jobs) = stores(platform.storage_url()).await;
    let id = Uuid::now_v7();
    let now = now_micros();
    jobs.create_job(id, Micros(d0 + 31 * DAY), Micros(now - 3 * SECOND))
        .await
        .unwrap();
    assert!(
        jobs.claim_job("dead", Micros(now - 2 * SECOND), Micros(now - SECOND))
            .await
            .unwrap()
            .is_some()
    );
    let no = telemetry
        .find_tenant(done.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let checkpoint = Report {
        rollup_buckets_written: 7,
        ..Report::default()
    };
    jobs.finish_job_tenant(id, (no, done.parse().unwrap()), Ok(checkpoint), Micros(now))
        .await
        .unwrap();

    platform.restart_storage().await;
    let job = tokio::time::timeout(
        Duration::from_secs(60),
        wait_for(&platform, &id.to_string()),
    )
    .await
    .expect("the job is taken over");
    assert_eq!(job.state(), TieringJobState::Succeeded, "{job:?}");
    assert_eq!((job.tenants_total, job.tenants_done), (2, 2));
    let report = job.report.unwrap();
    assert_eq!(
        report.readings_archived, 60,
        "only the tenant left: {report:?}"
    );
    assert!(report.rollup_buckets_written > 7, "{report:?}");
    assert_eq!(tiers(&platform, &left, d0).await, [Tier::Cold]);
    assert_eq!(tiers(&platform, &done, d0).await, [Tier::Hot]);
    platform.stop().await;
}

/// Tenants whose days share the class's partitions, archived a few at a time: the last of a
/// day's tenants drops its partition while the others commit theirs, without a deadlock.
async fn tenants_sharing_partitions_are_archived_together() {
    let platform = Platform::start_configured(
        Backend::Postgres,
        1_000_000,
        mfg_common::clock::system_clock(),
        |mut config| {
            config.options.tiering_parallelism = 4;
            config.with_archive_dir(std::env::temp_dir().join(format!("mfg-{}", Uuid::now_v7())))
        },
    )
    .await;
    let mut tenants = vec![platform.tenant_id.clone()];
    for _ in 0..7 {
        tenants.push(platform.other_tenant().await);
    }
    let d0 = (now_micros() - 3 * DAY).div_euclid(DAY) * DAY;
    for tenant in &tenants {
        for day in 0..3 {
            let readings = (0..24)
                .map(|h| reading("press-1", "temp", d0 + day * DAY + h * 3_600 * SECOND, 1.0))
                .collect();
            platform
                .operator()
                .ingest_batch(IngestBatchRequest {
                    tenant_id: tenant.clone(),
                    readings,
                })
                .await
                .unwrap();
        }
    }
    let job = platform
        .operator()
        .run_tiering_job(Some(ts(d0 + 40 * DAY)))
        .await
        .unwrap();
    assert_eq!(job.state(), TieringJobState::Succeeded, "{job:?}");
    assert_eq!(job.report.unwrap().readings_archived, 8 * 3 * 24, "{job:?}");
    platform.stop().await;
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn sharing_partitions() {
        tenants_sharing_partitions_are_archived_together().await;
    }

    #[tokio::test]
    async fn one_at_a_time() {
        one_job_runs_at_a_time(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn a_tenant_fails() {
        a_tenants_failure_does_not_stop_the_others(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn taken_over() {
        a_job_is_taken_over_after_its_runner_died(Backend::Postgres).await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn one_at_a_time() {
        one_job_runs_at_a_time(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_tenant_fails() {
        a_tenants_failure_does_not_stop_the_others(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn taken_over() {
        a_job_is_taken_over_after_its_runner_died(Backend::Sqlite).await;
    }
}
