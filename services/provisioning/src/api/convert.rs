//! Conversions between the contract and the domain.

use chrono::{DateTime, Utc};
use mfg_proto::provisioning::v1 as pb;
use pbjson_types::Timestamp;
use uuid::Uuid;

use crate::{
    domain::run::{Offboarding, Run, RunKind, RunState, Step, StepState},
    error::{ProvisioningError, Result},
};

/// A tenant id of a request: NOT_FOUND when it is not one.
pub fn tenant_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| ProvisioningError::TenantNotFound(id.to_owned()))
}

/// The run a page token names: the last of the page before.
pub fn page_token(token: &str) -> Result<Option<Uuid>> {
    if token.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(token)
        .map(Some)
        .map_err(|_| ProvisioningError::invalid("page_token", "is not a token this service gave"))
}

/// A run in the contract.
pub fn run(run: &Run) -> pb::ProvisioningRun {
    pb::ProvisioningRun {
        run_id: run.id.to_string(),
        tenant_id: run.tenant.to_string(),
        request_id: run.request_id.clone(),
        kind: match run.kind {
            RunKind::Onboard => pb::RunKind::Onboard,
            RunKind::Reconcile => pb::RunKind::Reconcile,
            RunKind::Offboard => pb::RunKind::Offboard,
        }
        .into(),
        offboarding: (run.kind == RunKind::Offboard).then_some(pb::OffboardingOptions {
            force: run.offboarding.force,
            purge_archive: run.offboarding.purge_archive,
        }),
        state: run_state(run.state).into(),
        steps: run.steps.iter().map(step).collect(),
        create_time: Some(timestamp(run.create_time)),
        update_time: Some(timestamp(run.update_time)),
    }
}

/// The kind a request asks for: unset onboards.
pub fn kind(kind: pb::RunKind) -> RunKind {
    match kind {
        pb::RunKind::Reconcile => RunKind::Reconcile,
        pb::RunKind::Offboard => RunKind::Offboard,
        pb::RunKind::Onboard | pb::RunKind::Unspecified => RunKind::Onboard,
    }
}

/// How a request's offboarding deletes; unset, after the grace period and keeping the archive.
pub fn offboarding(options: Option<pb::OffboardingOptions>) -> Offboarding {
    let options = options.unwrap_or_default();
    Offboarding {
        force: options.force,
        purge_archive: options.purge_archive,
    }
}

fn step(step: &Step) -> pb::ProvisioningStep {
    pb::ProvisioningStep {
        name: step.name.as_str().to_owned(),
        state: step_state(step.state).into(),
        error: step.error.clone(),
        attempts: step.attempts,
        start_time: step.start_time.map(timestamp),
        end_time: step.end_time.map(timestamp),
    }
}

fn run_state(state: RunState) -> pb::RunState {
    match state {
        RunState::Pending => pb::RunState::Pending,
        RunState::Running => pb::RunState::Running,
        RunState::Succeeded => pb::RunState::Succeeded,
        RunState::Failed => pb::RunState::Failed,
        RunState::RollingBack => pb::RunState::RollingBack,
        RunState::RolledBack => pb::RunState::RolledBack,
    }
}

fn step_state(state: StepState) -> pb::StepState {
    match state {
        StepState::Pending => pb::StepState::Pending,
        StepState::Running => pb::StepState::Running,
        StepState::Succeeded => pb::StepState::Succeeded,
        StepState::Failed => pb::StepState::Failed,
        StepState::RolledBack => pb::StepState::RolledBack,
    }
}

/// A time in the contract.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}
