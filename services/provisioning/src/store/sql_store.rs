//! The provisioning store in plain Rust, once for both backends: [`SqlStore`] over a
//! [`Dialect`], which says how the backend migrates. Times are bound as microseconds since the
//! epoch, ids as text, on both.

use std::future::Future;

use chrono::{DateTime, Utc};
use mfg_common::db::SqlDialect;
use sqlx::{Database, Executor, IntoArguments, Pool, Row as _, migrate::MigrateError};
use uuid::Uuid;

use super::{MIGRATIONS_TABLE, ProvisioningStore};
use crate::{
    domain::{
        audit::{AuditEvent, AuditFilter},
        run::{Offboarding, Run, RunKind, RunState, Step, StepName, StepState},
        template::Template,
    },
    error::{ProvisioningError, Result},
};

const INSERT_RUN: &str = "INSERT INTO provisioning_runs \
     (run_id, tenant_id, request_id, state, not_before, create_time, update_time, kind, reported, \
     force, purge_archive) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (request_id) DO NOTHING";
const INSERT_STEP: &str = "INSERT INTO provisioning_steps \
     (run_id, ordinal, name, state, attempts, error) VALUES ($1, $2, $3, $4, $5, $6)";
const RUN_COLUMNS: &str = "run_id, tenant_id, request_id, state, not_before, create_time, \
     update_time, reported, kind, force, purge_archive";
const STEPS: &str = "SELECT name, state, attempts, error, start_time, end_time \
     FROM provisioning_steps WHERE run_id = $1 ORDER BY ordinal";
const CLAIM: &str = "UPDATE provisioning_runs SET owner = $1, lease_until = $2 \
     WHERE run_id = (SELECT run_id FROM provisioning_runs \
         WHERE (state IN ('pending', 'running', 'rolling_back') OR NOT reported) \
         AND not_before <= $3 AND (lease_until IS NULL OR lease_until < $3) \
         ORDER BY not_before LIMIT 1) \
     AND (lease_until IS NULL OR lease_until < $3) RETURNING run_id";
const SAVE_RUN: &str = "UPDATE provisioning_runs SET state = $1, not_before = $2, \
     update_time = $3, lease_until = $4, reported = $7 WHERE run_id = $5 AND owner = $6";
const SAVE_STEP: &str = "UPDATE provisioning_steps SET state = $1, attempts = $2, error = $3, \
     start_time = $4, end_time = $5 WHERE run_id = $6 AND ordinal = $7";
const RELEASE: &str = "UPDATE provisioning_runs SET owner = NULL, lease_until = NULL \
     WHERE run_id = $1 AND owner = $2";
const TEMPLATE: &str = "SELECT template, update_time FROM onboarding_template WHERE id = 1";
const INSERT_TEMPLATE: &str = "INSERT INTO onboarding_template (id, template, update_time) \
     VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING";
const UPDATE_TEMPLATE: &str = "UPDATE onboarding_template SET template = $1, update_time = $2 \
     WHERE id = 1 AND update_time = $3";
const UPDATE_UNLEASED: &str = "UPDATE provisioning_runs SET state = $1, not_before = $2, \
     update_time = $3, reported = $6 WHERE run_id = $4 AND state = $5 AND owner IS NULL";

/// What differs between the backends.
pub trait Dialect: SqlDialect {
    /// Applies the backend's migrations, recorded in [`MIGRATIONS_TABLE`].
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send;
}

impl Dialect for sqlx::Postgres {
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send {
        let migrator =
            mfg_common::db::migrator(super::migrations::POSTGRES, Some(MIGRATIONS_TABLE));
        async move { migrator.run(pool).await }
    }
}

impl Dialect for sqlx::Sqlite {
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send {
        let migrator = mfg_common::db::migrator(super::migrations::SQLITE, Some(MIGRATIONS_TABLE));
        async move { migrator.run(pool).await }
    }
}

