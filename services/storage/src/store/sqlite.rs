//! The hot tier on SQLite, the embedded default: one `readings` table clustered by
//! `(series_id, ts)`, written in multi-row statements inside one `BEGIN IMMEDIATE` transaction
//! per group of batches.

use std::sync::OnceLock;

use chrono::NaiveDate;
use sqlx::{Row as _, SqlitePool};
use uuid::Uuid;

use super::{
    HotStore, Latest, MIGRATIONS_TABLE, Range, Row, SeriesId, SeriesKey, TenantNo, first_series_id,
};
use crate::{domain::Rollup, error::Result};

/// The hot tier on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Wraps a pool.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

const LATEST: &str = "SELECT s.metric, r.ts, r.value FROM series s \
     JOIN readings r ON r.series_id = s.series_id \
         AND r.ts = (SELECT max(ts) FROM readings WHERE series_id = s.series_id) \
     WHERE s.tenant_no = $1 AND s.machine_id = $2 ORDER BY s.metric";

const POINTS: &str = "SELECT ts, value FROM readings \
     WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";

const BUCKETS: &str = "WITH b AS ( \
       SELECT ts - (((ts % $4) + $4) % $4) AS bucket, min(value) AS lo, max(value) AS hi, \
              sum(value) AS total, count(*) AS n, max(ts) AS last_ts \
       FROM readings WHERE series_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1) \
     SELECT b.bucket, b.lo, b.hi, b.total, b.n, b.last_ts, r.value AS last \
     FROM b JOIN readings r ON r.series_id = $1 AND r.ts = b.last_ts ORDER BY b.bucket";

const SELECT_SERIES: &str =
    "SELECT series_id FROM series WHERE tenant_no = $1 AND machine_id = $2 AND metric = $3";

/// The row counts of the prepared multi-row inserts, largest first; a group is written with as
/// few statements as these sizes allow, each prepared once per connection.
const CHUNKS: [usize; 3] = [1024, 32, 1];

/// `INSERT … VALUES (…), … ON CONFLICT DO NOTHING RETURNING series_id, ts` for `rows` rows.
fn insert_sql(rows: usize) -> &'static str {
    static SQL: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = CHUNKS
        .iter()
        .position(|&n| n == rows)
        .expect("a chunk size");
    SQL[slot].get_or_init(|| {
        let values: Vec<String> = (0..rows)
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        format!(
            "INSERT INTO readings (series_id, ts, value) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING series_id, ts",
            values.join(", ")
        )
    })
}

#[async_trait::async_trait]
impl HotStore for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
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
             ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = excluded.tenant_id \
             RETURNING tenant_no",
        )
        .bind(tenant.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    async fn find_tenant(&self, tenant: Uuid) -> Result<Option<TenantNo>> {
        let row = sqlx::query("SELECT tenant_no FROM storage_tenants WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn resolve_series(&self, tenant: TenantNo, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut next: i64 =
            sqlx::query("SELECT next_series FROM storage_tenants WHERE tenant_no = $1")
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
        sqlx::query(
            "INSERT INTO hot_partitions (tenant_no, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(day.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert(&self, rows: &[Row]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut new = std::collections::HashSet::new();
        let mut rest = rows;
        while !rest.is_empty() {
            let size = CHUNKS.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(size);
            let mut query = sqlx::query(insert_sql(size));
            for row in chunk {
                query = query
                    .bind(row.series_id)
                    .bind(row.ts_micros)
                    .bind(row.value);
            }
            for inserted in query.fetch_all(&mut *tx).await? {
                new.insert((inserted.get::<i64, _>(0), inserted.get::<i64, _>(1)));
            }
            rest = tail;
        }
        tx.commit().await?;
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
                ts_micros: r.get(1),
                value: r.get(2),
            })
            .collect())
    }

    async fn points(&self, series: SeriesId, range: Range) -> Result<Vec<(i64, f64)>> {
        let rows = sqlx::query(POINTS)
            .bind(series)
            .bind(range.start_micros)
            .bind(range.end_micros)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn buckets(
        &self,
        series: SeriesId,
        range: Range,
        step_micros: i64,
    ) -> Result<Vec<(i64, Rollup)>> {
        let rows = sqlx::query(BUCKETS)
            .bind(series)
            .bind(range.start_micros)
            .bind(range.end_micros)
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
                        last_ts_micros: r.get(5),
                        last: r.get(6),
                    },
                )
            })
            .collect())
    }
}
