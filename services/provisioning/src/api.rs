//! The gRPC adapter of the provisioning service: starting, reading, retrying and rolling back a
//! tenant's onboarding runs, and the onboarding template.
//!
//! Access is checked before a call reaches here, by the auth layer, from each RPC's option in
//! the contract.

pub mod audit;
mod convert;
mod template;

use mfg_common::audit::Asker;
use std::sync::{Arc, OnceLock};

use mfg_common::clock::SharedClock;
use mfg_proto::provisioning::v1::{self as pb, provisioning_service_server::ProvisioningService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::run::{Offboarding, Run, RunKind, RunState},
    error::{ProvisioningError, Result},
    steps::Steps,
    store::ProvisioningStore,
    worker::Worker,
};

/// The runs (and audit events) a page lists when the request does not say.
const DEFAULT_PAGE: u32 = 50;
/// The most runs (and audit events) a page lists.
const MAX_PAGE: u32 = 1_000;

/// What the API works on once the database is ready.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The runs.
    pub store: Arc<dyn ProvisioningStore>,
    /// The calls of the steps, and the tenant service.
    pub steps: Steps,
    /// The worker, woken when a run is started or resumed.
    pub worker: Worker,
    /// The clock.
    pub clock: SharedClock,
}

/// The API's state, set once the database is ready.
pub type ReadyProvisioning = Arc<OnceLock<Ready>>;

/// Serves `mfg.provisioning.v1.ProvisioningService`.
#[derive(Debug, Clone)]
pub struct ProvisioningApi {
    ready: ReadyProvisioning,
}

impl ProvisioningApi {
    /// Creates the adapter over a state that becomes ready later.
    pub fn new(ready: ReadyProvisioning) -> Self {
        Self { ready }
    }

    fn ready(&self) -> Result<&Ready> {
        self.ready.get().ok_or(ProvisioningError::NotReady)
    }
}

impl Ready {
    /// A tenant's run, NOT_FOUND when it has none with this id.
    async fn run(&self, tenant: Uuid, run_id: &str) -> Result<Run> {
        let id = Uuid::parse_str(run_id)
            .map_err(|_| ProvisioningError::RunNotFound(run_id.to_owned()))?;
        self.store
            .run(tenant, id)
            .await?
            .ok_or_else(|| ProvisioningError::RunNotFound(run_id.to_owned()))
    }

    /// Starts a run of `kind` for `tenant` (deleting as `offboarding` says, when it offboards),
    /// or returns the run started under `request_id`.
    async fn start(
        &self,
        tenant: Uuid,
        request_id: String,
        kind: RunKind,
        offboarding: Offboarding,
        asker: &Asker,
    ) -> Result<Run> {
        let found = self
            .steps
            .tenant(tenant)
            .await
            .map_err(|status| ProvisioningError::Upstream(status.message().to_owned()))?;
        if found.is_none() {
            return Err(ProvisioningError::TenantNotFound(tenant.to_string()));
        }
        let id = Uuid::now_v7();
        // Without a request id each call is a run of its own.
        let request_id = if request_id.is_empty() {
            id.to_string()
        } else {
            request_id
        };
        let now = mfg_common::clock::micros(self.clock.system_now());
        let mut run = Run::new(id, tenant, request_id, kind, now);
        if kind == RunKind::Offboard {
            run.offboarding = offboarding;
        }
        let resource = run_path(&run);
        let event = self.event(asker, Some(tenant), "provisioning_run.start", resource);
        let stored = self.store.start(&run, Some(&event)).await?;
        if stored.tenant != tenant {
            return Err(ProvisioningError::invalid(
                "request_id",
                "was used to start another tenant's run; use a new id for each request",
            ));
        }
        self.worker.wake();
        Ok(stored)
    }

    /// Starts undoing a failed run's steps, newest first.
    async fn roll_back(&self, mut run: Run, asker: &Asker) -> Result<Run> {
        let was = run.state;
        if run.kind == RunKind::Reconcile {
            return Err(ProvisioningError::FailedPrecondition(
                "a reconcile run applies a tenant's settings again: retry it; it is never \
                 rolled back"
                    .to_owned(),
            ));
        }
        if !run.roll_back(mfg_common::clock::micros(self.clock.system_now())) {
            return Err(ProvisioningError::FailedPrecondition(format!(
                "the run is {}; only a failed run is rolled back",
                was.as_str()
            )));
        }
        self.resume(run, asker, "provisioning_run.rollback", "rolled back")
            .await
    }

    /// Resumes a failed run from its failed step.
    async fn retry(&self, mut run: Run, asker: &Asker) -> Result<Run> {
        let was = run.state;
        if !run.retry(mfg_common::clock::micros(self.clock.system_now())) {
            return Err(ProvisioningError::FailedPrecondition(format!(
                "the run is {}; only a failed run is retried",
                was.as_str()
            )));
        }
        self.resume(run, asker, "provisioning_run.retry", "retried")
            .await
    }

