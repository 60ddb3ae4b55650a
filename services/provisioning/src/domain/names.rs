//! The names the states and steps are stored and shown under.

use super::run::{RunKind, RunState, StepName, StepState};

impl RunKind {
    /// Its name in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Onboard => "onboard",
            Self::Reconcile => "reconcile",
            Self::Offboard => "offboard",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Onboard, Self::Reconcile, Self::Offboard]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

impl RunState {
    /// Its name in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
        }
    }

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::RollingBack,
            Self::RolledBack,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl StepState {
    /// Its name in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::RolledBack,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl StepName {
    /// Its name, as the contract shows it and the store keeps it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StorageNamespace => "storage_namespace",
            Self::Archive => "archive",
            Self::DefaultAlertRules => "default_alert_rules",
            Self::FirstApiKey => "first_api_key",
            Self::Budget => "budget",
            Self::Export => "export",
            Self::GracePeriod => "grace_period",
            Self::DeleteData => "delete_data",
        }
    }

    /// The step named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::StorageNamespace,
            Self::Archive,
            Self::DefaultAlertRules,
            Self::FirstApiKey,
            Self::Budget,
            Self::Export,
            Self::GracePeriod,
            Self::DeleteData,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}
