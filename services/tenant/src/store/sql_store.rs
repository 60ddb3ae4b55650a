//! The tenant store in plain Rust, once for both backends: [`SqlStore`] over a [`Dialect`],
//! which says how the backend migrates, begins a read-modify-write transaction and locks a row.
//! The bounds list what the store binds and reads; both backends meet them.

use std::future::Future;

use chrono::{DateTime, Utc};
use mfg_common::audit::AuditRecord;
use mfg_common::db::{DbErrorKind, SqlDialect};
use sqlx::{
    Database, Executor, FromRow, IntoArguments, Pool, Row as _, Transaction, migrate::MigrateError,
    types::Json,
};
use uuid::Uuid;

use super::{
    Change, Handoff, HandoffKind, TenantStore,
    outbox::{audited, hand_off, handoff_kind},
    sql::{self, require_live},
    tenant_row::{
        bind_changeable, bind_onboarding, machines_changed, revise, tenant_for_update, write_tenant,
    },
};
use crate::{
    domain::{
        ApiKey, KeyId, KeyRecord, Labels, Machine, MachineId, NewApiKey, Offboarding,
        OnboardingStatus, Tenant, TenantId, TenantState,
    },
    error::{Result, TenantError},
};

/// What differs between the backends.
pub trait Dialect: SqlDialect {
    /// Applies the backend's migrations.
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send;

