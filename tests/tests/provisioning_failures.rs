//! A step fails when what it needs is down, and says why. The cold tier is S3 (the test server,
//! reached through a gate the test closes): with it out of reach, the archive step's attempts
//! run out, the run fails, and the tenant is provisioning-failed with the step's reason. Once
//! S3 is back, a retry finishes the run, and the tenant's lifecycle rule is in the bucket. A
//! rollback asked for while S3 is still down waits for it, then leaves no rule behind. On both
//! backends.

use std::time::Duration;

use mfg_common::testing::TestDatabase;
use mfg_storage::telemetry::object_store::{ObjectStore as _, S3Store};
use mfg_tests::{
    Platform,
    gate::{Gate, bucket, s3_server, up_behind},
};
use reqwest::Method;
use serde_json::{Value, json};

/// How long a run may take to reach a state: the S3 client's own retries of a cut connection
/// come on top of the step's.
const WITHIN: Duration = Duration::from_secs(60);

/// Creates a tenant over REST; returns its id.
async fn create_tenant(platform: &Platform, name: &str) -> String {
    let (status, created) = platform
        .call(
            Method::POST,
            "/v1/tenants",
            &platform.operator_token,
            Some(json!({"name": name})),
        )
        .await;
    assert!(status.is_success(), "{status} {created}");
    created["id"].as_str().expect("an id").to_owned()
}

/// The tenant's onboarding run, once it is `state`.
async fn onboarding_run(platform: &Platform, tenant: &Value, state: &str) -> Value {
    let id = tenant["id"].as_str().expect("an id");
    let run = tenant["provisioningRunId"].as_str().expect("a run");
    let path = format!("/v1/tenants/{id}/provisioning-runs/{run}");
    platform.wait_until(&path, "state", state, WITHIN).await
}

/// Asks for `action` (`retry`, `rollback`) on the tenant's onboarding run.
async fn act(platform: &Platform, tenant: &Value, action: &str) {
    let path = format!(
        "/v1/tenants/{}/provisioning-runs/{}:{action}",
        tenant["id"].as_str().expect("an id"),
        tenant["provisioningRunId"].as_str().expect("a run")
    );
    let (status, answer) = platform
        .call(
            Method::POST,
            &path,
            &platform.operator_token,
            Some(json!({})),
        )
        .await;
    assert!(status.is_success(), "{action}: {status} {answer}");
}

/// The ids of the bucket's lifecycle rules.
async fn rule_ids(s3: &S3Store) -> Vec<String> {
    let rules = s3.lifecycle_rules().await.expect("the bucket's rules");
    rules.into_iter().map(|rule| rule.id).collect()
}

async fn archive_step_without_s3(database_url: Option<&str>) {
    let name = format!("onboarding-{}", uuid::Uuid::now_v7());
    let s3 = bucket(&name).await;
    let gate = Gate::to(s3_server()).await;
    let dir = tempfile::tempdir().unwrap();
    let platform = up_behind(dir.path(), database_url, &name, &gate).await;

    gate.close();
    let acme = create_tenant(&platform, "acme").await;
    let globex = create_tenant(&platform, "globex").await;
    let failed = "TENANT_STATE_PROVISIONING_FAILED";
    let mut tenants = Vec::new();
    for id in [&acme, &globex] {
        let path = format!("/v1/tenants/{id}");
        tenants.push(platform.wait_until(&path, "state", failed, WITHIN).await);
    }
    for tenant in &tenants {
        let reason = tenant["provisioningError"].as_str().unwrap_or_default();
        assert!(
            reason.contains("archive") && reason.contains("the cold tier"),
            "the failed step and why: {tenant}"
        );
        let run = onboarding_run(&platform, tenant, "RUN_STATE_FAILED").await;
        let steps = run["steps"].as_array().expect("steps");
        assert_eq!(steps[0]["state"], "STEP_STATE_SUCCEEDED", "{run}");
        assert_eq!(steps[1]["name"], "archive", "{run}");
        assert_eq!(steps[1]["state"], "STEP_STATE_FAILED", "{run}");
        assert_eq!(steps[1]["attempts"], 2, "{run}");
        for later in &steps[2..] {
            assert_eq!(later["state"], "STEP_STATE_PENDING", "{run}");
        }
    }

    // Rolled back while S3 is down, the archive step's undo waits for it.
    let globex_run = &tenants[1];
    act(&platform, globex_run, "rollback").await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let waiting = onboarding_run(&platform, globex_run, "RUN_STATE_ROLLING_BACK").await;
        let error = waiting["steps"][1]["error"].as_str().unwrap_or_default();
        if error.starts_with("undoing: ") && error.contains("the cold tier") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{waiting}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    gate.open();
    act(&platform, &tenants[0], "retry").await;
    let done = onboarding_run(&platform, &tenants[0], "RUN_STATE_SUCCEEDED").await;
    assert_eq!(done["steps"][1]["error"], "", "{done}");
    platform.wait_until_active(&acme).await;
    onboarding_run(&platform, globex_run, "RUN_STATE_ROLLED_BACK").await;
    assert_eq!(
        rule_ids(&s3).await,
        [format!("tenant-{acme}")],
        "the active tenant's rule, none of the rolled-back one's"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_step_without_s3_on_sqlite() {
    archive_step_without_s3(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_step_without_s3_on_postgres() {
    let db = TestDatabase::postgres().await;
    archive_step_without_s3(Some(&db.url)).await;
}
