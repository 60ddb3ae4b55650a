//! Tenants: identity, plan, state, limits, retention and budget.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use mfg_common::Violations;
use uuid::Uuid;

use mfg_common::labels::{Labels, validate_display_name, validate_labels};

/// A tenant's id: a UUID (v7 for new tenants, so ids sort by creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(pub Uuid);

impl TenantId {
    /// Creates a new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("is required".to_owned());
        }
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| format!("`{s}` is not a tenant id (a UUID)"))
    }
}

/// A tenant's unique name: a slug of 3 to 63 characters, `[a-z][a-z0-9-]*[a-z0-9]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

impl TenantName {
    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("is required".to_owned());
        }
        let bytes = s.as_bytes();
        let valid = (3..=63).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[bytes.len() - 1] != b'-';
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` must be 3 to 63 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen"
            ))
        }
    }
}

/// A tenant's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Shared resources.
    Shared,
    /// Dedicated limiters and pools at the edge.
    Dedicated,
}

impl Plan {
    /// Returns the plan's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shared" => Some(Self::Shared),
            "dedicated" => Some(Self::Dedicated),
            _ => None,
        }
    }

    /// Returns the plan's default limits.
    pub fn default_limits(self) -> Limits {
        let limits = match self {
            Self::Shared => mfg_common::plans::SHARED,
            Self::Dedicated => mfg_common::plans::DEDICATED,
        };
        Limits {
            max_machines: limits.max_machines,
            ingest_readings_per_second: limits.ingest_readings_per_second,
            api_requests_per_second: limits.api_requests_per_second,
        }
    }
}

/// A tenant's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantState {
    /// Serving.
    Active,
    /// Keys authenticate but writes are refused.
    Suspended,
    /// Soft-deleted: keys stop working, the name stays reserved.
    Deleted,
}

impl TenantState {
    /// Returns the state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// How far the provisioning service has onboarded a tenant (decision 0014).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnboardingStatus {
    /// Onboarded, or created without a hand-off.
    Done,
    /// Handed to the provisioning service, whose run has not succeeded yet.
    Provisioning,
    /// Its run failed.
    Failed,
}

impl OnboardingStatus {
    /// Returns the status's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Provisioning => "provisioning",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "done" => Some(Self::Done),
            "provisioning" => Some(Self::Provisioning),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A tenant's onboarding: its status, the run that onboards it and why that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarding {
    /// How far it is.
    pub status: OnboardingStatus,
    /// The run, once the provisioning service took the tenant; empty before.
    pub run_id: String,
    /// The failed step and its error; empty unless the run failed.
    pub error: String,
}

impl Onboarding {
    /// The onboarding of a tenant created without a hand-off.
    pub fn done() -> Self {
        Self {
            status: OnboardingStatus::Done,
            run_id: String::new(),
            error: String::new(),
        }
    }

    /// The onboarding of a tenant just handed to the provisioning service.
    pub fn pending() -> Self {
        Self {
            status: OnboardingStatus::Provisioning,
            ..Self::done()
        }
    }

    /// Whether the tenant was handed to the provisioning service (its run may not have started
    /// yet): only such a tenant is handed to it again to be offboarded.
    pub fn handed_off(&self) -> bool {
        self.status != OnboardingStatus::Done || !self.run_id.is_empty()
    }
}

/// How a deleted tenant's data is deleted, as `DeleteTenant` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offboarding {
    /// Deleted as soon as it is exported, without the grace period.
    pub force: bool,
    /// Its objects in the cold tier too.
    pub purge_archive: bool,
}

/// A tenant's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How many machines it may register.
    pub max_machines: u32,
    /// How many readings per second it may ingest.
    pub ingest_readings_per_second: u32,
    /// How many API requests per second it may make.
    pub api_requests_per_second: u32,
}

impl Limits {
    /// Replaces zero fields with the plan's defaults.
    pub fn or_defaults(self, plan: Plan) -> Self {
        let defaults = plan.default_limits();
        let pick = |value: u32, default: u32| if value == 0 { default } else { value };
        Self {
            max_machines: pick(self.max_machines, defaults.max_machines),
            ingest_readings_per_second: pick(
                self.ingest_readings_per_second,
                defaults.ingest_readings_per_second,
            ),
            api_requests_per_second: pick(
                self.api_requests_per_second,
                defaults.api_requests_per_second,
            ),
        }
    }
}

/// A tenant's retention per storage tier, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw readings in the hot tier.
    pub hot_days: u32,
    /// Rollups in the warm tier.
    pub warm_days: u32,
    /// The archive in the cold tier.
    pub cold_days: u32,
}

impl Retention {
    /// The platform defaults: 30 days hot, 365 warm, 2555 (seven years) cold.
    pub const DEFAULT: Self = Self {
        hot_days: 30,
        warm_days: 365,
        cold_days: 2555,
    };

    /// The longest retention of any tier, one hundred years.
    pub const MAX_DAYS: u32 = 36_500;

    /// The retention a tenant gets: zero fields take the platform defaults, and `hot_days`
    /// rounds up to its hot retention class ([`mfg_common::retention`]; a value above the
    /// longest is left for validation to refuse).
    pub fn effective(self) -> Self {
        let pick = |value: u32, default: u32| if value == 0 { default } else { value };
        let hot_days = pick(self.hot_days, Self::DEFAULT.hot_days);
        Self {
            hot_days: mfg_common::retention::hot_class(hot_days).unwrap_or(hot_days),
            warm_days: pick(self.warm_days, Self::DEFAULT.warm_days),
            cold_days: pick(self.cold_days, Self::DEFAULT.cold_days),
        }
    }
}

/// The largest monthly budget accepted, in USD.
pub const MAX_BUDGET_USD: f64 = 1e12;

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique name.
    pub name: TenantName,
    /// Its human-readable name.
    pub display_name: String,
    /// Its plan.
    pub plan: Plan,
    /// Its lifecycle state.
    pub state: TenantState,
    /// Its labels.
    pub labels: Labels,
    /// Its limits, with defaults applied.
    pub limits: Limits,
    /// Its retention, with defaults applied.
    pub retention: Retention,
    /// Its monthly budget in USD; zero means none.
    pub monthly_budget_usd: f64,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it was last changed.
    pub update_time: DateTime<Utc>,
    /// When it was deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// How far the provisioning service has onboarded it.
    pub onboarding: Onboarding,
    /// Its revision: the store gives it the next one with each change to it or to its
    /// machines, in commit order (0 until stored).
    pub revision: i64,
}

impl Tenant {
    /// The request id its onboarding run is started with: one onboarding per tenant.
    pub fn onboarding_request_id(&self) -> String {
        format!("onboard/{}", self.id)
    }

    /// Whether the change from `before` to it is one the provisioning service applies again,
    /// as a reconcile run: its retention or its budget changed, after it was handed to
    /// provisioning (before, its onboarding run will read them as they are).
    pub fn reconciles_from(&self, before: &Self) -> bool {
        !self.onboarding.run_id.is_empty()
            && self.state != TenantState::Deleted
            && (self.retention != before.retention
                || self.monthly_budget_usd != before.monthly_budget_usd)
    }

    /// The request id its offboarding run is started with: one offboarding per tenant.
    pub fn offboarding_request_id(&self) -> String {
        format!("offboard/{}", self.id)
    }

    /// The request id of the reconcile run of its change at `update_time`.
    pub fn reconcile_request_id(&self) -> String {
        format!(
            "reconcile/{}/{}",
            self.id,
            self.update_time.timestamp_micros()
        )
    }

    /// Checks the fields a client can set, reporting each violation under `prefix` (e.g.
    /// `tenant.`).
    pub fn validate(&self, prefix: &str, violations: &mut Violations) {
        violations.check(
            &format!("{prefix}display_name"),
            validate_display_name(&self.display_name),
        );
        violations.check(&format!("{prefix}labels"), validate_labels(&self.labels));
        let limits = [
            ("max_machines", self.limits.max_machines),
            (
                "ingest_readings_per_second",
                self.limits.ingest_readings_per_second,
            ),
            (
                "api_requests_per_second",
                self.limits.api_requests_per_second,
            ),
        ];
        for (field, value) in limits {
            if value == 0 {
                violations.add(format!("{prefix}limits.{field}"), "must be positive");
            }
        }
        let retention = [
            ("hot_days", self.retention.hot_days),
            ("warm_days", self.retention.warm_days),
            ("cold_days", self.retention.cold_days),
        ];
        for (field, value) in retention {
            if !(1..=Retention::MAX_DAYS).contains(&value) {
                violations.add(
                    format!("{prefix}retention.{field}"),
                    format!("must be between 1 and {} days", Retention::MAX_DAYS),
                );
            }
        }
        if self.retention.cold_days < self.retention.hot_days {
            violations.add(
                format!("{prefix}retention.cold_days"),
                format!(
                    "must not be shorter than hot_days ({} days, its retention class): the \
                     archive keeps what leaves the hot tier",
                    self.retention.hot_days
                ),
            );
        }
        let budget = self.monthly_budget_usd;
        if !budget.is_finite() || !(0.0..=MAX_BUDGET_USD).contains(&budget) {
            violations.add(
                format!("{prefix}monthly_budget_usd"),
                "must be a finite amount between 0 and 1e12",
            );
        }
    }
}

/// What a client gives to create a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// The unique name.
    pub name: TenantName,
    /// The human-readable name; empty means the name.
    pub display_name: String,
    /// The plan.
    pub plan: Plan,
    /// The labels.
    pub labels: Labels,
    /// The limits; zero fields take the plan's defaults.
    pub limits: Limits,
    /// The retention; zero fields take the platform defaults.
    pub retention: Retention,
    /// The monthly budget in USD.
    pub monthly_budget_usd: f64,
}

/// A change to a tenant: each `Some` replaces a field. Zero limits or retention fields take
/// the defaults of the tenant's (new) plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPatch {
    /// A new display name; empty means the name.
    pub display_name: Option<String>,
    /// A new plan.
    pub plan: Option<Plan>,
    /// A new state: active or suspended.
    pub state: Option<TenantState>,
    /// New labels, replacing all of them.
    pub labels: Option<Labels>,
    /// A new machine limit.
    pub max_machines: Option<u32>,
    /// A new ingest limit.
    pub ingest_readings_per_second: Option<u32>,
    /// A new API request limit.
    pub api_requests_per_second: Option<u32>,
    /// A new hot retention.
    pub hot_days: Option<u32>,
    /// A new warm retention.
    pub warm_days: Option<u32>,
    /// A new cold retention.
    pub cold_days: Option<u32>,
    /// A new monthly budget.
    pub monthly_budget_usd: Option<f64>,
}

impl TenantPatch {
    /// Applies the patch to a tenant.
    pub fn apply(&self, tenant: &mut Tenant) {
        if let Some(display_name) = &self.display_name {
            tenant.display_name = if display_name.is_empty() {
                tenant.name.to_string()
            } else {
                display_name.clone()
            };
        }
        if let Some(plan) = self.plan {
            tenant.plan = plan;
        }
        if let Some(state) = self.state {
            tenant.state = state;
        }
        if let Some(labels) = &self.labels {
            tenant.labels = labels.clone();
        }
        let mut limits = tenant.limits;
        let set = |slot: &mut u32, value: Option<u32>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(&mut limits.max_machines, self.max_machines);
        set(
            &mut limits.ingest_readings_per_second,
            self.ingest_readings_per_second,
        );
        set(
            &mut limits.api_requests_per_second,
            self.api_requests_per_second,
        );
        tenant.limits = limits.or_defaults(tenant.plan);
        let mut retention = tenant.retention;
        set(&mut retention.hot_days, self.hot_days);
        set(&mut retention.warm_days, self.warm_days);
        set(&mut retention.cold_days, self.cold_days);
        tenant.retention = retention.effective();
        if let Some(budget) = self.monthly_budget_usd {
            tenant.monthly_budget_usd = budget;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_slugs() {
        for ok in ["acme", "acme-plant-7", "a12"] {
            assert!(ok.parse::<TenantName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Acme",
            "7acme",
            "acme-",
            "acme_x",
            "acme plant",
            &"a".repeat(64),
        ] {
            assert!(bad.parse::<TenantName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_limits_take_the_plan_defaults() {
        let limits = Limits {
            max_machines: 7,
            ingest_readings_per_second: 0,
            api_requests_per_second: 0,
        }
        .or_defaults(Plan::Dedicated);
        assert_eq!(limits.max_machines, 7);
        assert_eq!(limits.ingest_readings_per_second, 50_000);
    }

    proptest! {
        #[test]
        fn tenant_ids_round_trip(bytes in any::<[u8; 16]>()) {
            let id = TenantId(Uuid::from_bytes(bytes));
            prop_assert_eq!(id.to_string().parse::<TenantId>(), Ok(id));
        }

        #[test]
        fn name_parsing_never_panics_and_accepts_only_slugs(s in "\\PC{0,70}") {
            if let Ok(name) = s.parse::<TenantName>() {
                prop_assert!(name.as_str().len() >= 3);
                prop_assert!(name.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
