//! The calls each step makes to the other services, with the step's key on every call
//! (metadata `mfg-step-key`), and how their errors count: retryable or permanent.
//!
//! Running a step twice has one effect. `PrepareTenantStorage` registers the tenant and
//! creates what is missing; `PrepareTenantArchive` sets the tenant's lifecycle rule; `UpdateBudget` sets the budget's limit and thresholds; the default
//! alert rules are created under ids derived from the step's key
//! ([`crate::domain::template::rule_id`]), so a rule created before is found (ALREADY_EXISTS);
//! so is the first API key, which `CreateSealedApiKey` returns as it is when asked again.
//! An undo's calls carry the step's key followed by `/undo`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mfg_common::grpc::TracedChannel;
use mfg_proto::{
    cost::v1::{self as cost, cost_service_client::CostServiceClient},
    storage::v1::{
        self as storage, alert_service_client::AlertServiceClient,
        telemetry_service_client::TelemetryServiceClient,
    },
    tenant::v1::{self as tenant, tenant_service_client::TenantServiceClient},
};
use pbjson_types::FieldMask;
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::{
    domain::{
        run::{Failure, Offboarding, StepName},
        template::{rule_id, rule_ids},
    },
    error::ProvisioningError,
    store::ProvisioningStore,
};

mod offboarding;

/// How long a deleted tenant's data is kept, by default: 7 days.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The metadata key a step's key travels under.
pub const STEP_KEY: &str = "mfg-step-key";

/// How long a call to another service may take before it fails (CANCELLED, "Timeout
/// expired", as tonic's channel reports it; DEADLINE_EXCEEDED when the callee's own timer
/// fires first), which is retried: a service that hangs does not hold a run (or a worker) for
/// ever. Sent as `grpc-timeout`, so the service stops working on the call too.
pub const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// The same for the calls whose work grows with the tenant's data (`ExportTenant`,
/// `DeleteTenantData`); the worker keeps the run's lease while they last.
pub const DATA_CALL_DEADLINE: Duration = Duration::from_secs(3_600);

/// A budget's thresholds when the tenant has set none: 50%, 80% and 100% of its limit.
const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];

/// The tenant a rule is checked for when it belongs to none yet (a template's).
const NO_TENANT: Uuid = Uuid::nil();

/// The name of the key the `first_api_key` step creates.
const FIRST_KEY_NAME: &str = "First admin key";

/// The largest page of rules the storage service gives.
const RULES_PAGE: i32 = 1_000;

/// The clients of the services the steps call, each with the operator's token.
#[derive(Debug, Clone)]
pub struct Steps {
    tenants: TenantServiceClient<TracedChannel>,
    storage: TelemetryServiceClient<TracedChannel>,
    alerts: AlertServiceClient<TracedChannel>,
    cost: CostServiceClient<TracedChannel>,
    /// How long a deleted tenant's data is kept after its export, unless forced.
    grace: Duration,
}

/// What a step is run for.
#[derive(Debug, Clone, Copy)]
pub struct StepCall<'a> {
    /// The tenant.
    pub tenant: Uuid,
    /// The step's key, carried by every call it makes.
    pub key: &'a str,
    /// How an offboarding run deletes.
    pub offboarding: Offboarding,
    /// The time, on the service's clock.
    pub now: DateTime<Utc>,
}

impl Steps {
    /// Steps over these clients.
    pub fn new(
        tenants: TenantServiceClient<TracedChannel>,
        storage: TelemetryServiceClient<TracedChannel>,
        alerts: AlertServiceClient<TracedChannel>,
        cost: CostServiceClient<TracedChannel>,
    ) -> Self {
        Self {
            tenants,
            storage,
            alerts,
            cost,
            grace: DEFAULT_GRACE,
        }
    }

    /// The same, keeping a deleted tenant's data for `grace` after its export.
    #[must_use]
    pub fn with_offboarding_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Checks a template's rule as the storage service checks a rule it creates, creating
    /// nothing. INVALID_ARGUMENT names the fields as `rule.…`.
    pub async fn check_rule(&self, rule: storage::AlertRule) -> Result<(), Status> {
        let request = storage::CreateAlertRuleRequest {
            tenant_id: NO_TENANT.to_string(),
            rule: Some(rule),
            validate_only: true,
            ..Default::default()
        };
        self.alerts
            .clone()
            .create_alert_rule(deadlined(request))
            .await?;
        Ok(())
    }

