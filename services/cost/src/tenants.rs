//! The tenants as far as cost goes, read from the tenant service: who they are, their plan,
//! their budget, and when they were created and deleted (a deleted tenant still pays for the
//! part of a period it lived in).
//!
//! The cost service keeps a snapshot of them, refreshed in the background every few seconds
//! ([`Directory::refresh_every`]) and at once when a request names a tenant the snapshot does
//! not have yet, so that a report reads no other service on its way. A plan or budget changed
//! at the tenant service is seen within the refresh interval.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use mfg_common::{grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::tenant::v1::{self as pb, tenant_service_client::TenantServiceClient};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::{
    domain::report::Plan,
    error::{CostError, Result},
};

/// The largest page the tenant service gives.
const PAGE_SIZE: i32 = 1_000;

/// A tenant, as far as cost goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Its id.
    pub id: Uuid,
    /// Its plan.
    pub plan: Plan,
    /// Its monthly budget in USD; zero for none.
    pub monthly_budget_usd: f64,
    /// How many days its raw readings stay in the hot tier.
    pub hot_days: u32,
    /// Its limit of API requests a second at the gateway.
    pub api_requests_per_second: u32,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was deleted, if it was.
    pub deleted: Option<DateTime<Utc>>,
}

impl Tenant {
    /// Whether it lived at some moment of `[start, end)`.
    pub fn lived_in(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.created < end && self.deleted.is_none_or(|deleted| deleted > start)
    }
}

/// The snapshot of the tenants, and the client that refreshes it.
#[derive(Debug)]
pub struct Directory {
    client: TenantServiceClient<TracedChannel>,
    snapshot: RwLock<Arc<Vec<Tenant>>>,
    refreshing: Mutex<()>,
}

impl Directory {
    /// A directory over the tenant service's client, empty until refreshed.
    pub fn new(client: TenantServiceClient<TracedChannel>) -> Self {
        Self {
            client,
            snapshot: RwLock::default(),
            refreshing: Mutex::new(()),
        }
    }

    /// A directory over the tenant service's client that starts from `tenants`.
    pub fn starting_with(client: TenantServiceClient<TracedChannel>, tenants: Vec<Tenant>) -> Self {
        Self {
            client,
            snapshot: RwLock::new(Arc::new(tenants)),
            refreshing: Mutex::new(()),
        }
    }

    /// Every tenant, deleted ones included, in creation order.
    pub async fn all(&self) -> Arc<Vec<Tenant>> {
        self.snapshot.read().await.clone()
    }

    /// The tenant of `id`, refreshing the snapshot once when it does not have it; `None` for
    /// a tenant that does not exist.
    pub async fn get(&self, id: Uuid) -> Result<Option<Tenant>> {
        let find = |tenants: &[Tenant]| tenants.iter().find(|t| t.id == id).cloned();
        if let Some(tenant) = find(&self.all().await) {
            return Ok(Some(tenant));
        }
        self.refresh().await?;
        Ok(find(&self.all().await))
    }

    /// Reads every tenant from the tenant service and replaces the snapshot. Concurrent
    /// callers wait for one read rather than each making their own.
    pub async fn refresh(&self) -> Result<()> {
        let before = self.all().await;
        let _one = self.refreshing.lock().await;
        if !Arc::ptr_eq(&self.all().await, &before) {
            return Ok(());
        }
        let tenants = self.read_all().await?;
        *self.snapshot.write().await = Arc::new(tenants);
        Ok(())
    }

    /// Sets a tenant's monthly budget at the tenant service, which keeps it, and refreshes the
    /// snapshot; the tenant as it is now.
    pub async fn set_monthly_budget(
        &self,
        id: Uuid,
        usd: f64,
        asker: &mfg_common::audit::Asker,
    ) -> Result<Option<Tenant>> {
        let mut client = self.client.clone();
        let updated = client
            .update_tenant(asker.passed_on(pb::UpdateTenantRequest {
                tenant_id: id.to_string(),
                tenant: Some(pb::Tenant {
                    monthly_budget_usd: usd,
                    ..Default::default()
                }),
                update_mask: Some(pbjson_types::FieldMask {
                    paths: vec!["monthly_budget_usd".to_owned()],
                }),
            }))
            .await;
        match updated {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => {
                return Err(CostError::Unavailable(format!(
                    "the tenant service: {}",
                    status.message()
                )));
            }
        }
        let tenants = self.read_all().await?;
        let tenant = tenants.iter().find(|t| t.id == id).cloned();
        *self.snapshot.write().await = Arc::new(tenants);
        Ok(tenant)
    }

    /// Refreshes the snapshot every `interval` until `shutdown`; a failed refresh keeps the
    /// last snapshot and is logged.
    pub async fn refresh_every(&self, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "could not refresh the tenants from the tenant service");
            }
        }
    }

    /// A tenant's registered machines, with when each was registered.
    pub async fn machines(&self, id: Uuid) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut client = self.client.clone();
        let mut machines = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_machines(pb::ListMachinesRequest {
                    tenant_id: id.to_string(),
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await
                .map_err(|status| {
                    CostError::Unavailable(format!("the tenant service: {}", status.message()))
                })?
                .into_inner();
            for machine in page.machines {
                let created = time(machine.create_time).unwrap_or(DateTime::<Utc>::MIN_UTC);
                machines.push((machine.machine_id, created));
            }
            if page.next_page_token.is_empty() {
                return Ok(machines);
            }
            page_token = page.next_page_token;
        }
    }

    async fn read_all(&self) -> Result<Vec<Tenant>> {
        let mut client = self.client.clone();
        let mut tenants = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_tenants(pb::ListTenantsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    show_deleted: true,
                })
                .await
                .map_err(|status| {
                    CostError::Unavailable(format!("the tenant service: {}", status.message()))
                })?
                .into_inner();
            for tenant in page.tenants {
                tenants.push(tenant_of(tenant)?);
            }
            if page.next_page_token.is_empty() {
                return Ok(tenants);
            }
            page_token = page.next_page_token;
        }
    }
}

fn time(t: Option<pbjson_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

fn tenant_of(tenant: pb::Tenant) -> Result<Tenant> {
    Ok(Tenant {
        id: Uuid::parse_str(&tenant.id).map_err(|_| {
            CostError::Internal(format!("the tenant service gave the id `{}`", tenant.id))
        })?,
        plan: match tenant.plan() {
            pb::Plan::Dedicated => Plan::Dedicated,
            pb::Plan::Shared | pb::Plan::Unspecified => Plan::Shared,
        },
        monthly_budget_usd: tenant.monthly_budget_usd,
        hot_days: tenant.retention.map_or(0, |r| r.hot_days),
        api_requests_per_second: tenant.limits.map_or(0, |l| l.api_requests_per_second),
        created: time(tenant.create_time).unwrap_or(DateTime::<Utc>::MIN_UTC),
        deleted: time(tenant.delete_time),
    })
}
