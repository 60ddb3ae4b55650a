//! The audit log over REST, on both backends: the provisioning service records its actions
//! (the template changed, runs started, by the operator or by the tenant service's hand-off),
//! with who acted and the caller's request id. The operator reads every event, filtered by
//! action; a tenant's admin reads its own, and neither another tenant's nor the platform's.

use mfg_common::testing::TestDatabase;
use mfg_tests::Platform;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The actions of a listing's events, newest first.
fn actions(listed: &Value) -> Vec<String> {
    listed["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

async fn audit_log(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), database_url).await;
    let operator = platform.operator_token.clone();
    let (status, _) = platform
        .call(
            Method::PATCH,
            "/v1/onboarding-template",
            &operator,
            Some(json!({"sharedAlertRules": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let acme = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_ADMIN")
        .await;
    let globex = platform
        .rest_tenant(json!({"name": "globex"}), "SCOPE_ADMIN")
        .await;
    let runs = format!("/v1/tenants/{}/provisioning-runs", acme.id);
    let http = reqwest::Client::new();
    let started = http
        .post(format!("{}{runs}", platform.base))
        .bearer_auth(&operator)
        .header("x-request-id", "audit-test-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);

    let (status, all) = platform
        .call(Method::GET, "/v1/audit-events", &operator, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        actions(&all),
        [
            "provisioning_run.start",
            "provisioning_run.start",
            "provisioning_run.start",
            "onboarding_template.update",
        ],
        "{all}"
    );
    let newest = &all["events"][0];
    assert_eq!(newest["actor"], "operator", "{newest}");
    assert_eq!(newest["requestId"], "audit-test-1", "{newest}");
    assert_eq!(newest["tenantId"], acme.id.as_str(), "{newest}");
    assert_eq!(newest["service"], "provisioning", "{newest}");
    let template = &all["events"][3];
    assert_eq!(
        (&template["tenantId"], &template["resource"]),
        (&json!(""), &json!("onboarding-template")),
        "{template}"
    );
    let filtered = "/v1/audit-events?filter.action=onboarding_template&pageSize=1";
    let (status, only) = platform.call(Method::GET, filtered, &operator, None).await;
    assert_eq!(status, StatusCode::OK, "{only}");
    assert_eq!(actions(&only), ["onboarding_template.update"], "{only}");

    // A tenant's admin reads its own events, and no one else's.
    let own = format!("/v1/tenants/{}/audit-events", acme.id);
    let (status, mine) = platform.call(Method::GET, &own, &acme.key, None).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(
        actions(&mine).len(),
        2,
        "its onboarding and the run started: {mine}"
    );
    let (status, _) = platform.call(Method::GET, &own, &globex.key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's");
    let (status, _) = platform
        .call(Method::GET, "/v1/audit-events", &acme.key, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the platform's");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_on_sqlite() {
    audit_log(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_on_postgres() {
    let db = TestDatabase::postgres().await;
    audit_log(Some(&db.url)).await;
}
