//! The audit log over gRPC: appended to by the platform's services, read by the operator and by
//! a tenant's admins; and how this service records its own actions in it.

use chrono::{DateTime, Utc};
use mfg_common::audit::Asker;
use mfg_proto::provisioning::v1::{self as pb, audit_service_server::AuditService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{DEFAULT_PAGE, MAX_PAGE, Ready, ReadyProvisioning, convert};
use crate::{
    domain::audit::{AuditEvent, AuditFilter},
    error::{ProvisioningError, Result},
};

impl Ready {
    /// The event of `asker` doing `action` to `resource` of `tenant` (none: the platform's),
    /// for the action's transaction to append.
    pub fn event(
        &self,
        asker: &Asker,
        tenant: Option<Uuid>,
        action: &str,
        resource: String,
    ) -> AuditEvent {
        AuditEvent {
            id: Uuid::now_v7(),
            tenant,
            actor: asker.actor.clone(),
            action: action.to_owned(),
            resource,
            time: mfg_common::clock::micros(self.clock.system_now()),
            request_id: asker.request_id.clone(),
            trace_id: asker.trace_id.clone(),
            service: "provisioning".to_owned(),
        }
    }
}

/// Serves `mfg.provisioning.v1.AuditService`.
#[derive(Debug, Clone)]
pub struct AuditApi {
    ready: ReadyProvisioning,
}

impl AuditApi {
    /// Creates the adapter over a state that becomes ready later.
    pub fn new(ready: ReadyProvisioning) -> Self {
        Self { ready }
    }

    fn ready(&self) -> Result<&Ready> {
        self.ready.get().ok_or(ProvisioningError::NotReady)
    }

    /// A page of the events `filter` admits, and the next page's token.
    async fn page(
        &self,
        filter: AuditFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<pb::AuditEvent>, String)> {
        let size = match page_size {
            0 => DEFAULT_PAGE,
            size if size < 0 => {
                return Err(ProvisioningError::invalid(
                    "page_size",
                    "must not be negative",
                ));
            }
            size => u32::try_from(size).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let before = convert::page_token(page_token)?;
        let mut events = self
            .ready()?
            .store
            .audit_events(&filter, before, size + 1)
            .await?;
        let next = if events.len() > size as usize {
            events.truncate(size as usize);
            events.last().map(|e| e.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((events.iter().map(event).collect(), next))
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn append_audit_events(
        &self,
        request: Request<pb::AppendAuditEventsRequest>,
    ) -> Result<Response<pb::AppendAuditEventsResponse>, Status> {
        let events = request
            .into_inner()
            .events
            .into_iter()
            .enumerate()
            .map(|(n, e)| from_contract(e, n))
            .collect::<Result<Vec<_>>>()?;
        let appended = self.ready()?.store.append_audit(&events).await?;
        Ok(Response::new(pb::AppendAuditEventsResponse {
            appended: u32::try_from(appended).unwrap_or(u32::MAX),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let request = request.into_inner();
        let tenant = if request.tenant_id.is_empty() {
            None
        } else {
            Some(convert::tenant_id(&request.tenant_id)?)
        };
        let filter = filter(tenant, request.filter)?;
        let (events, next_page_token) = self
            .page(filter, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events,
            next_page_token,
        }))
    }

    async fn list_tenant_audit_events(
        &self,
        request: Request<pb::ListTenantAuditEventsRequest>,
    ) -> Result<Response<pb::ListTenantAuditEventsResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let filter = filter(Some(tenant), request.filter)?;
        let (events, next_page_token) = self
            .page(filter, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListTenantAuditEventsResponse {
            events,
            next_page_token,
        }))
    }
}

/// A listing's filter, its times checked.
fn filter(tenant: Option<Uuid>, given: Option<pb::AuditFilter>) -> Result<AuditFilter> {
    let given = given.unwrap_or_default();
    let time = |t: Option<pbjson_types::Timestamp>, field: &str| {
        t.map(|t| {
            DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.unsigned_abs())
                .ok_or_else(|| ProvisioningError::invalid(field, "is not a time"))
        })
        .transpose()
    };
    Ok(AuditFilter {
        tenant,
        action: given.action,
        start: time(given.start_time, "filter.start_time")?,
        end: time(given.end_time, "filter.end_time")?,
    })
}

/// An event in the contract.
fn event(event: &AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        event_id: event.id.to_string(),
        tenant_id: event.tenant.map(|t| t.to_string()).unwrap_or_default(),
        actor: event.actor.clone(),
        action: event.action.clone(),
        resource: event.resource.clone(),
        time: Some(convert::timestamp(event.time)),
        request_id: event.request_id.clone(),
        trace_id: event.trace_id.clone(),
        service: event.service.clone(),
    }
}

/// The `n`th event of an append, checked: an id, an actor, an action and a time.
fn from_contract(event: pb::AuditEvent, n: usize) -> Result<AuditEvent> {
    let field = |name: &str| format!("events[{n}].{name}");
    let id = Uuid::parse_str(&event.event_id)
        .map_err(|_| ProvisioningError::invalid(field("event_id"), "is not a UUID"))?;
    let tenant = if event.tenant_id.is_empty() {
        None
    } else {
        Some(
            Uuid::parse_str(&event.tenant_id)
                .map_err(|_| ProvisioningError::invalid(field("tenant_id"), "is not a UUID"))?,
        )
    };
    for (name, value) in [("actor", &event.actor), ("action", &event.action)] {
        if value.is_empty() {
            return Err(ProvisioningError::invalid(field(name), "is required"));
        }
    }
    let time = event
        .time
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.unsigned_abs()))
        .ok_or_else(|| ProvisioningError::invalid(field("time"), "is required"))?;
    Ok(AuditEvent {
        id,
        tenant,
        actor: event.actor,
        action: event.action,
        resource: event.resource,
        time,
        request_id: event.request_id,
        trace_id: event.trace_id,
        service: event.service,
    })
}
