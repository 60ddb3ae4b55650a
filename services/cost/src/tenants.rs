//! The tenants as far as cost goes, read from the tenant service: who they are, their plan,
//! their budget, and when they were created and deleted (a deleted tenant still pays for the
//! part of a period it lived in).
//!
//! The cost service keeps a snapshot of them, refreshed in the background every few seconds
//! ([`Directory::refresh_every`]) and at once when a request names a tenant the snapshot does
//! not have yet, so that a report reads no other service on its way. A plan or budget changed
//! at the tenant service is seen within the refresh interval. A refresh lists only the
//! tenants changed since the newest revision the snapshot holds (`ListTenantChanges`,
//! decision 0018): it costs what changed, not the number of tenants.

use std::{collections::HashMap, sync::Arc, time::Duration};

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

/// The tenants known, and the newest revision listed.
#[derive(Debug, Default)]
struct Snapshot {
    /// Every tenant, deleted ones included, in creation order.
    tenants: Arc<Vec<Tenant>>,
    /// Each tenant's revision.
    revisions: HashMap<Uuid, i64>,
    /// The newest revision listed: every change up to it is in `tenants`.
    listed_to: i64,
}

impl Snapshot {
    /// The snapshot with `changed` tenants (and their revisions) in it, listed up to
    /// `listed_to`; the later revision of a tenant wins.
    fn with(&self, changed: Vec<(Tenant, i64)>, listed_to: i64) -> Self {
        let mut by_id: HashMap<Uuid, Tenant> =
            self.tenants.iter().map(|t| (t.id, t.clone())).collect();
        let mut revisions = self.revisions.clone();
        for (tenant, revision) in changed {
            if revisions
                .get(&tenant.id)
                .is_none_or(|&held| held < revision)
            {
                revisions.insert(tenant.id, revision);
                by_id.insert(tenant.id, tenant);
            }
        }
        let mut tenants: Vec<Tenant> = by_id.into_values().collect();
        tenants.sort_by_key(|t| (t.created, t.id));
        Self {
            tenants: Arc::new(tenants),
            revisions,
            listed_to: self.listed_to.max(listed_to),
        }
    }
}

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
    snapshot: RwLock<Snapshot>,
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

    /// A directory over the tenant service's client that starts from `tenants`, as of no
    /// revision: its first refresh lists every tenant.
    pub fn starting_with(client: TenantServiceClient<TracedChannel>, tenants: Vec<Tenant>) -> Self {
        Self {
            client,
            snapshot: RwLock::new(
                Snapshot::default()
                    .with(tenants.into_iter().map(|tenant| (tenant, 0)).collect(), 0),
            ),
            refreshing: Mutex::new(()),
        }
    }

    /// Every tenant, deleted ones included, in creation order.
    pub async fn all(&self) -> Arc<Vec<Tenant>> {
        self.snapshot.read().await.tenants.clone()
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

    /// Lists the tenants changed since the snapshot's newest revision from the tenant
    /// service, into the snapshot. Concurrent callers wait for one listing rather than each
    /// making their own.
    pub async fn refresh(&self) -> Result<()> {
        let before = self.snapshot.read().await.listed_to;
        let _one = self.refreshing.lock().await;
        if self.snapshot.read().await.listed_to != before {
            return Ok(());
        }
        self.list_changes().await
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
        let _one = self.refreshing.lock().await;
        self.list_changes().await?;
        Ok(self.all().await.iter().find(|t| t.id == id).cloned())
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

    /// Lists the tenants changed after the snapshot's newest revision, a page at a time,
    /// into the snapshot. The caller holds `refreshing`.
    async fn list_changes(&self) -> Result<()> {
        let mut client = self.client.clone();
        let mut after = self.snapshot.read().await.listed_to;
        let mut changed = Vec::new();
        loop {
            let page = client
                .list_tenant_changes(pb::ListTenantChangesRequest {
                    after_revision: after,
                    page_size: PAGE_SIZE,
                })
                .await
                .map_err(|status| {
                    CostError::Unavailable(format!("the tenant service: {}", status.message()))
                })?
                .into_inner();
            let last_page = page.tenants.len() < PAGE_SIZE as usize;
            for tenant in page.tenants {
                after = after.max(tenant.revision);
                let revision = tenant.revision;
                changed.push((tenant_of(tenant)?, revision));
            }
            if last_page {
                break;
            }
        }
        if !changed.is_empty() {
            let mut snapshot = self.snapshot.write().await;
            *snapshot = snapshot.with(changed, after);
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: u128, created: i64, budget: f64) -> Tenant {
        Tenant {
            id: Uuid::from_u128(id),
            plan: Plan::Shared,
            monthly_budget_usd: budget,
            hot_days: 30,
            api_requests_per_second: 100,
            created: DateTime::from_timestamp(created, 0).unwrap(),
            deleted: None,
        }
    }

    #[test]
    fn changes_join_the_snapshot_in_creation_order_and_the_later_revision_wins() {
        let snapshot = Snapshot::default().with(vec![(tenant(2, 20, 0.0), 5)], 5);
        let snapshot = snapshot.with(
            vec![
                (tenant(1, 10, 0.0), 6),
                (tenant(2, 20, 100.0), 7),
                (tenant(2, 20, 50.0), 4),
            ],
            7,
        );
        assert_eq!(
            *snapshot.tenants,
            [tenant(1, 10, 0.0), tenant(2, 20, 100.0)]
        );
        assert_eq!(snapshot.listed_to, 7);
        let unchanged = snapshot.with(vec![(tenant(1, 10, 9.0), 6)], 3);
        assert_eq!(
            *unchanged.tenants, *snapshot.tenants,
            "an older or equal revision"
        );
        assert_eq!(unchanged.listed_to, 7, "the newest listed stays");
    }
}
