//! The gRPC adapter of the provisioning service: the onboarding workflow of a tenant.
//!
//! The contract is designed (see `proto/`); the service is built by its own issue. Until then
//! each RPC answers UNIMPLEMENTED through the generated default bodies, and never a made-up
//! result.

use mfg_proto::provisioning::v1::provisioning_service_server::ProvisioningService;

/// Serves `mfg.provisioning.v1.ProvisioningService`. Not built yet: every RPC answers
/// UNIMPLEMENTED.
#[derive(Debug, Clone, Default)]
pub struct ProvisioningApi;

#[tonic::async_trait]
impl ProvisioningService for ProvisioningApi {}
