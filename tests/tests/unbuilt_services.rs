//! The parts of the contract that are not built yet (provisioning's rollback) answer
//! UNIMPLEMENTED, never a made-up result.

use mfg_proto::provisioning::v1::{
    RollbackProvisioningRunRequest, provisioning_service_client::ProvisioningServiceClient,
};
use tonic::Code;

#[tokio::test]
async fn unbuilt_rpcs_answer_unimplemented() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let channel =
        mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.provisioning))
            .unwrap()
            .with_bearer(&platform.operator_token)
            .unwrap();
    let rollback = ProvisioningServiceClient::new(channel)
        .rollback_provisioning_run(RollbackProvisioningRunRequest::default())
        .await
        .unwrap_err();
    assert_eq!(rollback.code(), Code::Unimplemented);
    platform.stop().await;
}

/// Over REST, an annotated RPC has its route the day it is added: the gateway routes it from
/// the contract, and its service's UNIMPLEMENTED comes back as 501.
#[tokio::test]
async fn unbuilt_routes_answer_501() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    for (method, path, body) in [(
        reqwest::Method::POST,
        "/v1/tenants/t1/provisioning-runs/r1:rollback",
        Some(serde_json::json!({})),
    )] {
        let (status, answer) = mfg_tests::http_call(
            &http,
            &platform.base,
            method.clone(),
            path,
            Some(&platform.operator_token),
            body,
        )
        .await;
        assert_eq!(
            status,
            reqwest::StatusCode::NOT_IMPLEMENTED,
            "{method} {path}: {answer}"
        );
        assert_eq!(answer["code"], 12, "UNIMPLEMENTED: {answer}");
    }
    // An internal RPC has no route, though the contract annotates it.
    let (status, _) = mfg_tests::http_call(
        &http,
        &platform.base,
        reqwest::Method::POST,
        "/v1/usage:record",
        Some(&platform.operator_token),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    platform.stop().await;
}
