//! The access each RPC declares in the contract (`mfg.options.v1.access`), generated at build
//! time so that the services' auth layer reads it without decoding descriptors.

/// An RPC's declared access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// `mfg.options.v1.Audience` as its number.
    pub audience: i32,
    /// `mfg.options.v1.KeyScope` as its number.
    pub scope: i32,
    /// The number of the request's `tenant_id` field, when it has one.
    pub tenant_field: Option<u32>,
    /// Whether the client streams requests (the tenant is then in each message).
    pub client_streaming: bool,
}

include!(concat!(env!("OUT_DIR"), "/access.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_is_declared() {
        let get = declared("/mfg.tenant.v1.TenantService/GetTenant").unwrap();
        assert_eq!((get.audience, get.scope, get.tenant_field), (1, 1, Some(1)));
        let stream = declared("/mfg.storage.v1.TelemetryService/StreamTelemetry").unwrap();
        assert!(stream.client_streaming);
        assert_eq!(declared("/mfg.tenant.v1.TenantService/Nope"), None);
    }
}
