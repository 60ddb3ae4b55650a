//! The cost store in plain Rust, once for both backends: [`SqlStore`] over a [`Dialect`], which
//! says how the backend migrates. Times are bound as microseconds since the epoch and tenants
//! as text on both.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
};

use chrono::{DateTime, Utc};
use mfg_common::audit::{AuditRecord, OutboxTable, outbox};
use mfg_common::db::{DbErrorKind, SqlDialect};
use sqlx::{
    AssertSqlSafe, Database, Executor, IntoArguments, Pool, Row as _, migrate::MigrateError,
};
use uuid::Uuid;

use super::{
    CostStore, KeyedUsage, LATE, MIGRATIONS_TABLE, Recorded, Summed,
    buckets::{self, Grain},
    writes::{Additions, add, bump, new_keys},
};
use crate::{
    domain::{
        budget::{Basis, Breach},
        meter::{Accrual, Meter},
        price_book::{PriceBook, PriceHistory},
        report::Usage,
    },
    error::{CostError, Result},
};

const FORGET_KEYS: &str = "DELETE FROM usage_keys WHERE record_time < $1";
const FORGET_DELETIONS: &str = "DELETE FROM forgotten_tenants WHERE forget_time < $1";
const FORGET_TENANT: &str = "INSERT INTO forgotten_tenants (tenant_id, forget_time) \
     VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING";
const BUDGET: &str = "SELECT thresholds, update_time FROM budgets WHERE tenant_id = $1";
const SET_BUDGET: &str = "INSERT INTO budgets (tenant_id, thresholds, update_time) \
     VALUES ($1, $2, $3) ON CONFLICT (tenant_id) \
     DO UPDATE SET thresholds = excluded.thresholds, update_time = excluded.update_time";
/// An offboarded tenant's usage (`tenant_id = $1`), by hour, day and month.
const FORGET_USAGE: [&str; 3] = [
    "DELETE FROM usage_hours WHERE tenant_id = $1",
    "DELETE FROM usage_days WHERE tenant_id = $1",
    "DELETE FROM usage_months WHERE tenant_id = $1",
];
/// An offboarded tenant's budget and budget alerts (`tenant_id = $1`).
const FORGET_BUDGET: [&str; 2] = [
    "DELETE FROM budget_alerts WHERE tenant_id = $1",
    "DELETE FROM budgets WHERE tenant_id = $1",
];
const LEDGER_VERSION: &str = "SELECT version FROM ledger_version WHERE id = 1";
const ALL_BUDGETS: &str = "SELECT tenant_id, thresholds FROM budgets";
const CLAIM_BREACH: &str = "INSERT INTO budget_alerts \
     (tenant_id, month, basis, threshold, alert_id, claim_time) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (tenant_id, month, basis, threshold) DO UPDATE SET claim_time = excluded.claim_time \
     WHERE NOT budget_alerts.raised AND budget_alerts.claim_time < $7 \
     RETURNING alert_id";
const BREACH_RAISED: &str = "UPDATE budget_alerts SET raised = TRUE \
     WHERE tenant_id = $1 AND month = $2 AND basis = $3 AND threshold = $4";
const RAISED_BREACHES: &str =
    "SELECT tenant_id, basis, threshold FROM budget_alerts WHERE month = $1 AND raised";
const UNENDED_BREACHES: &str =
    "SELECT DISTINCT tenant_id FROM budget_alerts WHERE month < $1 AND NOT ended";
const END_BREACHES: &str =
    "UPDATE budget_alerts SET ended = TRUE WHERE tenant_id = $1 AND month < $2 AND NOT ended";
const PRICE_BOOKS: &str = "SELECT effective_from, book FROM price_books ORDER BY effective_from";
const INSERT_PRICE_BOOK: &str =
    "INSERT INTO price_books (effective_from, replaces, book) VALUES ($1, $2, $3)";

