//! The audit outbox's rows as the store writes, claims and forgets them (decision 0014).

use chrono::{DateTime, Utc};
use sqlx::{Database, Executor, IntoArguments, Pool, Row as _};
use uuid::Uuid;

use super::AuditRecord;
use crate::{
    domain::TenantId,
    error::{Result, TenantError},
};

const RECORD: &str = "INSERT INTO audit_outbox (event_id, tenant_id, actor, action, resource, \
     time, request_id, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const CLAIM: &str = "UPDATE audit_outbox SET owner = $1, lease_until = $2 WHERE event_id IN (\
         SELECT event_id FROM audit_outbox WHERE sent_time IS NULL \
         AND (lease_until IS NULL OR lease_until < $3) ORDER BY event_id LIMIT $4) \
     AND (lease_until IS NULL OR lease_until < $3) \
     RETURNING event_id, tenant_id, actor, action, resource, time, request_id, trace_id";
const SENT: &str = "UPDATE audit_outbox SET sent_time = $2, owner = NULL, lease_until = NULL \
     WHERE event_id = $1";
const FORGET_SENT: &str = "DELETE FROM audit_outbox WHERE sent_time IS NOT NULL AND sent_time < $1";

/// Records an action.
pub(super) async fn record<DB>(pool: &Pool<DB>, record: &AuditRecord) -> Result<()>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    sqlx::query(RECORD)
        .bind(record.id.to_string())
        .bind(record.tenant.to_string())
        .bind(record.actor.clone())
        .bind(record.action.clone())
        .bind(record.resource.clone())
        .bind(record.time.timestamp_micros())
        .bind(record.request_id.clone())
        .bind(record.trace_id.clone())
        .execute(pool)
        .await?;
    Ok(())
}

/// Claims records due for `owner`.
pub(super) async fn claim<DB>(
    pool: &Pool<DB>,
    owner: Uuid,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AuditRecord>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let rows = sqlx::query(CLAIM)
        .bind(owner.to_string())
        .bind(lease_until.timestamp_micros())
        .bind(now.timestamp_micros())
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut records = rows
        .iter()
        .map(|row| {
            Ok(AuditRecord {
                id: uuid(&row.try_get::<String, _>(0)?)?,
                tenant: TenantId(uuid(&row.try_get::<String, _>(1)?)?),
                actor: row.try_get(2)?,
                action: row.try_get(3)?,
                resource: row.try_get(4)?,
                time: DateTime::<Utc>::from_timestamp_micros(row.try_get(5)?).unwrap_or_default(),
                request_id: row.try_get(6)?,
                trace_id: row.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    records.sort_by_key(|r| r.id);
    Ok(records)
}

/// Marks records sent.
pub(super) async fn sent<DB>(pool: &Pool<DB>, ids: &[Uuid], now: DateTime<Utc>) -> Result<()>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    for id in ids {
        sqlx::query(SENT)
            .bind(id.to_string())
            .bind(now.timestamp_micros())
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Forgets the records sent before `before`; how many.
pub(super) async fn forget_sent<DB>(pool: &Pool<DB>, before: DateTime<Utc>) -> Result<u64>
where
    DB: Database + mfg_common::db::SqlDialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let done = sqlx::query(FORGET_SENT)
        .bind(before.timestamp_micros())
        .execute(pool)
        .await?;
    Ok(DB::rows_affected(&done))
}

fn uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| TenantError::Internal(format!("corrupt id `{text}` in the audit outbox")))
}
