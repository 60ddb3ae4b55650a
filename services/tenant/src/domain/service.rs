//! The tenant service's operations: validation that needs more than one field, defaults, time,
//! secrets, and the rules of the lifecycle. Requests arrive here already parsed into domain
//! types by the gRPC adapter.

use std::sync::Arc;

use mfg_common::{
    Violations,
    audit::{Asker, AuditRecord},
    clock::SharedClock,
    pagination::PageRequest,
};

use super::{
    api_key::{ApiKey, KeyHasher},
    machine::{Machine, MachineId, MachinePatch, NewMachine},
    sealed::Sealer,
    tenant::{
        NewTenant, Offboarding, Onboarding, OnboardingStatus, Tenant, TenantId, TenantPatch,
        TenantState,
    },
    timestamp,
};
use crate::{
    error::{Result, TenantError},
    store::TenantStore,
};

mod keys;

/// The most tenants a page of `list_tenant_changes` holds.
const MAX_CHANGES_PAGE: i64 = 1_000;

/// A key just created, with the secret shown this once.
#[derive(Debug)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKey,
    /// Its secret.
    pub secret: String,
}

/// The operations of the tenant service.
#[derive(Debug, Clone)]
pub struct Tenants {
    store: Arc<dyn TenantStore>,
    hasher: KeyHasher,
    /// Seals the secrets of keys made to be claimed, under a key derived from the pepper.
    sealer: Arc<Sealer>,
    clock: SharedClock,
    /// The relay a new tenant is handed to the provisioning service through (it is
    /// provisioning until its run succeeds); without one it is active at once.
    hand_off: Option<crate::handoff::Relay>,
    /// Records the administrative actions for the audit log.
    auditor: mfg_common::audit::Auditor,
}

fn invalid(violations: Violations) -> Result<()> {
    violations.finish().map_err(TenantError::InvalidArgument)
}

fn page_after<T: std::str::FromStr>(page: &PageRequest) -> Result<Option<T>> {
    page.after
        .as_deref()
        .map(|after| {
            after.parse().map_err(|_| {
                TenantError::invalid("page_token", "is not a token returned by this API")
            })
        })
        .transpose()
}

impl Tenants {
    /// Creates the operations on a store.
    pub fn new(store: Arc<dyn TenantStore>, hasher: KeyHasher, clock: SharedClock) -> Self {
        Self {
            store,
            sealer: Arc::new(hasher.sealer()),
            hasher,
            clock,
            hand_off: None,
            auditor: mfg_common::audit::Auditor::off(),
        }
    }

    /// The same, recording administrative actions with `auditor`.
    #[must_use]
    pub fn auditing(mut self, auditor: mfg_common::audit::Auditor) -> Self {
        self.auditor = auditor;
        self
    }

    /// The same, handing each new tenant to the provisioning service through `relay`.
    #[must_use]
    pub fn handing_off(mut self, relay: crate::handoff::Relay) -> Self {
        self.hand_off = Some(relay);
        self
    }

    /// Records how a tenant's onboarding run ended. A tenant being onboarded (or whose run
    /// had failed) becomes active on success, and provisioning-failed with `error` on failure;
    /// one in any other state only records the run.
    pub async fn set_provisioning_outcome(
        &self,
        id: TenantId,
        run_id: &str,
        succeeded: bool,
        error: &str,
    ) -> Result<Tenant> {
        let now = self.now();
        self.store
            .update_tenant(
                id,
                &|mut tenant: Tenant| {
                    let onboarding = &mut tenant.onboarding;
                    // An onboarded tenant keeps its state, whatever later runs do.
                    if onboarding.status != OnboardingStatus::Done {
                        onboarding.status = if succeeded {
                            OnboardingStatus::Done
                        } else {
                            OnboardingStatus::Failed
                        };
                        onboarding.error = if succeeded {
                            String::new()
                        } else {
                            error.to_owned()
                        };
                    }
                    onboarding.run_id = run_id.to_owned();
                    tenant.update_time = now;
                    Ok(tenant)
                },
                None,
            )
            .await
    }

