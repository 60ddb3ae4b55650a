//! The audit log over REST, on both backends: the provisioning service records its actions
//! (the template changed, runs started, by the operator or by the tenant service's hand-off),
//! and the tenant, storage and cost services their own (tenants, keys, machines; rules and
//! alerts; budgets and the price book), relayed from their outboxes, each with who acted (the
//! operator, or a tenant's key through the gateway) and the request id.
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

    // The storage and cost services' actions, relayed from their outboxes.
    let actions_by_hand = rules_alerts_and_budgets(&platform, &acme).await;
    let actor = format!("key:{key_id}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, mine) = platform
            .call(Method::GET, &format!("{own}?pageSize=100"), &acme.key, None)
            .await;
        // The key's own: the operator acts too (a budget change reconciles the tenant).
        let by_key = |action: &str, service: &str| {
            mine["events"].as_array().into_iter().flatten().any(|e| {
                e["action"] == action && e["service"] == service && e["actor"] == actor.as_str()
            })
        };
        let missing: Vec<_> = actions_by_hand
            .iter()
            .filter(|(action, service)| !by_key(action, service))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not relayed: {missing:?} in {mine}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let price_book = "/v1/price-book?updateMask=sharedMonthlyUsd";
    let (status, body) = platform
        .call(
            Method::PATCH,
            price_book,
            &operator,
            Some(json!({"sharedMonthlyUsd": 2900})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changes = "/v1/audit-events?filter.action=price_book";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let changed = loop {
        let (_, listed) = platform.call(Method::GET, changes, &operator, None).await;
        if let Some(changed) = listed["events"].get(0) {
            break changed.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "not relayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        (
            &changed["action"],
            &changed["tenantId"],
            &changed["service"]
        ),
        (&json!("price_book.update"), &json!(""), &json!("cost")),
        "{changed}"
    );
    let (status, _) = platform
        .call(Method::GET, "/v1/audit-events", &acme.key, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the platform's");
    platform.stop().await;
}

/// Acme's admin key creates an alert rule, raises its alert with a reading, acknowledges and
/// resolves it, changes and deletes the rule, and changes its budget: the actions, with the
/// service that records each.
async fn rules_alerts_and_budgets(
    platform: &Platform,
    acme: &mfg_tests::RestTenant,
) -> Vec<(&'static str, &'static str)> {
    let tenant = format!("/v1/tenants/{}", acme.id);
    let call = |method: Method, path: String, body: Option<Value>| async move {
        let (status, body) = platform.call(method, &path, &acme.key, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    };
    let rule = call(
        Method::POST,
        format!("{tenant}/alert-rules"),
        Some(json!({
            "metric": "temp",
            "severity": "SEVERITY_MAJOR",
            "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 80.0}},
        })),
    )
    .await;
    let rule = format!("{tenant}/alert-rules/{}", rule["ruleId"].as_str().unwrap());
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc3339();
    let reading = json!({"machineId": "press-2", "metric": "temp", "ts": ts, "value": 85.0});
    call(
        Method::POST,
        format!("{tenant}/telemetry"),
        Some(json!({"readings": [reading]})),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let alert = loop {
        let open = call(Method::GET, format!("{tenant}/alerts?state=open"), None).await;
        if let Some(id) = open["alerts"][0]["alertId"].as_str() {
            break format!("{tenant}/alerts/{id}");
        }
        assert!(tokio::time::Instant::now() < deadline, "no alert: {open}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    call(
        Method::POST,
        format!("{alert}/acknowledge"),
        Some(json!({})),
    )
    .await;
    call(Method::POST, format!("{alert}/resolve"), Some(json!({}))).await;
    call(
        Method::PATCH,
        format!("{rule}?updateMask=disabled"),
        Some(json!({"disabled": true})),
    )
    .await;
    call(Method::DELETE, rule, None).await;
    call(
        Method::PATCH,
        format!("{tenant}/budget?updateMask=monthlyLimitUsd,alertThresholds"),
        Some(json!({"monthlyLimitUsd": 500, "alertThresholds": [0.5, 1.0]})),
    )
    .await;
    vec![
        ("alert_rule.create", "storage"),
        ("alert.acknowledge", "storage"),
        ("alert.resolve", "storage"),
        ("alert_rule.update", "storage"),
        ("alert_rule.delete", "storage"),
        ("budget.update", "cost"),
        ("tenant.update", "tenant"),
    ]
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
