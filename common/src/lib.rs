//! Runtime pieces every `mfg` binary shares: configuration arguments, tracing and OpenTelemetry,
//! the gRPC server bootstrap (health, reflection, graceful shutdown), trace-context propagation,
//! the system's error codes, database connections and the API-key authentication cache.

pub mod access;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod grpc;
pub mod labels;
pub mod metering;
pub mod metrics;
pub mod pagination;
pub mod plans;
pub mod retention;
pub mod secret_file;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace_context;

pub use error::{ErrorCode, FieldViolation, ServiceError, Violations};
