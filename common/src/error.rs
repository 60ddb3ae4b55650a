//! The closed set of error codes of the platform, mapped exhaustively to gRPC and HTTP, and the
//! field violations that make an INVALID_ARGUMENT useful.

use std::fmt;

use tonic_types::{ErrorDetails, StatusExt};

/// The closed set of error codes of the platform.
///
/// Every error of every service maps to one of these; each maps to exactly one gRPC code and one
/// HTTP status, with no catch-all arm, so adding a code forces a decision in both places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid.
    InvalidArgument,
    /// The addressed resource does not exist (or belongs to another tenant).
    NotFound,
    /// A resource with the same identity exists.
    AlreadyExists,
    /// The system is not in a state the request needs (a limit reached, a deleted tenant).
    FailedPrecondition,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The caller presented no valid credentials.
    Unauthenticated,
    /// A quota or rate limit was exceeded; retry later.
    ResourceExhausted,
    /// A concurrent change won; retry the read-modify-write.
    Aborted,
    /// A value is outside the accepted range.
    OutOfRange,
    /// A dependency (database, another service) is not reachable now; retry later.
    Unavailable,
    /// The deadline passed before the work finished.
    DeadlineExceeded,
    /// The caller cancelled the request.
    Cancelled,
    /// The operation is not built yet.
    Unimplemented,
    /// A bug or an unexpected failure; details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// Returns the gRPC status code of this error code.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Aborted => tonic::Code::Aborted,
            Self::OutOfRange => tonic::Code::OutOfRange,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Self::Cancelled => tonic::Code::Cancelled,
            Self::Unimplemented => tonic::Code::Unimplemented,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// Returns the HTTP status of this error code, following the gRPC → HTTP table of
    /// grpc-gateway v2 and Envoy.
    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument | Self::FailedPrecondition | Self::OutOfRange => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::PermissionDenied => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => S::CONFLICT,
            Self::ResourceExhausted => S::TOO_MANY_REQUESTS,
            // 499 Client Closed Request has no constant in `http`.
            Self::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
            Self::Unimplemented => S::NOT_IMPLEMENTED,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the error code of a gRPC status code received from another service.
    pub fn from_grpc(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::InvalidArgument => Self::InvalidArgument,
            C::NotFound => Self::NotFound,
            C::AlreadyExists => Self::AlreadyExists,
            C::FailedPrecondition => Self::FailedPrecondition,
            C::PermissionDenied => Self::PermissionDenied,
            C::Unauthenticated => Self::Unauthenticated,
            C::ResourceExhausted => Self::ResourceExhausted,
            C::Aborted => Self::Aborted,
            C::OutOfRange => Self::OutOfRange,
            C::Unavailable => Self::Unavailable,
            C::DeadlineExceeded => Self::DeadlineExceeded,
            C::Cancelled => Self::Cancelled,
            C::Unimplemented => Self::Unimplemented,
            C::Ok | C::Unknown | C::Internal | C::DataLoss => Self::Internal,
        }
    }
}

/// One invalid field of a request: its path (`tenant.limits.max_machines`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, in the proto's snake_case names.
    pub field: String,
    /// What is wrong with it, in lowercase words.
    pub description: String,
}

impl FieldViolation {
    /// Creates a field violation.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Collects the field violations of one request, so that all of them are reported at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Creates an empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the violation of a check that failed, if it did, and returns the checked value.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    /// Returns whether no violation was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns `Ok(())` when nothing was recorded, the violations otherwise.
    pub fn finish(self) -> Result<(), Vec<FieldViolation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// Joins field violations into one human-readable message.
pub fn describe_violations(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> = violations.iter().map(ToString::to_string).collect();
    format!("invalid argument: {}", parts.join("; "))
}

/// An error of a service that knows its [`ErrorCode`].
pub trait ServiceError: std::error::Error {
    /// Returns the code of this error.
    fn error_code(&self) -> ErrorCode;

    /// Returns how long the caller should wait before retrying, for a RESOURCE_EXHAUSTED or an
    /// UNAVAILABLE; sent as a `google.rpc.RetryInfo` detail.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }

    /// Returns the invalid fields, for an INVALID_ARGUMENT.
    fn field_violations(&self) -> &[FieldViolation] {
        &[]
    }
}

/// The longest value an error message quotes back to its caller, in characters.
pub const MAX_ECHOED_CHARS: usize = 64;
/// The longest error message (or field violation) sent, in bytes: a status travels in HTTP/2
/// trailers, which peers cap (16 KiB by default), so a message that quoted a long value whole
/// would turn a client's mistake into a transport error.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Bounds a message for a caller: each value it quotes between backticks (as every message of
/// ours quotes values) keeps its first [`MAX_ECHOED_CHARS`] characters and says how long it
/// was, and the whole keeps at most [`MAX_MESSAGE_BYTES`].
pub fn bounded(message: &str) -> std::borrow::Cow<'_, str> {
    let quoted_too_long = message
        .split('`')
        .skip(1)
        .step_by(2)
        .any(|quoted| quoted.chars().count() > MAX_ECHOED_CHARS);
    if !quoted_too_long && message.len() <= MAX_MESSAGE_BYTES {
        return message.into();
    }
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_BYTES));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let chars = part.chars().count();
        if i % 2 == 1 && chars > MAX_ECHOED_CHARS {
            out.extend(part.chars().take(MAX_ECHOED_CHARS));
            out.push_str(&format!("…({chars} characters)"));
        } else {
            out.push_str(part);
        }
    }
    if out.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out.into()
}

