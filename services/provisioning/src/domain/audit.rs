//! The audit log's events: who did what to which resource, when, in which request and trace
//! (decision 0014). Appended by the service that acted, never changed, dropped past the
//! retention.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Its id, a UUID v7: events sort by when they were recorded.
    pub id: Uuid,
    /// The tenant it concerns; `None` for the platform's own resources.
    pub tenant: Option<Uuid>,
    /// Who acted: `operator`, or `key:<key id>`.
    pub actor: String,
    /// What was done: `<resource kind>.<verb>`.
    pub action: String,
    /// The resource's path.
    pub resource: String,
    /// When.
    pub time: DateTime<Utc>,
    /// The caller's request id, if it gave one.
    pub request_id: String,
    /// The trace it was part of, if any.
    pub trace_id: String,
    /// The service that recorded it.
    pub service: String,
}

/// Which events a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this tenant's.
    pub tenant: Option<Uuid>,
    /// Only this action, or this resource kind's (the action before its `.`); all when empty.
    pub action: String,
    /// Only events at or after this time.
    pub start: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub end: Option<DateTime<Utc>>,
}
