//! The tenant service's domain: tenants with their plans, limits and retention, API keys and
//! machines, the rules that make them valid, and the operations on them ([`Tenants`]).

mod api_key;
mod machine;
mod sealed;
mod service;
mod tenant;

pub use api_key::{ApiKey, KeyHasher, KeyId, KeyRecord, NewApiKey, NewSecret, parse_secret};
pub use machine::{Machine, MachineId, MachinePatch, NewMachine};
pub use mfg_common::auth::Scope;
pub use mfg_common::labels::{Labels, validate_display_name, validate_labels};
pub use sealed::{Sealer, Unopenable};
pub use service::{CreatedKey, Tenants};
pub use tenant::{
    Limits, NewTenant, Offboarding, Onboarding, OnboardingStatus, Plan, Retention, Tenant,
    TenantId, TenantName, TenantPatch, TenantState,
};

/// Returns the current time truncated to microseconds, the precision both databases keep, so
/// that what is returned equals what is read back later.
pub fn timestamp(time: std::time::SystemTime) -> chrono::DateTime<chrono::Utc> {
    mfg_common::clock::micros(time)
}
