//! What the services record of an administrative action for the audit log, besides the action
//! itself: who asked for it, and in which request and trace.

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
}
