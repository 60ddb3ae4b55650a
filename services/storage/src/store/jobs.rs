//! Where tiering jobs are kept: [`JobStore`], one implementation for both backends. Every
//! statement is a single one in its own transaction, ids are text and times µs, so the same SQL
//! serves PostgreSQL and SQLite (migration `tiering_jobs`).
//!
//! Several replicas share the table: a job is claimed by one `UPDATE` whose `WHERE` a second,
//! concurrent claim re-checks (PostgreSQL re-evaluates it on the row the first one wrote), a
//! unique partial index keeps one job running, and a runner holds a job only while it renews
//! its lease.

use sqlx::{Database, Pool, Row as _};
use uuid::Uuid;

use super::TenantNo;
use crate::{
    error::{Result, StorageError},
    micros::Micros,
    telemetry::domain::tiering::{Failure, Job, JobState, Report},
};

/// Tiering jobs and their tenants' checkpoints.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records a new queued job.
    async fn create_job(&self, id: Uuid, as_of: Micros, now: Micros) -> Result<()>;
    /// Whether a job is queued, or running under a lease that holds at `now`.
    async fn has_pending_job(&self, now: Micros) -> Result<bool>;
    /// Claims for `owner` until `lease_until` the job to run next: a running job whose lease ran
    /// out, else the oldest queued one while none runs. Returns its id and `as_of`.
    async fn claim_job(
        &self,
        owner: &str,
        now: Micros,
        lease_until: Micros,
    ) -> Result<Option<(Uuid, Micros)>>;
    /// Extends the owner's lease; `false` when another runner took the job over.
    async fn renew_job(&self, id: Uuid, owner: &str, lease_until: Micros) -> Result<bool>;
    /// Records how many tenants the job has to do.
    async fn set_job_tenants(&self, id: Uuid, total: u32) -> Result<()>;
    /// The checkpoint of a tenant the job is done with: what its work did, or why it failed
    /// (gRPC code, message). Recording it twice keeps the first.
    async fn finish_job_tenant(
        &self,
        id: Uuid,
        tenant: (TenantNo, Uuid),
        outcome: std::result::Result<Report, (i32, String)>,
        now: Micros,
    ) -> Result<()>;
    /// The tenants the job is done with.
    async fn job_tenants_done(&self, id: Uuid) -> Result<Vec<TenantNo>>;
    /// Ends the owner's job, failed if any tenant's work failed; `false` when another runner
    /// took it over.
    async fn finish_job(&self, id: Uuid, owner: &str, now: Micros) -> Result<bool>;
    /// A job with its progress.
    async fn job(&self, id: Uuid) -> Result<Option<Job>>;
    /// The most recent jobs, newest first.
    async fn jobs(&self, limit: u32) -> Result<Vec<Job>>;
    /// Why tenants' work failed in a job, at most `limit`.
    async fn job_failures(&self, id: Uuid, limit: u32) -> Result<Vec<Failure>>;
    /// Removes the ended jobs but the `keep` most recent ones.
    async fn prune_jobs(&self, keep: u32) -> Result<()>;
}

const INSERT_JOB: &str = "INSERT INTO tiering_jobs (job_id, as_of, state, created_at) \
                          VALUES ($1, $2, 'queued', $3)";
const HAS_PENDING: &str = "SELECT count(*) FROM tiering_jobs \
                           WHERE state = 'queued' OR (state = 'running' AND lease_until >= $1)";
/// The outer `WHERE` repeats the inner one's test, so a concurrent claim of the same row finds
/// it no longer claimable once the first one commits.
const CLAIM: &str = "UPDATE tiering_jobs \
     SET state = 'running', owner = $1, lease_until = $3, started_at = COALESCE(started_at, $2) \
     WHERE job_id = (SELECT job_id FROM tiering_jobs \
                     WHERE (state = 'running' AND lease_until < $2) \
                        OR (state = 'queued' AND NOT EXISTS \
                              (SELECT 1 FROM tiering_jobs WHERE state = 'running')) \
                     ORDER BY state DESC, created_at LIMIT 1) \
       AND ((state = 'running' AND lease_until < $2) OR state = 'queued') \
     RETURNING job_id, as_of";
const RENEW: &str = "UPDATE tiering_jobs SET lease_until = $3 \
                     WHERE job_id = $1 AND owner = $2 AND state = 'running' RETURNING job_id";
const SET_TENANTS: &str = "UPDATE tiering_jobs SET tenants_total = $2 WHERE job_id = $1";
const FINISH_TENANT: &str = "INSERT INTO tiering_job_tenants (job_id, tenant_no, tenant_id, \
       finished_at, rollup_buckets_written, readings_archived, objects_written, \
       hot_partitions_dropped, warm_rows_expired, cold_objects_expired, alert_events_expired, \
       error_code, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (job_id, tenant_no) DO NOTHING";
