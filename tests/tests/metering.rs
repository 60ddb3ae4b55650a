//! Usage metered where it happens, end to end: readings ingested, points queried and alert
//! evaluations, counted by the storage service, API requests, counted by the gateway, and
//! registered machines, counted by the tenant service; flushed to the cost service and seen in
//! the tenant's cost, each once.

use std::time::Duration;

use mfg_tests::{Platform, http_call, up_args};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// The quantity of a meter's line in a cost report, in the meter's base units.
fn base_units(report: &Value, meter: &str) -> f64 {
    report["report"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["meter"] == meter)
        .map_or(0.0, |line| {
            (line["quantity"].as_f64().unwrap() * 1e6).round()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_metered_where_it_happens_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = up_args(dir.path(), None, false);
    args.metering.interval = Duration::from_millis(100);
    let platform = Platform::up_with(args).await;
    let (http, base) = (Client::new(), platform.base.as_str());
    let operator = Some(platform.operator_token.as_str());
    let call = async |method: Method, path: String, token: Option<&str>, body: Option<Value>| {
        http_call(&http, base, method, &path, token, body).await
    };

    let (_, tenant) = call(
        Method::POST,
        "/v1/tenants".to_owned(),
        operator,
        Some(json!({"name": "acme"})),
    )
    .await;
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    platform.wait_until_active(&tenant).await;
    let (status, _) = call(
        Method::POST,
        format!("/v1/tenants/{tenant}/machines"),
        operator,
        Some(json!({"machineId": "press-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let rule = json!({
        "metric": "temp",
        "severity": "SEVERITY_MAJOR",
        "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 1e9}},
    });
    let (status, body) = call(
        Method::POST,
        format!("/v1/tenants/{tenant}/alert-rules"),
        operator,
        Some(rule),
    )
    .await;
    assert!(status.is_success(), "{body}");

    // A thousand readings, one a second until a minute ago.
    let now = chrono::Utc::now();
    let at = |s: i64| {
        (now - chrono::Duration::seconds(1_060 - s))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let readings: Vec<Value> = (0..1_000)
        .map(|s| json!({"machineId": "press-1", "metric": "temp", "ts": at(s), "value": s}))
        .collect();
    let (status, body) = call(
        Method::POST,
        format!("/v1/tenants/{tenant}/telemetry"),
        operator,
        Some(json!({ "readings": readings })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1_000);
    let (status, body) = call(
        Method::GET,
        format!(
            "/v1/tenants/{tenant}/machines/press-1/telemetry?metric=temp&start={}&end={}",
            at(0),
            at(1_000)
        ),
        operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let points = body["points"].as_array().unwrap().len();
    assert_eq!(points, 1_000);

    // Seven requests with a key of the tenant; the operator's calls are not the tenant's.
    let (_, key) = call(
        Method::POST,
        format!("/v1/tenants/{tenant}/api-keys"),
        operator,
        Some(json!({"scopes": ["SCOPE_READ"]})),
    )
    .await;
    let key = key["secret"].as_str().unwrap().to_owned();
    for _ in 0..7 {
        let (status, _) = call(
            Method::GET,
            format!("/v1/tenants/{tenant}"),
            Some(&key),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    // Since the start of the hour two hours ago: a period counts the hours that start in it.
    let since = chrono::DurationRound::duration_trunc(
        now - chrono::Duration::hours(2),
        chrono::Duration::hours(1),
    )
    .unwrap()
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let cost = format!("/v1/tenants/{tenant}/cost?startTime={since}");
    let expected = [
        ("METER_INGESTED_READINGS", 1_000.0),
        ("METER_QUERY_POINTS", 1_000.0),
        ("METER_ALERT_EVALUATIONS", 1_000.0),
        ("METER_API_REQUESTS", 7.0),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let seen = |report: &Value| expected.map(|(meter, _)| (meter, base_units(report, meter)));
    loop {
        let (status, report) = call(Method::GET, cost.clone(), operator, None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        // press-1 is registered: a level, in machine-months, that grows with every flush.
        let machines = report["report"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["meter"] == "METER_MACHINES" && l["quantity"].as_f64().unwrap() > 0.0);
        if seen(&report) == expected && machines {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metered: {:?}, expected {expected:?}",
            seen(&report)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several flushes later, still counted once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, report) = call(Method::GET, cost, operator, None).await;
    assert_eq!(seen(&report), expected, "{report}");
    platform.stop().await;
}
