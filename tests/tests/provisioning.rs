//! Onboarding over REST, on both backends: creating a tenant hands it to the provisioning
//! service, whose run makes it active, with each step's effect in the storage and cost services;
//! starting it again with the same request id returns the same run; a step whose service is
//! down is retried with backoff until it is back; and a tenant's keys read only their own runs.

use std::time::Duration;

use mfg_common::testing::TestDatabase;
use mfg_tests::{Platform, http_call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(
    platform: &Platform,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    http_call(&http, &platform.base, method, path, Some(token), body).await
}

/// Reads the run until it is in `state`, for at most 20 s.
async fn wait_for(platform: &Platform, tenant: &str, run: &str, state: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/provisioning-runs/{run}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, found) =
            call(platform, Method::GET, &path, &platform.operator_token, None).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        if found["state"] == state {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run is not {state} after 20 s: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The archive's lifecycle rules, as the local archive keeps them.
fn lifecycle_rules(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("archive/.lifecycle.json")).unwrap_or_default()
}

async fn onboarding(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), database_url).await;
    let operator = platform.operator_token.clone();
    // `rest_tenant` waits for the tenant to be active: its onboarding ran by itself.
    let acme = platform
        .rest_tenant(
            json!({"name": "acme", "monthlyBudgetUsd": 1200}),
            "SCOPE_ADMIN",
        )
        .await;
    let tenant_path = format!("/v1/tenants/{}", acme.id);
    let (_, tenant) = call(&platform, Method::GET, &tenant_path, &operator, None).await;
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
    assert_eq!(names, ["storage_namespace", "budget"]);
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
    let budget_path = format!("/v1/tenants/{}/budget", acme.id);
    let (status, budget) = call(&platform, Method::GET, &budget_path, &operator, None).await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    assert_eq!(budget["monthlyLimitUsd"], 1200.0, "{budget}");
    assert_eq!(
        budget["alertThresholds"],
        json!([0.5, 0.8, 1.0]),
        "{budget}"
    );

    // The same request id: the same run, not a second one.
    let body = json!({"requestId": format!("onboard/{}", acme.id)});
    let (status, again) = call(&platform, Method::POST, &start, &operator, Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["runId"], run_id.as_str());
    let (_, listed) = call(&platform, Method::GET, &start, &operator, None).await;
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");

    // Only a failed run is retried or rolled back.
    let retry = format!("{start}/{run_id}:retry");
    let (status, refused) = call(&platform, Method::POST, &retry, &operator, Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("succeeded"),
        "{refused}"
    );
    let rollback = format!("{start}/{run_id}:rollback");
    let (status, _) = call(
        &platform,
        Method::POST,
        &rollback,
        &operator,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A tenant's admin key reads its runs; it may not start one, nor see another tenant's.
    let (status, own) = call(&platform, Method::GET, &start, &acme.key, None).await;
    assert_eq!(
        (status, own["runs"][0]["runId"].clone()),
        (StatusCode::OK, json!(run_id))
    );
    let (status, _) = call(&platform, Method::POST, &start, &acme.key, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = platform
        .rest_tenant(json!({"name": "other"}), "SCOPE_ADMIN")
        .await;
    let (status, _) = call(&platform, Method::GET, &start, &other.key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = format!("/v1/tenants/{}/provisioning-runs", uuid::Uuid::now_v7());
    let (status, _) = call(
        &platform,
        Method::POST,
        &missing,
        &operator,
        Some(json!({})),
    )
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
    let (status, run) = call(&platform, Method::POST, &start, &operator, Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["runId"].as_str().expect("a run id").to_owned();
    let path = format!("{start}/{run_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed_once = loop {
        let (_, found) = call(&platform, Method::GET, &path, &operator, None).await;
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
