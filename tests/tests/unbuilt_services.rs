//! The parts of the contract that are not built yet (provisioning) start, report SERVING, and
//! answer UNIMPLEMENTED, never a made-up result.

use mfg_proto::{
    provisioning::v1::{
        StartProvisioningRequest, provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
};
use mfg_tests::Running;
use tonic::Code;

#[tokio::test]
async fn unbuilt_rpcs_answer_unimplemented() {
    let provisioning = Running::start(service_names::PROVISIONING, |l, s| {
        mfg_provisioning::run(Default::default(), l, s)
    })
    .await;

    let run = ProvisioningServiceClient::new(mfg_tests::operator_channel(&provisioning))
        .start_provisioning(StartProvisioningRequest::default())
        .await
        .unwrap_err();
    assert_eq!(run.code(), Code::Unimplemented);

    provisioning.stop().await;
}

/// Over REST, an annotated RPC has its route the day it is added: the gateway routes it from
/// the contract, and its service's UNIMPLEMENTED comes back as 501.
#[tokio::test]
async fn unbuilt_routes_answer_501() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/v1/tenants/t1/provisioning-runs/r1:retry",
            Some(serde_json::json!({})),
        ),
        (
            reqwest::Method::POST,
            "/v1/tenants/t1/provisioning-runs/r1:rollback",
            Some(serde_json::json!({})),
        ),
        (
            reqwest::Method::GET,
            "/v1/tenants/t1/provisioning-runs/r1",
            None,
        ),
    ] {
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
