//! Conversions between the protobuf contract and the domain. A missing or invalid field becomes
//! an INVALID_ARGUMENT naming it; generated types go no further than this module.

use chrono::{DateTime, Utc};
use mfg_common::{Violations, auth::Scope};
use mfg_proto::tenant::v1 as pb;
use pbjson_types::{FieldMask, Timestamp};

use crate::{
    domain::{
        ApiKey, KeyId, KeyRecord, Limits, Machine, MachineId, MachinePatch, NewMachine, NewTenant,
        OnboardingStatus, Plan, Retention, Tenant, TenantId, TenantPatch, TenantState,
    },
    error::{Result, TenantError},
};

fn finish(violations: Violations) -> Result<()> {
    violations.finish().map_err(TenantError::InvalidArgument)
}

/// Converts a time to a protobuf timestamp.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Parses a tenant id from a request field.
pub fn tenant_id(value: &str, field: &str) -> Result<TenantId> {
    value
        .parse()
        .map_err(|e: String| TenantError::invalid(field, e))
}

/// Parses a machine id from a request field.
pub fn machine_id(value: &str, field: &str) -> Result<MachineId> {
    value
        .parse()
        .map_err(|e: String| TenantError::invalid(field, e))
}

/// Parses a key id from a request field.
pub fn key_id(value: &str, field: &str) -> Result<KeyId> {
    value
        .parse()
        .map_err(|e: String| TenantError::invalid(field, e))
}

fn plan(value: i32, field: &str, violations: &mut Violations) -> Plan {
    match pb::Plan::try_from(value) {
        Ok(pb::Plan::Unspecified | pb::Plan::Shared) => Plan::Shared,
        Ok(pb::Plan::Dedicated) => Plan::Dedicated,
        Err(_) => {
            violations.add(field, format!("{value} is not a plan"));
            Plan::Shared
        }
    }
}

fn plan_to_proto(plan: Plan) -> pb::Plan {
    match plan {
        Plan::Shared => pb::Plan::Shared,
        Plan::Dedicated => pb::Plan::Dedicated,
    }
}

fn state_to_proto(state: TenantState) -> pb::TenantState {
    match state {
        TenantState::Active => pb::TenantState::Active,
        TenantState::Suspended => pb::TenantState::Suspended,
        TenantState::Deleted => pb::TenantState::Deleted,
    }
}

fn limits_to_proto(limits: Limits) -> pb::Limits {
    pb::Limits {
        max_machines: limits.max_machines,
        ingest_readings_per_second: limits.ingest_readings_per_second,
        api_requests_per_second: limits.api_requests_per_second,
    }
}

impl TryFrom<pb::CreateTenantRequest> for NewTenant {
    type Error = TenantError;
    fn try_from(request: pb::CreateTenantRequest) -> Result<Self> {
        let tenant = request
            .tenant
            .ok_or_else(|| TenantError::invalid("tenant", "is required"))?;
        let mut violations = Violations::new();
        let name = tenant.name.parse::<crate::domain::TenantName>();
        if let Err(description) = &name {
            violations.add("tenant.name", description.clone());
        }
        let plan = plan(tenant.plan, "tenant.plan", &mut violations);
        let limits = tenant.limits.unwrap_or_default();
        let retention = tenant.retention.unwrap_or_default();
        finish(violations)?;
        Ok(Self {
            name: name.map_err(|description| TenantError::invalid("tenant.name", description))?,
            display_name: tenant.display_name,
            plan,
            labels: tenant.labels.into_iter().collect(),
            limits: Limits {
                max_machines: limits.max_machines,
                ingest_readings_per_second: limits.ingest_readings_per_second,
                api_requests_per_second: limits.api_requests_per_second,
            },
            retention: Retention {
                hot_days: retention.hot_days,
                warm_days: retention.warm_days,
                cold_days: retention.cold_days,
            },
            monthly_budget_usd: tenant.monthly_budget_usd,
        })
    }
}