/// The buckets of a grain that start in `[$1, $2)`, of every tenant or of tenant `$3`; in
/// order of tenant, bucket and meter, or as they are found when not `ordered`.
fn buckets(grain: Grain, of_tenant: bool, ordered: bool) -> String {
    let (table, column) = grain.table();
    let tenant = if of_tenant { "AND tenant_id = $3" } else { "" };
    let order = if ordered {
        format!("ORDER BY tenant_id, {column}, meter")
    } else {
        String::new()
    };
    format!(
        "SELECT tenant_id, meter, {column}, amount FROM {table} \
         WHERE {column} >= $1 AND {column} < $2 {tenant} {order}"
    )
}

/// The sums per tenant and meter of a grain's buckets that start in `[$1, $2)`, of every
/// tenant or of tenant `$3`; not `grouped`, their rows as they are, for the caller to sum.
fn sums_of(grain: Grain, of_tenant: bool, grouped: bool) -> String {
    let (table, column) = grain.table();
    let tenant = if of_tenant { "AND tenant_id = $3" } else { "" };
    if !grouped {
        return format!(
            "SELECT tenant_id, meter, amount FROM {table} \
             WHERE {column} >= $1 AND {column} < $2 {tenant}"
        );
    }
    format!(
        "SELECT tenant_id, meter, SUM(amount) FROM {table} \
         WHERE {column} >= $1 AND {column} < $2 {tenant} GROUP BY tenant_id, meter"
    )
}

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

