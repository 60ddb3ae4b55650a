//! The contract's declared access (`mfg.options.v1.access`), enforced for every gRPC call in
//! one place: the server auth layer ([`crate::auth::AuthLayer`]) calls [`enforce`] once the
//! caller is known, before the call reaches its service.
//!
//! A unary request that names a tenant is checked against that tenant: its `tenant_id` is read
//! from the encoded request (one pass over its top-level fields, nothing decoded) and the body
//! handed on unchanged. A client stream carries its tenant in its messages, so the layer
//! checks only who may call, and the service checks each stream's tenant as it opens.

use bytes::{Buf as _, Bytes};
use http_body_util::{BodyExt as _, Full, Limited};
use tonic::{Status, body::Body};

use crate::auth::{Access, Caller, Scope};

/// The largest request the layer reads to find its tenant: the largest message any service
/// takes (16 MiB), and its frame header.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024 + 5;

/// An RPC's declared access and where its request names the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// Who may call it.
    pub access: Access,
    /// The number of the request's `tenant_id` field, for a unary request that has one.
    pub tenant_field: Option<u32>,
}

/// The access the contract declares for a gRPC path; `None` for a path it does not have.
pub fn declared(path: &str) -> Option<Declared> {
    let declared = mfg_proto::access::declared(path)?;
    let scope = match declared.scope {
        1 => Some(Scope::Read),
        2 => Some(Scope::Write),
        3 => Some(Scope::Admin),
        _ => None,
    };
    let access = match declared.audience {
        1 => Access::Tenant(scope.unwrap_or(Scope::Read)),
        2 => Access::Operator(scope),
        4 => Access::AnyKey(scope.unwrap_or(Scope::Read)),
        _ => Access::Internal,
    };
    Some(Declared {
        access,
        tenant_field: declared.tenant_field.filter(|_| !declared.client_streaming),
    })
}

/// Checks `caller` against the access of the RPC `request` calls, and hands the request on.
/// Paths the contract does not have pass, for the server to answer UNIMPLEMENTED.
pub async fn enforce(
    caller: &Caller,
    request: http::Request<Body>,
) -> Result<http::Request<Body>, Status> {
    let Some(declared) = declared(request.uri().path()) else {
        return Ok(request);
    };
    let Some(field) = declared.tenant_field else {
        return match declared.access {
            // A stream's tenant is checked by its service when the stream opens.
            Access::Tenant(_) => Ok(request),
            access => {
                caller.permits(access, None).map_err(Status::from)?;
                Ok(request)
            }
        };
    };
    if matches!(caller, Caller::Operator) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| Status::resource_exhausted("the request is larger than 16 MiB, or was cut"))?
        .to_bytes();
    let tenant = frame_message(&bytes)
        .and_then(|message| string_field(message, field))
        .unwrap_or_default();
    caller
        .permits(declared.access, Some(&tenant))
        .map_err(Status::from)?;
    Ok(http::Request::from_parts(
        parts,
        Body::new(Full::new(bytes)),
    ))
}

/// The message of a request's single gRPC frame (uncompressed), if it is one.
fn frame_message(bytes: &Bytes) -> Option<&[u8]> {
    let (&compressed, rest) = bytes.split_first()?;
    if compressed != 0 || rest.len() < 4 {
        return None;
    }
    let length = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
    rest.get(4..4 + length)
}

/// The last value of a top-level string field of an encoded message (the one a decoder keeps).
fn string_field(mut message: &[u8], number: u32) -> Option<String> {
    let mut found = None;
    while message.has_remaining() {
        let key = prost::encoding::decode_varint(&mut message).ok()?;
        let (field, wire_type) = (key >> 3, key & 7);
        let length = match wire_type {
            0 => {
                prost::encoding::decode_varint(&mut message).ok()?;
                continue;
            }
            1 => 8,
            2 => usize::try_from(prost::encoding::decode_varint(&mut message).ok()?).ok()?,
            5 => 4,
            _ => return None,
        };
        let value = message.get(..length)?;
        if wire_type == 2 && field == u64::from(number) {
            found = Some(String::from_utf8(value.to_vec()).ok()?);
        }
        message.advance(length);
    }
    found
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn the_tenant_is_read_from_the_encoded_request() {
        let request = mfg_proto::tenant::v1::GetMachineRequest {
            tenant_id: "t-1".to_owned(),
            machine_id: "press".to_owned(),
        };
        let message = request.encode_to_vec();
        let mut frame = vec![0];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        let frame = Bytes::from(frame);
        let message = frame_message(&frame).unwrap();
        assert_eq!(string_field(message, 1).as_deref(), Some("t-1"));
        assert_eq!(string_field(message, 2).as_deref(), Some("press"));
        assert_eq!(string_field(message, 3), None);
        assert_eq!(string_field(&[0xff], 1), None, "a cut key");
    }

    #[test]
    fn the_contract_declares_every_rpc() {
        let get = declared("/mfg.tenant.v1.TenantService/GetMachine").unwrap();
        assert_eq!(get.access, Access::Tenant(Scope::Read));
        assert_eq!(get.tenant_field, Some(1));
        let stream = declared("/mfg.storage.v1.TelemetryService/StreamTelemetry").unwrap();
        assert_eq!(stream.tenant_field, None);
        let internal = declared("/mfg.tenant.v1.TenantService/AuthenticateKey").unwrap();
        assert_eq!(internal.access, Access::Internal);
    }
}
