//! Recommendations from real usage: the facts of a tenant's last 30 days, gathered where they
//! are kept, priced with the book in force ([`crate::domain::recommend`]):
//! - its plan, hot retention and API limit, from the snapshot of the tenants;
//! - its registered machines and when each was registered, from the tenant service;
//! - how it used the tiers, from the storage service (`GetTenantUsageFacts`): how far back its
//!   queries read raw hot readings, its series' flat minutes and readings over the last day,
//!   its machines active in the last 7 days, the days its hot tier holds, a reading's bytes in
//!   the archive;
//! - its metered API requests and hot storage, from the ledger: the busiest hour's requests,
//!   and the hot bytes of the last whole hour.

use chrono::{DateTime, Duration, Utc};
use mfg_common::grpc::TracedChannel;
use mfg_proto::storage::v1::{self as spb, telemetry_service_client::TelemetryServiceClient};

use crate::{
    api::Ready,
    domain::{
        meter::Meter,
        recommend::{Recommendation, SeriesFacts, TenantFacts, recommend},
        report::{Plan, Usage},
    },
    error::{CostError, Result},
    store::buckets::Grain,
    tenants::Tenant,
};

/// How far back usage is looked at.
pub const WINDOW: Duration = Duration::days(30);
/// How long a registered machine must have sent nothing to be idle.
pub const IDLE: Duration = Duration::days(7);

/// Recommends, asking the storage service how tenants use the tiers.
#[derive(Debug, Clone)]
pub struct Recommender {
    storage: TelemetryServiceClient<TracedChannel>,
}

impl Recommender {
    /// Asks a client of the storage service that carries the operator token.
    pub fn new(storage: TelemetryServiceClient<TracedChannel>) -> Self {
        Self { storage }
    }

    /// A tenant's recommendations at the clock's now, largest saving first.
    pub async fn recommend(&self, ready: &Ready, tenant: &Tenant) -> Result<Vec<Recommendation>> {
        let now: DateTime<Utc> = ready.clock.system_now().into();
        let mut storage = self.storage.clone();
        let asked = storage.get_tenant_usage_facts(spb::GetTenantUsageFactsRequest {
            tenant_id: tenant.id.to_string(),
        });
        let (used, machines, metered, prices) = tokio::try_join!(
            async {
                asked
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|status| {
                        CostError::Upstream(format!(
                            "the storage service's usage facts: {:?}: {}",
                            status.code(),
                            status.message()
                        ))
                    })
            },
            ready.tenants().machines(tenant.id),
            ready
                .store()
                .usage(Grain::Hour, Some(tenant.id), now - WINDOW, now),
            ready.store().price_history(),
        )?;
        let facts = facts(tenant, &used, &machines, &metered, now);
        Ok(recommend(&facts, prices.at(now)))
    }
}

/// The facts of a tenant's last 30 days, from what each part of the platform knows.
fn facts(
    tenant: &Tenant,
    used: &spb::GetTenantUsageFactsResponse,
    machines: &[(String, DateTime<Utc>)],
    metered: &[Usage],
    now: DateTime<Utc>,
) -> TenantFacts {
    let readings_per_day: f64 = used.series.iter().map(|s| s.readings as f64).sum();
    let hot_bytes = last_whole_hour(metered, Meter::HotStorage, now);
    let hot_bytes_per_day = hot_bytes / f64::from(used.hot_days_held.max(1));
    let peak_requests_per_second = metered
        .iter()
        .filter(|u| u.meter == Meter::ApiRequests)
        .map(|u| u.quantity / (u.end - u.start).num_seconds().max(1) as f64)
        .fold(0.0, f64::max);
    let idle_machines = machines
        .iter()
        .filter(|(id, registered)| {
            *registered <= now - IDLE && !used.active_machine_ids.contains(id)
        })
        .map(|(id, _)| id.clone())
        .collect();
    TenantFacts {
        plan: tenant.plan,
        hot_days: tenant.hot_days,
        hot_bytes_per_day,
        cold_bytes_per_day: used.cold_bytes_per_reading * readings_per_day,
        readings_per_day,
        oldest_raw_read_days: used.oldest_raw_read_days,
        series: used
            .series
            .iter()
            .filter(|s| s.busy_minutes > 0)
            .map(|s| SeriesFacts {
                machine_id: s.machine_id.clone(),
                metric: s.metric.clone(),
                readings_per_day: s.readings as f64,
                flat_share: s.flat_minutes as f64 / s.busy_minutes as f64,
            })
            .collect(),
        peak_requests_per_second,
        shared_requests_per_second: f64::from(match tenant.plan {
            Plan::Shared => tenant.api_requests_per_second,
            Plan::Dedicated => mfg_common::plans::SHARED.api_requests_per_second,
        }),
        idle_machines,
    }
}

/// A level's mean over the last hour that has ended; zero when none was metered.
fn last_whole_hour(metered: &[Usage], meter: Meter, now: DateTime<Utc>) -> f64 {
    metered
        .iter()
        .filter(|u| u.meter == meter && u.end <= now)
        .max_by_key(|u| u.start)
        .map_or(0.0, |u| u.quantity)
}
