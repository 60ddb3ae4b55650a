//! The hand-off of tenants to the provisioning service (decision 0014): a relay that sends
//! each row of the outbox, written in the transaction that created its tenant (an onboarding)
//! or changed its retention or budget (a reconcile), to `StartProvisioning` until it is
//! accepted.
//!
//! Several replicas may relay from one database: a row is claimed under a lease, so one replica
//! sends it at a time, and a replica that dies leaves its rows to the next claim.
//! `StartProvisioning` is idempotent on the row's request id, so a row sent twice (accepted,
//! then the replica died before marking it) starts one run.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use mfg_common::{clock::SharedClock, grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::provisioning::v1::{
    OffboardingOptions, RunKind, StartProvisioningRequest,
    provisioning_service_client::ProvisioningServiceClient,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    domain::timestamp,
    error::Result,
    store::{Handoff, HandoffKind, TenantStore},
};

/// How often the outbox is looked at when nothing wakes the relay.
const POLL: Duration = Duration::from_millis(500);

/// How long a claimed row is left to its relay: a failed call is retried after it.
const LEASE: Duration = Duration::from_secs(2);

/// How long `StartProvisioning` may take before it fails and the row is sent again: a provisioning service that hangs does not stop the relay. Sent as
/// `grpc-timeout`.
const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// The most rows claimed at once.
const BATCH: i64 = 64;

/// How long a sent row is kept, to see what was handed off and when.
pub const SENT_KEPT: chrono::Duration = chrono::Duration::days(7);

/// How often the rows sent more than [`SENT_KEPT`] ago are forgotten.
const FORGET_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// Sends the outbox to the provisioning service.
#[derive(Debug, Clone)]
pub struct Relay {
    store: Arc<dyn TenantStore>,
    provisioning: ProvisioningServiceClient<TracedChannel>,
    clock: SharedClock,
    owner: Uuid,
    wake: Arc<Notify>,
}

impl Relay {
    /// A relay from `store` to the provisioning service, on a channel with the operator's
    /// token.
    pub fn new(store: Arc<dyn TenantStore>, channel: TracedChannel, clock: SharedClock) -> Self {
        Self {
            store,
            provisioning: ProvisioningServiceClient::new(channel),
            clock,
            owner: Uuid::now_v7(),
            wake: Arc::default(),
        }
    }

    /// Wakes the relay: a tenant was created.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends the outbox until `shutdown`: what it can claim, then again when woken or after
    /// [`POLL`].
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut next_forget = self.now();
        loop {
            if let Err(error) = self.send_claimed().await {
                tracing::warn!(%error, "the provisioning outbox could not be read");
            }
            if self.now() >= next_forget {
                next_forget = self.now() + FORGET_EVERY;
                if let Err(error) = self
                    .store
                    .forget_sent_handoffs(self.now() - SENT_KEPT)
                    .await
                {
                    tracing::warn!(%error, "the provisioning outbox's sent rows could not be forgotten");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims the rows due and sends each; a row whose call fails stays for a later claim.
    pub async fn send_claimed(&self) -> Result<()> {
        let now = self.now();
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claimed = self
            .store
            .claim_handoffs(self.owner, now, lease_until, BATCH)
            .await?;
        for handoff in claimed {
            self.send(&handoff).await?;
        }
        Ok(())
    }

    async fn send(&self, handoff: &Handoff) -> Result<()> {
        let request = StartProvisioningRequest {
            tenant_id: handoff.tenant.to_string(),
            request_id: handoff.request_id.clone(),
            kind: match handoff.kind {
                HandoffKind::Onboard => RunKind::Onboard,
                HandoffKind::Reconcile => RunKind::Reconcile,
                HandoffKind::Offboard(_) => RunKind::Offboard,
            }
            .into(),
            offboarding: match handoff.kind {
                HandoffKind::Offboard(options) => Some(OffboardingOptions {
                    force: options.force,
                    purge_archive: options.purge_archive,
                }),
                _ => None,
            },
        };
        let mut request = tonic::Request::new(request);
        request.set_timeout(CALL_DEADLINE);
        match self.provisioning.clone().start_provisioning(request).await {
            Ok(response) => {
                let run_id = response.into_inner().run.unwrap_or_default().run_id;
                self.store.handoff_sent(handoff, &run_id, self.now()).await
            }
            Err(status) => {
                tracing::warn!(
                    tenant_id = %handoff.tenant,
                    attempts = handoff.attempts,
                    code = ?status.code(),
                    message = status.message(),
                    "the provisioning service did not take a new tenant; retrying"
                );
                Ok(())
            }
        }
    }

    fn now(&self) -> DateTime<Utc> {
        timestamp(self.clock.system_now())
    }
}
