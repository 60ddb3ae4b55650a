//! The cost service's built RPCs through the platform: the price book over REST (operator only,
//! its changes kept with their time, bad fields named) and usage recorded once per key over
//! gRPC.

use mfg_proto::{
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    tenant::v1::{Scope, tenant_service_client::TenantServiceClient},
};
use pbjson_types::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_price_book_is_the_operators_to_read_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    let operator = Some(platform.operator_token.as_str());
    let call = async |method: Method, path: &str, token: Option<&str>, body| {
        mfg_tests::http_call(&http, &platform.base, method, path, token, body).await
    };

    let (status, book) = call(Method::GET, "/v1/price-book", operator, None).await;
    assert_eq!(status, StatusCode::OK, "{book}");
    assert_eq!(book["prices"].as_array().unwrap().len(), 8, "{book}");
    assert!(book.get("updateTime").is_none(), "never changed: {book}");

    // The same change with its price field misspelled, then spelled right.
    let update = |price_field: &str| {
        Some(json!({
            "sharedMonthlyUsd": 1000.5,
            "split": "SHARED_COST_SPLIT_EVEN",
            "prices": [{"meter": "METER_HOT_STORAGE", "unit": "GB-month",
                        "baseUnitsPerUnit": 1e9, price_field: 0.2}],
        }))
    };
    let (status, changed) = call(
        Method::PATCH,
        "/v1/price-book",
        operator,
        update("unitPricePerUsd"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown JSON field: {changed}"
    );
    let (status, changed) = call(
        Method::PATCH,
        "/v1/price-book",
        operator,
        update("unitPriceUsd"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["sharedMonthlyUsd"], 1000.5);
    assert_eq!(changed["split"], "SHARED_COST_SPLIT_EVEN");
    assert!(changed["updateTime"].is_string(), "{changed}");
    let (_, read) = call(Method::GET, "/v1/price-book", operator, None).await;
    assert_eq!(read, changed, "kept");
    let hot = read["prices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["meter"] == "METER_HOT_STORAGE")
        .unwrap();
    assert_eq!(hot["unitPriceUsd"], 0.2);

    let (status, refused) = call(
        Method::PATCH,
        "/v1/price-book",
        operator,
        Some(json!({"sharedMonthlyUsd": -1, "prices": [{"meter": "METER_MACHINES"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let fields: Vec<&str> = refused["details"][0]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "price_book.prices[0].unit",
            "price_book.prices[0].base_units_per_unit",
            "price_book.shared_monthly_usd",
        ],
        "{refused}"
    );

    // A tenant's key may not read or change the price book.
    let mut tenants = TenantServiceClient::new(
        mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.tenant))
            .unwrap()
            .with_bearer(&platform.operator_token)
            .unwrap(),
    );
    let (_, key) = mfg_tests::tenant_with_key(&mut tenants, "acme", &[Scope::Admin]).await;
    let (status, _) = call(Method::GET, "/v1/price-book", Some(&key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    platform.stop().await;
}

#[tokio::test]
async fn usage_is_recorded_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let mut cost = CostServiceClient::new(
        mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.cost))
            .unwrap()
            .with_bearer(&platform.operator_token)
            .unwrap(),
    );
    let record = |key: &str| pb::UsageRecord {
        tenant_id: uuid::Uuid::now_v7().to_string(),
        meter: pb::Meter::IngestedReadings.into(),
        quantity: 1_000.0,
        start_time: Some(Timestamp {
            seconds: 1_796_000_000,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: 1_796_000_005,
            nanos: 0,
        }),
        idempotency_key: key.to_owned(),
    };
    let send = |records: Vec<pb::UsageRecord>| {
        let mut cost = cost.clone();
        async move {
            cost.record_usage(pb::RecordUsageRequest { records })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = send(vec![record("flush-1/a"), record("flush-1/b")])
        .await
        .unwrap();
    assert_eq!((first.recorded, first.duplicates), (2, 0));
    let again = send(vec![record("flush-1/a"), record("flush-1/b")])
        .await
        .unwrap();
    assert_eq!((again.recorded, again.duplicates), (0, 2));

    let bad = pb::UsageRecord {
        meter: pb::Meter::Unspecified.into(),
        idempotency_key: String::new(),
        ..record("x")
    };
    let refused = send(vec![bad]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("records[0].meter"),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("records[0].idempotency_key"),
        "{refused:?}"
    );
    let _ = cost
        .get_price_book(pb::GetPriceBookRequest {})
        .await
        .unwrap();
    platform.stop().await;
}
