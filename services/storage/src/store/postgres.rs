//! The hot tier on PostgreSQL: readings partitioned by tenant (a range of series ids), then by
//! day; partitions created on demand and ahead of time.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, PgPool, Row as _};
use uuid::Uuid;

use super::{
    HotStore, Latest, MIGRATIONS_TABLE, Range, Row, SeriesId, SeriesKey, TenantNo, first_series_id,
    to_datetime,
};
use crate::{domain::Rollup, error::Result};

/// The hot tier on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Wraps a pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const INSERT: &str = "INSERT INTO readings (series_id, ts, value) \
     SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[]) \
     ON CONFLICT DO NOTHING RETURNING series_id, ts";

const LATEST: &str = "SELECT s.metric, r.ts, r.value FROM series s \
     CROSS JOIN LATERAL (SELECT ts, value FROM readings \
         WHERE series_id = s.series_id ORDER BY ts DESC LIMIT 1) r \
     WHERE s.tenant_no = $1 AND s.machine_id = $2 ORDER BY s.metric";

const POINTS: &str = "SELECT ts, value FROM readings \
     WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";

const BUCKETS: &str = "WITH b AS ( \
       SELECT us - mod(mod(us, $4) + $4, $4) AS bucket, min(value) AS lo, max(value) AS hi, \
              sum(value) AS total, count(*) AS n, max(ts) AS last_ts \
       FROM (SELECT (extract(epoch FROM ts) * 1000000)::int8 AS us, ts, value FROM readings \
             WHERE series_id = $1 AND ts >= $2 AND ts < $3) raw \
       GROUP BY 1) \
     SELECT b.bucket, b.lo, b.hi, b.total, b.n, b.last_ts, r.value AS last \
     FROM b JOIN readings r ON r.series_id = $1 AND r.ts = b.last_ts ORDER BY b.bucket";

const SELECT_SERIES: &str =
    "SELECT series_id FROM series WHERE tenant_no = $1 AND machine_id = $2 AND metric = $3";

fn micros(ts: DateTime<Utc>) -> i64 {
    ts.timestamp_micros()
}

#[async_trait::async_trait]
impl HotStore for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn register_tenant(&self, tenant: Uuid) -> Result<TenantNo> {
        if let Some(no) = self.find_tenant(tenant).await? {
            return Ok(no);
        }
        let row = sqlx::query(
            "INSERT INTO storage_tenants (tenant_id) VALUES ($1) \
             ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id \
             RETURNING tenant_no",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    async fn find_tenant(&self, tenant: Uuid) -> Result<Option<TenantNo>> {
        let row = sqlx::query("SELECT tenant_no FROM storage_tenants WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn resolve_series(&self, tenant: TenantNo, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        let mut tx = self.pool.begin().await?;
        // Locking the tenant's row serializes id allocation per tenant.
        let mut next: i64 =
            sqlx::query("SELECT next_series FROM storage_tenants WHERE tenant_no = $1 FOR UPDATE")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        let allocated = next;
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            let found = sqlx::query(SELECT_SERIES)
                .bind(tenant)
                .bind(&key.machine_id)
                .bind(&key.metric)
                .fetch_optional(&mut *tx)
                .await?;
            let id = match found {
                Some(row) => row.get(0),
                None => {
                    let id = first_series_id(tenant) + next;
                    next += 1;
                    sqlx::query(
                        "INSERT INTO series (series_id, tenant_no, machine_id, metric) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(tenant)
                    .bind(&key.machine_id)
                    .bind(&key.metric)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            ids.push(id);
        }
        if next != allocated {
            sqlx::query("UPDATE storage_tenants SET next_series = $2 WHERE tenant_no = $1")
                .bind(tenant)
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn find_series(&self, tenant: TenantNo, key: &SeriesKey) -> Result<Option<SeriesId>> {
        let row = sqlx::query(SELECT_SERIES)
            .bind(tenant)
            .bind(&key.machine_id)
            .bind(&key.metric)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn ensure_day(&self, tenant: TenantNo, day: NaiveDate) -> Result<()> {
        let next = day.succ_opt().unwrap_or(day);
        let lower = first_series_id(tenant);
        let upper = first_series_id(tenant + 1);
        let tenant_table = format!("readings_t{tenant}");
        let day_table = format!("readings_t{tenant}_{}", day.format("%Y%m%d"));
        let mut tx = self.pool.begin().await?;
        // Two writers creating the same partition wait for each other instead of failing.
        sqlx::query("SELECT pg_advisory_xact_lock(4242, $1)")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {tenant_table} PARTITION OF readings \
             FOR VALUES FROM ({lower}) TO ({upper}) PARTITION BY RANGE (ts)"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {day_table} PARTITION OF {tenant_table} \
             FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO hot_partitions (tenant_no, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert(&self, rows: &[Row]) -> Result<Vec<bool>> {
        let series: Vec<i64> = rows.iter().map(|r| r.series_id).collect();
        let ts: Vec<DateTime<Utc>> = rows.iter().map(|r| to_datetime(r.ts_micros)).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
        let inserted = sqlx::query(INSERT)
            .bind(series)
            .bind(ts)
            .bind(values)
            .fetch_all(&self.pool)
            .await?;
        if inserted.len() == rows.len() {
            return Ok(vec![true; rows.len()]);
        }
        let new: HashSet<(i64, i64)> = inserted
            .iter()
            .map(|r| (r.get::<i64, _>(0), micros(r.get(1))))
            .collect();
        Ok(rows
            .iter()
            .map(|r| new.contains(&(r.series_id, r.ts_micros)))
            .collect())
    }

    async fn latest(&self, tenant: TenantNo, machine_id: &str) -> Result<Vec<Latest>> {
        let rows = sqlx::query(LATEST)
            .bind(tenant)
            .bind(machine_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Latest {
                metric: r.get(0),
                ts_micros: micros(r.get(1)),
                value: r.get(2),
            })
            .collect())
    }

    async fn points(&self, series: SeriesId, range: Range) -> Result<Vec<(i64, f64)>> {
        let rows = sqlx::query(POINTS)
            .bind(series)
            .bind(to_datetime(range.start_micros))
            .bind(to_datetime(range.end_micros))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (micros(r.get(0)), r.get(1))).collect())
    }

    async fn buckets(
        &self,
        series: SeriesId,
        range: Range,
        step_micros: i64,
    ) -> Result<Vec<(i64, Rollup)>> {
        let rows = sqlx::query(BUCKETS)
            .bind(series)
            .bind(to_datetime(range.start_micros))
            .bind(to_datetime(range.end_micros))
            .bind(step_micros)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    Rollup {
                        min: r.get(1),
                        max: r.get(2),
                        sum: r.get(3),
                        count: r.get::<i64, _>(4) as u64,
                        last_ts_micros: micros(r.get(5)),
                        last: r.get(6),
                    },
                )
            })
            .collect())
    }
}
