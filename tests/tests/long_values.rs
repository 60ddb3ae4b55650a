//! Over-long values are a client's mistake, named by field, and never echoed whole: a
//! 5,000-character name or id is a 400 / INVALID_ARGUMENT whose message stays short, over REST
//! and over gRPC (where a long message would not fit in the trailers).

use mfg_proto::tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient};
use mfg_tests::{Platform, http_call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

fn long() -> String {
    "x".repeat(5_000)
}

fn violated_fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["field"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn long_values_are_refused_by_field_and_never_echoed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());
    let tenant_id = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_READ")
        .await
        .id;
    let long = long();

    let cases = [
        (
            Method::POST,
            "/v1/tenants".to_owned(),
            Some(json!({ "name": long })),
            "tenant.name",
        ),
        (
            Method::GET,
            format!("/v1/tenants/{long}"),
            None,
            "tenant_id",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tenant_id}/machines"),
            Some(json!({ "machineId": long })),
            "machine.machine_id",
        ),
        (
            Method::GET,
            format!("/v1/tenants/{tenant_id}/machines/{long}"),
            None,
            "machine_id",
        ),
        (
            Method::GET,
            format!("/v1/tenants/{tenant_id}/machines/{long}/latest"),
            None,
            "machine_id",
        ),
        (
            Method::GET,
            format!(
                "/v1/tenants/{tenant_id}/machines/press-1/telemetry?metric={long}\
                 &start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z"
            ),
            None,
            "metric",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = http_call(&http, base, method.clone(), &path, operator, body).await;
        let shown = format!(
            "{method} {}…: {status} {answer}",
            &path[..40.min(path.len())]
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shown}");
        assert!(
            violated_fields(&answer).iter().any(|f| f == field),
            "{field} is not named: {shown}"
        );
        assert!(answer.to_string().len() < 2_048, "{shown}");
    }

    // Over gRPC, the same mistake is INVALID_ARGUMENT, not a transport error.
    let channel = mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.tenant))
        .unwrap()
        .with_bearer(&platform.operator_token)
        .unwrap();
    let mut tenants = TenantServiceClient::new(channel);
    let status = tenants
        .create_tenant(tpb::CreateTenantRequest {
            tenant: Some(tpb::Tenant {
                name: long.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().len() < 1_024);
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["tenant.name"]);
    let status = tenants
        .get_machine(tpb::GetMachineRequest {
            tenant_id: tenant_id.clone(),
            machine_id: long.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    platform.stop().await;
}
