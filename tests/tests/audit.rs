//! The audit log over REST, on both backends: the provisioning service records its actions
//! (the template changed, runs started, by the operator or by the tenant service's hand-off),
//! and the tenant service its own (tenants, keys, machines), relayed from its outbox, each
//! with who acted (the operator, or a tenant's key through the gateway) and the request id.
//! The operator reads every event, filtered by action; a tenant's admin reads its own, and
//! neither another tenant's nor the platform's.

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

    let runs_and_template = "/v1/audit-events?filter.action=provisioning_run";
    let (status, all) = platform
        .call(Method::GET, runs_and_template, &operator, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        actions(&all),
        [
            "provisioning_run.start",
            "provisioning_run.start",
            "provisioning_run.start",
        ],
        "{all}"
    );
    let newest = &all["events"][0];
    assert_eq!(newest["actor"], "operator", "{newest}");
    assert_eq!(newest["requestId"], "audit-test-1", "{newest}");
    assert_eq!(newest["tenantId"], acme.id.as_str(), "{newest}");
    assert_eq!(newest["service"], "provisioning", "{newest}");
    let (_, all) = platform
        .call(
            Method::GET,
            "/v1/audit-events?filter.action=onboarding_template",
            &operator,
            None,
        )
        .await;
    let template = &all["events"][0];
    assert_eq!(
        (&template["tenantId"], &template["resource"]),
        (&json!(""), &json!("onboarding-template")),
        "{template}"
    );
    let filtered = "/v1/audit-events?filter.action=onboarding_template&pageSize=1";
    let (status, only) = platform.call(Method::GET, filtered, &operator, None).await;
    assert_eq!(status, StatusCode::OK, "{only}");
    assert_eq!(actions(&only), ["onboarding_template.update"], "{only}");

    // The tenant service's actions, relayed: acme's key registers a machine. A tenant's admin
    // reads its own events, and no one else's.
    let machines = format!("/v1/tenants/{}/machines", acme.id);
    let (status, _) = platform
        .call(
            Method::POST,
            &machines,
            &acme.key,
            Some(json!({"machineId": "press-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let own = format!("/v1/tenants/{}/audit-events", acme.id);
    let key_id = &acme.key["mfg_".len().."mfg_".len() + 32];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let press_2 = format!("tenants/{}/machines/press-2", acme.id);
    let (mine, registered) = loop {
        let (status, mine) = platform.call(Method::GET, &own, &acme.key, None).await;
        assert_eq!(status, StatusCode::OK, "{mine}");
        let found = mine["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["resource"] == press_2.as_str())
            .cloned();
        if let Some(registered) = found {
            break (mine, registered);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not relayed: {mine}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(registered["action"], "machine.create", "{registered}");
    assert_eq!(registered["actor"], format!("key:{key_id}"), "{registered}");
    assert_eq!(registered["service"], "tenant", "{registered}");
    for action in ["tenant.create", "machine.create", "api_key.create"] {
        assert!(
            actions(&mine).iter().any(|a| a == action),
            "{action}: {mine}"
        );
    }
    assert!(
        mine["events"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["tenantId"] == acme.id.as_str()),
        "its own only: {mine}"
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
