//! Alert rules and alerts (of machines and of budgets) through the REST gateway of `mfg up` on
//! the embedded default. Rules are created from proto3 JSON, read back, changed by the fields a
//! PATCH body sets, refused with the offending fields named, and deleted; alerts are listed,
//! acknowledged and streamed as Server-Sent Events.

use mfg_tests::{Platform, http_call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn alert_rules_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());
    let call = |method: Method, path: String, body: Option<Value>| {
        let http = http.clone();
        async move { http_call(&http, base, method, &path, operator, body).await }
    };

    let (_, tenant) = call(
        Method::POST,
        "/v1/tenants".to_owned(),
        Some(json!({"name": "acme"})),
    )
    .await;
    platform
        .wait_until_active(tenant["id"].as_str().unwrap())
        .await;
    let rules = format!("/v1/tenants/{}/alert-rules", tenant["id"].as_str().unwrap());
    let rule = json!({
        "displayName": "Spindle too hot",
        "metric": "spindle_temp_c",
        "selector": {"labels": {"line": "a"}},
        "severity": "SEVERITY_CRITICAL",
        "condition": {"anyOf": {"conditions": [
            {"threshold": {"comparison": "COMPARISON_GREATER", "value": 80.0,
                           "forDuration": "30s", "clearValue": 75.0}},
            {"noData": {"duration": "120s"}},
        ]}},
    });
    let (status, created) = call(Method::POST, rules.clone(), Some(rule.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["condition"], rule["condition"]);
    assert_eq!(created["selector"]["labels"], rule["selector"]["labels"]);
    let one = format!("{rules}/{}", created["ruleId"].as_str().unwrap());
    let (status, fetched) = call(Method::GET, one.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, patched) = call(
        Method::PATCH,
        one.clone(),
        Some(json!({"disabled": true, "severity": "SEVERITY_MINOR"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["disabled"], true);
    assert_eq!(patched["severity"], "SEVERITY_MINOR");
    assert_eq!(patched["condition"], rule["condition"], "not in the body");
    // A nested body implies nested paths (`condition.threshold.value`); a condition changes
    // whole.
    let condition = json!({"threshold": {"comparison": "COMPARISON_LESS", "value": 5}});
    let (status, patched) = call(
        Method::PATCH,
        one.clone(),
        Some(json!({"condition": condition})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["condition"]["threshold"]["comparison"],
        "COMPARISON_LESS"
    );
    assert_eq!(patched["condition"]["threshold"]["value"], 5.0);
    assert_eq!(patched["severity"], "SEVERITY_MINOR", "not in the body");

    let bad = json!({
        "metric": "spindle_temp_c",
        "severity": "SEVERITY_MAJOR",
        "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 80,
                                    "clearValue": 90}},
    });
    let (status, body) = call(Method::POST, rules.clone(), Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"],
        "rule.condition.threshold.clear_value"
    );
    // A JSON type error is named by its field too, as gRPC's validation names it.
    let unknown_enum = json!({
        "metric": "spindle_temp_c",
        "condition": {"threshold": {"comparison": "COMPARISON_HOTTER", "value": 80}},
    });
    let (status, body) = call(Method::POST, rules.clone(), Some(unknown_enum)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let violation = &body["details"][0]["fieldViolations"][0];
    assert_eq!(
        violation["field"], "rule.condition.threshold.comparison",
        "{body}"
    );
    assert!(
        violation["description"]
            .as_str()
            .unwrap()
            .contains("COMPARISON_GREATER"),
        "{body}"
    );
    assert!(
        !body["message"].as_str().unwrap().contains("line 1"),
        "{body}"
    );

    let (status, listed) = call(Method::GET, rules.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["rules"].as_array().unwrap().len(), 1);
    let (status, _) = call(Method::DELETE, one.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(Method::GET, one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    platform.stop().await;
}

/// One Server-Sent Event.
#[derive(Debug, Default)]
struct SseEvent {
    id: String,
    event: String,
    data: Value,
}

/// Reads Server-Sent Events from a streaming response.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(
        http: &reqwest::Client,
        url: String,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut request = http.get(url).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        event.id = id.to_owned();
                    } else if let Some(name) = line.strip_prefix("event: ") {
                        event.event = name.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(data).unwrap();
                    }
                }
                if !event.event.is_empty() {
                    return event;
                }
                continue;
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.response.chunk())
                    .await
                    .expect("an event within 20 s")
                    .unwrap()
                    .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn alerts_are_listed_acknowledged_and_streamed_as_server_sent_events() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());
    let call = |method: Method, path: String, token: Option<String>, body: Option<Value>| {
        let http = http.clone();
        let token = token.or_else(|| operator.map(str::to_owned));
        async move { http_call(&http, base, method, &path, token.as_deref(), body).await }
    };
    let (_, tenant) = call(
        Method::POST,
        "/v1/tenants".to_owned(),
        None,
        Some(json!({"name": "acme"})),
    )
    .await;
    platform
        .wait_until_active(tenant["id"].as_str().unwrap())
        .await;
    let tenant = format!("/v1/tenants/{}", tenant["id"].as_str().unwrap());
    call(
        Method::POST,
        format!("{tenant}/machines"),
        None,
        Some(json!({"machineId": "press-1"})),
    )
    .await;
    let key = |scope: &'static str| {
        let call = &call;
        let path = format!("{tenant}/api-keys");
        async move {
            let (_, key) = call(Method::POST, path, None, Some(json!({"scopes": [scope]}))).await;
            (
                key["apiKey"]["keyId"].as_str().unwrap().to_owned(),
                key["secret"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (writer_id, writer) = key("SCOPE_WRITE").await;
    let (_, reader) = key("SCOPE_READ").await;
    let (status, _) = call(
        Method::POST,
        format!("{tenant}/alert-rules"),
        None,
        Some(json!({
            "metric": "temp",
            "severity": "SEVERITY_CRITICAL",
            "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 80.0}},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let events_url = format!("{base}{tenant}/alert-events");
    let mut events = SseReader::open(&http, events_url.clone(), &reader, None).await;
    let now = chrono::Utc::now().timestamp() - 60;
    let ingest = |s: i64, value: f64| {
        let ts = chrono::DateTime::from_timestamp(now + s, 0)
            .unwrap()
            .to_rfc3339();
        call(
            Method::POST,
            format!("{tenant}/telemetry"),
            Some(writer.clone()),
            Some(
                json!({"readings": [{"machineId": "press-1", "metric": "temp", "ts": ts, "value": value}]}),
            ),
        )
    };
    let (status, body) = ingest(0, 85.0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let opened = events.next().await;
    assert_eq!(opened.event, "opened");
    assert_eq!(opened.id, opened.data["cursor"].as_str().unwrap());
    assert_eq!(opened.data["alert"]["triggerValue"], 85.0);
    assert_eq!(opened.data["alert"]["severity"], "SEVERITY_CRITICAL");
    let alert_id = opened.data["alert"]["alertId"].as_str().unwrap().to_owned();

    let (status, listed) = call(
        Method::GET,
        format!("{tenant}/alerts?state=open"),
        Some(reader.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["alerts"][0]["alertId"], alert_id.as_str());
    let (status, acked) = call(
        Method::POST,
        format!("{tenant}/alerts/{alert_id}/acknowledge"),
        Some(writer.clone()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["state"], "ALERT_STATE_ACKNOWLEDGED");
    assert_eq!(acked["acknowledgedBy"], format!("key:{writer_id}"));
    let acknowledged = events.next().await;
    assert_eq!(acknowledged.event, "acknowledged");
    let (status, _) = call(
        Method::POST,
        format!("{tenant}/alerts/{alert_id}/resolve"),
        Some(reader.clone()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read key only reads");

    // Disconnected, the subscriber misses the resolve; with Last-Event-ID it gets it first.
    drop(events);
    ingest(1, 70.0).await;
    let mut resumed = SseReader::open(&http, events_url, &reader, Some(&acknowledged.id)).await;
    let resolved = resumed.next().await;
    assert_eq!(resolved.event, "resolved");
    assert_eq!(resolved.data["alert"]["alertId"], alert_id.as_str());
    assert_eq!(resolved.data["alert"]["resolvedBy"], "system");
    let (status, one) = call(
        Method::GET,
        format!("{tenant}/alerts/{alert_id}"),
        Some(reader.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["state"], "ALERT_STATE_RESOLVED");

    // A Last-Event-ID no event has had is refused, not silently waited on.
    let beyond = resolved.id.parse::<u64>().unwrap() + 1_000_000;
    let response = http
        .get(format!("{base}{tenant}/alert-events"))
        .bearer_auth(&reader)
        .header("last-event-id", beyond.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 11, "OUT_OF_RANGE: {body}");

    // One key holds at most 32 event streams (--alert-subscribers-per-key).
    let mut held = vec![resumed];
    for _ in 1..32 {
        held.push(
            SseReader::open(&http, format!("{base}{tenant}/alert-events"), &reader, None).await,
        );
    }
    let response = http
        .get(format!("{base}{tenant}/alert-events"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(held);
    platform.stop().await;
}

/// A tenant's budget alerts reach its Server-Sent Events subscribers like its machines' alerts,
/// say what was crossed, and are acknowledged over REST.
#[tokio::test]
async fn budget_alerts_are_streamed_and_acknowledged_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = mfg_tests::up_args(dir.path(), None, false);
    args.budget.check_interval = std::time::Duration::from_millis(100);
    let platform = Platform::up_with(args).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());
    let (_, tenant) = http_call(
        &http,
        base,
        Method::POST,
        "/v1/tenants",
        operator,
        Some(json!({"name": "acme", "monthlyBudgetUsd": 100.0})),
    )
    .await;
    platform
        .wait_until_active(tenant["id"].as_str().unwrap())
        .await;
    let tenant = format!("/v1/tenants/{}", tenant["id"].as_str().unwrap());
    let (_, key) = http_call(
        &http,
        base,
        Method::POST,
        &format!("{tenant}/api-keys"),
        operator,
        Some(json!({"scopes": ["SCOPE_WRITE"]})),
    )
    .await;
    let key = key["secret"].as_str().unwrap().to_owned();
    let mut events =
        SseReader::open(&http, format!("{base}{tenant}/alert-events"), &key, None).await;

    // Shared costs of a billion dollars a month: the tenant's share crosses its budget at once.
    let (status, body) = http_call(
        &http,
        base,
        Method::PATCH,
        "/v1/price-book?updateMask=sharedMonthlyUsd",
        operator,
        Some(json!({"sharedMonthlyUsd": 1e9})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let limit = loop {
        let event = events.next().await;
        assert_eq!(event.event, "opened", "{event:?}");
        let alert = &event.data["alert"];
        assert_eq!(alert["source"], "ALERT_SOURCE_BUDGET", "{alert}");
        assert_eq!(alert["metric"], "cost_usd");
        assert_eq!(alert["budget"]["month"], month.as_str());
        assert_eq!(alert["budget"]["limitUsd"], 100.0);
        if alert["budget"]["basis"] == "BUDGET_BASIS_ACTUAL" && alert["budget"]["threshold"] == 1.0
        {
            assert_eq!(alert["severity"], "SEVERITY_MAJOR");
            assert!(
                alert["budget"]["costUsd"].as_f64().unwrap() >= 100.0,
                "{alert}"
            );
            break alert["alertId"].as_str().unwrap().to_owned();
        }
    };
    let (status, acked) = http_call(
        &http,
        base,
        Method::POST,
        &format!("{tenant}/alerts/{limit}/acknowledge"),
        Some(&key),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["state"], "ALERT_STATE_ACKNOWLEDGED");
    platform.stop().await;
}