    /// Returns the store.
    pub fn store(&self) -> &Arc<dyn TenantStore> {
        &self.store
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.clock.system_now())
    }

    /// Creates a tenant, active, with defaults applied.
    pub async fn create_tenant(&self, new: NewTenant, asker: &Asker) -> Result<Tenant> {
        let now = self.now();
        let mut tenant = Tenant {
            id: TenantId::generate(),
            display_name: if new.display_name.is_empty() {
                new.name.to_string()
            } else {
                new.display_name
            },
            name: new.name,
            plan: new.plan,
            state: TenantState::Active,
            labels: new.labels,
            limits: new.limits.or_defaults(new.plan),
            retention: new.retention.effective(),
            monthly_budget_usd: new.monthly_budget_usd,
            create_time: now,
            update_time: now,
            delete_time: None,
            onboarding: if self.hand_off.is_some() {
                Onboarding::pending()
            } else {
                Onboarding::done()
            },
            revision: 0,
        };
        let mut violations = Violations::new();
        tenant.validate("tenant.", &mut violations);
        invalid(violations)?;
        let audit = self.audit(asker, tenant.id, "tenant.create", tenant_path(tenant.id));
        tenant.revision = self.store.insert_tenant(&tenant, audit.as_ref()).await?;
        self.auditor.recorded();
        if let Some(relay) = &self.hand_off {
            relay.wake();
        }
        tracing::info!(tenant_id = %tenant.id, name = %tenant.name, "tenant created");
        Ok(tenant)
    }

    /// Returns a tenant, deleted or not.
    pub async fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
        self.store
            .get_tenant(id)
            .await?
            .ok_or_else(|| TenantError::TenantNotFound(id.to_string()))
    }

    /// Lists the tenants changed after a revision, deleted ones too, by revision: at most
    /// `page_size`, 1,000 when 0 or more.
    pub async fn list_tenant_changes(&self, after: i64, page_size: i32) -> Result<Vec<Tenant>> {
        if after < 0 {
            return Err(TenantError::invalid(
                "after_revision",
                "must not be negative",
            ));
        }
        if page_size < 0 {
            return Err(TenantError::invalid("page_size", "must not be negative"));
        }
        let limit = match page_size {
            0 => MAX_CHANGES_PAGE,
            size => i64::from(size).min(MAX_CHANGES_PAGE),
        };
        self.store.list_tenant_changes(after, limit).await
    }

    /// Lists tenants in creation order.
    pub async fn list_tenants(
        &self,
        page: PageRequest,
        show_deleted: bool,
    ) -> Result<(Vec<Tenant>, String)> {
        let after = page_after::<TenantId>(&page)?;
        let mut tenants = self
            .store
            .list_tenants(after, page.fetch_limit(), show_deleted)
            .await?;
        let next = page.finish(&mut tenants, |t| t.id.to_string());
        Ok((tenants, next))
    }

    /// Applies a patch to a tenant that is not deleted.
    pub async fn update_tenant(
        &self,
        id: TenantId,
        patch: TenantPatch,
        asker: &Asker,
    ) -> Result<Tenant> {
        if patch.state == Some(TenantState::Deleted) {
            return Err(TenantError::invalid(
                "tenant.state",
                "must be TENANT_STATE_ACTIVE or TENANT_STATE_SUSPENDED; delete the tenant with DeleteTenant",
            ));
        }
        let now = self.now();
        let audit = self.audit(asker, id, "tenant.update", tenant_path(id));
        let tenant = self
            .store
            .update_tenant(
                id,
                &|mut tenant: Tenant| {
                    if tenant.state == TenantState::Deleted {
                        return Err(TenantError::TenantDeleted(id.to_string()));
                    }
                    patch.apply(&mut tenant);
                    let mut violations = Violations::new();
                    tenant.validate("tenant.", &mut violations);
                    invalid(violations)?;
                    tenant.update_time = now;
                    Ok(tenant)
                },
                audit.as_ref(),
            )
            .await?;
        self.auditor.recorded();
        tracing::info!(tenant_id = %id, state = tenant.state.as_str(), "tenant updated");
        Ok(tenant)
    }

    /// Soft-deletes a tenant: it keeps its name reserved and its keys stop working. A tenant
    /// onboarded by the provisioning service is handed to it to be offboarded as
    /// `offboarding` says. Deleting a deleted tenant returns it unchanged.
    pub async fn delete_tenant(
        &self,
        id: TenantId,
        offboarding: Offboarding,
        asker: &Asker,
    ) -> Result<Tenant> {
        let audit = self.audit(asker, id, "tenant.delete", tenant_path(id));
        let tenant = self
            .store
            .delete_tenant(id, self.now(), offboarding, audit.as_ref())
            .await?;
        self.auditor.recorded();
        if let Some(relay) = &self.hand_off {
            relay.wake();
        }
        tracing::info!(tenant_id = %id, ?offboarding, "tenant deleted");
        Ok(tenant)
    }

    /// The record of `asker` doing `action` to `resource` of `tenant`, for the change's
    /// transaction to write, when actions are recorded.
    fn audit(
        &self,
        asker: &Asker,
        tenant: TenantId,
        action: &str,
        resource: String,
    ) -> Option<AuditRecord> {
        self.auditor
            .record(asker, Some(tenant.0), action, resource, self.now())
    }

    /// Registers a machine, within the tenant's machine limit.
    pub async fn create_machine(
        &self,
        tenant: TenantId,
        new: NewMachine,
        asker: &Asker,
    ) -> Result<Machine> {
        let now = self.now();
        let machine = Machine {
            display_name: if new.display_name.is_empty() {
                new.machine_id.to_string()
            } else {
                new.display_name
            },
            machine_id: new.machine_id,
            tenant_id: tenant,
            labels: new.labels,
            create_time: now,
            update_time: now,
        };
        let mut violations = Violations::new();
        machine.validate("machine.", &mut violations);
        invalid(violations)?;
        let resource = machine_path(tenant, &machine.machine_id);
        let audit = self.audit(asker, tenant, "machine.create", resource);
        self.store.insert_machine(&machine, audit.as_ref()).await?;
        self.auditor.recorded();
        tracing::info!(tenant_id = %tenant, machine_id = %machine.machine_id, "machine registered");
        Ok(machine)
    }

    /// Returns a machine.
    pub async fn get_machine(&self, tenant: TenantId, id: &MachineId) -> Result<Machine> {
        match self.store.get_machine(tenant, id).await? {
            Some(machine) => Ok(machine),
            None => {
                self.get_tenant(tenant).await?;
                Err(TenantError::MachineNotFound(id.to_string()))
            }
        }
    }

    /// Lists a tenant's machines by id.
    pub async fn list_machines(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<(Vec<Machine>, String)> {
        self.get_tenant(tenant).await?;
        let after = page_after::<MachineId>(&page)?;
        let mut machines = self
            .store
            .list_machines(tenant, after.as_ref(), page.fetch_limit())
            .await?;
        let next = page.finish(&mut machines, |m| m.machine_id.to_string());
        Ok((machines, next))
    }

    /// Applies a patch to a machine.
    pub async fn update_machine(
        &self,
        tenant: TenantId,
        id: &MachineId,
        patch: MachinePatch,
        asker: &Asker,
    ) -> Result<Machine> {
        let now = self.now();
        let audit = self.audit(asker, tenant, "machine.update", machine_path(tenant, id));
        let machine = self
            .store
            .update_machine(
                tenant,
                id,
                &|mut machine: Machine| {
                    patch.apply(&mut machine);
                    let mut violations = Violations::new();
                    machine.validate("machine.", &mut violations);
                    invalid(violations)?;
                    machine.update_time = now;
                    Ok(machine)
                },
                audit.as_ref(),
            )
            .await?;
        self.auditor.recorded();
        Ok(machine)
    }

    /// Removes a machine from the registry.
    pub async fn delete_machine(
        &self,
        tenant: TenantId,
        id: &MachineId,
        asker: &Asker,
    ) -> Result<()> {
        let tenant_record = self.get_tenant(tenant).await?;
        if tenant_record.state == TenantState::Deleted {
            return Err(TenantError::TenantDeleted(tenant.to_string()));
        }
        let audit = self.audit(asker, tenant, "machine.delete", machine_path(tenant, id));
        if self
            .store
            .delete_machine(tenant, id, audit.as_ref())
            .await?
        {
            self.auditor.recorded();
            tracing::info!(tenant_id = %tenant, machine_id = %id, "machine removed");
            Ok(())
        } else {
            Err(TenantError::MachineNotFound(id.to_string()))
        }
    }
}

/// A tenant's path, as the audit log names it.
fn tenant_path(tenant: TenantId) -> String {
    format!("tenants/{tenant}")
}

/// A machine's path, as the audit log names it.
fn machine_path(tenant: TenantId, machine: &MachineId) -> String {
    format!("tenants/{tenant}/machines/{machine}")
}