    /// Begins a transaction that reads rows and then changes them.
    fn begin_change(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;
}

/// Tenants, keys and machines in a SQL database.
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
impl<DB> TenantStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> &'a [u8]: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<&'a [u8]>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Vec<u8>: sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> Json<&'a Labels>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Json<Vec<&'static str>>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<Uuid>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> bool: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<DateTime<Utc>>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'r> sql::TenantRow: FromRow<'r, DB::Row>,
    for<'r> sql::ApiKeyRow: FromRow<'r, DB::Row>,
    for<'r> sql::KeyRecordRow: FromRow<'r, DB::Row>,
    for<'r> sql::MachineRow: FromRow<'r, DB::Row>,
    for<'r> sql::MachineCountRow: FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
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

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_tenant(&self, tenant: &Tenant, audit: Option<&AuditRecord>) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let query = sqlx::query(sql::INSERT_TENANT)
            .bind(tenant.id.0)
            .bind(tenant.name.as_str());
        let result = bind_onboarding(
            bind_changeable(query, tenant)
                .bind(tenant.create_time)
                .bind(tenant.update_time)
                .bind(tenant.delete_time),
            tenant,
        )
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(error) if DbErrorKind::of(&error) == DbErrorKind::UniqueViolation => {
                return Err(TenantError::NameTaken(tenant.name.to_string()));
            }
            Err(error) => return Err(error.into()),
        }
        if tenant.onboarding.status == OnboardingStatus::Provisioning {
            let request_id = tenant.onboarding_request_id();
            let kind = HandoffKind::Onboard;
            hand_off(&mut tx, &request_id, tenant, tenant.create_time, kind).await?;
        }
        audited(&mut tx, audit).await?;
        let revision = revise(&mut tx, tenant.id).await?;
        tx.commit().await?;
        Ok(revision)
    }

    async fn claim_handoffs(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Handoff>> {
        let rows = sqlx::query(sql::CLAIM_HANDOFFS)
            .bind(owner.to_string())
            .bind(lease_until.timestamp_micros())
            .bind(now.timestamp_micros())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let tenant: String = row.try_get(1)?;
                Ok(Handoff {
                    request_id: row.try_get(0)?,
                    tenant: TenantId(Uuid::parse_str(&tenant).map_err(|_| {
                        TenantError::Internal(format!("corrupt tenant id `{tenant}` in the outbox"))
                    })?),
                    attempts: u32::try_from(row.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
                    kind: handoff_kind(
                        &row.try_get::<String, _>(3)?,
                        row.try_get(4)?,
                        row.try_get(5)?,
                    )?,
                })
            })
            .collect()
    }

    async fn handoff_sent(
        &self,
        handoff: &Handoff,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::HANDOFF_SENT)
            .bind(handoff.request_id.as_str())
            .bind(now.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        let run = sqlx::query(sql::RUN_OF_TENANT)
            .bind(handoff.tenant.0)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&run) > 0 {
            revise(&mut tx, handoff.tenant).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn forget_sent_handoffs(&self, before: DateTime<Utc>) -> Result<u64> {
        let forgotten = sqlx::query(sql::FORGET_SENT_HANDOFFS)
            .bind(before.timestamp_micros())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&forgotten))
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        let row: Option<sql::TenantRow> = sqlx::query_as(sql::SELECT_TENANT)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Tenant::try_from).transpose()
    }

    async fn list_tenant_changes(&self, after: i64, limit: i64) -> Result<Vec<Tenant>> {
        let rows: Vec<sql::TenantRow> = sqlx::query_as(sql::LIST_TENANT_CHANGES)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        sql::convert(rows)
    }

    async fn list_tenants(
        &self,
        after: Option<TenantId>,
        limit: i64,
        show_deleted: bool,
    ) -> Result<Vec<Tenant>> {
        let rows: Vec<sql::TenantRow> = sqlx::query_as(sql::LIST_TENANTS)
            .bind(show_deleted)
            .bind(after.map(|id| id.0))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        sql::convert(rows)
    }

    async fn update_tenant(
        &self,
        id: TenantId,
        change: Change<'_, Tenant>,
        audit: Option<&AuditRecord>,
    ) -> Result<Tenant> {
        let mut tx = DB::begin_change(&self.pool).await?;
        let current = tenant_for_update(&mut tx, id).await?;
        let mut tenant = change(current.clone())?;
        tenant.revision = write_tenant(&mut tx, &tenant).await?;
        if tenant.reconciles_from(&current) {
            let request_id = tenant.reconcile_request_id();
            let kind = HandoffKind::Reconcile;
            hand_off(&mut tx, &request_id, &tenant, tenant.update_time, kind).await?;
        }
        audited(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(tenant)
    }

    async fn delete_tenant(
        &self,
        id: TenantId,
        at: DateTime<Utc>,
        offboarding: Offboarding,
        audit: Option<&AuditRecord>,
    ) -> Result<Tenant> {
        let mut tx = DB::begin_change(&self.pool).await?;
        let mut tenant = tenant_for_update(&mut tx, id).await?;
        if tenant.state == TenantState::Deleted {
            return Ok(tenant);
        }
        tenant.state = TenantState::Deleted;
        tenant.update_time = at;
        tenant.delete_time = Some(at);
        tenant.revision = write_tenant(&mut tx, &tenant).await?;
        if tenant.onboarding.handed_off() {
            let request_id = tenant.offboarding_request_id();
            let kind = HandoffKind::Offboard(offboarding);
            hand_off(&mut tx, &request_id, &tenant, at, kind).await?;
        }
        audited(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(tenant)
    }

    async fn insert_api_key(&self, new: &NewApiKey, audit: Option<&AuditRecord>) -> Result<()> {
        let mut tx = DB::begin_change(&self.pool).await?;
        let tenant = new.key.tenant_id;
        let state: Option<String> = sqlx::query_scalar(sql::STATE_FOR_UPDATE.of::<DB>())
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        require_live(tenant, state.as_deref())?;
        sqlx::query(sql::INSERT_KEY)
            .bind(new.key.key_id.0)
            .bind(tenant.0)
            .bind(new.key.display_name.as_str())
            .bind(sql::scopes_to_json(&new.key.scopes))
            .bind(new.secret_hash.as_slice())
            .bind(new.key.create_time)
            .bind(new.key.revoke_time)
            .bind(new.sealed_secret.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(|error| match DbErrorKind::of(&error) {
                DbErrorKind::UniqueViolation => {
                    TenantError::ApiKeyExists(new.key.key_id.to_string())
                }
                _ => error.into(),
            })?;
        audited(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_api_keys(
        &self,
        tenant: TenantId,
        after: Option<KeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKey>> {
        let rows: Vec<sql::ApiKeyRow> = sqlx::query_as(sql::LIST_KEYS)
            .bind(tenant.0)
            .bind(after.map(|id| id.0))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        sql::convert(rows)
    }

    async fn get_api_key(&self, tenant: TenantId, key: KeyId) -> Result<Option<ApiKey>> {
        let row: Option<sql::ApiKeyRow> = sqlx::query_as(sql::SELECT_KEY)
            .bind(tenant.0)
            .bind(key.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(ApiKey::try_from).transpose()
    }

    async fn sealed_secret(&self, tenant: TenantId, key: KeyId) -> Result<Option<Vec<u8>>> {
        let row: Option<Option<Vec<u8>>> = sqlx::query_scalar(sql::SEALED_SECRET)
            .bind(tenant.0)
            .bind(key.0)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| TenantError::ApiKeyNotFound(key.to_string()))
    }

    async fn erase_sealed_secret(
        &self,
        tenant: TenantId,
        key: KeyId,
        sealed: &[u8],
        audit: Option<&AuditRecord>,
    ) -> Result<bool> {
        let mut tx = DB::begin_change(&self.pool).await?;
        let erased = sqlx::query(sql::ERASE_SEALED_SECRET)
            .bind(tenant.0)
            .bind(key.0)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        let claimed = DB::rows_affected(&erased) == 1;
        if claimed {
            audited(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: KeyId,
        at: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<ApiKey> {
        let mut tx = DB::begin_change(&self.pool).await?;
        sqlx::query(sql::REVOKE_KEY)
            .bind(tenant.0)
            .bind(key.0)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        let row: Option<sql::ApiKeyRow> = sqlx::query_as(sql::SELECT_KEY)
            .bind(tenant.0)
            .bind(key.0)
            .fetch_optional(&mut *tx)
            .await?;
        let key = row.ok_or_else(|| TenantError::ApiKeyNotFound(key.to_string()))?;
        audited(&mut tx, audit).await?;
        tx.commit().await?;
        key.try_into()
    }

    async fn find_key(&self, key: KeyId) -> Result<Option<KeyRecord>> {
        let row: Option<sql::KeyRecordRow> = sqlx::query_as(sql::FIND_KEY)
            .bind(key.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn insert_machine(&self, machine: &Machine, audit: Option<&AuditRecord>) -> Result<()> {
        let mut tx = DB::begin_change(&self.pool).await?;
        let tenant = machine.tenant_id;
        let row: Option<(String, i64)> = sqlx::query_as(sql::LIMIT_FOR_UPDATE.of::<DB>())
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        require_live(tenant, row.as_ref().map(|(state, _)| state.as_str()))?;
        let max = row.map_or(0, |(_, max)| max);
        let count: i64 = sqlx::query_scalar(sql::COUNT_MACHINES)
            .bind(tenant.0)
            .fetch_one(&mut *tx)
            .await?;
        if count >= max {
            return Err(TenantError::MachineLimit(
                u32::try_from(max).unwrap_or(u32::MAX),
            ));
        }
        let result = sqlx::query(sql::INSERT_MACHINE)
            .bind(tenant.0)
            .bind(machine.machine_id.as_str())
            .bind(machine.display_name.as_str())
            .bind(Json(&machine.labels))
            .bind(machine.create_time)
            .bind(machine.update_time)
            .execute(&mut *tx)
            .await;
        match result {
            Ok(_) => {}
            Err(error) if DbErrorKind::of(&error) == DbErrorKind::UniqueViolation => {
                return Err(TenantError::MachineExists(machine.machine_id.to_string()));
            }
            Err(error) => return Err(error.into()),
        }
        machines_changed(&mut tx, tenant, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_machine(&self, tenant: TenantId, id: &MachineId) -> Result<Option<Machine>> {
        let row: Option<sql::MachineRow> = sqlx::query_as(sql::SELECT_MACHINE)
            .bind(tenant.0)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Machine::try_from).transpose()
    }

    async fn list_machines(
        &self,
        tenant: TenantId,
        after: Option<&MachineId>,
        limit: i64,
    ) -> Result<Vec<Machine>> {
        let rows: Vec<sql::MachineRow> = sqlx::query_as(sql::LIST_MACHINES)
            .bind(tenant.0)
            .bind(after.map(MachineId::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        sql::convert(rows)
    }

    async fn update_machine(
        &self,
        tenant: TenantId,
        id: &MachineId,
        change: Change<'_, Machine>,
        audit: Option<&AuditRecord>,
    ) -> Result<Machine> {
        let mut tx = DB::begin_change(&self.pool).await?;
        let state: Option<String> = sqlx::query_scalar(sql::STATE_FOR_UPDATE.of::<DB>())
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        require_live(tenant, state.as_deref())?;
        let row: Option<sql::MachineRow> = sqlx::query_as(sql::MACHINE_FOR_UPDATE.of::<DB>())
            .bind(tenant.0)
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let current = row
            .ok_or_else(|| TenantError::MachineNotFound(id.to_string()))?
            .try_into()?;
        let machine = change(current)?;
        sqlx::query(sql::UPDATE_MACHINE)
            .bind(tenant.0)
            .bind(id.as_str())
            .bind(machine.display_name.as_str())
            .bind(Json(&machine.labels))
            .bind(machine.update_time)
            .execute(&mut *tx)
            .await?;
        machines_changed(&mut tx, tenant, audit).await?;
        tx.commit().await?;
        Ok(machine)
    }

    async fn machine_counts(&self) -> Result<Vec<(TenantId, u64)>> {
        let rows: Vec<sql::MachineCountRow> = sqlx::query_as(sql::MACHINE_COUNTS)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (TenantId(r.tenant_id), r.machines.max(0) as u64))
            .collect())
    }

    async fn delete_machine(
        &self,
        tenant: TenantId,
        id: &MachineId,
        audit: Option<&AuditRecord>,
    ) -> Result<bool> {
        let mut tx = DB::begin_change(&self.pool).await?;
        // The tenant's row first, as every change to its machines locks it: one order, so two
        // changes cannot deadlock.
        let _: Option<String> = sqlx::query_scalar(sql::STATE_FOR_UPDATE.of::<DB>())
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        let result = sqlx::query(sql::DELETE_MACHINE)
            .bind(tenant.0)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let existed = DB::rows_affected(&result) > 0;
        if existed {
            machines_changed(&mut tx, tenant, audit).await?;
        }
        tx.commit().await?;
        Ok(existed)
    }
}