/// Usage and prices in a SQL database.
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
impl<DB> CostStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::Type<DB>,
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

    async fn record_usage(&self, records: &[KeyedUsage], now: DateTime<Utc>) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        let keys: Vec<&str> = records.iter().map(|r| r.idempotency_key.as_str()).collect();
        let mut new_keys = new_keys::<DB>(&mut tx, &keys, now).await?;
        // A key new to the ledger counts for its first record only.
        let mut counted = Recorded::default();
        let mut added = Additions::default();
        let mut late = false;
        for record in records {
            if new_keys.remove(&record.idempotency_key) {
                counted.recorded += 1;
                added.add(&record.usage);
                late |= record.usage.start < now - LATE;
            } else {
                counted.duplicates += 1;
            }
        }
        if late {
            bump::<DB>(&mut tx).await?;
        }
        add::<DB>(&mut tx, added).await?;
        tx.commit().await?;
        Ok(counted)
    }

    async fn record_batch(
        &self,
        key: &str,
        usage: &[Usage],
        now: DateTime<Utc>,
    ) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        let all = u32::try_from(usage.len()).unwrap_or(u32::MAX);
        if new_keys::<DB>(&mut tx, &[key], now).await?.is_empty() {
            return Ok(Recorded {
                recorded: 0,
                duplicates: all,
            });
        }
        let mut added = Additions::default();
        for one in usage {
            added.add(one);
        }
        if usage.iter().any(|u| u.start < now - LATE) {
            bump::<DB>(&mut tx).await?;
        }
        add::<DB>(&mut tx, added).await?;
        tx.commit().await?;
        Ok(Recorded {
            recorded: all,
            duplicates: 0,
        })
    }

    async fn ledger_version(&self) -> Result<i64> {
        let row = sqlx::query(LEDGER_VERSION).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    async fn bucket_amounts(
        &self,
        grain: Grain,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Summed)>> {
        let query = buckets(grain, false, false);
        let rows = sqlx::query(AssertSqlSafe(query.as_str()))
            .bind(start)
            .bind(end)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let (tenant, meter) = tenant_and_meter(row.try_get(0)?, row.try_get(1)?)?;
                Ok((
                    row.try_get(2)?,
                    Summed {
                        tenant,
                        meter,
                        amount: row.try_get(3)?,
                    },
                ))
            })
            .collect()
    }

    async fn forget_keys(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let forgotten = sqlx::query(FORGET_KEYS)
            .bind(before.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query(FORGET_DELETIONS)
            .bind(before.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&forgotten))
    }

    async fn usage(
        &self,
        grain: Grain,
        tenant: Option<Uuid>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Usage>> {
        let query = buckets(grain, tenant.is_some(), true);
        let rows = sqlx::query(AssertSqlSafe(query.as_str()))
            .bind(start.timestamp_micros())
            .bind(end.timestamp_micros())
            .bind(tenant.map(|t| t.to_string()).unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let (tenant, meter) = tenant_and_meter(row.try_get(0)?, row.try_get(1)?)?;
                Ok(usage_of_bucket(
                    grain,
                    tenant,
                    meter,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            })
            .collect()
    }

    async fn sums(
        &self,
        tenant: Option<Uuid>,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Vec<Summed>> {
        let mut sums: BTreeMap<(Uuid, Meter), f64> = BTreeMap::new();
        for piece in buckets::cover(start, end) {
            // A piece of one bucket (the open month is one, and a few minutes of the next at
            // most) has a row per tenant and meter: summed here, not sorted and grouped there.
            let one = piece.end == i64::MAX
                || piece
                    .grain
                    .next(buckets::time(piece.start))
                    .timestamp_micros()
                    == piece.end;
            let query = sums_of(piece.grain, tenant.is_some(), !one);
            let rows = sqlx::query(AssertSqlSafe(query.as_str()))
                .bind(piece.start)
                .bind(piece.end)
                .bind(tenant.map(|t| t.to_string()).unwrap_or_default())
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                let key = tenant_and_meter(row.try_get(0)?, row.try_get(1)?)?;
                *sums.entry(key).or_default() += row.try_get::<f64, _>(2)?;
            }
        }
        Ok(sums
            .into_iter()
            .map(|((tenant, meter), amount)| Summed {
                tenant,
                meter,
                amount,
            })
            .collect())
    }

    async fn budget_thresholds(&self, tenant: Uuid) -> Result<Option<(Vec<f64>, DateTime<Utc>)>> {
        let Some(row) = sqlx::query(BUDGET)
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let thresholds: String = row.try_get(0)?;
        let thresholds: Vec<f64> = serde_json::from_str(&thresholds)
            .map_err(|e| CostError::Internal(format!("stored budget thresholds: {e}")))?;
        Ok(Some((thresholds, buckets::time(row.try_get(1)?))))
    }

    async fn set_budget(
        &self,
        tenant: Uuid,
        thresholds: Option<&[f64]>,
        now: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(thresholds) = thresholds {
            let json = serde_json::to_string(thresholds)
                .map_err(|e| CostError::Internal(format!("budget thresholds to store: {e}")))?;
            sqlx::query(SET_BUDGET)
                .bind(tenant.to_string())
                .bind(json)
                .bind(now.timestamp_micros())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(record) = audit {
            outbox::record(&mut *tx, OutboxTable::COST, record).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn all_budget_thresholds(&self) -> Result<HashMap<Uuid, Vec<f64>>> {
        let rows = sqlx::query(ALL_BUDGETS).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let thresholds: String = row.try_get(1)?;
                let thresholds: Vec<f64> = serde_json::from_str(&thresholds)
                    .map_err(|e| CostError::Internal(format!("stored budget thresholds: {e}")))?;
                Ok((tenant_of(row.try_get(0)?)?, thresholds))
            })
            .collect()
    }

    async fn claim_breach(
        &self,
        breach: &Breach,
        alert_id: Uuid,
        now: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> Result<Option<Uuid>> {
        let row = sqlx::query(CLAIM_BREACH)
            .bind(breach.tenant.to_string())
            .bind(breach.month.as_str())
            .bind(breach.basis.name())
            .bind(breach.threshold.as_str())
            .bind(alert_id.to_string())
            .bind(now.timestamp_micros())
            .bind(stale.timestamp_micros())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| tenant_of(row.try_get(0)?)).transpose()
    }

    async fn breach_raised(&self, breach: &Breach) -> Result<()> {
        sqlx::query(BREACH_RAISED)
            .bind(breach.tenant.to_string())
            .bind(breach.month.as_str())
            .bind(breach.basis.name())
            .bind(breach.threshold.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn raised_breaches(&self, month: &str) -> Result<Vec<Breach>> {
        let rows = sqlx::query(RAISED_BREACHES)
            .bind(month)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let basis: String = row.try_get(1)?;
                Ok(Breach {
                    tenant: tenant_of(row.try_get(0)?)?,
                    month: month.to_owned(),
                    basis: Basis::parse(&basis).ok_or_else(|| {
                        CostError::Internal(format!("a stored budget basis `{basis}`"))
                    })?,
                    threshold: row.try_get(2)?,
                })
            })
            .collect()
    }

    async fn unended_breaches(&self, month: &str) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(UNENDED_BREACHES)
            .bind(month)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| tenant_of(row.try_get(0)?)).collect()
    }

    async fn end_breaches(&self, tenant: Uuid, month: &str) -> Result<()> {
        sqlx::query(END_BREACHES)
            .bind(tenant.to_string())
            .bind(month)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn forget_tenant(&self, tenant: Uuid, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(FORGET_TENANT)
            .bind(tenant.to_string())
            .bind(now.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        let mut usage = 0;
        for statement in FORGET_USAGE {
            let deleted = sqlx::query(statement)
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await?;
            usage += DB::rows_affected(&deleted);
        }
        for statement in FORGET_BUDGET {
            sqlx::query(statement)
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await?;
        }
        bump::<DB>(&mut tx).await?;
        tx.commit().await?;
        Ok(usage)
    }

    async fn price_history(&self) -> Result<PriceHistory> {
        let rows = sqlx::query(PRICE_BOOKS).fetch_all(&self.pool).await?;
        let books = rows
            .iter()
            .map(|row| {
                let from = buckets::time(row.try_get(0)?);
                let book: String = row.try_get(1)?;
                let book: PriceBook = serde_json::from_str(&book)
                    .map_err(|e| CostError::Internal(format!("a stored price book: {e}")))?;
                Ok((from, book))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PriceHistory::of(books))
    }

    async fn change_prices(
        &self,
        from: DateTime<Utc>,
        replaces: Option<DateTime<Utc>>,
        book: &PriceBook,
        audit: Option<&AuditRecord>,
    ) -> Result<bool> {
        let json = serde_json::to_string(book)
            .map_err(|e| CostError::Internal(format!("a price book to store: {e}")))?;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(INSERT_PRICE_BOOK)
            .bind(from.timestamp_micros())
            .bind(replaces.map_or(0, |r| r.timestamp_micros()))
            .bind(json)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if DbErrorKind::of(&e) == DbErrorKind::UniqueViolation => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if let Some(record) = audit {
            outbox::record(&mut *tx, OutboxTable::COST, record).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// A stored id (of a tenant or an alert).
fn tenant_of(id: String) -> Result<Uuid> {
    Uuid::parse_str(&id).map_err(|_| CostError::Internal(format!("a stored id `{id}`")))
}

/// A stored tenant and meter.
fn tenant_and_meter(tenant: &str, meter: &str) -> Result<(Uuid, Meter)> {
    let tenant = Uuid::parse_str(tenant)
        .map_err(|_| CostError::Internal(format!("a stored id `{tenant}`")))?;
    let meter = Meter::of_name(meter)
        .ok_or_else(|| CostError::Internal(format!("a stored meter `{meter}`")))?;
    Ok((tenant, meter))
}

/// A stored bucket as a usage record over it.
fn usage_of_bucket(grain: Grain, tenant: Uuid, meter: Meter, bucket: i64, amount: f64) -> Usage {
    let start = buckets::time(bucket);
    let end = grain.next(start);
    let seconds = (end - start).num_seconds() as f64;
    Usage {
        tenant,
        meter,
        start,
        end,
        quantity: match meter.accrual() {
            Accrual::Count => amount,
            Accrual::Level => amount / seconds,
        },
    }
}
