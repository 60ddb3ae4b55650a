//! An operator sees the platform work in Prometheus metrics at `--metrics-addr`: ingest by
//! outcome and rejection reason, ack latency, open streams, alert subscribers, tiering runs and
//! the database pools; with labels of bounded values only (no tenant or machine ids).

use mfg_tests::{Platform, RestTenant, http_call, up_args};
use reqwest::Method;
use serde_json::json;

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
}

#[tokio::test]
async fn the_platform_reports_what_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = up_args(dir.path(), None, false);
    args.server.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let platform = Platform::up_with(args).await;
    let metrics_url = format!("http://{}/metrics", platform.addresses.metrics.unwrap());
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());
    let RestTenant { id: tenant_id, key } = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_ADMIN")
        .await;
    let ts = chrono::Utc::now().to_rfc3339();
    let (status, body) = http_call(
        &http,
        base,
        Method::POST,
        &format!("/v1/tenants/{tenant_id}/telemetry"),
        Some(&key),
        Some(json!({"readings": [
            {"machineId": "press-1", "metric": "temp", "ts": ts, "value": 1.0},
            {"machineId": "press-9", "metric": "temp", "ts": ts, "value": 1.0},
        ]})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let events = http
        .get(format!("{base}/v1/tenants/{tenant_id}/alert-events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let (_, job) = http_call(
        &http,
        base,
        Method::POST,
        "/v1/maintenance/tiering",
        operator,
        Some(json!({})),
    )
    .await;
    let (_, job) = http_call(
        &http,
        base,
        Method::GET,
        &format!(
            "/v1/maintenance/tiering/{}?wait=20s",
            job["jobId"].as_str().unwrap()
        ),
        operator,
        None,
    )
    .await;
    assert_eq!(job["state"], "TIERING_JOB_STATE_SUCCEEDED", "{job}");

    let response = http.get(&metrics_url).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let metrics = response.text().await.unwrap();
    assert_eq!(
        value(
            &metrics,
            r#"mfg_storage_readings_total{outcome="accepted"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            r#"mfg_storage_readings_rejected_total{reason="unknown_machine"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            r#"mfg_storage_batches_total{via="unary",result="acked"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&metrics, "mfg_storage_ack_latency_seconds_count"),
        1.0
    );
    assert_eq!(value(&metrics, "mfg_storage_open_streams"), 0.0);
    assert_eq!(value(&metrics, "mfg_storage_alert_subscribers"), 1.0);
    assert_eq!(
        value(&metrics, r#"mfg_storage_tiering_runs_total{outcome="ok"}"#),
        1.0
    );
    assert!(value(&metrics, r#"mfg_storage_db_pool_connections{state="max"}"#) > 0.0);
    assert!(value(&metrics, r#"mfg_tenant_db_pool_connections{state="max"}"#) > 0.0);
    value(&metrics, "mfg_storage_alert_events_published_total");
    assert!(
        value(
            &metrics,
            r#"mfg_gateway_http_requests_total{method="POST",route="/v1/tenants/{tenant_id}/telemetry",status="2xx"}"#
        ) >= 1.0
    );
    assert!(!metrics.contains(&tenant_id), "no tenant ids in labels");
    assert!(!metrics.contains("press-"), "no machine ids in labels");
    drop(events);
    platform.stop().await;
}
