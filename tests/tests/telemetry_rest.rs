//! Telemetry through the REST gateway of `mfg up` on the embedded default: a batch in, the same
//! counts as over gRPC, errors named by field, and the data read back as points, buckets and
//! latest values.

use mfg_tests::{Platform, RestTenant, http_call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn ingest_and_query_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());

    let (_, tenant) = http_call(
        &http,
        base,
        Method::POST,
        "/v1/tenants",
        operator,
        Some(json!({"name": "acme"})),
    )
    .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    platform.wait_until_active(&tenant_id).await;
    let (status, _) = http_call(
        &http,
        base,
        Method::POST,
        &format!("/v1/tenants/{tenant_id}/machines"),
        operator,
        Some(json!({"machineId": "press-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = |scope: &'static str| {
        let http = http.clone();
        let path = format!("/v1/tenants/{tenant_id}/api-keys");
        async move {
            let (_, key) = http_call(
                &http,
                base,
                Method::POST,
                &path,
                operator,
                Some(json!({"scopes": [scope]})),
            )
            .await;
            key["secret"].as_str().unwrap().to_owned()
        }
    };
    let writer = key("SCOPE_WRITE").await;
    let reader = key("SCOPE_READ").await;

    // A minute of readings, one a second, aligned to the minute, an hour ago.
    let now = chrono::Utc::now().timestamp();
    let start = (now - 3_600) / 60 * 60;
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(start + s, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut readings: Vec<Value> = (0..60)
        .map(|s| json!({"machineId": "press-1", "metric": "temp", "ts": at(s), "value": s as f64}))
        .collect();
    readings.push(json!({"machineId": "press-1", "metric": "temp", "ts": at(1), "value": 1.0}));
    readings.push(json!({"machineId": "press-9", "metric": "temp", "ts": at(1), "value": 1.0}));
    readings.push(json!({"machineId": "press-1", "metric": "", "ts": at(1), "value": 1.0}));
    let path = format!("/v1/tenants/{tenant_id}/telemetry");
    let (status, body) = http_call(
        &http,
        base,
        Method::POST,
        &path,
        Some(&writer),
        Some(json!({"readings": readings})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 60);
    assert_eq!(body["duplicates"], 1);
    let rejected: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [
            (61, "REJECT_REASON_UNKNOWN_MACHINE"),
            (62, "REJECT_REASON_INVALID_METRIC")
        ]
    );

    // A read key may not write; a malformed body names its field.
    let (status, _) = http_call(
        &http,
        base,
        Method::POST,
        &path,
        Some(&reader),
        Some(json!({"readings": []})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = http_call(
        &http,
        base,
        Method::POST,
        &path,
        Some(&writer),
        Some(json!({"readings": [{"machineId": "press-1", "ts": at(1)}, {"ts": "yesterday"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let violation = &body["details"][0]["fieldViolations"][0];
    assert_eq!(violation["field"], "readings[1].ts", "{body}");
    assert!(
        violation["description"]
            .as_str()
            .unwrap()
            .contains("RFC 3339"),
        "{body}"
    );

    let series = format!("/v1/tenants/{tenant_id}/machines/press-1/telemetry");
    let (status, body) = http_call(
        &http,
        base,
        Method::GET,
        &format!("{series}?metric=temp&start={}&end={}", at(10), at(13)),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let values: Vec<f64> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [10.0, 11.0, 12.0]);
    assert_eq!(body["tiers"], json!(["TIER_HOT"]));

    let (status, body) = http_call(
        &http,
        base,
        Method::GET,
        &format!(
            "{series}?metric=temp&start={}&end={}&step=30s&aggregation=avg",
            at(0),
            at(60)
        ),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let buckets: Vec<(f64, String)> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["value"].as_f64().unwrap(),
                b["count"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(buckets, [(14.5, "30".to_owned()), (44.5, "30".to_owned())]);

    let (status, body) = http_call(
        &http,
        base,
        Method::GET,
        &format!(
            "{series}?metric=temp&start={}&end={}&aggregation=avg",
            at(0),
            at(60)
        ),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"], "step",
        "{body}"
    );

    let (status, body) = http_call(
        &http,
        base,
        Method::GET,
        &format!("/v1/tenants/{tenant_id}/machines/press-1/latest"),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["values"][0]["metric"], "temp");
    assert_eq!(body["values"][0]["value"], 59.0);

    // A machine that is not registered is a 404, so that a typo shows.
    for path in [
        format!("/v1/tenants/{tenant_id}/machines/press-9/latest"),
        format!(
            "/v1/tenants/{tenant_id}/machines/press-9/telemetry?metric=temp&start={}&end={}",
            at(0),
            at(60)
        ),
    ] {
        let (status, body) = http_call(&http, base, Method::GET, &path, Some(&reader), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("press-9"),
            "{body}"
        );
    }

    // The operator starts a tiering job on demand and follows it; a tenant key may not, and
    // `asOf` must be a timestamp.
    let tiering = "/v1/maintenance/tiering";
    let (status, job) = http_call(
        &http,
        base,
        Method::POST,
        tiering,
        operator,
        Some(json!({"asOf": at(0)})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert!(
        ["TIERING_JOB_STATE_QUEUED", "TIERING_JOB_STATE_RUNNING"]
            .contains(&job["state"].as_str().unwrap()),
        "{job}"
    );
    let job_path = format!("{tiering}/{}", job["jobId"].as_str().unwrap());
    let (status, ended) = http_call(
        &http,
        base,
        Method::GET,
        &format!("{job_path}?wait=20s"),
        operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["state"], "TIERING_JOB_STATE_SUCCEEDED", "{ended}");
    assert_eq!(ended["tenantsDone"], ended["tenantsTotal"], "{ended}");
    assert!(ended["endTime"].is_string(), "{ended}");
    let (status, list) = http_call(&http, base, Method::GET, tiering, operator, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["jobs"][0]["jobId"], job["jobId"], "{list}");
    for (path, expected, field) in [
        (
            format!("{job_path}?wait=1h"),
            StatusCode::BAD_REQUEST,
            "wait",
        ),
        (
            format!("{tiering}/not-a-job"),
            StatusCode::BAD_REQUEST,
            "job_id",
        ),
        (
            format!("{tiering}/{}", uuid::Uuid::now_v7()),
            StatusCode::NOT_FOUND,
            "not found",
        ),
    ] {
        let (status, body) = http_call(&http, base, Method::GET, &path, operator, None).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body.to_string().contains(field), "{path}: {body}");
    }
    let (status, _) = http_call(&http, base, Method::GET, &job_path, Some(&writer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = http_call(
        &http,
        base,
        Method::POST,
        tiering,
        Some(&writer),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = http_call(
        &http,
        base,
        Method::POST,
        tiering,
        operator,
        Some(json!({"asOf": "tomorrow"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    platform.stop().await;
}

#[tokio::test]
async fn over_its_ingest_rate_a_rest_client_is_told_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let RestTenant { id: tenant_id, key } = platform
        .rest_tenant(
            json!({"name": "slow", "limits": {"ingestReadingsPerSecond": 100}}),
            "SCOPE_WRITE",
        )
        .await;
    let now = chrono::Utc::now().timestamp_micros();
    // 1,000 readings pass at once, and leave the tenant ten seconds in debt.
    let batch = |from: i64| {
        let readings: Vec<Value> = (0..1_000)
            .map(|i| {
                let ts = chrono::DateTime::from_timestamp_micros(from - i * 1_000).unwrap();
                json!({"machineId": "press-1", "metric": "temp", "ts": ts.to_rfc3339(), "value": 1.0})
            })
            .collect();
        json!({ "readings": readings })
    };
    let path = format!("{base}/v1/tenants/{tenant_id}/telemetry");
    let first = http
        .post(&path)
        .bearer_auth(&key)
        .json(&batch(now))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let refused = http
        .post(&path)
        .bearer_auth(&key)
        .json(&batch(now - 2_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=10).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 8, "{body}");
    let retry_info = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap_or_else(|| panic!("no RetryInfo in {body}"));
    assert!(retry_info["retryDelay"].as_str().unwrap().ends_with('s'));
    platform.stop().await;
}
