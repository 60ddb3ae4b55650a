//! Onboarding over REST, on both backends: creating a tenant hands it to the provisioning
//! service, whose run makes it active, with each step's effect in the storage and cost services
//! (the template's alert rules for its plan, checked when the operator set them);
//! starting it again with the same request id returns the same run; a change of the tenant's
//! budget or retention is applied again by a reconcile run; a step whose service is down is
//! retried with backoff until it is back; and a tenant's keys read only their own runs.

use std::time::Duration;

use mfg_common::testing::TestDatabase;
use mfg_tests::Platform;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Reads the run until it is in `state`, for at most 20 s.
async fn wait_for(platform: &Platform, tenant: &str, run: &str, state: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/provisioning-runs/{run}");
    platform
        .wait_until(&path, "state", state, Duration::from_secs(20))
        .await
}

/// The archive's lifecycle rules, as the local archive keeps them.
fn lifecycle_rules(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("archive/.lifecycle.json")).unwrap_or_default()
}

/// The operator sets the template's rules: refused, naming the field, while a rule is
/// invalid; then a no-data rule for the shared plan, none for the dedicated one.
async fn set_template(platform: &Platform) -> Value {
    let operator = &platform.operator_token;
    let silent = |metric: &str| {
        json!({
            "displayName": "Machine silent",
            "metric": metric,
            "severity": "SEVERITY_MAJOR",
            "condition": {"noData": {"duration": "300s"}},
        })
    };
    let path = "/v1/onboarding-template";
    let (status, empty) = platform.call(Method::GET, path, operator, None).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(empty["sharedAlertRules"], json!([]), "{empty}");
    assert!(empty.get("updateTime").is_none(), "never set: {empty}");
    let bad = json!({"sharedAlertRules": [silent("temperature_c"), silent("")]});
    let (status, refused) = platform
        .call(Method::PATCH, path, operator, Some(bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["details"][0]["fieldViolations"][0]["field"],
        "template.shared_alert_rules[1].metric",
        "{refused}"
    );
    let good = json!({"sharedAlertRules": [silent("temperature_c")]});
    let (status, set) = platform
        .call(Method::PATCH, path, operator, Some(good))
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["sharedAlertRules"][0]["metric"], "temperature_c");
    assert!(set["updateTime"].is_string(), "{set}");
    set
}

