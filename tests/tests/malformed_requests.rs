//! A request that is not the protobuf message its RPC takes is the caller's mistake: every RPC
//! of the contract, found in its descriptors (so a new one is swept the day it is added),
//! answers garbage bytes with INVALID_ARGUMENT, never INTERNAL.

use bytes::Bytes;
use mfg_proto::codec::RawCodec;
use mfg_tests::Platform;
use prost::Message as _;
use tonic::{Code, Status, metadata::MetadataValue};

/// Bytes that no message decodes: a field key whose varint never ends.
const GARBAGE: [u8; 11] = [0xff; 11];

/// Every RPC of the contract: its path, and whether the client streams.
fn rpcs() -> Vec<(String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(mfg_proto::FILE_DESCRIPTOR_SET)
        .expect("the contract's descriptors");
    let mut rpcs = Vec::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("mfg.")) {
        for service in &file.service {
            for method in &service.method {
                rpcs.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    method.client_streaming(),
                ));
            }
        }
    }
    rpcs
}

async fn call(
    addr: std::net::SocketAddr,
    path: &str,
    client_streaming: bool,
    token: &str,
) -> Result<(), Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let body = Bytes::from_static(&GARBAGE);
    if client_streaming {
        let mut request = tonic::Request::new(futures::stream::iter([body]));
        request.metadata_mut().insert("authorization", bearer);
        let mut responses = grpc.streaming(request, path, RawCodec).await?.into_inner();
        while responses.message().await?.is_some() {}
    } else {
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert("authorization", bearer);
        grpc.unary(request, path, RawCodec).await?;
    }
    Ok(())
}

#[tokio::test]
async fn every_rpc_answers_garbage_with_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let tenant_key = platform_tenant_key(&platform).await;
    let a = &platform.addresses;
    let rpcs = rpcs();
    assert!(rpcs.len() > 30, "the sweep found {} RPCs", rpcs.len());
    for (path, client_streaming) in rpcs {
        let addr = match path.split('.').nth(1) {
            Some("tenant") => a.tenant,
            Some("storage") => a.storage,
            Some("cost") => a.cost,
            Some("provisioning") => a.provisioning,
            other => panic!("no service serves {other:?}"),
        };
        // Streams belong to one tenant: they are opened with a tenant's key.
        let token = if client_streaming {
            &tenant_key
        } else {
            &platform.operator_token
        };
        let status = call(addr, &path, client_streaming, token)
            .await
            .expect_err("garbage must be refused");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{path} answered {status:?}"
        );
    }
    platform.stop().await;
}

/// A key with every scope of a new tenant.
async fn platform_tenant_key(platform: &Platform) -> String {
    use mfg_proto::tenant::v1::{Scope, tenant_service_client::TenantServiceClient};
    let channel = mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.tenant))
        .unwrap()
        .with_bearer(&platform.operator_token)
        .unwrap();
    let scopes = [Scope::Read, Scope::Write, Scope::Admin];
    let mut tenants = TenantServiceClient::new(channel);
    mfg_tests::tenant_with_key(&mut tenants, "garbage-sweep", &scopes)
        .await
        .1
}
