//! The v1 contract of the Manufacturing Platform, generated from `proto/` at build time.
//!
//! One module per protobuf package (`mfg.tenant.v1` is [`tenant::v1`]). Clients are generated
//! with the `client` feature, servers with `server`, proto3 JSON (serde) with `json`. Every
//! RPC of a generated server trait has a default body answering UNIMPLEMENTED, so a service
//! that is not built yet says so instead of inventing an answer.

#![allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]

pub mod access;
pub mod codec;
#[cfg(feature = "client")]
mod tiering;

macro_rules! package {
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file, ".rs"));
        #[cfg(feature = "json")]
        include!(concat!(env!("OUT_DIR"), "/", $file, ".serde.rs"));
    };
}

/// Messages shared by more than one service (`mfg.common.v1`).
pub mod common {
    /// Version 1.
    pub mod v1 {
        package!("mfg.common.v1");
    }
}

/// Options of the contract's RPCs: who may call each one, what REST answers (`mfg.options.v1`).
pub mod options {
    /// Version 1.
    pub mod v1 {
        package!("mfg.options.v1");
    }
}

/// The tenant service's contract (`mfg.tenant.v1`).
pub mod tenant {
    /// Version 1.
    pub mod v1 {
        package!("mfg.tenant.v1");
    }
}

/// The storage service's contract: telemetry and alerts (`mfg.storage.v1`).
pub mod storage {
    /// Version 1.
    pub mod v1 {
        package!("mfg.storage.v1");
    }
}

/// The cost service's contract (`mfg.cost.v1`).
pub mod cost {
    /// Version 1.
    pub mod v1 {
        package!("mfg.cost.v1");
    }
}

/// The provisioning service's contract (`mfg.provisioning.v1`).
pub mod provisioning {
    /// Version 1.
    pub mod v1 {
        package!("mfg.provisioning.v1");
    }
}

/// The encoded `FileDescriptorSet` of the whole contract, imports included, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mfg_descriptor.bin"));

/// The fully qualified names of the gRPC services of the contract.
pub mod service_names {
    /// `mfg.tenant.v1.TenantService`.
    pub const TENANT: &str = "mfg.tenant.v1.TenantService";
    /// `mfg.storage.v1.TelemetryService`.
    pub const TELEMETRY: &str = "mfg.storage.v1.TelemetryService";
    /// `mfg.storage.v1.AlertService`.
    pub const ALERT: &str = "mfg.storage.v1.AlertService";
    /// `mfg.cost.v1.CostService`.
    pub const COST: &str = "mfg.cost.v1.CostService";
    /// `mfg.provisioning.v1.ProvisioningService`.
    pub const PROVISIONING: &str = "mfg.provisioning.v1.ProvisioningService";
    /// `mfg.provisioning.v1.AuditService`.
    pub const AUDIT: &str = "mfg.provisioning.v1.AuditService";
}
