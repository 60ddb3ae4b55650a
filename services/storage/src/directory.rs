//! What the storage service needs to know of tenants and machines, asked of the tenant service
//! through its typed client and kept (decision 0018):
//! - a tenant's state, retention, ingest rate and revision. Twice a second the tenants changed
//!   since the last listing are listed (`ListTenantChanges`, after the newest revision held),
//!   so every record is fresh within [`TENANT_TTL`]: a suspension or deletion takes effect
//!   within a second, as revoked keys do, and the listing costs what changed, not the number
//!   of tenants. A record asked alone holds [`TENANT_TTL`] by itself.
//! - whether a machine is registered, and its labels. An answer holds for as long as a fresh
//!   record of the tenant has the revision it was asked under (the tenant service gives the
//!   tenant a new revision with each change to its machines), so a change takes effect within
//!   a second, and a machine of any of thousands of tenants is answered from memory once
//!   asked. Without a fresh record (the tenant service unreachable), an answer holds for
//!   [`MACHINE_TTL`] or [`UNKNOWN_MACHINE_TTL`] from when it was asked.

mod kept;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use mfg_common::{ErrorCode, clock::SharedClock, grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::tenant::v1::{self as pb, tenant_service_client::TenantServiceClient};
use prometheus_client::metrics::counter::Counter;
use uuid::Uuid;

use self::kept::{KnownMachine, Machines, Tenants};
use crate::error::{Result, StorageError};

/// How long a tenant's record is served from the cache.
pub const TENANT_TTL: Duration = Duration::from_secs(1);
/// How long a registered machine is remembered without a fresh record of its tenant.
pub const MACHINE_TTL: Duration = Duration::from_secs(10);
/// How long an unknown machine is remembered as unknown without a fresh record of its tenant.
pub const UNKNOWN_MACHINE_TTL: Duration = Duration::from_secs(1);
/// The most tenants a listing of changes asks for at a time.
const LISTING_PAGE: i32 = 1_000;

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
    /// Its revision, which grows with each change to it or to its machines: answers about its
    /// machines hold while it is unchanged.
    pub revision: i64,
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
        revision: tenant.revision,
    }
}

/// A registered machine's labels.
pub type MachineLabels = Arc<BTreeMap<String, String>>;

/// The tenant service, cached.
#[derive(Debug, Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: TenantServiceClient<TracedChannel>,
    clock: SharedClock,
    tenants: Mutex<Tenants>,
    machines: Mutex<Machines>,
    machine_lookups: Counter,
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
                machine_lookups: Counter::default(),
            }),
        }
    }

    /// Returns a tenant's record; NOT_FOUND when no tenant has this id.
    pub async fn tenant(&self, id: Uuid) -> Result<Arc<TenantInfo>> {
        let now = self.inner.clock.now();
        if let Some(info) = self.lock_tenants().fresh(id, now) {
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
        self.lock_tenants().keep(info.clone(), now + TENANT_TTL);
        Ok(info)
    }

    /// Keeps every tenant's record fresh until shutdown: the changes since the last listing
    /// are listed every half [`TENANT_TTL`], so a replica that serves thousands of tenants
    /// answers from memory rather than asking once a batch, and a change still takes effect
    /// within a second. When a listing fails, records expire and are asked one by one.
    pub async fn keep_fresh(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(TENANT_TTL / 2) => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(error) = self.refresh_tenants().await {
                tracing::warn!(%error, "listing the tenants' changes failed; asking for each as needed");
            }
        }
    }

    /// Lists the tenants changed after the newest revision listed (every tenant, the first
    /// time), deleted ones too, into the records kept. [`Directory::keep_fresh`] calls it
    /// twice a second.
    pub async fn refresh_tenants(&self) -> Result<()> {
        let started = self.inner.clock.now();
        let mut after = self.lock_tenants().listed_to;
        let mut client = self.inner.client.clone();
        loop {
            let page = client
                .list_tenant_changes(pb::ListTenantChangesRequest {
                    after_revision: after,
                    page_size: LISTING_PAGE,
                })
                .await
                .map_err(|status| from_status(&status, "the tenants"))?
                .into_inner();
            let last_page = page.tenants.len() < LISTING_PAGE as usize;
            let mut tenants = self.lock_tenants();
            for tenant in page.tenants {
                after = after.max(tenant.revision);
                if let Ok(id) = Uuid::parse_str(&tenant.id) {
                    tenants.keep(Arc::new(info_of(id, tenant)), started + TENANT_TTL);
                }
            }
            if last_page {
                tenants.listed(after, started + TENANT_TTL);
                return Ok(());
            }
        }
    }

    /// Returns whether a machine is registered with a tenant.
    pub async fn machine_exists(&self, tenant: Uuid, machine_id: &str) -> Result<bool> {
        Ok(self.machine(tenant, machine_id).await?.is_some())
    }

    /// Returns the labels of a machine registered with a tenant; `None` when it is not.
    pub async fn machine(&self, tenant: Uuid, machine_id: &str) -> Result<Option<MachineLabels>> {
        let now = self.inner.clock.now();
        let revision = self.revision(tenant, now);
        let key = (tenant, machine_id.to_owned());
        if let Some(known) = self.lock_machines().holding(&key, now, revision) {
            return Ok(known.labels.clone());
        }
        let labels = self.fetch_machine(tenant, machine_id).await?;
        let ttl = if labels.is_some() {
            MACHINE_TTL
        } else {
            UNKNOWN_MACHINE_TTL
        };
        let known = KnownMachine {
            labels: labels.clone(),
            revision,
            expires: now + ttl,
        };
        self.lock_machines().keep(key, known, now);
        Ok(labels)
    }

    /// Counts the machines asked of the tenant service: the lookups the cache did not answer.
    pub fn machine_lookups(&self) -> &Counter {
        &self.inner.machine_lookups
    }

    /// The revision of a tenant whose record is fresh.
    fn revision(&self, tenant: Uuid, now: Instant) -> Option<i64> {
        let revision = self.lock_tenants().fresh(tenant, now)?.revision;
        Some(revision)
    }

    /// Asks the tenant service for a machine's labels; `None` when it is not registered.
    async fn fetch_machine(&self, tenant: Uuid, machine_id: &str) -> Result<Option<MachineLabels>> {
        self.inner.machine_lookups.inc();
        let response = self
            .inner
            .client
            .clone()
            .get_machine(pb::GetMachineRequest {
                tenant_id: tenant.to_string(),
                machine_id: machine_id.to_owned(),
            })
            .await;
        match response {
            Ok(response) => Ok(Some(Arc::new(
                response
                    .into_inner()
                    .machine
                    .unwrap_or_default()
                    .labels
                    .into_iter()
                    .collect(),
            ))),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                Ok(None)
            }
            Err(status) => Err(from_status(&status, "the machine")),
        }
    }

    fn lock_tenants(&self) -> std::sync::MutexGuard<'_, Tenants> {
        self.inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_machines(&self) -> std::sync::MutexGuard<'_, Machines> {
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
