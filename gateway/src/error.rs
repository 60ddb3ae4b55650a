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
}

impl ApiError {
    /// Creates an error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.http_status(),
            code,
            message: message.into(),
            details: Vec::new(),
        }
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
        let description = description.into();
        Self {
            status: ErrorCode::InvalidArgument.http_status(),
            code: ErrorCode::InvalidArgument,
            message: format!("invalid argument: {field}: {description}"),
            details: vec![bad_request(&[(field.to_owned(), description)])],
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

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = ErrorCode::from_grpc(status.code());
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
            _ => status.message().to_owned(),
        };
        Self {
            status: code.http_status(),
            code,
            message,
            details,
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
        status_response(self.status, self.code, &self.message, self.details)
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
