//! What the storage service needs to know of tenants and machines, asked of the tenant service
//! through its typed client and cached briefly: a tenant's state, hot retention and ingest
//! rate (for at most [`TENANT_TTL`], so a suspension or deletion takes effect within a second,
//! as revoked keys do; all tenants are listed twice a second to keep them fresh), and whether a
//! machine is registered.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use mfg_common::{ErrorCode, clock::SharedClock, grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::tenant::v1::{self as pb, tenant_service_client::TenantServiceClient};
use uuid::Uuid;

use crate::error::{Result, StorageError};

/// How long a tenant's record is served from the cache.
pub const TENANT_TTL: Duration = Duration::from_secs(1);
/// How long a registered machine is remembered.
pub const MACHINE_TTL: Duration = Duration::from_secs(10);
/// How long an unknown machine is remembered as unknown.
pub const UNKNOWN_MACHINE_TTL: Duration = Duration::from_secs(1);

/// A tenant's lifecycle state, as far as storage is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantState {
    /// Serving.
    Active,
    /// Reads only.
    Suspended,
    /// Refused.
    Deleted,
    /// Being onboarded: reads only, until its provisioning run succeeds.
    Provisioning,
    /// Its onboarding failed: reads only, until a retried run succeeds.
    ProvisioningFailed,
    /// A state this version does not know (its number, as the tenant service sent it): a
    /// later version's. Reads only: a state added later must not let writes through
    /// unchecked.
    Unknown(i32),
}

/// What storage needs of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    /// The tenant's id.
    pub id: Uuid,
    /// Its state.
    pub state: TenantState,
    /// Its hot retention, in days.
    pub hot_days: u32,
    /// Its warm retention, in days.
    pub warm_days: u32,
    /// Its cold retention, in days.
    pub cold_days: u32,
    /// Its ingest rate, in readings per second.
    pub ingest_per_second: u32,
}

impl TenantInfo {
    /// Refuses writes to a suspended or deleted tenant.
    pub fn check_writable(&self) -> Result<()> {
        match self.state {
            TenantState::Active => Ok(()),
            TenantState::Suspended => Err(StorageError::TenantSuspended(self.id.to_string())),
            TenantState::Deleted => Err(StorageError::TenantDeleted(self.id.to_string())),
            TenantState::Provisioning => Err(StorageError::TenantNotOnboarded(
                self.id.to_string(),
                "provisioning",
            )),
            TenantState::ProvisioningFailed => Err(StorageError::TenantNotOnboarded(
                self.id.to_string(),
                "its provisioning run failed",
            )),
            TenantState::Unknown(number) => Err(StorageError::TenantStateUnknown(
                self.id.to_string(),
                number,
            )),
        }
    }
}

/// What storage needs of a tenant's record.
fn info_of(id: Uuid, tenant: pb::Tenant) -> TenantInfo {
    let retention = tenant.retention.unwrap_or_default();
    let limits = tenant.limits.unwrap_or_default();
    TenantInfo {
        id,
        state: match tenant.state() {
            pb::TenantState::Suspended => TenantState::Suspended,
            pb::TenantState::Deleted => TenantState::Deleted,
            pb::TenantState::Provisioning => TenantState::Provisioning,
            pb::TenantState::ProvisioningFailed => TenantState::ProvisioningFailed,
            pb::TenantState::Active => TenantState::Active,
            pb::TenantState::Unspecified => TenantState::Unknown(tenant.state),
        },
        // Rounded up to its class (the tenant service answers it rounded since session 11).
        hot_days: mfg_common::retention::hot_class(retention.hot_days)
            .unwrap_or(retention.hot_days),
        warm_days: retention.warm_days,
        cold_days: retention.cold_days,
        ingest_per_second: limits.ingest_readings_per_second,
    }
}

/// A registered machine's labels.
pub type MachineLabels = Arc<BTreeMap<String, String>>;

/// Machines by tenant and id: until when the entry holds, and the labels of a registered
/// machine (`None`: not registered).
type MachineCache = HashMap<(Uuid, String), (Instant, Option<MachineLabels>)>;

/// The tenant service, cached.
#[derive(Debug, Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: TenantServiceClient<TracedChannel>,
    clock: SharedClock,
    tenants: Mutex<HashMap<Uuid, (Instant, Arc<TenantInfo>)>>,
    machines: Mutex<MachineCache>,
}

fn from_status(status: &tonic::Status, what: &str) -> StorageError {
    match ErrorCode::from_grpc(status.code()) {
        ErrorCode::Unavailable | ErrorCode::DeadlineExceeded | ErrorCode::Cancelled => {
            StorageError::Unavailable(format!(
                "cannot reach the tenant service to check {what}: {}",
                status.message()
            ))
        }
        _ => StorageError::Internal(format!(
            "the tenant service failed checking {what}: {}: {}",
            status.code(),
            status.message()
        )),
    }
}

