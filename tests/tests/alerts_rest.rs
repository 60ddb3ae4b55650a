//! Alert rules through the REST gateway of `mfg up` on the embedded default: created from
//! proto3 JSON, read back, changed by the fields a PATCH body sets, refused with the offending
//! fields named, and deleted.

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

    let (status, listed) = call(Method::GET, rules.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["rules"].as_array().unwrap().len(), 1);
    let (status, _) = call(Method::DELETE, one.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(Method::GET, one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    platform.stop().await;
}