/// Runs in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> SqlStore<DB> {
    /// Creates a store on a pool.
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl<DB> ProvisioningStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<i64>: sqlx::Encode<'a, DB>,
    for<'a> bool: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    async fn migrate(&self) -> Result<()> {
        DB::migrate(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<u64> {
        super::audit::append(&self.pool, events).await
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        super::audit::list(&self.pool, filter, before, limit).await
    }

    async fn forget_audit_before(&self, before: DateTime<Utc>) -> Result<u64> {
        super::audit::forget_before(&self.pool, before).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn start(&self, run: &Run, audit: Option<&AuditEvent>) -> Result<Run> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(INSERT_RUN)
            .bind(run.id.to_string())
            .bind(run.tenant.to_string())
            .bind(run.request_id.as_str())
            .bind(run.state.as_str())
            .bind(micros(run.not_before))
            .bind(micros(run.create_time))
            .bind(micros(run.update_time))
            .bind(run.kind.as_str())
            .bind(run.reported)
            .bind(run.offboarding.force)
            .bind(run.offboarding.purge_archive)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&inserted) == 1 {
            for (ordinal, step) in run.steps.iter().enumerate() {
                sqlx::query(INSERT_STEP)
                    .bind(run.id.to_string())
                    .bind(ordinal as i64)
                    .bind(step.name.as_str())
                    .bind(step.state.as_str())
                    .bind(i64::from(step.attempts))
                    .bind(step.error.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            super::audit::append_in(&mut tx, audit).await?;
        }
        tx.commit().await?;
        let sql = format!("SELECT {RUN_COLUMNS} FROM provisioning_runs WHERE request_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run.request_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        self.with_steps(&row).await
    }

    async fn run(&self, tenant: Uuid, id: Uuid) -> Result<Option<Run>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM provisioning_runs WHERE run_id = $1 AND tenant_id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.with_steps(&row).await?)),
            None => Ok(None),
        }
    }

    async fn runs(&self, tenant: Uuid, limit: u32, before: Option<Uuid>) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM provisioning_runs WHERE tenant_id = $1 AND run_id < $2 \
             ORDER BY run_id DESC LIMIT $3"
        );
        // Every id is a UUID's 36 characters, and sorts below `~`.
        let before = before.map_or_else(|| "~".to_owned(), |id| id.to_string());
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in &rows {
            runs.push(self.with_steps(row).await?);
        }
        Ok(runs)
    }

    async fn claim(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Run>> {
        let claimed = sqlx::query(CLAIM)
            .bind(owner.to_string())
            .bind(micros(lease_until))
            .bind(micros(now))
            .fetch_optional(&self.pool)
            .await?;
        let Some(claimed) = claimed else {
            return Ok(None);
        };
        let id: String = claimed.try_get(0)?;
        let sql = format!("SELECT {RUN_COLUMNS} FROM provisioning_runs WHERE run_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(self.with_steps(&row).await?))
    }

    async fn save(&self, run: &Run, owner: Uuid, lease_until: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let saved = sqlx::query(SAVE_RUN)
            .bind(run.state.as_str())
            .bind(micros(run.not_before))
            .bind(micros(run.update_time))
            .bind(micros(lease_until))
            .bind(run.id.to_string())
            .bind(owner.to_string())
            .bind(run.reported)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&saved) == 0 {
            return Ok(false);
        }
        save_steps::<DB>(&mut tx, run).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn release(&self, run: Uuid, owner: Uuid) -> Result<()> {
        sqlx::query(RELEASE)
            .bind(run.to_string())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_unleased(
        &self,
        run: &Run,
        was: RunState,
        audit: Option<&AuditEvent>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(UPDATE_UNLEASED)
            .bind(run.state.as_str())
            .bind(micros(run.not_before))
            .bind(micros(run.update_time))
            .bind(run.id.to_string())
            .bind(was.as_str())
            .bind(run.reported)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&updated) == 0 {
            return Ok(false);
        }
        save_steps::<DB>(&mut tx, run).await?;
        super::audit::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn template(&self) -> Result<Template> {
        let Some(row) = sqlx::query(TEMPLATE).fetch_optional(&self.pool).await? else {
            return Ok(Template::default());
        };
        let bytes: Vec<u8> = row.try_get(0)?;
        Template::decode(&bytes, time(row.try_get(1)?))
    }

    async fn set_template(
        &self,
        template: &Template,
        replaces: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
        audit: Option<&AuditEvent>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let stored = match replaces {
            None => {
                sqlx::query(INSERT_TEMPLATE)
                    .bind(template.encode())
                    .bind(micros(at))
                    .execute(&mut *tx)
                    .await?
            }
            Some(replaces) => {
                sqlx::query(UPDATE_TEMPLATE)
                    .bind(template.encode())
                    .bind(micros(at))
                    .bind(micros(replaces))
                    .execute(&mut *tx)
                    .await?
            }
        };
        let changed = DB::rows_affected(&stored) == 1;
        if changed {
            super::audit::append_in(&mut tx, audit).await?;
            tx.commit().await?;
        }
        Ok(changed)
    }
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> bool: sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    /// The run of a row of [`RUN_COLUMNS`], with its steps read.
    async fn with_steps(&self, row: &DB::Row) -> Result<Run> {
        let id: String = row.try_get(0)?;
        let steps = sqlx::query(STEPS)
            .bind(id.clone())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(step::<DB>)
            .collect::<Result<Vec<_>>>()?;
        let state: String = row.try_get(3)?;
        let kind: String = row.try_get(8)?;
        Ok(Run {
            id: uuid(&id)?,
            tenant: uuid(&row.try_get::<String, _>(1)?)?,
            request_id: row.try_get(2)?,
            state: RunState::parse(&state).ok_or_else(|| corrupt("run state", &state))?,
            steps,
            not_before: time(row.try_get(4)?),
            create_time: time(row.try_get(5)?),
            update_time: time(row.try_get(6)?),
            reported: row.try_get(7)?,
            kind: RunKind::parse(&kind).ok_or_else(|| corrupt("run kind", &kind))?,
            offboarding: Offboarding {
                force: row.try_get(9)?,
                purge_archive: row.try_get(10)?,
            },
        })
    }
}

/// Stores every step of `run`.
async fn save_steps<DB>(tx: &mut sqlx::Transaction<'_, DB>, run: &Run) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<i64>: sqlx::Encode<'a, DB>,
{
    for (ordinal, step) in run.steps.iter().enumerate() {
        sqlx::query(SAVE_STEP)
            .bind(step.state.as_str())
            .bind(i64::from(step.attempts))
            .bind(step.error.as_str())
            .bind(step.start_time.map(micros))
            .bind(step.end_time.map(micros))
            .bind(run.id.to_string())
            .bind(ordinal as i64)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A step of a row of [`STEPS`].
fn step<DB>(row: &DB::Row) -> Result<Step>
where
    DB: Database,
    for<'a> String: sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let name: String = row.try_get(0)?;
    let state: String = row.try_get(1)?;
    Ok(Step {
        name: StepName::parse(&name).ok_or_else(|| corrupt("step", &name))?,
        state: StepState::parse(&state).ok_or_else(|| corrupt("step state", &state))?,
        attempts: u32::try_from(row.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
        error: row.try_get(3)?,
        start_time: row.try_get::<Option<i64>, _>(4)?.map(time),
        end_time: row.try_get::<Option<i64>, _>(5)?.map(time),
    })
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| corrupt("id", text))
}

fn corrupt(what: &str, value: &str) -> ProvisioningError {
    ProvisioningError::Internal(format!("the store holds an unknown {what}: `{value}`"))
}
