//! A unary call of any RPC of the contract, as raw protobuf: the request message is encoded
//! from its descriptor and the answer decoded with the output's, so no RPC needs a typed
//! client here. The gateway calls as the operator (its channel carries that credential) and
//! names the tenant key it authenticated in `x-mfg-on-behalf-of`, for audit fields and caps.

use bytes::Bytes;
use mfg_proto::codec::RawCodec;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use tonic::{GrpcMethod, Status};

use crate::{AppState, auth::Caller, contract::Rpc, error::ApiError};

use mfg_common::audit::REQUEST_ID;
pub use mfg_common::auth::ON_BEHALF_OF;

/// Calls `rpc` with `request` and returns its answer, passing on the caller's request id.
pub(super) async fn call(
    state: &AppState,
    rpc: &'static Rpc,
    caller: &Caller,
    request_id: Option<&str>,
    request: DynamicMessage,
) -> Result<DynamicMessage, ApiError> {
    let channel = state
        .channel_of(rpc.service)
        .ok_or_else(|| ApiError::not_found("no such route"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| {
        ApiError::from(Status::unavailable(format!(
            "the service is not ready: {error}"
        )))
    })?;
    let mut request = tonic::Request::new(Bytes::from(request.encode_to_vec()));
    request
        .extensions_mut()
        .insert(GrpcMethod::new(rpc.service, rpc.name));
    if let Caller::Tenant(principal) = caller
        && let Ok(value) = format!("key:{}", principal.key_id).parse()
    {
        request.metadata_mut().insert(ON_BEHALF_OF, value);
    }
    if let Some(value) = request_id.and_then(|id| id.parse().ok()) {
        request.metadata_mut().insert(REQUEST_ID, value);
    }
    let path = http::uri::PathAndQuery::from_static(rpc.grpc_path);
    let answer = grpc.unary(request, path, RawCodec).await?.into_inner();
    DynamicMessage::decode(rpc.method.output(), answer).map_err(|error| {
        tracing::error!(rpc = rpc.grpc_path, %error, "the answer does not decode");
        ApiError::new(mfg_common::ErrorCode::Internal, "internal error")
    })
}
