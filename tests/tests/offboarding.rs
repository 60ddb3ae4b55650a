//! Offboarding over REST, on both backends. `DELETE /v1/tenants/{id}` stops the tenant's keys
//! at once and hands it to the provisioning service, whose offboarding run exports its data,
//! waits out the grace period (unless `force`), then deletes it in every service: its alert
//! rules, its budget and usage; its archive is kept, its export manifest beside it, unless the
//! operator asks to purge it too. Without `force`, the run waits, saying until when.

use std::{path::Path, time::Duration};

use mfg_common::testing::TestDatabase;
use mfg_tests::{Platform, RestTenant};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Long enough for an export and the calls of a deletion.
const WITHIN: Duration = Duration::from_secs(30);

/// The operator's template: a no-data rule for every tenant of the shared plan.
async fn set_template(platform: &Platform) {
    let rule = json!({
        "displayName": "Machine silent",
        "metric": "temp",
        "severity": "SEVERITY_MAJOR",
        "condition": {"noData": {"duration": "300s"}},
    });
    let (status, set) = platform
        .call(
            Method::PATCH,
            "/v1/onboarding-template",
            &platform.operator_token,
            Some(json!({"sharedAlertRules": [rule]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
}

/// A tenant with a minute of readings from an hour ago.
async fn tenant_with_readings(platform: &Platform, name: &str) -> RestTenant {
    let tenant = platform
        .rest_tenant(json!({"name": name}), "SCOPE_ADMIN")
        .await;
    let start = (chrono::Utc::now().timestamp() - 3_600) / 60 * 60;
    let readings: Vec<Value> = (0..60)
        .map(|s| {
            let ts = chrono::DateTime::from_timestamp(start + s, 0).unwrap();
            json!({"machineId": "press-1", "metric": "temp", "ts": ts.to_rfc3339(), "value": 1.0})
        })
        .collect();
    let path = format!("/v1/tenants/{}/telemetry", tenant.id);
    let (status, body) = platform
        .call(
            Method::POST,
            &path,
            &tenant.key,
            Some(json!({"readings": readings})),
        )
        .await;
    assert_eq!(
        (status, &body["accepted"]),
        (StatusCode::OK, &json!(60)),
        "{body}"
    );
    tenant
}

/// Deletes the tenant with the query's options; its offboarding run, once it has one.
async fn delete(platform: &Platform, tenant: &RestTenant, query: &str) -> Value {
    let path = format!("/v1/tenants/{}{query}", tenant.id);
    let operator = &platform.operator_token;
    let (status, deleted) = platform.call(Method::DELETE, &path, operator, None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["state"], "TENANT_STATE_DELETED", "{deleted}");
    // Stopped at once: the gateway's cache of a key's answer lasts at most a second.
    let tenant_path = format!("/v1/tenants/{}", tenant.id);
    let stopped = tokio::time::Instant::now() + Duration::from_secs(2);
    while platform
        .call(Method::GET, &tenant_path, &tenant.key, None)
        .await
        .0
        != StatusCode::UNAUTHORIZED
    {
        assert!(tokio::time::Instant::now() < stopped, "the key still works");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs = format!("/v1/tenants/{}/provisioning-runs", tenant.id);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (_, listed) = platform.call(Method::GET, &runs, operator, None).await;
        if listed["runs"][0]["kind"] == "RUN_KIND_OFFBOARD" {
            return listed["runs"][0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no offboarding: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the run to be `state`.
async fn run_in(platform: &Platform, tenant: &RestTenant, run: &Value, state: &str) -> Value {
    let path = format!(
        "/v1/tenants/{}/provisioning-runs/{}",
        tenant.id,
        run["runId"].as_str().expect("a run id")
    );
    platform.wait_until(&path, "state", state, WITHIN).await
}

/// The tenant's prefix in the archive directory of `mfg up`.
fn prefix(dir: &Path, tenant: &RestTenant) -> std::path::PathBuf {
    dir.join(format!("archive/telemetry/v1/tenant={}", tenant.id))
}

/// Every file under a directory (none when it does not exist).
fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_in(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

async fn offboarding(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), database_url).await;
    let operator = platform.operator_token.clone();
    set_template(&platform).await;
    let kept = tenant_with_readings(&platform, "kept").await;
    let purged = tenant_with_readings(&platform, "purged").await;
    let waiting = tenant_with_readings(&platform, "waiting").await;
    let rules = format!("/v1/tenants/{}/alert-rules", kept.id);
    let (_, before) = platform.call(Method::GET, &rules, &operator, None).await;
    assert_eq!(
        before["rules"].as_array().map(Vec::len),
        Some(1),
        "{before}"
    );

    // Forced: exported, then deleted at once; the archive kept with its manifest.
    let run = delete(&platform, &kept, "?force=true").await;
    assert_eq!(run["offboarding"]["force"], true, "{run}");
    let done = run_in(&platform, &kept, &run, "RUN_STATE_SUCCEEDED").await;
    let names: Vec<&str> = done["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["export", "grace_period", "delete_data"], "{done}");
    let manifest = std::fs::read(prefix(dir.path(), &kept).join("export-manifest.json"))
        .expect("the export's manifest");
    let entries: Vec<Value> = serde_json::from_slice(&manifest).unwrap();
    let readings: u64 = entries.iter().filter_map(|e| e["readings"].as_u64()).sum();
    assert_eq!(readings, 60, "{entries:?}");
    let (_, after) = platform.call(Method::GET, &rules, &operator, None).await;
    assert_eq!(after["rules"], json!([]), "the rules are gone: {after}");
    let budget = format!("/v1/tenants/{}/budget", kept.id);
    let (_, budget) = platform.call(Method::GET, &budget, &operator, None).await;
    assert!(
        budget.get("updateTime").is_none(),
        "the budget is gone: {budget}"
    );

    // Forced and purged: nothing of it is left in the archive either.
    let run = delete(&platform, &purged, "?force=true&purgeArchive=true").await;
    run_in(&platform, &purged, &run, "RUN_STATE_SUCCEEDED").await;
    let left = files_in(&prefix(dir.path(), &purged));
    assert_eq!(
        left,
        Vec::<std::path::PathBuf>::new(),
        "the archive is purged"
    );

    // Not forced: exported, then waiting for the grace period, saying until when.
    let run = delete(&platform, &waiting, "").await;
    let path = format!(
        "/v1/tenants/{}/provisioning-runs/{}",
        waiting.id,
        run["runId"].as_str().unwrap()
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    let held = loop {
        let (_, found) = platform.call(Method::GET, &path, &operator, None).await;
        if found["steps"][0]["state"] == "STEP_STATE_SUCCEEDED"
            && found["steps"][1]["error"]
                .as_str()
                .is_some_and(|e| e.contains("kept until"))
        {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(held["state"], "RUN_STATE_RUNNING", "{held}");
    assert_eq!(held["steps"][1]["state"], "STEP_STATE_PENDING", "{held}");
    assert_eq!(held["steps"][1]["attempts"], 0, "{held}");
    assert_eq!(held["steps"][2]["state"], "STEP_STATE_PENDING", "{held}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_on_sqlite() {
    offboarding(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_on_postgres() {
    let db = TestDatabase::postgres().await;
    offboarding(Some(&db.url)).await;
}
