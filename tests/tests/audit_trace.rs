//! An audit event names the trace of the call it records: a REST call under the caller's
//! `traceparent` is recorded with that trace id, as the span of the service that made the
//! change saw it. One test in its own binary, because the tracer provider is process-wide.

use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_event_names_the_trace_of_its_call() {
    let (_exporter, provider) = mfg_tests::install_in_memory_tracer();
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let created = reqwest::Client::new()
        .post(format!("{}/v1/tenants", platform.base))
        .bearer_auth(&platform.operator_token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("x-request-id", "traced-1")
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let listed = "/v1/audit-events?filter.action=tenant.create";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let event = loop {
        let (status, body) = platform
            .call(Method::GET, listed, &platform.operator_token, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if let Some(event) = body["events"].get(0) {
            break event.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "not relayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(event["traceId"], trace_id, "{event}");
    assert_eq!(event["requestId"], "traced-1", "{event}");
    platform.stop().await;
    provider.shutdown().unwrap();
}
