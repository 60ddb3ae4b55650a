//! The gRPC adapter of the cost service: usage metering, the price book, per-tenant cost with shared costs split, budgets, forecasts and recommendations.
//!
//! The contract is designed (see `proto/`); the service is built by its own issue. Until then
//! each RPC answers UNIMPLEMENTED through the generated default bodies, and never a made-up
//! result.

pub mod convert;

use mfg_proto::cost::v1::cost_service_server::CostService;

/// Serves `mfg.cost.v1.CostService`. Not built yet: every RPC answers UNIMPLEMENTED.
#[derive(Debug, Clone, Default)]
pub struct CostApi;

#[tonic::async_trait]
impl CostService for CostApi {}