    /// The tenant `id`, as the tenant service has it; `None` when it does not exist.
    pub async fn tenant(&self, id: Uuid) -> Result<Option<tenant::Tenant>, Status> {
        let request = tenant::GetTenantRequest {
            tenant_id: id.to_string(),
        };
        match self.tenants.clone().get_tenant(deadlined(request)).await {
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
            .set_provisioning_outcome(deadlined(request))
            .await
            .map_err(|status| failure("the tenant service", &status))?;
        Ok(())
    }

    /// Runs step `name` as `call` says, reading what it needs of this service's own state
    /// (the onboarding template) from `store`.
    pub async fn run(
        &self,
        name: StepName,
        call: &StepCall<'_>,
        store: &dyn ProvisioningStore,
    ) -> Result<(), Failure> {
        let (tenant, key) = (call.tenant, call.key);
        match name {
            StepName::StorageNamespace => self.storage_namespace(tenant, key).await,
            StepName::Archive => self.archive(tenant, key).await,
            StepName::DefaultAlertRules => self.default_alert_rules(tenant, key, store).await,
            StepName::FirstApiKey => self.first_api_key(tenant, key).await,
            StepName::Budget => self.budget(tenant, key).await,
            StepName::Export => self.export(tenant, key).await,
            StepName::GracePeriod => self.grace_period(call).await,
            StepName::DeleteData => self.delete_data(tenant, key, call.offboarding).await,
        }
    }

    /// Undoes step `name` for `tenant`, the step keyed `key`.
    ///
    /// The budget step has nothing to undo. It is the last step, so a run rolled back never
    /// has it succeeded, and a failed `UpdateBudget` changes nothing.
    pub async fn undo(&self, name: StepName, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let undo_key = format!("{key}/undo");
        match name {
            StepName::StorageNamespace => {
                let request = storage::ReleaseTenantStorageRequest {
                    tenant_id: tenant.to_string(),
                };
                self.storage
                    .clone()
                    .release_tenant_storage(keyed(request, &undo_key)?)
                    .await
                    .map_err(|status| failure("the storage service", &status))?;
                Ok(())
            }
            StepName::Archive => {
                let request = storage::ReleaseTenantArchiveRequest {
                    tenant_id: tenant.to_string(),
                };
                self.storage
                    .clone()
                    .release_tenant_archive(keyed(request, &undo_key)?)
                    .await
                    .map_err(|status| failure("the storage service", &status))?;
                Ok(())
            }
            StepName::DefaultAlertRules => self.remove_default_rules(tenant, key, &undo_key).await,
            StepName::FirstApiKey => {
                let request = tenant::RevokeApiKeyRequest {
                    tenant_id: tenant.to_string(),
                    key_id: first_key_id(key),
                };
                match self
                    .tenants
                    .clone()
                    .revoke_api_key(keyed(request, &undo_key)?)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(status) if status.code() == Code::NotFound => Ok(()),
                    Err(status) => Err(failure("the tenant service", &status)),
                }
            }
            StepName::Budget => Ok(()),
            // An offboarding is never rolled back: a deletion is not undone.
            StepName::Export | StepName::GracePeriod | StepName::DeleteData => Err(
                Failure::Permanent(format!("the {} step has no undo", name.as_str())),
            ),
        }
    }

    /// The tenant's storage, for the retention it carries now.
    async fn storage_namespace(&self, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let request = storage::PrepareTenantStorageRequest {
            tenant_id: tenant.to_string(),
            retention: self.retention(tenant).await?,
        };
        self.storage
            .clone()
            .prepare_tenant_storage(keyed(request, key)?)
            .await
            .map_err(|status| failure("the storage service", &status))?;
        Ok(())
    }

    /// The tenant's archive, for the retention it carries now.
    async fn archive(&self, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let request = storage::PrepareTenantArchiveRequest {
            tenant_id: tenant.to_string(),
            retention: self.retention(tenant).await?,
        };
        self.storage
            .clone()
            .prepare_tenant_archive(keyed(request, key)?)
            .await
            .map_err(|status| failure("the storage service", &status))?;
        Ok(())
    }

    /// The tenant's retention, read from the tenant service rather than left to the storage
    /// service's cache of it, which a reconcile would find stale.
    async fn retention(
        &self,
        tenant: Uuid,
    ) -> Result<Option<mfg_proto::common::v1::Retention>, Failure> {
        match self.tenant(tenant).await {
            Ok(Some(found)) => Ok(found.retention),
            Ok(None) => Err(Failure::Permanent(format!("tenant `{tenant}` not found"))),
            Err(status) => Err(failure("the tenant service", &status)),
        }
    }

