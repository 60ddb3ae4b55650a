//! The plans' default limits: what a tenant of each plan gets unless its own limits say
//! otherwise. The tenant service gives them; the cost service compares a tenant's API use with
//! the shared plan's to recommend a plan.

/// The default limits of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// How many machines a tenant may register.
    pub max_machines: u32,
    /// How many readings a second a tenant may ingest.
    pub ingest_readings_per_second: u32,
    /// How many API requests a second a tenant may make at the gateway.
    pub api_requests_per_second: u32,
}

/// The shared plan's.
pub const SHARED: PlanLimits = PlanLimits {
    max_machines: 100,
    ingest_readings_per_second: 5_000,
    api_requests_per_second: 100,
};

/// The dedicated plan's: its own rate limiters and pools at the edge, with room to grow.
pub const DEDICATED: PlanLimits = PlanLimits {
    max_machines: 1_000,
    ingest_readings_per_second: 50_000,
    api_requests_per_second: 1_000,
};