impl From<Tenant> for pb::Tenant {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: tenant.id.to_string(),
            name: tenant.name.to_string(),
            display_name: tenant.display_name,
            plan: plan_to_proto(tenant.plan).into(),
            state: visible_state(tenant.state, tenant.onboarding.status).into(),
            labels: tenant.labels.into_iter().collect(),
            limits: Some(limits_to_proto(tenant.limits)),
            retention: Some(mfg_proto::common::v1::Retention {
                hot_days: tenant.retention.hot_days,
                warm_days: tenant.retention.warm_days,
                cold_days: tenant.retention.cold_days,
            }),
            monthly_budget_usd: tenant.monthly_budget_usd,
            create_time: Some(timestamp(tenant.create_time)),
            update_time: Some(timestamp(tenant.update_time)),
            delete_time: tenant.delete_time.map(timestamp),
            provisioning_run_id: tenant.onboarding.run_id,
            provisioning_error: tenant.onboarding.error,
            revision: tenant.revision,
        }
    }
}

/// The state the contract shows: the lifecycle state, except that an active tenant not yet
/// onboarded is provisioning or provisioning-failed.
fn visible_state(state: TenantState, onboarding: OnboardingStatus) -> pb::TenantState {
    match (state, onboarding) {
        (TenantState::Active, OnboardingStatus::Provisioning) => pb::TenantState::Provisioning,
        (TenantState::Active, OnboardingStatus::Failed) => pb::TenantState::ProvisioningFailed,
        (state, _) => state_to_proto(state),
    }
}

fn mask_paths(mask: Option<FieldMask>) -> Result<Vec<String>> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(TenantError::invalid(
            "update_mask",
            "is required: name the fields to change, or `*` for all of them",
        ));
    }
    Ok(paths)
}

/// Builds a tenant patch from the fields an update mask names.
pub fn tenant_patch(tenant: Option<pb::Tenant>, mask: Option<FieldMask>) -> Result<TenantPatch> {
    let tenant = tenant.ok_or_else(|| TenantError::invalid("tenant", "is required"))?;
    let paths = mask_paths(mask)?;
    let mut violations = Violations::new();
    let mut patch = TenantPatch::default();
    let limits = tenant.limits.unwrap_or_default();
    let retention = tenant.retention.unwrap_or_default();
    for path in &paths {
        let all = path == "*";
        if all || path == "display_name" {
            patch.display_name = Some(tenant.display_name.clone());
        }
        if all || path == "plan" {
            patch.plan = Some(plan(tenant.plan, "tenant.plan", &mut violations));
        }
        if all || path == "state" {
            patch.state = match pb::TenantState::try_from(tenant.state) {
                Ok(pb::TenantState::Active) => Some(TenantState::Active),
                Ok(pb::TenantState::Suspended) => Some(TenantState::Suspended),
                Ok(pb::TenantState::Deleted) => Some(TenantState::Deleted),
                _ => {
                    violations.add(
                        "tenant.state",
                        "must be TENANT_STATE_ACTIVE or TENANT_STATE_SUSPENDED",
                    );
                    None
                }
            };
        }
        if all || path == "labels" {
            patch.labels = Some(tenant.labels.clone().into_iter().collect());
        }
        if all || path == "limits" || path == "limits.max_machines" {
            patch.max_machines = Some(limits.max_machines);
        }
        if all || path == "limits" || path == "limits.ingest_readings_per_second" {
            patch.ingest_readings_per_second = Some(limits.ingest_readings_per_second);
        }
        if all || path == "limits" || path == "limits.api_requests_per_second" {
            patch.api_requests_per_second = Some(limits.api_requests_per_second);
        }
        if all || path == "retention" || path == "retention.hot_days" {
            patch.hot_days = Some(retention.hot_days);
        }
        if all || path == "retention" || path == "retention.warm_days" {
            patch.warm_days = Some(retention.warm_days);
        }
        if all || path == "retention" || path == "retention.cold_days" {
            patch.cold_days = Some(retention.cold_days);
        }
        if all || path == "monthly_budget_usd" {
            patch.monthly_budget_usd = Some(tenant.monthly_budget_usd);
        }
        match path.as_str() {
            "*"
            | "display_name"
            | "plan"
            | "state"
            | "labels"
            | "limits"
            | "limits.max_machines"
            | "limits.ingest_readings_per_second"
            | "limits.api_requests_per_second"
            | "retention"
            | "retention.hot_days"
            | "retention.warm_days"
            | "retention.cold_days"
            | "monthly_budget_usd" => {}
            "name" => violations.add("update_mask", "`name` cannot change"),
            "id" | "create_time" | "update_time" | "delete_time" => {
                violations.add("update_mask", format!("`{path}` is set by the service"));
            }
            other => violations.add(
                "update_mask",
                format!("`{other}` is not a field of Tenant that can change"),
            ),
        }
    }
    finish(violations)?;
    Ok(patch)
}