    /// Stores a failed run that `action` (done to it, as `done` says) set going again, with
    /// its audit event, if it is still as it was read; then wakes the worker.
    async fn resume(&self, run: Run, asker: &Asker, action: &str, done: &str) -> Result<Run> {
        let event = self.event(asker, Some(run.tenant), action, run_path(&run));
        let stored = self
            .store
            .update_unleased(&run, RunState::Failed, Some(&event));
        if !stored.await? {
            return Err(ProvisioningError::FailedPrecondition(format!(
                "the run changed while it was {done}; read it again"
            )));
        }
        self.worker.wake();
        Ok(run)
    }
}

#[tonic::async_trait]
impl ProvisioningService for ProvisioningApi {
    async fn start_provisioning(
        &self,
        request: Request<pb::StartProvisioningRequest>,
    ) -> Result<Response<pb::StartProvisioningResponse>, Status> {
        let ready = self.ready()?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let kind = convert::kind(request.kind());
        let offboarding = convert::offboarding(request.offboarding);
        let run = ready
            .start(tenant, request.request_id, kind, offboarding, &asker)
            .await?;
        Ok(Response::new(pb::StartProvisioningResponse {
            run: Some(convert::run(&run)),
        }))
    }

    async fn get_provisioning_run(
        &self,
        request: Request<pb::GetProvisioningRunRequest>,
    ) -> Result<Response<pb::GetProvisioningRunResponse>, Status> {
        let ready = self.ready()?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let run = ready.run(tenant, &request.run_id).await?;
        Ok(Response::new(pb::GetProvisioningRunResponse {
            run: Some(convert::run(&run)),
        }))
    }

    async fn list_provisioning_runs(
        &self,
        request: Request<pb::ListProvisioningRunsRequest>,
    ) -> Result<Response<pb::ListProvisioningRunsResponse>, Status> {
        let ready = self.ready()?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let size = match request.page_size {
            0 => DEFAULT_PAGE,
            size if size < 0 => {
                return Err(ProvisioningError::invalid("page_size", "must not be negative").into());
            }
            size => u32::try_from(size).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let before = convert::page_token(&request.page_token)?;
        let runs = ready.store.runs(tenant, size + 1, before).await?;
        let next_page_token = match runs.get(size as usize) {
            Some(_) => runs[size as usize - 1].id.to_string(),
            None => String::new(),
        };
        Ok(Response::new(pb::ListProvisioningRunsResponse {
            runs: runs.iter().take(size as usize).map(convert::run).collect(),
            next_page_token,
        }))
    }

    async fn retry_provisioning_run(
        &self,
        request: Request<pb::RetryProvisioningRunRequest>,
    ) -> Result<Response<pb::RetryProvisioningRunResponse>, Status> {
        let ready = self.ready()?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let run = ready.run(tenant, &request.run_id).await?;
        let run = ready.retry(run, &asker).await?;
        Ok(Response::new(pb::RetryProvisioningRunResponse {
            run: Some(convert::run(&run)),
        }))
    }

    async fn rollback_provisioning_run(
        &self,
        request: Request<pb::RollbackProvisioningRunRequest>,
    ) -> Result<Response<pb::RollbackProvisioningRunResponse>, Status> {
        let ready = self.ready()?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let run = ready.run(tenant, &request.run_id).await?;
        let run = ready.roll_back(run, &asker).await?;
        Ok(Response::new(pb::RollbackProvisioningRunResponse {
            run: Some(convert::run(&run)),
        }))
    }

    async fn get_onboarding_template(
        &self,
        _request: Request<pb::GetOnboardingTemplateRequest>,
    ) -> Result<Response<pb::GetOnboardingTemplateResponse>, Status> {
        let ready = self.ready()?;
        let stored = ready.store.template().await?;
        Ok(Response::new(pb::GetOnboardingTemplateResponse {
            template: Some(template::template(stored)),
        }))
    }

    async fn update_onboarding_template(
        &self,
        request: Request<pb::UpdateOnboardingTemplateRequest>,
    ) -> Result<Response<pb::UpdateOnboardingTemplateResponse>, Status> {
        let ready = self.ready()?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let mask = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let changed = ready
            .update_template(request.template, &mask, &asker)
            .await?;
        Ok(Response::new(pb::UpdateOnboardingTemplateResponse {
            template: Some(template::template(changed)),
        }))
    }
}

/// A run's path, as the audit log names it.
fn run_path(run: &Run) -> String {
    format!("tenants/{}/provisioning-runs/{}", run.tenant, run.id)
}
