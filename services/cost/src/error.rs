//! The cost service's errors, in domain words, each with its [`ErrorCode`].

use mfg_common::{
    ErrorCode, FieldViolation, ServiceError, db::DbErrorKind, error::describe_violations,
};

/// An error of the cost service.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// Fields of the request are invalid.
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No tenant has this id (or the caller may not know that it has).
    #[error("tenant `{0}` not found")]
    TenantNotFound(String),
    /// A deletion of the costs of a tenant that is not deleted.
    #[error("tenant `{0}` is not deleted: its costs are deleted only once it is")]
    NotDeleted(String),
    /// The service has not reached its database yet.
    #[error("the cost service is starting: its database is not ready yet")]
    NotReady,
    /// The database cannot be reached.
    #[error("the cost database is unavailable: {0}")]
    Unavailable(String),
    /// Another service of the platform failed a call.
    #[error("{0}")]
    Upstream(String),
    /// Anything unexpected; logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl CostError {
    /// Returns an INVALID_ARGUMENT naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl ServiceError for CostError {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::TenantNotFound(_) => ErrorCode::NotFound,
            Self::NotDeleted(_) => ErrorCode::FailedPrecondition,
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

impl From<sqlx::Error> for CostError {
    fn from(error: sqlx::Error) -> Self {
        match DbErrorKind::of(&error) {
            DbErrorKind::Unavailable => Self::Unavailable(error.to_string()),
            _ => Self::Internal(format!("database error: {error}")),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for CostError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Internal(format!("migration failed: {error}"))
    }
}

impl From<CostError> for tonic::Status {
    fn from(error: CostError) -> Self {
        mfg_common::error::to_status(&error)
    }
}

/// The cost service's result.
pub type Result<T, E = CostError> = std::result::Result<T, E>;
