//! The calls each step makes to the other services, with the step's key on every call
//! (metadata `mfg-step-key`), and how their errors count: retryable or permanent.
//!
//! Both steps built so far set a state rather than add to one, so running one twice has one
//! effect: `PrepareTenantStorage` registers the tenant and creates what is missing, and
//! `UpdateBudget` sets the budget's limit and thresholds.

use mfg_common::grpc::TracedChannel;
use mfg_proto::{
    cost::v1::{self as cost, cost_service_client::CostServiceClient},
    storage::v1::{self as storage, telemetry_service_client::TelemetryServiceClient},
    tenant::v1::{self as tenant, tenant_service_client::TenantServiceClient},
};
use pbjson_types::FieldMask;
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::domain::run::{Failure, StepName};

/// The metadata key a step's key travels under.
pub const STEP_KEY: &str = "mfg-step-key";

/// A budget's thresholds when the tenant has set none: 50%, 80% and 100% of its limit.
const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];

/// The clients of the services the steps call, each with the operator's token.
#[derive(Debug, Clone)]
pub struct Steps {
    tenants: TenantServiceClient<TracedChannel>,
    storage: TelemetryServiceClient<TracedChannel>,
    cost: CostServiceClient<TracedChannel>,
}

impl Steps {
    /// Steps over these clients.
    pub fn new(
        tenants: TenantServiceClient<TracedChannel>,
        storage: TelemetryServiceClient<TracedChannel>,
        cost: CostServiceClient<TracedChannel>,
    ) -> Self {
        Self {
            tenants,
            storage,
            cost,
        }
    }

    /// The tenant `id`, as the tenant service has it; `None` when it does not exist.
    pub async fn tenant(&self, id: Uuid) -> Result<Option<tenant::Tenant>, Status> {
        let request = tenant::GetTenantRequest {
            tenant_id: id.to_string(),
        };
        match self.tenants.clone().get_tenant(request).await {
            Ok(response) => Ok(response.into_inner().tenant),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }

    /// Tells the tenant service how `tenant`'s run ended: it becomes active, or
    /// provisioning-failed with `error`.
    pub async fn report(
        &self,
        tenant: Uuid,
        run_id: Uuid,
        succeeded: bool,
        error: String,
    ) -> Result<(), Failure> {
        let request = tenant::SetProvisioningOutcomeRequest {
            tenant_id: tenant.to_string(),
            run_id: run_id.to_string(),
            succeeded,
            error,
        };
        self.tenants
            .clone()
            .set_provisioning_outcome(request)
            .await
            .map_err(|status| failure("the tenant service", &status))?;
        Ok(())
    }

    /// Runs step `name` for `tenant` under `key`.
    pub async fn run(&self, name: StepName, tenant: Uuid, key: &str) -> Result<(), Failure> {
        match name {
            StepName::StorageNamespace => self.storage_namespace(tenant, key).await,
            StepName::Budget => self.budget(tenant, key).await,
        }
    }

    /// Undoes step `name` for `tenant` under `key`.
    ///
    /// The budget step has nothing to undo. It is the last step, so a run rolled back never
    /// has it succeeded, and a failed `UpdateBudget` changes nothing.
    pub async fn undo(&self, name: StepName, tenant: Uuid, key: &str) -> Result<(), Failure> {
        match name {
            StepName::StorageNamespace => {
                let request = storage::ReleaseTenantStorageRequest {
                    tenant_id: tenant.to_string(),
                };
                self.storage
                    .clone()
                    .release_tenant_storage(keyed(request, key)?)
                    .await
                    .map_err(|status| failure("the storage service", &status))?;
                Ok(())
            }
            StepName::Budget => Ok(()),
        }
    }

    /// The tenant's storage, with the retention it carries.
    async fn storage_namespace(&self, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let request = storage::PrepareTenantStorageRequest {
            tenant_id: tenant.to_string(),
            retention: None,
        };
        self.storage
            .clone()
            .prepare_tenant_storage(keyed(request, key)?)
            .await
            .map_err(|status| failure("the storage service", &status))?;
        Ok(())
    }

    /// The tenant's budget, with its `monthlyBudgetUsd` and the thresholds it has or the
    /// defaults.
    async fn budget(&self, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let limit = match self.tenant(tenant).await {
            Ok(Some(found)) => found.monthly_budget_usd,
            Ok(None) => return Err(Failure::Permanent(format!("tenant `{tenant}` not found"))),
            Err(status) => return Err(failure("the tenant service", &status)),
        };
        let mut cost = self.cost.clone();
        let current = cost
            .get_budget(keyed(
                cost::GetBudgetRequest {
                    tenant_id: tenant.to_string(),
                },
                key,
            )?)
            .await
            .map_err(|status| failure("the cost service", &status))?
            .into_inner()
            .budget
            .unwrap_or_default();
        let thresholds = if current.alert_thresholds.is_empty() {
            DEFAULT_THRESHOLDS.to_vec()
        } else {
            current.alert_thresholds
        };
        let request = cost::UpdateBudgetRequest {
            tenant_id: tenant.to_string(),
            budget: Some(cost::Budget {
                monthly_limit_usd: limit,
                alert_thresholds: thresholds,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["*".to_owned()],
            }),
        };
        cost.update_budget(keyed(request, key)?)
            .await
            .map_err(|status| failure("the cost service", &status))?;
        Ok(())
    }
}

/// `message` as a request carrying the step's key.
fn keyed<T>(message: T, key: &str) -> Result<Request<T>, Failure> {
    let mut request = Request::new(message);
    let value = key
        .parse()
        .map_err(|_| Failure::Permanent(format!("the step key `{key}` is not ASCII")))?;
    request.metadata_mut().insert(STEP_KEY, value);
    Ok(request)
}

/// How a call's error counts: a service that is down, busy or slow may answer later; any
/// other answer will not change by asking again.
fn failure(service: &str, status: &Status) -> Failure {
    let error = format!(
        "{service} answered {:?}: {}",
        status.code(),
        status.message()
    );
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown => Failure::Retryable(error),
        _ => Failure::Permanent(error),
    }
}