const TENANTS_DONE: &str = "SELECT tenant_no FROM tiering_job_tenants WHERE job_id = $1";
const FINISH: &str = "UPDATE tiering_jobs \
     SET state = CASE WHEN EXISTS (SELECT 1 FROM tiering_job_tenants t \
                                   WHERE t.job_id = tiering_jobs.job_id \
                                     AND t.error IS NOT NULL) \
                      THEN 'failed' ELSE 'succeeded' END, \
         finished_at = $3, lease_until = NULL \
     WHERE job_id = $1 AND owner = $2 AND state = 'running' RETURNING job_id";
/// Jobs (`$jobs`: the rows of `tiering_jobs` wanted) with their tenants' counts and sums
/// (`$tenants`: the checkpoints to read), newest first, in one pass over the checkpoints.
macro_rules! jobs_with_progress {
    ($jobs:literal, $tenants:literal) => {
        concat!(
            "SELECT j.job_id, j.state, j.as_of, j.created_at, j.started_at, j.finished_at, \
               j.tenants_total, \
               CAST(COALESCE(s.done, 0) AS BIGINT), CAST(COALESCE(s.failed, 0) AS BIGINT), \
               CAST(COALESCE(s.rollup_buckets_written, 0) AS BIGINT), \
               CAST(COALESCE(s.readings_archived, 0) AS BIGINT), \
               CAST(COALESCE(s.objects_written, 0) AS BIGINT), \
               CAST(COALESCE(s.hot_partitions_dropped, 0) AS BIGINT), \
               CAST(COALESCE(s.warm_rows_expired, 0) AS BIGINT), \
               CAST(COALESCE(s.cold_objects_expired, 0) AS BIGINT), \
               CAST(COALESCE(s.alert_events_expired, 0) AS BIGINT) \
             FROM (SELECT * FROM tiering_jobs ",
            $jobs,
            ") j LEFT JOIN (SELECT job_id, count(*) AS done, count(error) AS failed, \
               sum(rollup_buckets_written) AS rollup_buckets_written, \
               sum(readings_archived) AS readings_archived, \
               sum(objects_written) AS objects_written, \
               sum(hot_partitions_dropped) AS hot_partitions_dropped, \
               sum(warm_rows_expired) AS warm_rows_expired, \
               sum(cold_objects_expired) AS cold_objects_expired, \
               sum(alert_events_expired) AS alert_events_expired \
             FROM tiering_job_tenants ",
            $tenants,
            " GROUP BY job_id) s ON s.job_id = j.job_id \
             ORDER BY j.created_at DESC"
        )
    };
}
const SELECT_JOB: &str = jobs_with_progress!("WHERE job_id = $1", "WHERE job_id = $1");
const RECENT_JOBS: &str = jobs_with_progress!("ORDER BY created_at DESC LIMIT $1", "");
const FAILURES: &str = "SELECT tenant_id, error_code, error FROM tiering_job_tenants \
                        WHERE job_id = $1 AND error IS NOT NULL ORDER BY finished_at LIMIT $2";
/// The ended jobs from the `$1 + 1`-th most recent job back.
macro_rules! pruned {
    () => {
        "SELECT job_id FROM tiering_jobs WHERE finished_at IS NOT NULL \
           AND created_at <= (SELECT created_at FROM tiering_jobs \
                             ORDER BY created_at DESC LIMIT 1 OFFSET $1)"
    };
}
const PRUNE_TENANTS: &str = concat!(
    "DELETE FROM tiering_job_tenants WHERE job_id IN (",
    pruned!(),
    ")"
);
const PRUNE_JOBS: &str = concat!("DELETE FROM tiering_jobs WHERE job_id IN (", pruned!(), ")");

/// [`JobStore`] on a pool of either backend.
#[derive(Debug, Clone)]
pub struct SqlJobStore<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> SqlJobStore<DB> {
    /// Wraps a pool.
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

fn uuid_of(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text)
        .map_err(|e| StorageError::Internal(format!("id `{text}` in tiering_jobs: {e}")))
}

