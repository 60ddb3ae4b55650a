//! The cost service's built RPCs through the platform: the price book over REST (any key reads
//! it, only the operator changes it, its changes kept with their time, bad fields named) and usage recorded once per key over
//! gRPC.

use mfg_proto::{
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    tenant::v1::{Scope, tenant_service_client::TenantServiceClient},
};
use pbjson_types::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn any_key_reads_the_price_book_and_the_operator_changes_it() {
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

    // A tenant's key may read the price book, and not change it.
    let mut tenants = TenantServiceClient::new(
        mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.tenant))
            .unwrap()
            .with_bearer(&platform.operator_token)
            .unwrap(),
    );
    let (_, key) = mfg_tests::tenant_with_key(&mut tenants, "acme", &[Scope::Admin]).await;
    let (status, read_by_key) = call(Method::GET, "/v1/price-book", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_by_key, read);
    let (status, _) = call(
        Method::PATCH,
        "/v1/price-book",
        Some(&key),
        update("unitPriceUsd"),
    )
    .await;
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
            cost.record_usage(pb::RecordUsageRequest {
                records,
                batch_key: String::new(),
            })
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

    // A batch key counts the whole call once; its records then carry no keys of their own.
    let batch = |key: &str, records: Vec<pb::UsageRecord>| {
        let mut cost = cost.clone();
        let batch_key = key.to_owned();
        async move {
            cost.record_usage(pb::RecordUsageRequest { records, batch_key })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let once = batch("run/7/0", vec![record(""), record("")])
        .await
        .unwrap();
    assert_eq!((once.recorded, once.duplicates), (2, 0));
    let twice = batch("run/7/0", vec![record(""), record("")])
        .await
        .unwrap();
    assert_eq!((twice.recorded, twice.duplicates), (0, 2));
    let refused = batch("run/8/0", vec![record("own")]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
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

/// A usage record of `quantity` over the five minutes that ended a minute ago.
fn recent(tenant: &str, meter: pb::Meter, quantity: f64, key: &str) -> pb::UsageRecord {
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        let t = now - chrono::Duration::minutes(minutes);
        Timestamp {
            seconds: t.timestamp(),
            nanos: 0,
        }
    };
    pb::UsageRecord {
        tenant_id: tenant.to_owned(),
        meter: meter.into(),
        quantity,
        start_time: Some(at(6)),
        end_time: Some(at(1)),
        idempotency_key: key.to_owned(),
    }
}

/// Dollars as whole cents.
fn cents(value: &serde_json::Value) -> i64 {
    (value.as_f64().unwrap_or(0.0) * 100.0).round() as i64
}

#[tokio::test]
async fn a_tenants_cost_is_its_part_of_the_summary_to_the_cent() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let channel = |addr: &std::net::SocketAddr| {
        mfg_common::grpc::lazy_channel(&format!("http://{addr}"))
            .unwrap()
            .with_bearer(&platform.operator_token)
            .unwrap()
    };
    let mut tenants = TenantServiceClient::new(channel(&platform.addresses.tenant));
    let mut cost = CostServiceClient::new(channel(&platform.addresses.cost));
    let (acme, acme_key) = mfg_tests::tenant_with_key(&mut tenants, "acme", &[Scope::Read]).await;
    let (globex, _) = mfg_tests::tenant_with_key(&mut tenants, "globex", &[Scope::Read]).await;
    tenants
        .update_tenant(mfg_proto::tenant::v1::UpdateTenantRequest {
            tenant_id: globex.clone(),
            tenant: Some(mfg_proto::tenant::v1::Tenant {
                plan: mfg_proto::tenant::v1::Plan::Dedicated.into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["plan".to_owned()],
            }),
        })
        .await
        .unwrap();
    cost.record_usage(pb::RecordUsageRequest {
        batch_key: String::new(),
        records: vec![
            recent(&acme, pb::Meter::IngestedReadings, 5e9, "acme/readings"),
            recent(&acme, pb::Meter::HotStorage, 200e9, "acme/hot"),
            recent(&globex, pb::Meter::ApiRequests, 3e6, "globex/api"),
        ],
    })
    .await
    .unwrap();

    // Since the start of the hour two hours ago, whatever the day of the month: a period is
    // costed by the hours that start in it.
    let since = chrono::DurationRound::duration_trunc(
        chrono::Utc::now() - chrono::Duration::hours(2),
        chrono::Duration::hours(1),
    )
    .unwrap()
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let http = reqwest::Client::new();
    let call = async |path: String, token: &str| {
        mfg_tests::http_call(&http, &platform.base, Method::GET, &path, Some(token), None).await
    };
    let (status, report) = call(
        format!("/v1/tenants/{acme}/cost?startTime={since}"),
        &acme_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let report = &report["report"];
    let lines = report["lines"].as_array().unwrap();
    let meters: Vec<_> = lines.iter().map(|l| l["meter"].as_str().unwrap()).collect();
    assert_eq!(
        meters,
        ["METER_INGESTED_READINGS", "METER_HOT_STORAGE"],
        "{report}"
    );
    assert_eq!(lines[1]["tier"], "TIER_HOT");
    // Five billion readings at the default $0.000056 a million: 28 cents.
    assert_eq!(cents(&lines[0]["amountUsd"]), 28, "{report}");
    let line_sum: i64 = lines.iter().map(|l| cents(&l["amountUsd"])).sum();
    assert_eq!(line_sum, cents(&report["directUsd"]));
    assert_eq!(
        cents(&report["directUsd"]) + cents(&report["sharedUsd"]) + cents(&report["dedicatedUsd"]),
        cents(&report["totalUsd"])
    );
    let days: i64 = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| cents(&d["totalUsd"]))
        .sum();
    assert_eq!(days, cents(&report["totalUsd"]), "{report}");

    // Another tenant's cost is not found with this key; the summary is the operator's.
    let (status, _) = call(format!("/v1/tenants/{globex}/cost"), &acme_key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call("/v1/cost".to_owned(), &acme_key).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The cost service's snapshot of the tenants is refreshed every 5 s: globex's move to the
    // dedicated plan reaches it within that.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let summary = loop {
        let (status, summary) = call(
            format!("/v1/cost?startTime={since}"),
            &platform.operator_token,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        let dedicated = summary["reports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["tenantId"] == globex.as_str() && r["dedicatedUsd"] != 0.0);
        if dedicated || tokio::time::Instant::now() > deadline {
            break summary;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let reports = summary["reports"].as_array().unwrap();
    let of = |id: &str| reports.iter().find(|r| r["tenantId"] == id).unwrap();
    assert_eq!(of(&acme)["totalUsd"], report["totalUsd"], "{summary}");
    let totals: i64 = reports.iter().map(|r| cents(&r["totalUsd"])).sum();
    assert_eq!(totals, cents(&summary["totalUsd"]));
    let shares: i64 = reports.iter().map(|r| cents(&r["sharedUsd"])).sum();
    assert_eq!(shares, cents(&summary["sharedUsd"]));
    assert_eq!(summary["split"], "SHARED_COST_SPLIT_PROPORTIONAL");
    // Globex is on the dedicated plan: $72.08 a month of capacity, for three hours or less.
    let dedicated = cents(&of(&globex)["dedicatedUsd"]);
    assert!((1..=30).contains(&dedicated), "{summary}");
    assert_eq!(
        cents(&report["dedicatedUsd"]),
        0,
        "acme is shared: {report}"
    );

    // Each report carries its tenant's forecast of the month; the summary the platform's, against
    // the target the operator sets in the price book.
    let (status, _) = mfg_tests::http_call(
        &http,
        &platform.base,
        Method::PATCH,
        "/v1/price-book?updateMask=platformMonthlyTargetUsd",
        Some(&platform.operator_token),
        Some(json!({"platformMonthlyTargetUsd": 50_000})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, summary) = call("/v1/cost".to_owned(), &platform.operator_token).await;
    assert_eq!(summary["targetMonthlyUsd"], 50_000.0, "{summary}");
    let platform_forecast = &summary["forecast"];
    let usd = |value: &serde_json::Value, field: &str| value[field].as_f64().unwrap_or(0.0);
    assert!(
        usd(platform_forecast, "forecastUsd") >= usd(platform_forecast, "monthToDateUsd"),
        "{summary}"
    );
    let vs_target = usd(&summary, "forecastVsTarget");
    assert!((vs_target - (usd(platform_forecast, "forecastUsd") / 50_000.0 - 1.0)).abs() < 1e-9);
    assert!(
        summary["reports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["forecast"]["forecastUsd"].is_number()),
        "{summary}"
    );
    let (status, forecast) = call(format!("/v1/tenants/{acme}/cost:forecast"), &acme_key).await;
    assert_eq!(status, StatusCode::OK, "{forecast}");
    assert_eq!(forecast["confidence"], 0.9);
    let (low, expected, high) = (
        usd(&forecast, "forecastLowUsd"),
        usd(&forecast, "forecastUsd"),
        usd(&forecast, "forecastHighUsd"),
    );
    assert!(low <= expected && expected <= high, "{forecast}");
    assert!(expected >= usd(&forecast, "monthToDateUsd"), "{forecast}");

    // A period that ends before it starts is refused, naming the field.
    let (status, refused) = call(
        format!("/v1/tenants/{acme}/cost?startTime=2999-01-01T00:00:00Z"),
        &acme_key,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused.to_string().contains("start_time"), "{refused}");
    platform.stop().await;
}

#[tokio::test]
async fn a_budget_is_the_tenants_limit_with_its_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let mut tenants = TenantServiceClient::new(
        mfg_common::grpc::lazy_channel(&format!("http://{}", platform.addresses.tenant))
            .unwrap()
            .with_bearer(&platform.operator_token)
            .unwrap(),
    );
    let (acme, admin) = mfg_tests::tenant_with_key(&mut tenants, "acme", &[Scope::Admin]).await;
    let http = reqwest::Client::new();
    let call = async |method: Method, path: &str, body| {
        mfg_tests::http_call(&http, &platform.base, method, path, Some(&admin), body).await
    };
    let budget = format!("/v1/tenants/{acme}/budget");

    // No limit yet, and the default thresholds.
    let (status, read) = call(Method::GET, &budget, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["monthlyLimitUsd"], 0.0);
    assert_eq!(read["alertThresholds"], json!([0.5, 0.8, 1.0]));

    // The limit is the tenant's monthlyBudgetUsd: set here, it is set there.
    let (status, changed) = call(
        Method::PATCH,
        &format!("{budget}?updateMask=*"),
        Some(json!({"monthlyLimitUsd": 2900, "alertThresholds": [1.0, 0.5]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["monthlyLimitUsd"], 2900.0);
    assert_eq!(changed["alertThresholds"], json!([0.5, 1.0]));
    assert!(changed["updateTime"].is_string(), "{changed}");
    let (_, tenant) = call(Method::GET, &format!("/v1/tenants/{acme}"), None).await;
    assert_eq!(tenant["monthlyBudgetUsd"], 2900.0, "{tenant}");

    // Set at the tenant (by the operator), it is the budget's within the cost service's
    // refresh (5 s).
    let (status, _) = mfg_tests::http_call(
        &http,
        &platform.base,
        Method::PATCH,
        &format!("/v1/tenants/{acme}?updateMask=monthlyBudgetUsd"),
        Some(&platform.operator_token),
        Some(json!({"monthlyBudgetUsd": 100})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, read) = call(Method::GET, &budget, None).await;
        if read["monthlyLimitUsd"] == 100.0 {
            assert_eq!(read["alertThresholds"], json!([0.5, 1.0]), "kept");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{read}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Bad values are refused, each field named.
    let (status, refused) = call(
        Method::PATCH,
        &format!("{budget}?updateMask=*"),
        Some(json!({"monthlyLimitUsd": -1, "alertThresholds": [0, 0.5]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = refused.to_string();
    assert!(text.contains("budget.monthly_limit_usd"), "{refused}");
    assert!(text.contains("budget.alert_thresholds[0]"), "{refused}");
    platform.stop().await;
}
