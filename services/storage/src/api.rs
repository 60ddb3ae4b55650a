//! The gRPC adapter of the storage service: telemetry ingest, the hot, warm and cold tiers, queries, alert rules and alert fan-out.
//!
//! The contract is designed (see `proto/`); the service is built by its own issue. Until then
//! each RPC answers UNIMPLEMENTED through the generated default bodies, and never a made-up
//! result.

use mfg_proto::storage::v1::{
    alert_service_server::AlertService, telemetry_service_server::TelemetryService,
};

/// Serves `mfg.storage.v1.TelemetryService`. Not built yet: every RPC answers UNIMPLEMENTED.
#[derive(Debug, Clone, Default)]
pub struct TelemetryApi;

#[tonic::async_trait]
impl TelemetryService for TelemetryApi {}

/// Serves `mfg.storage.v1.AlertService`. Not built yet: every RPC answers UNIMPLEMENTED.
#[derive(Debug, Clone, Default)]
pub struct AlertApi;

#[tonic::async_trait]
impl AlertService for AlertApi {}