/// A job of a row of [`SELECT_JOB`] or [`RECENT_JOBS`].
fn job_of<R: sqlx::Row>(row: &R) -> Result<Job>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let state: String = row.try_get(1)?;
    let get = |i: usize| row.try_get::<i64, _>(i);
    Ok(Job {
        id: uuid_of(&row.try_get::<String, _>(0)?)?,
        state: JobState::of_name(&state).ok_or_else(|| {
            StorageError::Internal(format!("tiering job state `{state}` in the database"))
        })?,
        as_of: Micros(get(2)?),
        created_at: Micros(get(3)?),
        started_at: row.try_get::<Option<i64>, _>(4)?.map(Micros),
        finished_at: row.try_get::<Option<i64>, _>(5)?.map(Micros),
        tenants_total: count(i64::from(row.try_get::<i32, _>(6)?)),
        tenants_done: count(get(7)?),
        tenants_failed: count(get(8)?),
        report: Report {
            rollup_buckets_written: unsigned(get(9)?),
            readings_archived: unsigned(get(10)?),
            objects_written: count(get(11)?),
            hot_partitions_dropped: count(get(12)?),
            warm_rows_expired: unsigned(get(13)?),
            cold_objects_expired: count(get(14)?),
            alert_events_expired: unsigned(get(15)?),
        },
    })
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl<DB> JobStore for SqlJobStore<DB>
where
    DB: Database,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    <DB as Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i32>: sqlx::Encode<'q, DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    async fn create_job(&self, id: Uuid, as_of: Micros, now: Micros) -> Result<()> {
        sqlx::query(INSERT_JOB)
            .bind(id.to_string())
            .bind(as_of.0)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn has_pending_job(&self, now: Micros) -> Result<bool> {
        let pending: i64 = sqlx::query(HAS_PENDING)
            .bind(now.0)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(pending > 0)
    }

    async fn claim_job(
        &self,
        owner: &str,
        now: Micros,
        lease_until: Micros,
    ) -> Result<Option<(Uuid, Micros)>> {
        let claimed = sqlx::query(CLAIM)
            .bind(owner.to_owned())
            .bind(now.0)
            .bind(lease_until.0)
            .fetch_optional(&self.pool)
            .await;
        let row = match claimed {
            Ok(row) => row,
            // Another replica started a job between the look and the write.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => None,
            Err(e) => return Err(e.into()),
        };
        row.map(|row| {
            Ok((
                uuid_of(&row.try_get::<String, _>(0)?)?,
                Micros(row.try_get(1)?),
            ))
        })
        .transpose()
    }

    async fn renew_job(&self, id: Uuid, owner: &str, lease_until: Micros) -> Result<bool> {
        let renewed = sqlx::query(RENEW)
            .bind(id.to_string())
            .bind(owner.to_owned())
            .bind(lease_until.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(renewed.is_some())
    }

    async fn set_job_tenants(&self, id: Uuid, total: u32) -> Result<()> {
        sqlx::query(SET_TENANTS)
            .bind(id.to_string())
            .bind(i32::try_from(total).unwrap_or(i32::MAX))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_job_tenant(
        &self,
        id: Uuid,
        (tenant_no, tenant): (TenantNo, Uuid),
        outcome: std::result::Result<Report, (i32, String)>,
        now: Micros,
    ) -> Result<()> {
        let (report, error) = match outcome {
            Ok(report) => (report, None),
            Err(error) => (Report::default(), Some(error)),
        };
        sqlx::query(FINISH_TENANT)
            .bind(id.to_string())
            .bind(tenant_no)
            .bind(tenant.to_string())
            .bind(now.0)
            .bind(signed(report.rollup_buckets_written))
            .bind(signed(report.readings_archived))
            .bind(i64::from(report.objects_written))
            .bind(i64::from(report.hot_partitions_dropped))
            .bind(signed(report.warm_rows_expired))
            .bind(i64::from(report.cold_objects_expired))
            .bind(signed(report.alert_events_expired))
            .bind(error.as_ref().map(|(code, _)| *code))
            .bind(error.map(|(_, message)| message))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn job_tenants_done(&self, id: Uuid) -> Result<Vec<TenantNo>> {
        let rows = sqlx::query(TENANTS_DONE)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    async fn finish_job(&self, id: Uuid, owner: &str, now: Micros) -> Result<bool> {
        let finished = sqlx::query(FINISH)
            .bind(id.to_string())
            .bind(owner.to_owned())
            .bind(now.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(finished.is_some())
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(SELECT_JOB)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_of).transpose()
    }

    async fn jobs(&self, limit: u32) -> Result<Vec<Job>> {
        let rows = sqlx::query(RECENT_JOBS)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_of).collect()
    }

    async fn job_failures(&self, id: Uuid, limit: u32) -> Result<Vec<Failure>> {
        let rows = sqlx::query(FAILURES)
            .bind(id.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Failure {
                    tenant: uuid_of(&row.try_get::<String, _>(0)?)?,
                    code: row.try_get::<Option<i32>, _>(1)?.unwrap_or_default(),
                    message: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn prune_jobs(&self, keep: u32) -> Result<()> {
        // Checkpoints first: a job is never left without them while it is listed.
        for statement in [PRUNE_TENANTS, PRUNE_JOBS] {
            sqlx::query(statement)
                .bind(i64::from(keep))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
