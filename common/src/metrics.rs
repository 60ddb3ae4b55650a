//! Prometheus metrics of a process: one registry that its services register into, served as
//! the OpenMetrics text format at `GET /metrics` on `--metrics-addr` (the gateway also serves
//! its own at its `/metrics`). Every label takes a bounded set of values: no tenant, key or
//! machine ids.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, gauge::ConstGauge},
    registry::{Metric, Registry as Inner},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::db::DbPool;

/// The content type of the metrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry of a process, shared by its services.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<Inner>>);

impl Registry {
    /// Registers a metric under `mfg_<name>`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(format!("mfg_{name}"), help, metric);
    }

    /// Registers a collector, asked for its values at each scrape.
    pub fn register_collector(&self, collector: impl Collector) {
        self.lock().register_collector(Box::new(collector));
    }

    /// Renders every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.lock()).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves `registry` at `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = registry.render();
            std::future::ready(([(http::header::CONTENT_TYPE, CONTENT_TYPE)], body))
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Reports a service's database pool at each scrape as `mfg_<service>_db_pool_connections`:
/// connections in use and idle, and the most it may open.
#[derive(Debug)]
pub struct PoolCollector {
    name: String,
    pool: Arc<std::sync::OnceLock<DbPool>>,
    max: u32,
}

impl PoolCollector {
    /// A collector of `service`'s pool, reported once the pool is set.
    pub fn new(service: &str, pool: Arc<std::sync::OnceLock<DbPool>>, max: u32) -> Self {
        Self {
            name: format!("mfg_{service}_db_pool_connections"),
            pool,
            max,
        }
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(pool) = self.pool.get() else {
            return Ok(());
        };
        let (size, idle) = match pool {
            DbPool::Postgres(pool) => (pool.size(), pool.num_idle()),
            DbPool::Sqlite(pool) => (pool.size(), pool.num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        let mut family = encoder.encode_descriptor(
            &self.name,
            "Database connections of a service's pool: in use, idle, and the most it opens",
            None,
            MetricType::Gauge,
        )?;
        for (state, value) in [
            ("in_use", size.saturating_sub(idle)),
            ("idle", idle),
            ("max", self.max),
        ] {
            let labels = [("state", state)];
            ConstGauge::new(i64::from(value)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
