//! The audit outbox every service keeps in its own database (decision 0014): a service writes
//! the record of an administrative action in the transaction of the action, and its
//! [`AuditRelay`](super::relay::AuditRelay) appends it to the audit log of the provisioning
//! service. Several replicas may relay from one database: rows are claimed under a lease.
//!
//! Each service's migrations create the same table under a name of its own ([`OutboxTable`]),
//! so that services sharing a database keep their records apart; times are µs since the epoch,
//! and a record of no tenant (a price-book change) has an empty `tenant_id`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::DbPool;

const RECORD: &str = "INSERT INTO {table} (event_id, tenant_id, actor, action, resource, \
     time, request_id, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (event_id) DO NOTHING";
const CLAIM: &str = "UPDATE {table} SET owner = $1, lease_until = $2 WHERE event_id IN (\
         SELECT event_id FROM {table} WHERE sent_time IS NULL \
         AND (lease_until IS NULL OR lease_until < $3) ORDER BY event_id LIMIT $4) \
     AND (lease_until IS NULL OR lease_until < $3) \
     RETURNING event_id, tenant_id, actor, action, resource, time, request_id, trace_id";
const SENT: &str = "UPDATE {table} SET sent_time = $2, owner = NULL, lease_until = NULL \
     WHERE event_id = $1";
const FORGET_SENT: &str = "DELETE FROM {table} WHERE sent_time IS NOT NULL AND sent_time < $1";

/// A service's audit outbox table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxTable(&'static str);

impl OutboxTable {
    /// The tenant service's.
    pub const TENANT: Self = Self("audit_outbox");
    /// The storage service's.
    pub const STORAGE: Self = Self("storage_audit_outbox");
    /// The cost service's.
    pub const COST: Self = Self("cost_audit_outbox");

    /// A statement of this table.
    fn sql(self, template: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(template.replace("{table}", self.0))
    }
}

/// An administrative action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its id, a UUID v7: the audit log takes a record once however often it is sent.
    pub id: Uuid,
    /// The tenant it concerns; `None` for the platform's own settings.
    pub tenant: Option<Uuid>,
    /// Who acted: `operator`, `key:<key id>` or `system`.
    pub actor: String,
    /// What was done: `<resource kind>.<verb>`.
    pub action: String,
    /// The resource's path.
    pub resource: String,
    /// When.
    pub time: DateTime<Utc>,
    /// The caller's request id.
    pub request_id: String,
    /// The trace it was part of.
    pub trace_id: String,
}

/// Writes a record to `table` in the transaction (or on the connection) of its action.
pub async fn record<'e, DB, E>(
    executor: E,
    table: OutboxTable,
    record: &AuditRecord,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    sqlx::query(table.sql(RECORD))
        .bind(record.id.to_string())
        .bind(record.tenant.map(|t| t.to_string()).unwrap_or_default())
        .bind(record.actor.clone())
        .bind(record.action.clone())
        .bind(record.resource.clone())
        .bind(record.time.timestamp_micros())
        .bind(record.request_id.clone())
        .bind(record.trace_id.clone())
        .execute(executor)
        .await?;
    Ok(())
}

/// Runs `$body` with `$p` bound to the pool of either backend.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            DbPool::Postgres($p) => $body,
            DbPool::Sqlite($p) => $body,
        }
    };
}

/// A service's audit outbox, as its relay claims, marks and forgets its rows.
#[derive(Debug, Clone)]
pub struct AuditOutbox {
    pool: DbPool,
    table: OutboxTable,
}

impl AuditOutbox {
    /// The outbox `table` in the database of `pool`.
    pub fn new(pool: DbPool, table: OutboxTable) -> Self {
        Self { pool, table }
    }

    /// Claims, for `owner` until `lease_until`, at most `limit` records not sent and not
    /// leased to another owner at `now`, in the order they were recorded.
    pub async fn claim(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let mut records = on_pool!(&self.pool, pool => sqlx::query(self.table.sql(CLAIM))
            .bind(owner.to_string())
            .bind(lease_until.timestamp_micros())
            .bind(now.timestamp_micros())
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?);
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    /// Marks records sent at `now`.
    pub async fn sent(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        for id in ids {
            on_pool!(&self.pool, pool => sqlx::query(self.table.sql(SENT))
                .bind(id.to_string())
                .bind(now.timestamp_micros())
                .execute(pool)
                .await
                .map(drop)?);
        }
        Ok(())
    }

    /// Forgets the records sent before `before`; how many.
    pub async fn forget_sent(&self, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        Ok(
            on_pool!(&self.pool, pool => sqlx::query(self.table.sql(FORGET_SENT))
            .bind(before.timestamp_micros())
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }
}

/// A claimed row as a record.
fn decode<R>(row: &R) -> Result<AuditRecord, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditRecord {
        id: uuid(row.try_get(0)?)?,
        tenant: tenant(row.try_get(1)?)?,
        actor: row.try_get(2)?,
        action: row.try_get(3)?,
        resource: row.try_get(4)?,
        time: DateTime::<Utc>::from_timestamp_micros(row.try_get(5)?).unwrap_or_default(),
        request_id: row.try_get(6)?,
        trace_id: row.try_get(7)?,
    })
}

fn uuid(text: String) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(&text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

fn tenant(text: String) -> Result<Option<Uuid>, sqlx::Error> {
    if text.is_empty() {
        Ok(None)
    } else {
        uuid(text).map(Some)
    }
}