/// Converts a service error into a gRPC status: the code, the message, and field violations as
/// `google.rpc.BadRequest` details, each [`bounded`]. Internal errors are logged and answered
/// with a generic message, so that no internal detail reaches a caller.
pub fn to_status<E: ServiceError + ?Sized>(error: &E) -> tonic::Status {
    let code = error.error_code();
    let message = match code {
        ErrorCode::Internal => {
            tracing::error!(error = %error, "internal error");
            "internal error".to_owned()
        }
        ErrorCode::Unavailable => {
            tracing::warn!(error = %error, "dependency unavailable");
            bounded(&error.to_string()).into_owned()
        }
        _ => bounded(&error.to_string()).into_owned(),
    };
    let violations = error.field_violations();
    let retry_after = error.retry_after();
    if violations.is_empty() && retry_after.is_none() {
        return tonic::Status::new(code.grpc_code(), message);
    }
    let mut details = ErrorDetails::new();
    if !violations.is_empty() {
        details.set_bad_request(
            violations
                .iter()
                .map(|v| {
                    tonic_types::FieldViolation::new(bounded(&v.field), bounded(&v.description))
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    tonic::Status::with_error_details(code.grpc_code(), message, details)
}

/// The field violations a status carries as `google.rpc.BadRequest` details (as [`to_status`]
/// sends them): how a service names, in its own request's words, the fields another service
/// refused.
pub fn field_violations(status: &tonic::Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| FieldViolation::new(v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::PermissionDenied,
        ErrorCode::Unauthenticated,
        ErrorCode::ResourceExhausted,
        ErrorCode::Aborted,
        ErrorCode::OutOfRange,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Cancelled,
        ErrorCode::Unimplemented,
        ErrorCode::Internal,
    ];

    #[test]
    fn echoed_values_are_bounded() {
        let long = "x".repeat(5_000);
        let message = format!("machine `{long}` not found");
        let shown = bounded(&message);
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.starts_with(&format!("machine `{}…(5000 characters)`", "x".repeat(64))));
        assert!(shown.ends_with("` not found"));
        assert_eq!(
            bounded("tenant `acme` not found"),
            "tenant `acme` not found"
        );
        let unquoted = "y".repeat(5_000);
        assert!(bounded(&unquoted).len() <= MAX_MESSAGE_BYTES);
        let violation = FieldViolation::new("machine.machine_id", format!("`{long}` is too long"));
        let status = to_status(&Sample::Invalid(vec![violation]));
        assert!(status.message().len() < 300, "{}", status.message());
        let bad_request = status.get_details_bad_request().expect("details");
        let description = &bad_request.field_violations[0].description;
        assert!(description.len() < 120, "{description}");
    }

    #[test]
    fn grpc_codes_round_trip() {
        for code in ALL {
            assert_eq!(ErrorCode::from_grpc(code.grpc_code()), code);
        }
    }

    #[test]
    fn http_statuses_follow_the_grpc_gateway_table() {
        let status = |c: ErrorCode| c.http_status().as_u16();
        assert_eq!(status(ErrorCode::InvalidArgument), 400);
        assert_eq!(status(ErrorCode::FailedPrecondition), 400);
        assert_eq!(status(ErrorCode::OutOfRange), 400);
        assert_eq!(status(ErrorCode::Unauthenticated), 401);
        assert_eq!(status(ErrorCode::PermissionDenied), 403);
        assert_eq!(status(ErrorCode::NotFound), 404);
        assert_eq!(status(ErrorCode::AlreadyExists), 409);
        assert_eq!(status(ErrorCode::Aborted), 409);
        assert_eq!(status(ErrorCode::ResourceExhausted), 429);
        assert_eq!(status(ErrorCode::Cancelled), 499);
        assert_eq!(status(ErrorCode::Unimplemented), 501);
        assert_eq!(status(ErrorCode::Unavailable), 503);
        assert_eq!(status(ErrorCode::DeadlineExceeded), 504);
        assert_eq!(status(ErrorCode::Internal), 500);
    }

    #[derive(Debug, thiserror::Error)]
    enum Sample {
        #[error("{}", describe_violations(.0))]
        Invalid(Vec<FieldViolation>),
        #[error("connection reset by peer at 10.0.0.7")]
        Hidden,
    }

    impl ServiceError for Sample {
        fn error_code(&self) -> ErrorCode {
            match self {
                Sample::Invalid(_) => ErrorCode::InvalidArgument,
                Sample::Hidden => ErrorCode::Internal,
            }
        }
        fn field_violations(&self) -> &[FieldViolation] {
            match self {
                Sample::Invalid(v) => v,
                Sample::Hidden => &[],
            }
        }
    }

    #[test]
    fn field_violations_travel_as_bad_request_details() {
        let status = to_status(&Sample::Invalid(vec![FieldViolation::new(
            "name",
            "must not be empty",
        )]));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid argument: name: must not be empty"
        );
        let bad_request = status
            .get_details_bad_request()
            .expect("bad request details");
        assert_eq!(bad_request.field_violations[0].field, "name");
        assert_eq!(
            field_violations(&status),
            [FieldViolation::new("name", "must not be empty")]
        );
    }

    #[test]
    fn internal_details_are_not_sent() {
        let status = to_status(&Sample::Hidden);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
