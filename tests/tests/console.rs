//! The console in a real browser (headless Chromium driven by `tests/console/*.cjs`, from
//! `scripts/test.sh`'s MFG_TEST_BROWSER and MFG_TEST_NODE_PATH): signing in with the operator
//! token and with a tenant's API key, each seeing what it may and no more, with no error in the
//! browser's console. Screenshots of the pages go to `target/console-screenshots`.

use std::path::PathBuf;

use mfg_tests::Platform;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Runs a browser scenario with `given`; its report.
fn run_scenario(script: &str, given: &Value) -> Value {
    let browser = std::env::var("MFG_TEST_BROWSER").unwrap_or_else(|_| {
        panic!("this test needs Chromium and playwright-core: run `scripts/test.sh`")
    });
    let node_path = std::env::var("MFG_TEST_NODE_PATH").expect("MFG_TEST_NODE_PATH");
    let mut given = given.clone();
    given["browser"] = json!(browser);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("console")
        .join(script);
    let output = std::process::Command::new("node")
        .arg(script)
        .arg(given.to_string())
        .env("NODE_PATH", node_path)
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "the browser scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_signs_in_and_sees_what_it_may() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let acme = platform
        .rest_tenant(
            json!({"name": "acme", "displayName": "Acme <b>Works</b>"}),
            "SCOPE_READ",
        )
        .await;
    let globex = platform
        .rest_tenant(json!({"name": "globex"}), "SCOPE_READ")
        .await;
    let operator = platform.operator_token.clone();
    let machines = format!("/v1/tenants/{}/machines", acme.id);
    let (status, _) = platform
        .call(
            Method::POST,
            &machines,
            &operator,
            Some(json!({"machineId": "press-2", "displayName": "<img src=x>"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let now = chrono::Utc::now().to_rfc3339();
    let reading = json!({"machineId": "press-1", "metric": "temp", "ts": now, "value": 71.5});
    let telemetry = format!("/v1/tenants/{}/telemetry", acme.id);
    let body = json!({"readings": [reading]});
    let (status, sent) = platform
        .call(Method::POST, &telemetry, &operator, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let every = format!("/v1/tenants/{}/latest", acme.id);
    let (status, latest) = platform.call(Method::GET, &every, &acme.key, None).await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["machines"][0]["machineId"], "press-1", "{latest}");
    assert_eq!(
        latest["machines"][0]["values"][0]["value"], 71.5,
        "{latest}"
    );
    assert_eq!(
        latest["machines"].as_array().map(Vec::len),
        Some(1),
        "{latest}"
    );
    let other = format!("/v1/tenants/{}/latest", globex.id);
    let (status, _) = platform.call(Method::GET, &other, &acme.key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's");
    let (status, caller) = platform
        .call(Method::GET, "/v1/caller", &acme.key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{caller}");
    assert_eq!(caller["tenantId"], acme.id.as_str(), "{caller}");
    assert_eq!(caller["scopes"], json!(["SCOPE_READ"]), "{caller}");

    let page = reqwest::get(format!("{}/", platform.base)).await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");

    let given = json!({
        "base": platform.base,
        "operator": operator,
        "key": acme.key,
        "tenantName": "Acme <b>Works</b>",
        "otherTenant": globex.id,
        "shots": screenshots(),
    });
    let report = tokio::task::spawn_blocking(move || run_scenario("signin.cjs", &given))
        .await
        .unwrap();
    platform.stop().await;

    assert!(
        report["refused"].as_str().unwrap().contains("not valid"),
        "{report}"
    );
    let tenants = report["operatorTenants"].as_array().unwrap();
    assert!(
        tenants.contains(&json!("Acme <b>Works</b>")) && tenants.contains(&json!("globex")),
        "every tenant, its name as text: {report}"
    );
    assert_eq!(report["machinesOnline"], "1 of 3", "{report}");
    let machines = report["tenantMachines"].as_array().unwrap();
    assert!(
        machines.contains(&json!("1 online · 0 stale · 0 offline of 2")),
        "{report}"
    );
    assert_eq!(
        report["operatorMachines"],
        json!(["press-1", "<img src=x>"]),
        "{report}"
    );
    assert_eq!(report["keyTitle"], "Acme <b>Works</b>", "{report}");
    assert_eq!(
        report["keyNav"],
        json!(["Machines", "Rules", "Cost"]),
        "a read key sees no admin's pages: {report}"
    );
    assert_eq!(report["keyMachines"], json!(["press-1", "<img src=x>"]));
    assert_eq!(report["online"], "1", "press-1 reported just now: {report}");
    assert_eq!(report["latest"], json!(["temp 71.50", ""]), "{report}");
    assert!(
        report["otherTenant"]
            .as_str()
            .unwrap()
            .contains("cannot see"),
        "{report}"
    );
    assert_eq!(report["keyHome"], "Acme <b>Works</b>", "its own tenant");
    assert_eq!(report["credentialInUrl"], false);
    assert_eq!(
        report["narrowOverflow"], false,
        "no sideways scroll at 390 px"
    );
    assert_eq!(report["platformNarrowOverflow"], false, "{report}");
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_by_ingest_appears_live_and_is_acknowledged_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let acme = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_WRITE")
        .await;
    let rules = format!("/v1/tenants/{}/alert-rules", acme.id);
    let rule = json!({
        "metric": "temp",
        "severity": "SEVERITY_MAJOR",
        "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 80.0}},
    });
    let operator = platform.operator_token.clone();
    let (status, created) = platform
        .call(Method::POST, &rules, &operator, Some(rule))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let given = json!({
        "base": platform.base,
        "key": acme.key,
        "tenantId": acme.id,
        "shots": screenshots(),
    });
    let report = tokio::task::spawn_blocking(move || run_scenario("alerts.cjs", &given))
        .await
        .unwrap();
    let alerts = format!("/v1/tenants/{}/alerts", acme.id);
    let (_, listed) = platform.call(Method::GET, &alerts, &operator, None).await;
    platform.stop().await;

    assert_eq!(report["reloaded"], false, "{report}");
    assert!(report["row"].as_str().unwrap().contains("95.5"), "{report}");
    assert_eq!(report["resolved"], true, "{report}");
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
    let alert = &listed["alerts"][0];
    assert_eq!(alert["state"], "ALERT_STATE_RESOLVED", "{listed}");
    let key_id = &acme.key["mfg_".len().."mfg_".len() + 32];
    assert_eq!(alert["acknowledgedBy"], format!("key:{key_id}"), "{alert}");
    eprintln!(
        "the alert appeared {} ms after the reading was sent",
        report["appearedMs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machines_chart_shows_its_tier_and_threshold_and_grows_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let acme = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_WRITE")
        .await;
    let operator = platform.operator_token.clone();
    let rules = format!("/v1/tenants/{}/alert-rules", acme.id);
    let rule = json!({
        "metric": "temp",
        "severity": "SEVERITY_MINOR",
        "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 90.0}},
    });
    let (status, created) = platform
        .call(Method::POST, &rules, &operator, Some(rule))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let now = chrono::Utc::now();
    let readings: Vec<Value> = (1..=30)
        .map(|i| {
            let ts = (now - chrono::Duration::seconds(20 * i)).to_rfc3339();
            let value = 70.0 + f64::from(i32::try_from(i % 5).unwrap());
            json!({"machineId": "press-1", "metric": "temp", "ts": ts, "value": value})
        })
        .chain([
            json!({"machineId": "press-1", "metric": "rpm", "ts": now.to_rfc3339(), "value": 1200}),
        ])
        .collect();
    let telemetry = format!("/v1/tenants/{}/telemetry", acme.id);
    let (status, sent) = platform
        .call(
            Method::POST,
            &telemetry,
            &acme.key,
            Some(json!({"readings": readings})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");

    let given = json!({
        "base": platform.base,
        "key": acme.key,
        "tenantId": acme.id,
        "shots": screenshots(),
    });
    let report = tokio::task::spawn_blocking(move || run_scenario("machine.cjs", &given))
        .await
        .unwrap();
    platform.stop().await;

    assert_eq!(report["metrics"], json!(["rpm", "temp"]), "{report}");
    assert_eq!(report["tiers15m"], "served by hot", "{report}");
    assert_eq!(report["thresholds"], "90", "{report}");
    assert_eq!(report["pointsBefore"], 30, "{report}");
    assert_eq!(report["pointsAfter"], 31, "a new reading, live: {report}");
    assert_eq!(
        report["narrowOverflow"], false,
        "no sideways scroll at 390 px"
    );
    assert!(
        report["tiers24h"]
            .as_str()
            .unwrap()
            .starts_with("served by"),
        "{report}"
    );
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_onboarding_shows_its_reason_and_is_retried_from_the_page() {
    use mfg_tests::gate::{Gate, bucket, s3_server, up_behind};

    let name = format!("console-{}", uuid::Uuid::now_v7());
    bucket(&name).await;
    let gate = Gate::to(s3_server()).await;
    let dir = tempfile::tempdir().unwrap();
    let platform = up_behind(dir.path(), None, &name, &gate).await;
    let operator = platform.operator_token.clone();
    gate.close();
    let (status, tenant) = platform
        .call(
            Method::POST,
            "/v1/tenants",
            &operator,
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenants/{id}");
    let within = std::time::Duration::from_secs(60);
    platform
        .wait_until(&path, "state", "TENANT_STATE_PROVISIONING_FAILED", within)
        .await;
    gate.open();

    let given = json!({
        "base": platform.base,
        "operator": operator,
        "tenantId": id,
        "shots": screenshots(),
    });
    let report = tokio::task::spawn_blocking(move || run_scenario("onboarding.cjs", &given))
        .await
        .unwrap();
    let (_, tenant) = platform.call(Method::GET, &path, &operator, None).await;
    platform.stop().await;

    assert_eq!(report["failedState"], "failed", "{report}");
    let reasons = report["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty(), "the failed step says why: {report}");
    assert_eq!(report["retriedState"], "succeeded", "{report}");
    assert_eq!(tenant["state"], "TENANT_STATE_ACTIVE", "{tenant}");
    let actions = report["auditActions"].as_array().unwrap();
    assert!(
        actions.contains(&json!("provisioning_run.retry"))
            && actions.contains(&json!("provisioning_run.start")),
        "{report}"
    );
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_page_shows_the_apis_figures() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let acme = platform
        .rest_tenant(
            json!({"name": "acme", "monthlyBudgetUsd": 500}),
            "SCOPE_READ",
        )
        .await;
    let operator = platform.operator_token.clone();
    let budget = format!("/v1/tenants/{}/budget?updateMask=alertThresholds", acme.id);
    let thresholds = json!({"alertThresholds": [0.5, 0.9]});
    let (status, set) = platform
        .call(Method::PATCH, &budget, &operator, Some(thresholds))
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");

    let given = json!({
        "base": platform.base,
        "key": acme.key,
        "tenantId": acme.id,
        "shots": screenshots(),
    });
    let report = tokio::task::spawn_blocking(move || run_scenario("cost.cjs", &given))
        .await
        .unwrap();
    platform.stop().await;

    let api = &report["api"]["report"];
    let page = &report["page"];
    let forecast = &api["forecast"];
    assert_eq!(page["monthToDate"], forecast["monthToDateUsd"], "{report}");
    assert_eq!(page["forecast"], forecast["forecastUsd"], "{report}");
    assert_eq!(page["total"], api["totalUsd"], "{report}");
    assert_eq!(page["budget"], 500.0, "{report}");
    let amounts: Vec<Value> = api["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amountUsd"].clone())
        .collect();
    assert_eq!(page["lines"], json!(amounts), "{report}");
    let shown = format!(
        "${:.2}",
        forecast["monthToDateUsd"].as_f64().unwrap_or_default()
    );
    assert_eq!(page["monthToDateText"], shown, "to the cent: {report}");
    let thresholds = report["thresholds"].as_str().unwrap();
    assert!(
        thresholds.contains("50% ($250.00)") && thresholds.contains("90% ($450.00)"),
        "{report}"
    );
    assert_eq!(report["chart"], 1, "{report}");
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_made_with_the_form_raises_its_alert() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let acme = platform
        .rest_tenant(json!({"name": "acme"}), "SCOPE_ADMIN")
        .await;
    let given = json!({
        "base": platform.base,
        "key": acme.key,
        "tenantId": acme.id,
        "shots": screenshots(),
    });
    let report = tokio::task::spawn_blocking(move || run_scenario("rules.cjs", &given))
        .await
        .unwrap();
    let rules = format!("/v1/tenants/{}/alert-rules", acme.id);
    let (_, listed) = platform
        .call(Method::GET, &rules, &platform.operator_token, None)
        .await;
    platform.stop().await;

    assert!(
        report["fieldError"].as_str().unwrap().contains("threshold"),
        "beside the field: {report}"
    );
    assert_eq!(report["invalid"], "true", "{report}");
    assert_eq!(report["condition"], "value > 80", "{report}");
    assert_eq!(report["history"], json!(["open"]), "{report}");
    let made = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["displayName"] == "Too hot")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(made["condition"]["threshold"]["clearValue"], 75.0, "{made}");
    assert_eq!(made["severity"], "SEVERITY_MAJOR", "{made}");
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
}
