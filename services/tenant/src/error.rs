//! The tenant service's errors, in domain words, each with its [`ErrorCode`].

use mfg_common::{
    ErrorCode, FieldViolation, ServiceError, db::DbErrorKind, error::describe_violations,
};

/// An error of the tenant service.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// Fields of the request are invalid.
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No tenant has this id.
    #[error("tenant `{0}` not found")]
    TenantNotFound(String),
    /// The name is taken (names stay reserved after deletion).
    #[error("tenant name `{0}` is already taken")]
    NameTaken(String),
    /// The tenant is deleted, so it cannot change.
    #[error("tenant `{0}` is deleted")]
    TenantDeleted(String),
    /// No machine of the tenant has this id.
    #[error("machine `{0}` not found")]
    MachineNotFound(String),
    /// A machine of the tenant already has this id.
    #[error("machine `{0}` already exists")]
    MachineExists(String),
    /// The tenant has as many machines as its plan allows.
    #[error("the tenant has reached its limit of {0} machines")]
    MachineLimit(u32),
    /// No key of the tenant has this id.
    #[error("API key `{0}` not found")]
    ApiKeyNotFound(String),
    /// A key with this id exists.
    #[error("API key `{0}` already exists")]
    ApiKeyExists(String),
    /// A claim of a key with no sealed secret.
    #[error(
        "API key `{0}` has no secret to claim: it was claimed, revoked, or created with its secret shown"
    )]
    NothingToClaim(String),
    /// A secret did not authenticate.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The service has not reached its database yet.
    #[error("the tenant service is starting: its database is not ready yet")]
    NotReady,
    /// The database cannot be reached.
    #[error("the tenant database is unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected; logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl TenantError {
    /// Returns an INVALID_ARGUMENT naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl ServiceError for TenantError {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::TenantNotFound(_) | Self::MachineNotFound(_) | Self::ApiKeyNotFound(_) => {
                ErrorCode::NotFound
            }
            Self::NameTaken(_) | Self::MachineExists(_) | Self::ApiKeyExists(_) => {
                ErrorCode::AlreadyExists
            }
            Self::TenantDeleted(_) | Self::MachineLimit(_) | Self::NothingToClaim(_) => {
                ErrorCode::FailedPrecondition
            }
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::NotReady | Self::Unavailable(_) => ErrorCode::Unavailable,
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

impl From<sqlx::Error> for TenantError {
    fn from(error: sqlx::Error) -> Self {
        match DbErrorKind::of(&error) {
            DbErrorKind::Unavailable => Self::Unavailable(error.to_string()),
            _ => Self::Internal(format!("database error: {error}")),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for TenantError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Internal(format!("migration failed: {error}"))
    }
}

impl From<TenantError> for tonic::Status {
    fn from(error: TenantError) -> Self {
        mfg_common::error::to_status(&error)
    }
}

/// The tenant service's result.
pub type Result<T, E = TenantError> = std::result::Result<T, E>;