impl Directory {
    /// Creates a directory over a client of the tenant service, which must carry the operator
    /// credential.
    pub fn new(client: TenantServiceClient<TracedChannel>, clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                clock,
                tenants: Mutex::default(),
                machines: Mutex::default(),
            }),
        }
    }

    /// Returns a tenant's record; NOT_FOUND when no tenant has this id.
    pub async fn tenant(&self, id: Uuid) -> Result<Arc<TenantInfo>> {
        let now = self.inner.clock.now();
        if let Some((expires, info)) = self.lock_tenants().get(&id)
            && now < *expires
        {
            return Ok(info.clone());
        }
        self.fetch_tenant(id).await
    }

    /// Returns the record of a tenant that may write now, or why it may not. A record kept
    /// that says the tenant is being onboarded is asked again first, so that a tenant whose
    /// onboarding just succeeded writes at once rather than after the record expires.
    pub async fn writable_tenant(&self, id: Uuid) -> Result<Arc<TenantInfo>> {
        let info = self.tenant(id).await?;
        match info.state {
            TenantState::Provisioning
            | TenantState::ProvisioningFailed
            | TenantState::Unknown(_) => {
                let fresh = self.fetch_tenant(id).await?;
                fresh.check_writable()?;
                Ok(fresh)
            }
            _ => {
                info.check_writable()?;
                Ok(info)
            }
        }
    }

    /// Returns a tenant's record as the tenant service has it now, for a decision that a
    /// record a second old could get wrong (whether the tenant still writes, before an export).
    pub async fn fresh_tenant(&self, id: Uuid) -> Result<Arc<TenantInfo>> {
        self.fetch_tenant(id).await
    }

    /// Asks the tenant service for a tenant's record, and keeps it.
    async fn fetch_tenant(&self, id: Uuid) -> Result<Arc<TenantInfo>> {
        let now = self.inner.clock.now();
        let response = self
            .inner
            .client
            .clone()
            .get_tenant(pb::GetTenantRequest {
                tenant_id: id.to_string(),
            })
            .await;
        let tenant = match response {
            Ok(response) => response.into_inner().tenant.unwrap_or_default(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(StorageError::TenantNotFound(id.to_string()));
            }
            Err(status) => return Err(from_status(&status, "the tenant")),
        };
        let info = Arc::new(info_of(id, tenant));
        self.lock_tenants()
            .insert(id, (now + TENANT_TTL, info.clone()));
        Ok(info)
    }

    /// Keeps every tenant's record fresh until shutdown: all tenants are listed (a page of
    /// 1,000 a call) every half [`TENANT_TTL`], so a replica that serves thousands of tenants
    /// answers from memory rather than asking once a batch, and a change still takes effect
    /// within a second. When a listing fails, records expire as before and are asked one by one.
    pub async fn keep_fresh(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(TENANT_TTL / 2) => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(error) = self.refresh_tenants().await {
                tracing::warn!(%error, "listing the tenants failed; asking for each as needed");
            }
        }
    }

    /// Lists every tenant, deleted ones too, into the cache; a record fetched since the listing
    /// began is kept.
    async fn refresh_tenants(&self) -> Result<()> {
        let expires = self.inner.clock.now() + TENANT_TTL;
        let mut client = self.inner.client.clone();
        let mut fresh = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_tenants(pb::ListTenantsRequest {
                    page_size: 1_000,
                    page_token,
                    show_deleted: true,
                })
                .await
                .map_err(|status| from_status(&status, "the tenants"))?
                .into_inner();
            for tenant in page.tenants {
                if let Ok(id) = Uuid::parse_str(&tenant.id) {
                    fresh.push((id, Arc::new(info_of(id, tenant))));
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let mut tenants = self.lock_tenants();
        for (id, info) in fresh {
            match tenants.get(&id) {
                Some((held, _)) if *held >= expires => {}
                _ => {
                    tenants.insert(id, (expires, info));
                }
            }
        }
        Ok(())
    }

    /// Returns whether a machine is registered with a tenant.
    pub async fn machine_exists(&self, tenant: Uuid, machine_id: &str) -> Result<bool> {
        Ok(self.machine(tenant, machine_id).await?.is_some())
    }

    /// Returns the labels of a machine registered with a tenant; `None` when it is not.
    pub async fn machine(&self, tenant: Uuid, machine_id: &str) -> Result<Option<MachineLabels>> {
        let now = self.inner.clock.now();
        let key = (tenant, machine_id.to_owned());
        if let Some((expires, known)) = self.lock_machines().get(&key)
            && now < *expires
        {
            return Ok(known.clone());
        }
        let response = self
            .inner
            .client
            .clone()
            .get_machine(pb::GetMachineRequest {
                tenant_id: tenant.to_string(),
                machine_id: machine_id.to_owned(),
            })
            .await;
        let known = match response {
            Ok(response) => Some(Arc::new(
                response
                    .into_inner()
                    .machine
                    .unwrap_or_default()
                    .labels
                    .into_iter()
                    .collect(),
            )),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                None
            }
            Err(status) => return Err(from_status(&status, "the machine")),
        };
        let ttl = if known.is_some() {
            MACHINE_TTL
        } else {
            UNKNOWN_MACHINE_TTL
        };
        let mut machines = self.lock_machines();
        if machines.len() > 1_000_000 {
            machines.retain(|_, (expires, _)| now < *expires);
        }
        machines.insert(key, (now + ttl, known.clone()));
        Ok(known)
    }

    fn lock_tenants(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Arc<TenantInfo>)>> {
        self.inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_machines(&self) -> std::sync::MutexGuard<'_, MachineCache> {
        self.inner
            .machines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use mfg_common::ServiceError as _;

    use super::*;

    #[test]
    fn a_state_this_version_does_not_know_refuses_writes() {
        let id = Uuid::now_v7();
        let later = pb::Tenant {
            state: 42,
            ..Default::default()
        };
        let info = info_of(id, later);
        assert_eq!(info.state, TenantState::Unknown(42));
        let refused = info.check_writable().unwrap_err();
        assert_eq!(refused.error_code(), ErrorCode::FailedPrecondition);
        assert!(refused.to_string().contains("number 42"), "{refused}");

        let active = pb::Tenant {
            state: pb::TenantState::Active.into(),
            ..Default::default()
        };
        assert!(info_of(id, active).check_writable().is_ok());
    }
}