/// Parses key scopes.
pub fn scopes(values: &[i32]) -> Result<Vec<Scope>> {
    let mut violations = Violations::new();
    let scopes = values
        .iter()
        .enumerate()
        .filter_map(|(i, value)| {
            let scope = Scope::from_proto(*value);
            if scope.is_none() {
                violations.add(
                    format!("scopes[{i}]"),
                    format!("{value} is not SCOPE_READ, SCOPE_WRITE or SCOPE_ADMIN"),
                );
            }
            scope
        })
        .collect();
    finish(violations)?;
    Ok(scopes)
}

impl From<ApiKey> for pb::ApiKey {
    fn from(key: ApiKey) -> Self {
        Self {
            key_id: key.key_id.to_string(),
            tenant_id: key.tenant_id.to_string(),
            display_name: key.display_name,
            scopes: key.scopes.iter().map(|s| s.to_proto().into()).collect(),
            create_time: Some(timestamp(key.create_time)),
            revoke_time: key.revoke_time.map(timestamp),
            secret_claimable: key.secret_claimable,
        }
    }
}

impl From<KeyRecord> for pb::AuthenticateKeyResponse {
    fn from(record: KeyRecord) -> Self {
        Self {
            tenant_id: record.key.tenant_id.to_string(),
            key_id: record.key.key_id.to_string(),
            scopes: record
                .key
                .scopes
                .iter()
                .map(|s| s.to_proto().into())
                .collect(),
            tenant_state: state_to_proto(record.tenant_state).into(),
            plan: plan_to_proto(record.plan).into(),
            limits: Some(limits_to_proto(record.limits)),
        }
    }
}

/// Parses the machine of a CreateMachine request.
pub fn new_machine(machine: Option<pb::Machine>) -> Result<NewMachine> {
    let machine = machine.ok_or_else(|| TenantError::invalid("machine", "is required"))?;
    Ok(NewMachine {
        machine_id: machine_id(&machine.machine_id, "machine.machine_id")?,
        display_name: machine.display_name,
        labels: machine.labels.into_iter().collect(),
    })
}

impl From<Machine> for pb::Machine {
    fn from(machine: Machine) -> Self {
        Self {
            machine_id: machine.machine_id.to_string(),
            tenant_id: machine.tenant_id.to_string(),
            display_name: machine.display_name,
            labels: machine.labels.into_iter().collect(),
            create_time: Some(timestamp(machine.create_time)),
            update_time: Some(timestamp(machine.update_time)),
        }
    }
}

/// Builds a machine patch from the fields an update mask names.
pub fn machine_patch(
    machine: Option<pb::Machine>,
    mask: Option<FieldMask>,
) -> Result<MachinePatch> {
    let machine = machine.ok_or_else(|| TenantError::invalid("machine", "is required"))?;
    let paths = mask_paths(mask)?;
    let mut violations = Violations::new();
    let mut patch = MachinePatch::default();
    for path in &paths {
        match path.as_str() {
            "*" => {
                patch.display_name = Some(machine.display_name.clone());
                patch.labels = Some(machine.labels.clone().into_iter().collect());
            }
            "display_name" => patch.display_name = Some(machine.display_name.clone()),
            "labels" => patch.labels = Some(machine.labels.clone().into_iter().collect()),
            "machine_id" => violations.add("update_mask", "`machine_id` cannot change"),
            "tenant_id" | "create_time" | "update_time" => {
                violations.add("update_mask", format!("`{path}` is set by the service"));
            }
            other => violations.add(
                "update_mask",
                format!("`{other}` is not a field of Machine that can change"),
            ),
        }
    }
    finish(violations)?;
    Ok(patch)
}
