//! The provisioning service's errors, in domain words, each with its [`ErrorCode`].

use mfg_common::{
    ErrorCode, FieldViolation, ServiceError, db::DbErrorKind, error::describe_violations,
};

/// An error of the provisioning service.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// Fields of the request are invalid.
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No tenant has this id (or the caller may not know that it has).
    #[error("tenant `{0}` not found")]
    TenantNotFound(String),
    /// The tenant has no run with this id.
    #[error("provisioning run `{0}` not found")]
    RunNotFound(String),
    /// The run is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Other changes kept coming first: the request may be sent again.
    #[error("{0}")]
    Aborted(String),
    /// The service has not reached its database yet.
    #[error("the provisioning service is starting: its database is not ready yet")]
    NotReady,
    /// The database cannot be reached.
    #[error("the provisioning database is unavailable: {0}")]
    Unavailable(String),
    /// Another service of the platform failed a call.
    #[error("{0}")]
    Upstream(String),
    /// Anything unexpected; logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl ProvisioningError {
    /// Returns an INVALID_ARGUMENT naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl ServiceError for ProvisioningError {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::TenantNotFound(_) | Self::RunNotFound(_) => ErrorCode::NotFound,
            Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::Aborted(_) => ErrorCode::Aborted,
            Self::NotReady | Self::Unavailable(_) | Self::Upstream(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field_violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations,
            _ => &[],
        }
    }
}

impl From<sqlx::Error> for ProvisioningError {
    fn from(error: sqlx::Error) -> Self {
        match DbErrorKind::of(&error) {
            DbErrorKind::Unavailable => Self::Unavailable(error.to_string()),
            _ => Self::Internal(format!("database error: {error}")),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for ProvisioningError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Internal(format!("migration failed: {error}"))
    }
}

impl From<ProvisioningError> for tonic::Status {
    fn from(error: ProvisioningError) -> Self {
        mfg_common::error::to_status(&error)
    }
}

/// The provisioning service's result.
pub type Result<T, E = ProvisioningError> = std::result::Result<T, E>;
