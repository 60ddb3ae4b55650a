//! The audit log's table, for both backends: appended to, read newest first by filter, and
//! dropped by age.

use chrono::{DateTime, Utc};
use sqlx::{Database, Executor, IntoArguments, Pool, Row as _, Transaction};
use uuid::Uuid;

use crate::{
    domain::audit::{AuditEvent, AuditFilter},
    error::{ProvisioningError, Result},
};

const APPEND: &str = "INSERT INTO audit_events (event_id, tenant_id, actor, action, resource, \
     time, request_id, trace_id, service) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (event_id) DO NOTHING";
/// `$1` tenant (empty: all), `$2` action (empty: all; else it or its kind's), `$3`..`$4` the
/// times, `$5` the page's last id (empty: the first page), `$6` the page's size.
const LIST: &str = "SELECT event_id, tenant_id, actor, action, resource, time, request_id, \
     trace_id, service FROM audit_events \
     WHERE ($1 = '' OR tenant_id = $1) \
     AND ($2 = '' OR action = $2 OR substr(action, 1, length($2) + 1) = $2 || '.') \
     AND time >= $3 AND time < $4 AND ($5 = '' OR event_id < $5) \
     ORDER BY event_id DESC LIMIT $6";
const FORGET_BEFORE: &str = "DELETE FROM audit_events WHERE time < $1";

/// Appends events; returns how many were new.
pub(super) async fn append<DB>(pool: &Pool<DB>, events: &[AuditEvent]) -> Result<u64>
where
    DB: Database + mfg_common::db::SqlDialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut tx = pool.begin().await?;
    let appended = append_in(&mut tx, events).await?;
    tx.commit().await?;
    Ok(appended)
}

/// Appends events in a transaction (of the action they record); returns how many were new.
pub(super) async fn append_in<'e, DB>(
    tx: &mut Transaction<'_, DB>,
    events: impl IntoIterator<Item = &'e AuditEvent>,
) -> Result<u64>
where
    DB: Database + mfg_common::db::SqlDialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut appended = 0;
    for event in events {
        let done = sqlx::query(APPEND)
            .bind(event.id.to_string())
            .bind(event.tenant.map(|t| t.to_string()).unwrap_or_default())
            .bind(event.actor.clone())
            .bind(event.action.clone())
            .bind(event.resource.clone())
            .bind(event.time.timestamp_micros())
            .bind(event.request_id.clone())
            .bind(event.trace_id.clone())
            .bind(event.service.clone())
            .execute(&mut **tx)
            .await?;
        appended += DB::rows_affected(&done);
    }
    Ok(appended)
}

/// The events `filter` admits, newest first, older than `before` when given, at most `limit`.
pub(super) async fn list<DB>(
    pool: &Pool<DB>,
    filter: &AuditFilter,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<AuditEvent>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let rows = sqlx::query(LIST)
        .bind(filter.tenant.map(|t| t.to_string()).unwrap_or_default())
        .bind(filter.action.clone())
        .bind(filter.start.map_or(i64::MIN, |t| t.timestamp_micros()))
        .bind(filter.end.map_or(i64::MAX, |t| t.timestamp_micros()))
        .bind(before.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get(0)?;
            let tenant: String = row.try_get(1)?;
            Ok(AuditEvent {
                id: uuid(&id)?,
                tenant: (!tenant.is_empty()).then(|| uuid(&tenant)).transpose()?,
                actor: row.try_get(2)?,
                action: row.try_get(3)?,
                resource: row.try_get(4)?,
                time: DateTime::<Utc>::from_timestamp_micros(row.try_get(5)?).unwrap_or_default(),
                request_id: row.try_get(6)?,
                trace_id: row.try_get(7)?,
                service: row.try_get(8)?,
            })
        })
        .collect()
}

/// Drops the events recorded before `before`; returns how many went.
pub(super) async fn forget_before<DB>(pool: &Pool<DB>, before: DateTime<Utc>) -> Result<u64>
where
    DB: Database + mfg_common::db::SqlDialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let done = sqlx::query(FORGET_BEFORE)
        .bind(before.timestamp_micros())
        .execute(pool)
        .await?;
    Ok(DB::rows_affected(&done))
}

fn uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| ProvisioningError::Internal(format!("corrupt id `{text}` in the audit log")))
}
