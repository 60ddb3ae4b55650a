//! What the services record of an administrative action for the audit log, besides the action
//! itself: who asked for it, and in which request and trace.

#[cfg(feature = "testing")]
pub mod conformance;
pub mod outbox;
pub mod relay;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::{
    outbox::{AuditOutbox, AuditRecord, OutboxTable},
    relay::AuditRelay,
};
use crate::auth::Caller;

/// The metadata (and HTTP header) a caller's request id travels under; the gateway passes it
/// on, and audit records keep it.
pub const REQUEST_ID: &str = "x-request-id";

/// Who asked for an administrative action, read from its request for the audit log: who acts
/// ([`Caller::acting`]), the caller's request id ([`REQUEST_ID`]) and the trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asker {
    /// `operator`, or `key:<key id>`.
    pub actor: String,
    /// The caller's request id; empty when it gave none.
    pub request_id: String,
    /// The trace's id; empty outside a trace.
    pub trace_id: String,
}

impl Asker {
    /// The asker of a gRPC request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        let request_id = request
            .metadata()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            actor: Caller::acting(request)?,
            request_id,
            trace_id: crate::trace_context::current_trace_id(),
        })
    }

    /// `message` as a request that a service makes, as the operator, for this asker: the key
    /// it acts for ([`crate::auth::ON_BEHALF_OF`]) and its request id go with it, so the
    /// called service records the same asker.
    pub fn passed_on<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if self.actor.starts_with("key:")
            && let Ok(value) = self.actor.parse()
        {
            metadata.insert(crate::auth::ON_BEHALF_OF, value);
        }
        if !self.request_id.is_empty()
            && let Ok(value) = self.request_id.parse()
        {
            metadata.insert(REQUEST_ID, value);
        }
        request
    }
}

/// How a service records its administrative actions: not at all (no audit log to send them
/// to), or into its outbox, in each action's transaction, for its relay to send.
#[derive(Debug, Clone, Default)]
pub struct Auditor {
    relay: Option<AuditRelay>,
}

impl Auditor {
    /// Records nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// Records for `relay` to send.
    pub fn relaying(relay: AuditRelay) -> Self {
        Self { relay: Some(relay) }
    }

    /// The record of `asker` doing `action` to `resource` (of `tenant`, if any) at `time`, for
    /// the action's transaction to write; `None` when nothing is recorded.
    pub fn record(
        &self,
        asker: &Asker,
        tenant: Option<Uuid>,
        action: &str,
        resource: String,
        time: DateTime<Utc>,
    ) -> Option<AuditRecord> {
        self.relay.as_ref()?;
        Some(AuditRecord {
            id: Uuid::now_v7(),
            tenant,
            actor: asker.actor.clone(),
            action: action.to_owned(),
            resource,
            time,
            request_id: asker.request_id.clone(),
            trace_id: asker.trace_id.clone(),
        })
    }

    /// Wakes the relay: a record was committed.
    pub fn recorded(&self) {
        if let Some(relay) = &self.relay {
            relay.wake();
        }
    }
}

/// Where a service's audit records go, known before its database is open: nowhere, or the
/// provisioning service's audit log.
#[derive(Debug, Clone)]
pub struct AuditLink {
    service: &'static str,
    table: OutboxTable,
    log: Option<crate::grpc::TracedChannel>,
}

impl AuditLink {
    /// `service`'s link, from its outbox `table`, to the provisioning service at
    /// `provisioning` (`host:port`), with the operator's token, when `args` say it records; no
    /// link otherwise.
    pub fn new(
        service: &'static str,
        table: OutboxTable,
        args: crate::config::AuditArgs,
        provisioning: &str,
        operator_token: &str,
    ) -> anyhow::Result<Self> {
        let log = if args.enabled {
            Some(
                crate::grpc::service_channel(&crate::grpc::http_uri(provisioning))?
                    .with_bearer(operator_token)?,
            )
        } else {
            None
        };
        Ok(Self {
            service,
            table,
            log,
        })
    }

    /// The auditor of the database of `pool`: with a link, one that records into its outbox,
    /// and a relay sending the outbox until `shutdown`.
    pub fn start(
        self,
        pool: crate::db::DbPool,
        clock: crate::clock::SharedClock,
        shutdown: crate::shutdown::CancellationToken,
    ) -> Auditor {
        let Some(log) = self.log else {
            return Auditor::off();
        };
        let relay = AuditRelay::new(self.service, AuditOutbox::new(pool, self.table), log, clock);
        let running = relay.clone();
        tokio::spawn(async move { running.run(shutdown).await });
        Auditor::relaying(relay)
    }
}