/// A change of an onboarded tenant's budget and retention starts a reconcile run, which
/// applies both again: the budget's limit in the cost service, the lifecycle rule in the
/// archive. A change of neither starts none.
async fn reconcile(platform: &Platform, tenant: &str, dir: &std::path::Path) {
    let operator = &platform.operator_token;
    let tenant_path = format!("/v1/tenants/{tenant}");
    let runs_path = format!("/v1/tenants/{tenant}/provisioning-runs");
    let renamed = json!({"displayName": "ACME Stamping"});
    let (status, _) = platform
        .call(Method::PATCH, &tenant_path, operator, Some(renamed))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = platform.call(Method::GET, &runs_path, operator, None).await;
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");

    let change = json!({"monthlyBudgetUsd": 1500, "retention": {"coldDays": 1000}});
    let (status, changed) = platform
        .call(Method::PATCH, &tenant_path, operator, Some(change))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let run = loop {
        let (_, listed) = platform.call(Method::GET, &runs_path, operator, None).await;
        let newest = listed["runs"][0].clone();
        if newest["kind"] == "RUN_KIND_RECONCILE" {
            break newest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconcile run: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let run_id = run["runId"].as_str().expect("a run id");
    let done = wait_for(platform, tenant, run_id, "RUN_STATE_SUCCEEDED").await;
    let names: Vec<&str> = done["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["storage_namespace", "archive", "budget"]);

    let budget_path = format!("/v1/tenants/{tenant}/budget");
    let (_, budget) = platform
        .call(Method::GET, &budget_path, operator, None)
        .await;
    assert_eq!(budget["monthlyLimitUsd"], 1500.0, "{budget}");
    let rules: Value = serde_json::from_str(&lifecycle_rules(dir)).expect("lifecycle rules");
    let rule = rules
        .as_array()
        .into_iter()
        .flatten()
        .find(|rule| rule["id"] == format!("tenant-{tenant}"))
        .expect("the tenant's lifecycle rule");
    // Objects reach the archive after the 30 hot days: they expire 970 days later.
    assert_eq!(rule["expire_after_days"], 1000 - 30, "{rule}");
    let (_, tenant) = platform
        .call(Method::GET, &tenant_path, operator, None)
        .await;
    assert_eq!(tenant["state"], "TENANT_STATE_ACTIVE", "{tenant}");
    let rollback = format!("{runs_path}/{run_id}:rollback");
    let (status, refused) = platform
        .call(Method::POST, &rollback, operator, Some(json!({})))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "never rolled back: {refused}"
    );
}

/// The onboarding's admin key is listed as claimable; the operator claims its secret once, and
/// it works; the tenant's own admin key cannot claim it.
async fn first_api_key(platform: &Platform, acme: &mfg_tests::RestTenant) {
    let operator = &platform.operator_token;
    let keys_path = format!("/v1/tenants/{}/api-keys", acme.id);
    let (_, keys) = platform.call(Method::GET, &keys_path, operator, None).await;
    let first = keys["apiKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["secretClaimable"] == true)
        .unwrap_or_else(|| panic!("a claimable key: {keys}"));
    assert_eq!(first["displayName"], "First admin key", "{first}");
    assert_eq!(first["scopes"], json!(["SCOPE_ADMIN"]), "{first}");
    let claim = format!(
        "{keys_path}/{}:claimSecret",
        first["keyId"].as_str().unwrap()
    );
    let (status, _) = platform
        .call(Method::POST, &claim, &acme.key, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the operator's alone");
    let (status, claimed) = platform
        .call(Method::POST, &claim, operator, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    let secret = claimed["secret"].as_str().expect("the secret");
    let tenant_path = format!("/v1/tenants/{}", acme.id);
    let (status, _) = platform.call(Method::GET, &tenant_path, secret, None).await;
    assert_eq!(status, StatusCode::OK, "the claimed secret authenticates");
    let (status, again) = platform
        .call(Method::POST, &claim, operator, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "claimed once: {again}");
}

async fn onboarding(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), database_url).await;
    let operator = platform.operator_token.clone();
    set_template(&platform).await;
    // `rest_tenant` waits for the tenant to be active: its onboarding ran by itself.
    let acme = platform
        .rest_tenant(
            json!({"name": "acme", "monthlyBudgetUsd": 1200}),
            "SCOPE_ADMIN",
        )
        .await;
    let tenant_path = format!("/v1/tenants/{}", acme.id);
    let (_, tenant) = platform
        .call(Method::GET, &tenant_path, &operator, None)
        .await;
    assert_eq!(tenant["state"], "TENANT_STATE_ACTIVE", "{tenant}");
    assert_eq!(tenant["provisioningError"], "", "{tenant}");
    let run_id = tenant["provisioningRunId"]
        .as_str()
        .expect("a run")
        .to_owned();

    let start = format!("/v1/tenants/{}/provisioning-runs", acme.id);
    let done = wait_for(&platform, &acme.id, &run_id, "RUN_STATE_SUCCEEDED").await;
    assert_eq!(done["requestId"], format!("onboard/{}", acme.id));
    let steps = done["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "storage_namespace",
            "archive",
            "default_alert_rules",
            "first_api_key",
            "budget"
        ]
    );
    for step in steps {
        assert_eq!(step["state"], "STEP_STATE_SUCCEEDED", "{step}");
        assert_eq!(step["attempts"], 1, "{step}");
        assert!(
            step["startTime"].is_string() && step["endTime"].is_string(),
            "{step}"
        );
    }

    // Each step's effect is in its service.
    assert!(
        lifecycle_rules(dir.path()).contains(&format!("tenant-{}", acme.id)),
        "the tenant's archive lifecycle rule"
    );
    let rules_path = format!("/v1/tenants/{}/alert-rules", acme.id);
    let (status, rules) = platform
        .call(Method::GET, &rules_path, &acme.key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    let rules = rules["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["displayName"], "Machine silent");
    assert_eq!(rules[0]["condition"]["noData"]["duration"], "300s");
    let template = "/v1/onboarding-template";
    let (status, _) = platform.call(Method::GET, template, &acme.key, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the template is the operator's"
    );
    first_api_key(&platform, &acme).await;
    let budget_path = format!("/v1/tenants/{}/budget", acme.id);
    let (status, budget) = platform
        .call(Method::GET, &budget_path, &operator, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    assert_eq!(budget["monthlyLimitUsd"], 1200.0, "{budget}");
    assert_eq!(
        budget["alertThresholds"],
        json!([0.5, 0.8, 1.0]),
        "{budget}"
    );

    reconcile(&platform, &acme.id, dir.path()).await;

    // The same request id: the same run, not a second one.
    let body = json!({"requestId": format!("onboard/{}", acme.id)});
    let (status, again) = platform
        .call(Method::POST, &start, &operator, Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["runId"], run_id.as_str());
    let (_, listed) = platform.call(Method::GET, &start, &operator, None).await;
    let kinds: Vec<&str> = listed["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|run| run["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["RUN_KIND_RECONCILE", "RUN_KIND_ONBOARD"],
        "{listed}"
    );

    // Only a failed run is retried or rolled back.
    let retry = format!("{start}/{run_id}:retry");
    let (status, refused) = platform
        .call(Method::POST, &retry, &operator, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("succeeded"),
        "{refused}"
    );
    let rollback = format!("{start}/{run_id}:rollback");
    let (status, _) = platform
        .call(Method::POST, &rollback, &operator, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A tenant's admin key reads its runs; it may not start one, nor see another tenant's.
    let (status, own) = platform.call(Method::GET, &start, &acme.key, None).await;
    assert_eq!(
        (status, own["runs"][1]["runId"].clone()),
        (StatusCode::OK, json!(run_id)),
        "the onboarding, after the reconcile"
    );
    let (status, _) = platform
        .call(Method::POST, &start, &acme.key, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = platform
        .rest_tenant(json!({"name": "other"}), "SCOPE_ADMIN")
        .await;
    let (status, _) = platform.call(Method::GET, &start, &other.key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = format!("/v1/tenants/{}/provisioning-runs", uuid::Uuid::now_v7());
    let (status, _) = platform
        .call(Method::POST, &missing, &operator, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    platform.stop().await;
}

#[tokio::test]
async fn onboarding_on_sqlite() {
    onboarding(None).await;
}

#[tokio::test]
async fn onboarding_on_postgres() {
    let db = TestDatabase::postgres().await;
    onboarding(Some(&db.url)).await;
}

/// With the storage service down, the first step fails as retryable and waits its backoff; once
/// storage is back, the run goes on and succeeds, the step's attempts counted.
#[tokio::test]
async fn a_step_is_retried_until_its_service_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = Platform::up(dir.path(), None).await;
    let operator = platform.operator_token.clone();
    let acme = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_ADMIN")
        .await;
    platform.parts().stop_storage().await;

    let start = format!("/v1/tenants/{}/provisioning-runs", acme.id);
    let (status, run) = platform
        .call(Method::POST, &start, &operator, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["runId"].as_str().expect("a run id").to_owned();
    let path = format!("{start}/{run_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed_once = loop {
        let (_, found) = platform.call(Method::GET, &path, &operator, None).await;
        if found["steps"][0]["attempts"].as_u64() >= Some(2) {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retry: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed_once["state"], "RUN_STATE_RUNNING", "{failed_once}");
    let error = failed_once["steps"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("the storage service answered Unavailable"),
        "{failed_once}"
    );

    platform
        .parts()
        .restart_storage()
        .await
        .expect("storage restarted");
    let done = wait_for(&platform, &acme.id, &run_id, "RUN_STATE_SUCCEEDED").await;
    let first = &done["steps"][0];
    assert!(first["attempts"].as_u64() >= Some(2), "{first}");
    assert_eq!(first["error"], "", "cleared on success: {first}");
    platform.stop().await;
}
