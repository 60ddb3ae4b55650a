//! A tenant's row inside the store's transactions: binding what can change of it, reading it
//! under a lock, writing it back, and giving it the next revision with each change to it or to
//! its machines.

use chrono::{DateTime, Utc};
use mfg_common::audit::AuditRecord;
use sqlx::{Database, Executor, FromRow, IntoArguments, Transaction, types::Json};
use uuid::Uuid;

use super::{outbox::audited, sql, sql_store::Dialect};
use crate::{
    domain::{Labels, Tenant, TenantId},
    error::{Result, TenantError},
};

/// Binds the fields of a tenant that can change, in the order both `INSERT_TENANT` and
/// `UPDATE_TENANT` expect them (after the id, and the name for an insert).
pub(super) fn bind_changeable<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    tenant: &'q Tenant,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Json<&'a Labels>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    query
        .bind(tenant.display_name.as_str())
        .bind(tenant.plan.as_str())
        .bind(tenant.state.as_str())
        .bind(Json(&tenant.labels))
        .bind(i64::from(tenant.limits.max_machines))
        .bind(i64::from(tenant.limits.ingest_readings_per_second))
        .bind(i64::from(tenant.limits.api_requests_per_second))
        .bind(i64::from(tenant.retention.hot_days))
        .bind(i64::from(tenant.retention.warm_days))
        .bind(i64::from(tenant.retention.cold_days))
        .bind(tenant.monthly_budget_usd)
}

/// Binds a tenant's onboarding, after the other fields of `INSERT_TENANT` and `UPDATE_TENANT`.
pub(super) fn bind_onboarding<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    tenant: &'q Tenant,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    query
        .bind(tenant.onboarding.status.as_str())
        .bind(tenant.onboarding.run_id.as_str())
        .bind(tenant.onboarding.error.as_str())
}

/// Reads a tenant and locks it for the rest of the transaction.
pub(super) async fn tenant_for_update<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    id: TenantId,
) -> Result<Tenant>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'r> sql::TenantRow: FromRow<'r, DB::Row>,
{
    let row: Option<sql::TenantRow> = sqlx::query_as(sql::TENANT_FOR_UPDATE.of::<DB>())
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?;
    row.ok_or_else(|| TenantError::TenantNotFound(id.to_string()))?
        .try_into()
}

/// Writes what can change of a tenant, and gives it the next revision, which it returns.
pub(super) async fn write_tenant<DB: Database>(
    tx: &mut Transaction<'_, DB>,
    tenant: &Tenant,
) -> Result<i64>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Json<&'a Labels>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<DateTime<Utc>>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Decode<'a, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let query = sqlx::query(sql::UPDATE_TENANT).bind(tenant.id.0);
    bind_onboarding(
        bind_changeable(query, tenant)
            .bind(tenant.update_time)
            .bind(tenant.delete_time),
        tenant,
    )
    .execute(&mut **tx)
    .await?;
    revise(tx, tenant.id).await
}

/// Gives a tenant the next revision, late in a transaction that changes it or its machines:
/// the counter's row stays locked until the commit, so revisions are given in commit order.
pub(super) async fn revise<DB>(tx: &mut Transaction<'_, DB>, tenant: TenantId) -> Result<i64>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let revision: i64 = sqlx::query_scalar(sql::NEXT_REVISION)
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(sql::SET_REVISION)
        .bind(tenant.0)
        .bind(revision)
        .execute(&mut **tx)
        .await?;
    Ok(revision)
}

/// What each change to a tenant's machines does besides the change: gives the tenant the next
/// revision, so that clients keeping its machines ask again, and records the audit.
pub(super) async fn machines_changed<DB>(
    tx: &mut Transaction<'static, DB>,
    tenant: TenantId,
    audit: Option<&AuditRecord>,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    revise(tx, tenant).await?;
    audited(tx, audit).await
}
