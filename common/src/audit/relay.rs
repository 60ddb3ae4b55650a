//! The relay from a service's audit outbox to the audit log of the provisioning service
//! (`AppendAuditEvents`, idempotent on the records' ids): what it can claim, then again when
//! woken or after a poll. A record stays in the outbox until the log took it.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use mfg_proto::provisioning::v1::{
    AppendAuditEventsRequest, AuditEvent, audit_service_client::AuditServiceClient,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::outbox::{AuditOutbox, AuditRecord};
use crate::{
    clock::{SharedClock, micros},
    grpc::TracedChannel,
    shutdown::CancellationToken,
};

/// How often the outbox is looked at when nothing wakes the relay.
const POLL: Duration = Duration::from_millis(500);

/// How long claimed records are left to their relay: a failed call is retried after it.
const LEASE: Duration = Duration::from_secs(2);

/// The most records sent in one call.
const BATCH: i64 = 64;

/// How long a sent record is kept in the outbox, to see what was sent and when.
pub const SENT_KEPT: chrono::Duration = chrono::Duration::days(7);

/// How often the records sent more than [`SENT_KEPT`] ago are forgotten.
const FORGET_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// Sends a service's audit outbox to the audit log.
#[derive(Debug, Clone)]
pub struct AuditRelay {
    service: &'static str,
    outbox: AuditOutbox,
    log: AuditServiceClient<TracedChannel>,
    clock: SharedClock,
    owner: Uuid,
    wake: Arc<Notify>,
}

impl AuditRelay {
    /// A relay of `service`'s records from `outbox` to the audit log, on a channel to the
    /// provisioning service with the operator's token.
    pub fn new(
        service: &'static str,
        outbox: AuditOutbox,
        channel: TracedChannel,
        clock: SharedClock,
    ) -> Self {
        Self {
            service,
            outbox,
            log: AuditServiceClient::new(channel),
            clock,
            owner: Uuid::now_v7(),
            wake: Arc::default(),
        }
    }

    /// Wakes the relay: a record was written.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends the outbox until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut next_forget = self.now();
        let mut failing = false;
        loop {
            match self.send_claimed().await {
                Ok(()) => failing = false,
                // Said once a failure begins, not at every poll while it lasts.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(service = self.service, %error, "the audit log did not take the records; retrying");
                }
                Err(_) => {}
            }
            if self.now() >= next_forget {
                next_forget = self.now() + FORGET_EVERY;
                if let Err(error) = self.outbox.forget_sent(self.now() - SENT_KEPT).await {
                    tracing::warn!(%error, "the audit outbox's sent records could not be forgotten");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims the records due and appends them to the audit log, a batch a call, until none
    /// is left; those of a failed call stay for a later claim.
    pub async fn send_claimed(&self) -> Result<(), RelayError> {
        loop {
            let now = self.now();
            let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            let claimed = self
                .outbox
                .claim(self.owner, now, lease_until, BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let events = claimed.iter().map(|r| self.event(r)).collect();
            self.log
                .clone()
                .append_audit_events(AppendAuditEventsRequest { events })
                .await?;
            let ids: Vec<Uuid> = claimed.iter().map(|r| r.id).collect();
            self.outbox.sent(&ids, self.now()).await?;
        }
    }

    /// A record as the audit log takes it.
    fn event(&self, record: &AuditRecord) -> AuditEvent {
        AuditEvent {
            event_id: record.id.to_string(),
            tenant_id: record.tenant.map(|t| t.to_string()).unwrap_or_default(),
            actor: record.actor.clone(),
            action: record.action.clone(),
            resource: record.resource.clone(),
            time: Some(pbjson_types::Timestamp {
                seconds: record.time.timestamp(),
                nanos: record.time.timestamp_subsec_nanos() as i32,
            }),
            request_id: record.request_id.clone(),
            trace_id: record.trace_id.clone(),
            service: self.service.to_owned(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        micros(self.clock.system_now())
    }
}

/// Why records could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The outbox could not be read or marked.
    #[error("the audit outbox: {0}")]
    Outbox(#[from] sqlx::Error),
    /// The audit log did not take them.
    #[error("the audit log answered {}: {}", .0.code(), .0.message())]
    Log(#[from] tonic::Status),
}
