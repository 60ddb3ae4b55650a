//! The metered resources, and how their usage becomes billable units.

/// A metered resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Meter {
    /// Readings ingested.
    IngestedReadings,
    /// Bytes held in the hot tier.
    HotStorage,
    /// Bytes held in the warm tier.
    WarmStorage,
    /// Bytes held in the cold tier.
    ColdStorage,
    /// Requests at the gateway.
    ApiRequests,
    /// Points a query scanned.
    QueryPoints,
    /// Evaluations of alert rules.
    AlertEvaluations,
    /// Registered machines.
    Machines,
}

/// How a meter's usage accrues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accrual {
    /// A count of events: the usage of an interval is how many happened in it.
    Count,
    /// A level held over time (bytes stored, machines registered): the usage of an interval is
    /// the level times its length, billed per month held (a GB-month, a machine-month).
    Level,
}

/// A storage tier, for the lines of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Raw readings in PostgreSQL.
    Hot,
    /// Rollups in PostgreSQL.
    Warm,
    /// Parquet objects in the object store.
    Cold,
}

impl Meter {
    /// Every meter.
    pub const ALL: [Self; 8] = [
        Self::IngestedReadings,
        Self::HotStorage,
        Self::WarmStorage,
        Self::ColdStorage,
        Self::ApiRequests,
        Self::QueryPoints,
        Self::AlertEvaluations,
        Self::Machines,
    ];

    /// Its name, as the database keeps it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::IngestedReadings => "ingested_readings",
            Self::HotStorage => "hot_storage",
            Self::WarmStorage => "warm_storage",
            Self::ColdStorage => "cold_storage",
            Self::ApiRequests => "api_requests",
            Self::QueryPoints => "query_points",
            Self::AlertEvaluations => "alert_evaluations",
            Self::Machines => "machines",
        }
    }

    /// The meter of a name.
    pub fn of_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// How its usage accrues.
    pub const fn accrual(self) -> Accrual {
        match self {
            Self::HotStorage | Self::WarmStorage | Self::ColdStorage | Self::Machines => {
                Accrual::Level
            }
            Self::IngestedReadings
            | Self::ApiRequests
            | Self::QueryPoints
            | Self::AlertEvaluations => Accrual::Count,
        }
    }

    /// The tier whose data it measures, for a storage meter.
    pub const fn tier(self) -> Option<Tier> {
        match self {
            Self::HotStorage => Some(Tier::Hot),
            Self::WarmStorage => Some(Tier::Warm),
            Self::ColdStorage => Some(Tier::Cold),
            _ => None,
        }
    }
}
