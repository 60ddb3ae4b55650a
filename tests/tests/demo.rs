//! `mfg up --demo`: the brief's scenario (3 tenants with 15 machines each) streams in-process,
//! so a newcomer sees data (and alert rules watching it) within seconds, and its cost against
//! the $50,000 target within a minute, through the same REST routes they would use.

use std::time::Duration;

use mfg_tests::{Platform, http_call};
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_streams_the_briefs_scenario_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let started = tokio::time::Instant::now();
    let platform = Platform::up_demo(dir.path()).await;
    let http = reqwest::Client::new();
    let base = platform.base.as_str();
    let operator = Some(platform.operator_token.as_str());

    // The tenants appear once the demo has prepared them.
    let mut tenants = Vec::new();
    for _ in 0..500 {
        let (status, page) =
            http_call(&http, base, Method::GET, "/v1/tenants", operator, None).await;
        assert_eq!(status, StatusCode::OK);
        tenants = page["tenants"].as_array().cloned().unwrap_or_default();
        if tenants.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut names: Vec<&str> = tenants.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["acme-presses", "borealis-plastics", "cascade-cnc"],
        "the brief's three tenants"
    );

    for tenant in &tenants {
        let id = tenant["id"].as_str().unwrap();
        let (status, machines) = http_call(
            &http,
            base,
            Method::GET,
            &format!("/v1/tenants/{id}/machines?pageSize=100"),
            operator,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(machines["machines"].as_array().unwrap().len(), 15);

        // Every metric of a machine has a latest value within seconds.
        let mut values = Vec::new();
        for _ in 0..1_000 {
            let (status, latest) = http_call(
                &http,
                base,
                Method::GET,
                &format!("/v1/tenants/{id}/machines/cnc-02/latest"),
                operator,
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            values = latest["values"].as_array().cloned().unwrap_or_default();
            if values.len() == 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(values.len(), 20, "20 metrics per machine: {values:?}");
        assert!(
            values
                .iter()
                .any(|v| v["metric"] == "spindle_speed_rpm" && v["value"].as_f64().is_some()),
            "{values:?}"
        );
        // Counters read as a machine's would: months of parts, wear between 0 and 100 %.
        let value = |metric: &str| {
            values
                .iter()
                .find(|v| v["metric"] == metric)
                .and_then(|v| v["value"].as_f64())
                .unwrap_or_else(|| panic!("no {metric} in {values:?}"))
        };
        assert!((1e5..1e8).contains(&value("part_count")), "{values:?}");
        assert!((0.0..100.0).contains(&value("tool_wear_pct")), "{values:?}");

        // Each tenant watches its machines with the demo's three alert rules.
        let (status, rules) = http_call(
            &http,
            base,
            Method::GET,
            &format!("/v1/tenants/{id}/alert-rules"),
            operator,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mut metrics: Vec<&str> = rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["metric"].as_str())
            .collect();
        metrics.sort_unstable();
        assert_eq!(metrics, ["part_count", "temperature_c", "vibration_mm_s"]);
    }

    // The tenant the banner suggests (the first) has an open alert within 10 s of the start.
    let acme = tenants
        .iter()
        .find(|t| t["name"] == "acme-presses")
        .and_then(|t| t["id"].as_str())
        .unwrap();
    let alerts = format!("/v1/tenants/{acme}/alerts?state=open");
    loop {
        let (status, open) = http_call(&http, base, Method::GET, &alerts, operator, None).await;
        assert_eq!(status, StatusCode::OK);
        if open["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no alert for acme-presses within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Within a minute the operator's summary costs the three tenants' metered month so far, with
    // their forecasts, and the platform's forecast against the demo's $50,000 target.
    let metered = |report: &serde_json::Value| {
        report["lines"].as_array().is_some_and(|lines| {
            lines
                .iter()
                .any(|l| l["meter"] == "METER_INGESTED_READINGS")
        })
    };
    let summary = loop {
        let (status, summary) =
            http_call(&http, base, Method::GET, "/v1/cost", operator, None).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        let reports = summary["reports"].as_array().cloned().unwrap_or_default();
        if reports.len() == 3
            && reports.iter().all(metered)
            && summary["targetMonthlyUsd"] == 50_000.0
        {
            break summary;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the summary within a minute: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for report in summary["reports"].as_array().unwrap() {
        assert!(
            report["forecast"]["forecastUsd"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
    assert!(summary["sharedUsd"].as_f64().unwrap() > 0.0, "{summary}");
    let vs_target = summary["forecastVsTarget"].as_f64().unwrap();
    assert!(
        (-1.0..0.0).contains(&vs_target),
        "under the target: {summary}"
    );
    platform.stop().await;
}
