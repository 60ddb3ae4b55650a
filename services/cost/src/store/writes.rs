//! The ledger's write path, once for both backends: a transaction records the idempotency keys
//! it is given and learns which are new, then adds each new record's usage to the hours it
//! spans and to their days and months, each bucket once, many buckets a statement; late usage
//! bumps the ledger's version ([`super::LATE`]).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Database, Executor, IntoArguments, Row as _};
use uuid::Uuid;

use super::{
    buckets::{self, Grain},
    sql_store::Dialect,
};
use crate::{
    domain::{
        meter::{Accrual, Meter},
        report::Usage,
    },
    error::Result,
};

const BUMP_LEDGER_VERSION: &str = "UPDATE ledger_version SET version = version + 1 WHERE id = 1";

/// The most idempotency keys one statement records.
const KEYS_PER_STATEMENT: usize = 500;

/// Records `rows` idempotency keys with their time (two parameters a key), returning those
/// that were not recorded before: another transaction's key waits for it to end, and then is
/// not returned.
fn insert_keys(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| format!("(${}, ${})", 2 * r + 1, 2 * r + 2))
        .collect();
    format!(
        "INSERT INTO usage_keys (idempotency_key, record_time) VALUES {} \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
        values.join(", ")
    )
}

/// The most buckets one statement adds to: 2,000 parameters, well under both backends' limits.
const BUCKETS_PER_STATEMENT: usize = 500;

/// Adds to `rows` buckets of a grain's table (each bucket once), four parameters a bucket.
/// (The tables' names come from [`Grain`], never from a request.)
fn add_to(grain: Grain, rows: usize) -> String {
    let (table, column) = grain.table();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = 4 * r;
            format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
        })
        .collect();
    format!(
        "INSERT INTO {table} (tenant_id, meter, {column}, amount) VALUES {} \
         ON CONFLICT (tenant_id, {column}, meter) \
         DO UPDATE SET amount = {table}.amount + excluded.amount",
        values.join(", ")
    )
}

/// An hour in µs.
const HOUR_MICROS: i64 = 3_600_000_000;

/// Records idempotency keys in a transaction; returns those that were not recorded before.
pub(super) async fn new_keys<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    keys: &[&str],
    now: DateTime<Utc>,
) -> Result<HashSet<String>>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Decode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut new = HashSet::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let insert = insert_keys(chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(insert.as_str()));
        for key in chunk {
            query = query.bind(*key).bind(now.timestamp_micros());
        }
        for row in query.fetch_all(&mut **tx).await? {
            new.insert(row.try_get(0)?);
        }
    }
    Ok(new)
}

/// Bumps the ledger's version in a transaction that records late usage.
pub(super) async fn bump<DB>(tx: &mut sqlx::Transaction<'_, DB>) -> Result<()>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
{
    sqlx::query(BUMP_LEDGER_VERSION).execute(&mut **tx).await?;
    Ok(())
}

/// The tenants whose costs were deleted.
const FORGOTTEN_TENANTS: &str = "SELECT tenant_id FROM forgotten_tenants";

/// Adds usage to its hours, days and months in a transaction.
pub(super) async fn add<DB>(tx: &mut sqlx::Transaction<'_, DB>, added: Additions) -> Result<()>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> String: sqlx::Decode<'a, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    // The usage of a tenant whose costs were deleted is dropped: a flush taken before.
    let forgotten: Vec<String> = sqlx::query_scalar(FORGOTTEN_TENANTS)
        .fetch_all(&mut **tx)
        .await?;
    let forgotten: HashSet<Uuid> = forgotten.iter().filter_map(|t| t.parse().ok()).collect();
    let mut added = added;
    added.drop_tenants(&forgotten);
    for (grain, buckets) in added.0 {
        let buckets: Vec<_> = buckets.into_iter().collect();
        for chunk in buckets.chunks(BUCKETS_PER_STATEMENT) {
            let add = add_to(grain, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(add.as_str()));
            for ((tenant, meter, bucket), amount) in chunk {
                query = query
                    .bind(tenant.to_string())
                    .bind(meter.name())
                    .bind(*bucket)
                    .bind(*amount);
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// The amounts a transaction adds, per grain and bucket, so that each bucket is written once.
#[derive(Default)]
pub(super) struct Additions(BTreeMap<Grain, BTreeMap<(Uuid, Meter, i64), f64>>);

impl Additions {
    /// Drops the usage of `tenants`.
    fn drop_tenants(&mut self, tenants: &HashSet<Uuid>) {
        if tenants.is_empty() {
            return;
        }
        for buckets in self.0.values_mut() {
            buckets.retain(|(tenant, _, _), _| !tenants.contains(tenant));
        }
    }

    /// Adds a record's usage to the hours it spans, and to their days and months.
    pub(super) fn add(&mut self, usage: &Usage) {
        for (hour, amount) in hourly(usage) {
            let hour_start = buckets::time(hour);
            for grain in [Grain::Hour, Grain::Day, Grain::Month] {
                let bucket = grain.floor(hour_start).timestamp_micros();
                *self
                    .0
                    .entry(grain)
                    .or_default()
                    .entry((usage.tenant, usage.meter, bucket))
                    .or_default() += amount;
            }
        }
    }
}

/// A record's usage in each hour it spans, as `(hour start µs, amount)`: a count in proportion
/// to the part of its interval in the hour (all of it in its hour for an instant), a level
/// times the seconds it was held in the hour.
fn hourly(usage: &Usage) -> Vec<(i64, f64)> {
    let (start, end) = (usage.start.timestamp_micros(), usage.end.timestamp_micros());
    let first = start.div_euclid(HOUR_MICROS) * HOUR_MICROS;
    if end <= start {
        return match usage.meter.accrual() {
            Accrual::Count => vec![(first, usage.quantity)],
            Accrual::Level => Vec::new(),
        };
    }
    (0..)
        .map(|i| first + i * HOUR_MICROS)
        .take_while(|&hour| hour < end)
        .map(|hour| {
            let inside = (end.min(hour + HOUR_MICROS) - start.max(hour)) as f64;
            let amount = match usage.meter.accrual() {
                Accrual::Count => usage.quantity * inside / (end - start) as f64,
                Accrual::Level => usage.quantity * inside / 1e6,
            };
            (hour, amount)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone as _};

    use super::*;

    fn usage(meter: Meter, start: DateTime<Utc>, minutes: i64, quantity: f64) -> Usage {
        Usage {
            tenant: Uuid::nil(),
            meter,
            start,
            end: start + Duration::minutes(minutes),
            quantity,
        }
    }

    #[test]
    fn a_record_is_split_over_the_hours_it_spans() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 0).unwrap();
        let hour = |h: u32| {
            Utc.with_ymd_and_hms(2026, 12, 4, h, 0, 0)
                .unwrap()
                .timestamp_micros()
        };
        // 90 minutes from 10:30: a third in the 10:00 hour, two thirds in the 11:00 hour.
        assert_eq!(
            hourly(&usage(Meter::ApiRequests, at, 90, 300.0)),
            [(hour(10), 100.0), (hour(11), 200.0)]
        );
        // A level of 2 bytes held for 90 minutes: 3,600 byte-seconds, then 7,200.
        assert_eq!(
            hourly(&usage(Meter::HotStorage, at, 90, 2.0)),
            [(hour(10), 3_600.0), (hour(11), 7_200.0)]
        );
        assert_eq!(
            hourly(&usage(Meter::ApiRequests, at, 0, 5.0)),
            [(hour(10), 5.0)]
        );
        assert!(hourly(&usage(Meter::HotStorage, at, 0, 5.0)).is_empty());
    }
}
