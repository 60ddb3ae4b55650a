//! The storage service's errors, in domain words, each with its [`ErrorCode`].

use std::time::Duration;

use mfg_common::{
    ErrorCode, FieldViolation, ServiceError, db::DbErrorKind, error::describe_violations,
};

/// An error of the storage service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// Fields of the request are invalid.
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No tenant has this id.
    #[error("tenant `{0}` not found")]
    TenantNotFound(String),
    /// The tenant is deleted: its data is refused.
    #[error("tenant `{0}` is deleted: its telemetry is refused")]
    TenantDeleted(String),
    /// The tenant is suspended: it may read, not write.
    #[error("tenant `{0}` is suspended: its telemetry is refused until it is active again")]
    TenantSuspended(String),
    /// The tenant is not onboarded yet (or its onboarding failed): readings are refused.
    #[error(
        "tenant `{0}` is not onboarded yet ({1}): readings are accepted once its provisioning run \
         succeeds and it is active"
    )]
    TenantNotOnboarded(String, &'static str),
    /// The tenant service reports a state this version does not know: writes are refused.
    #[error(
        "tenant `{0}` is in a state this storage service does not know (number {1}): readings \
         are refused until the storage service is upgraded"
    )]
    TenantStateUnknown(String, i32),
    /// No machine of the tenant has this id.
    #[error("machine `{0}` not found")]
    MachineNotFound(String),
    /// No alert rule of the tenant has this id.
    #[error("alert rule `{0}` not found")]
    RuleNotFound(String),
    /// No alert of the tenant has this id.
    #[error("alert `{0}` not found")]
    AlertNotFound(String),
    /// No tiering job has this id (or it was pruned: the most recent jobs are kept).
    #[error("tiering job `{0}` not found")]
    JobNotFound(String),
    /// The alert is resolved: it cannot be acknowledged.
    #[error("alert `{0}` is resolved: only an open alert can be acknowledged")]
    AlertResolved(String),
    /// A rule of the tenant already has the id chosen for a new one.
    #[error("alert rule `{0}` already exists")]
    RuleExists(String),
    /// The tenant has as many alert rules as it may.
    #[error("the tenant has reached its limit of {0} alert rules")]
    RuleLimit(u64),
    /// The tenant is over its ingest rate.
    #[error(
        "tenant `{tenant}` is over its ingest rate of {per_second} readings/s; retry in {} ms",
        retry_after.as_millis()
    )]
    RateLimited {
        /// The tenant.
        tenant: String,
        /// Its rate.
        per_second: u32,
        /// When to retry.
        retry_after: Duration,
    },
    /// A key or a tenant holds as many alert subscriptions as it may.
    #[error(
        "the {holder} already holds {limit} alert subscriptions, its limit ({setting}): close \
         one first"
    )]
    TooManySubscribers {
        /// What holds them: `API key` or `tenant`.
        holder: &'static str,
        /// The cap.
        limit: usize,
        /// The setting that sets it.
        setting: &'static str,
    },
    /// A subscription asked to resume after a cursor that no event has had yet.
    #[error(
        "resume_after {cursor} is beyond the newest alert event ({newest}): resume after a cursor \
         received, or from 0 for new events only"
    )]
    CursorAhead {
        /// The cursor asked for.
        cursor: u64,
        /// The newest event's cursor.
        newest: u64,
    },
    /// The tenant holds telemetry, so its storage cannot be released.
    #[error("tenant `{0}` holds telemetry: its storage is only released while it has none")]
    HoldsData(String),
    /// A deletion of the data of a tenant that is not deleted.
    #[error("tenant `{0}` is not deleted: its data is deleted only once it is")]
    NotDeleted(String),
    /// A deletion of data the tenant's export does not hold.
    #[error(
        "tenant `{0}` holds data its export does not: export it (ExportTenant) before deleting"
    )]
    NotExported(String),
    /// An export of a tenant that may still write.
    #[error(
        "tenant `{0}` may still write: it is exported once it no longer does (deleted or suspended)"
    )]
    StillWriting(String),
    /// The service has not reached its database yet.
    #[error("the storage service is starting: its database is not ready yet")]
    NotReady,
    /// The database, or the tenant service, cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The service is shutting down.
    #[error("the storage service is shutting down")]
    ShuttingDown,
    /// Anything unexpected; logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl StorageError {
    /// Returns an INVALID_ARGUMENT naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl ServiceError for StorageError {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::TenantNotFound(_)
            | Self::MachineNotFound(_)
            | Self::RuleNotFound(_)
            | Self::AlertNotFound(_)
            | Self::JobNotFound(_) => ErrorCode::NotFound,
            Self::TenantDeleted(_)
            | Self::TenantSuspended(_)
            | Self::TenantNotOnboarded(..)
            | Self::TenantStateUnknown(..)
            | Self::HoldsData(_)
            | Self::StillWriting(_)
            | Self::NotDeleted(_)
            | Self::NotExported(_)
            | Self::RuleLimit(_)
            | Self::AlertResolved(_) => ErrorCode::FailedPrecondition,
            Self::RuleExists(_) => ErrorCode::AlreadyExists,
            Self::RateLimited { .. } => ErrorCode::ResourceExhausted,
            Self::CursorAhead { .. } => ErrorCode::OutOfRange,
            Self::TooManySubscribers { .. } => ErrorCode::ResourceExhausted,
            Self::NotReady | Self::Unavailable(_) | Self::ShuttingDown => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::NotReady | Self::Unavailable(_) | Self::ShuttingDown => {
                Some(Duration::from_secs(1))
            }
            _ => None,
        }
    }

    fn field_violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument(violations) => violations,
            _ => &[],
        }
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        match DbErrorKind::of(&error) {
            DbErrorKind::Unavailable => {
                Self::Unavailable(format!("the storage database is unavailable: {error}"))
            }
            _ => Self::Internal(format!("database error: {error}")),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Internal(format!("migration failed: {error}"))
    }
}

impl From<StorageError> for tonic::Status {
    fn from(error: StorageError) -> Self {
        mfg_common::error::to_status(&error)
    }
}

/// The storage service's result.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl From<crate::telemetry::object_store::ObjectError> for StorageError {
    fn from(error: crate::telemetry::object_store::ObjectError) -> Self {
        use crate::telemetry::object_store::ObjectError;
        match error {
            // A store that is down, or refuses (credentials, a missing bucket), is the cold
            // tier's state, which an operator can fix and a retry then passes: UNAVAILABLE,
            // with the cause. An object we expected and lack is a bug of ours.
            ObjectError::Retryable(_) | ObjectError::Permanent(_) => {
                Self::Unavailable(format!("the cold tier: {error}"))
            }
            ObjectError::NotFound(_) => Self::Internal(error.to_string()),
        }
    }
}

impl From<crate::telemetry::archive::ArchiveError> for StorageError {
    fn from(error: crate::telemetry::archive::ArchiveError) -> Self {
        Self::Internal(error.to_string())
    }
}
