//! Machines: the registry of a tenant's presses, mills and conveyors.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use mfg_common::{
    Violations,
    labels::{Labels, validate_display_name, validate_labels},
};

use super::tenant::TenantId;

/// A machine's id, chosen by the client: `[A-Za-z0-9._-]{1,64}`, unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(String);

impl MachineId {
    /// Returns the id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MachineId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        mfg_common::labels::validate_machine_id(s).map(|()| Self(s.to_owned()))
    }
}

/// A registered machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Its id.
    pub machine_id: MachineId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its human-readable name.
    pub display_name: String,
    /// Its labels.
    pub labels: Labels,
    /// When it was registered.
    pub create_time: DateTime<Utc>,
    /// When it was last changed.
    pub update_time: DateTime<Utc>,
}

impl Machine {
    /// Checks the fields a client can set, reporting each violation under `prefix`.
    pub fn validate(&self, prefix: &str, violations: &mut Violations) {
        violations.check(
            &format!("{prefix}display_name"),
            validate_display_name(&self.display_name),
        );
        violations.check(&format!("{prefix}labels"), validate_labels(&self.labels));
    }
}

/// What a client gives to register a machine.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMachine {
    /// The id.
    pub machine_id: MachineId,
    /// The human-readable name; empty means the id.
    pub display_name: String,
    /// The labels.
    pub labels: Labels,
}

/// A change to a machine: each `Some` replaces a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachinePatch {
    /// A new display name; empty means the id.
    pub display_name: Option<String>,
    /// New labels, replacing all of them.
    pub labels: Option<Labels>,
}

impl MachinePatch {
    /// Applies the patch to a machine.
    pub fn apply(&self, machine: &mut Machine) {
        if let Some(display_name) = &self.display_name {
            machine.display_name = if display_name.is_empty() {
                machine.machine_id.to_string()
            } else {
                display_name.clone()
            };
        }
        if let Some(labels) = &self.labels {
            machine.labels = labels.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids() {
        for ok in ["press-7", "CNC_01", "line.a.conveyor", &"x".repeat(64)] {
            assert!(ok.parse::<MachineId>().is_ok(), "{ok}");
        }
        for bad in ["", "press 7", "press/7", "presse-ü", &"x".repeat(65)] {
            assert!(bad.parse::<MachineId>().is_err(), "{bad}");
        }
    }
}