    /// The rules of the template for the tenant's plan, each under the id derived from the
    /// step's key and its place: one created before answers ALREADY_EXISTS, and is kept.
    async fn default_alert_rules(
        &self,
        tenant: Uuid,
        key: &str,
        store: &dyn ProvisioningStore,
    ) -> Result<(), Failure> {
        let plan = match self.tenant(tenant).await {
            Ok(Some(found)) => found.plan(),
            Ok(None) => return Err(Failure::Permanent(format!("tenant `{tenant}` not found"))),
            Err(status) => return Err(failure("the tenant service", &status)),
        };
        let template = store.template().await.map_err(|error| match error {
            ProvisioningError::Unavailable(_) => Failure::Retryable(error.to_string()),
            _ => Failure::Permanent(error.to_string()),
        })?;
        for (n, rule) in template.rules(plan).iter().enumerate() {
            let request = storage::CreateAlertRuleRequest {
                tenant_id: tenant.to_string(),
                rule: Some(rule.clone()),
                rule_id: rule_id(key, n).to_string(),
                validate_only: false,
            };
            match self
                .alerts
                .clone()
                .create_alert_rule(keyed(request, key)?)
                .await
            {
                Ok(_) => {}
                Err(status) if status.code() == Code::AlreadyExists => {}
                Err(status) => return Err(failure("the storage service", &status)),
            }
        }
        Ok(())
    }

    /// Deletes every rule of the tenant that the step keyed `key` may have created, whatever
    /// the template says now.
    async fn remove_default_rules(
        &self,
        tenant: Uuid,
        key: &str,
        undo_key: &str,
    ) -> Result<(), Failure> {
        let created: std::collections::HashSet<String> =
            rule_ids(key).map(|id| id.to_string()).collect();
        let mut alerts = self.alerts.clone();
        let mut page_token = String::new();
        let mut found = Vec::new();
        loop {
            let request = storage::ListAlertRulesRequest {
                tenant_id: tenant.to_string(),
                page_size: RULES_PAGE,
                page_token,
            };
            let page = alerts
                .list_alert_rules(keyed(request, undo_key)?)
                .await
                .map_err(|status| failure("the storage service", &status))?
                .into_inner();
            found.extend(
                page.rules
                    .into_iter()
                    .map(|rule| rule.rule_id)
                    .filter(|id| created.contains(id)),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        for rule_id in found {
            let request = storage::DeleteAlertRuleRequest {
                tenant_id: tenant.to_string(),
                rule_id,
            };
            match alerts.delete_alert_rule(keyed(request, undo_key)?).await {
                Ok(_) => {}
                Err(status) if status.code() == Code::NotFound => {}
                Err(status) => return Err(failure("the storage service", &status)),
            }
        }
        Ok(())
    }

    /// An admin key of the tenant under the id derived from the step's key, its secret sealed
    /// by the tenant service until the operator claims it: asked for again, the same key.
    async fn first_api_key(&self, tenant: Uuid, key: &str) -> Result<(), Failure> {
        let request = tenant::CreateSealedApiKeyRequest {
            tenant_id: tenant.to_string(),
            key_id: first_key_id(key),
            display_name: FIRST_KEY_NAME.to_owned(),
            scopes: vec![tenant::Scope::Admin.into()],
        };
        self.tenants
            .clone()
            .create_sealed_api_key(keyed(request, key)?)
            .await
            .map_err(|status| failure("the tenant service", &status))?;
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

/// The id of the key that the step keyed `step_key` creates, as the tenant service writes key
/// ids: the same for every attempt of the step, and for no other step.
fn first_key_id(step_key: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:mfg:provisioning:{step_key}/api-key").as_bytes(),
    )
    .simple()
    .to_string()
}

/// `message` as a request with [`CALL_DEADLINE`].
pub(crate) fn deadlined<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_DEADLINE);
    request
}

/// `message` as a request carrying the step's key, with [`CALL_DEADLINE`].
pub(crate) fn keyed<T>(message: T, key: &str) -> Result<Request<T>, Failure> {
    let mut request = deadlined(message);
    let value = key
        .parse()
        .map_err(|_| Failure::Permanent(format!("the step key `{key}` is not ASCII")))?;
    request.metadata_mut().insert(STEP_KEY, value);
    Ok(request)
}

/// How a call's error counts: a service that is down, busy or slow may answer later; any
/// other answer will not change by asking again.
pub(crate) fn failure(service: &str, status: &Status) -> Failure {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `grpc-timeout` a request is sent with, which tonic's channel also enforces.
    fn timeout<T>(request: &Request<T>) -> Option<&str> {
        request.metadata().get("grpc-timeout")?.to_str().ok()
    }

    #[test]
    fn every_call_carries_a_deadline_the_service_is_told() {
        assert_eq!(timeout(&deadlined(())), Some("30000000u"), "30 s");
        assert_eq!(timeout(&keyed((), "run/step").unwrap()), Some("30000000u"));
        let data = offboarding::with_data_deadline(keyed((), "run/step").unwrap());
        assert_eq!(timeout(&data), Some("3600000m"), "an hour");
        assert_eq!(data.metadata().get(STEP_KEY).unwrap(), "run/step");
    }
}
