//! Errors at the edge: every failure, from a gRPC status or from HTTP itself (malformed JSON,
//! unknown route, wrong method, oversized body), is answered with the HTTP status of the
//! grpc-gateway/Envoy table and a `google.rpc.Status`-shaped JSON body.

use axum::{
    Json,
    extract::rejection::{PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mfg_common::ErrorCode;
use serde_json::{Value, json};
use tonic_types::StatusExt as _;

/// An error answered to a REST client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Vec<Value>,
    /// When the client may retry: a `Retry-After` header (whole seconds, rounded up).
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// Creates an error with a code and a message, whose quoted values are
    /// [bounded](mfg_common::error::bounded).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status: code.http_status(),
            code,
            message: mfg_common::error::bounded(&message).into_owned(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// Tells the client when to retry: a `Retry-After` header and a `google.rpc.RetryInfo`
    /// detail, as gRPC callers get.
    pub fn with_retry_after(mut self, delay: std::time::Duration) -> Self {
        self.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}.{:09}s", delay.as_secs(), delay.subsec_nanos()),
        }));
        self.retry_after = Some(delay);
        self
    }

    /// Overrides the HTTP status, for errors HTTP has a closer word for (405, 413).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Returns the error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// An INVALID_ARGUMENT naming one field, as a `google.rpc.BadRequest` detail.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Self {
        let description = mfg_common::error::bounded(&description.into()).into_owned();
        Self {
            status: ErrorCode::InvalidArgument.http_status(),
            code: ErrorCode::InvalidArgument,
            message: format!("invalid argument: {field}: {description}"),
            details: vec![bad_request(&[(field.to_owned(), description)])],
            retry_after: None,
        }
    }

    /// 401: no credentials, or credentials that are not accepted.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// 403: the caller may not do this.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    /// 404: nothing there, or nothing the caller may know exists.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

fn bad_request(violations: &[(String, String)]) -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": violations
            .iter()
            .map(|(field, description)| json!({ "field": field, "description": description }))
            .collect::<Vec<_>>(),
    })
}

/// The code of an upstream's status. A status the transport made, because the connection broke
/// or the stream was reset before the service answered (it then carries the transport error as
/// its source), means the service is unreachable: UNAVAILABLE, which clients retry, whatever
/// code tonic guessed from the HTTP/2 error (UNKNOWN or INTERNAL).
fn upstream_code(status: &tonic::Status) -> ErrorCode {
    use std::error::Error as _;
    let code = ErrorCode::from_grpc(status.code());
    if code == ErrorCode::Internal && status.source().is_some() {
        return ErrorCode::Unavailable;
    }
    code
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = upstream_code(&status);
        let mut details = Vec::new();
        if let Some(bad) = status.get_details_bad_request() {
            let violations: Vec<(String, String)> = bad
                .field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect();
            details.push(bad_request(&violations));
        }
        let message = match code {
            // Transport details of an upstream failure stay in the gateway's log.
            ErrorCode::Internal => {
                tracing::error!(status = %status, "upstream failed");
                "internal error".to_owned()
            }
            ErrorCode::Unavailable if status.code() != tonic::Code::Unavailable => {
                tracing::warn!(status = %status, "upstream unreachable");
                "the service behind this route is unreachable; retry later".to_owned()
            }
            _ => mfg_common::error::bounded(status.message()).into_owned(),
        };
        let error = Self {
            status: code.http_status(),
            code,
            message,
            details,
            retry_after: None,
        };
        match status.get_details_retry_info().and_then(|r| r.retry_delay) {
            Some(delay) => error.with_retry_after(delay),
            None => error,
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(ErrorCode::InvalidArgument, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(ErrorCode::InvalidArgument, rejection.body_text())
    }
}

/// The error for a body over the limit: 413, which no gRPC code maps to.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::OutOfRange,
        "the request body is larger than the gateway accepts",
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

impl ApiError {
    /// The `google.rpc.Status`-shaped JSON of the error, as its response carries it.
    pub fn body(&self) -> Value {
        json!({
            "code": self.code.grpc_code() as i32,
            "message": self.message,
            "details": self.details,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = status_response(self.status, self.code, &self.message, self.details);
        if let Some(delay) = self.retry_after {
            // Whole seconds, rounded up, and at least one: `Retry-After: 0` invites a storm.
            let seconds = (delay.as_secs() + u64::from(delay.subsec_nanos() > 0)).max(1);
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Builds a `google.rpc.Status`-shaped response.
pub fn status_response(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    details: Vec<Value>,
) -> Response {
    let body = json!({
        "code": code.grpc_code() as i32,
        "message": message,
        "details": details,
    });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_upstream_connection_is_unavailable_not_internal() {
        let broken = tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
        let error = ApiError::from(broken);
        assert_eq!(error.body()["code"], 14, "{}", error.body());
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);

        // A service's own INTERNAL stays a bug of ours.
        let error = ApiError::from(tonic::Status::internal("oops"));
        assert_eq!(error.body()["code"], 13);
    }
}
