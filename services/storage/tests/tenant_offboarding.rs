//! A tenant's offboarding in the storage service. The export is refused while the tenant may
//! write; once it is deleted, every reading it holds in the hot tier, today's too, moves to the
//! cold tier, its rollups are written beside them, and a manifest lists every object with its
//! kind, size and SHA-256. Exporting again changes nothing. The deletion is refused before the
//! export; after it, the tenant's series, rollups, rules and alerts are gone and its objects
//! kept, unless purged too. The platform's own offboarding run exports the deleted tenant at the
//! same time as the test does: of two archives of a day, the one that loses its commit deletes
//! its object, so the prefix holds what the manifest lists and nothing more. On PostgreSQL with
//! S3 and on SQLite with a directory, where DuckDB (from the test virtualenv at
//! `MFG_TEST_PYTHON`) reads the export's readings and hourly rollups through its manifest.

mod support;

use std::{path::Path, sync::Arc};

use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        DeleteTenantDataRequest, ExportTenantRequest, ExportTenantResponse, ListAlertRulesRequest,
        ListAlertsRequest,
    },
    tenant::v1::DeleteTenantRequest,
};
use mfg_storage::telemetry::object_store::{ObjectKey, ObjectStore};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use support::{
    Backend, Platform,
    alerts::{create_rule, threshold},
    now_micros, reading,
    tiering::{Cold, DAY, MINUTE, day_start, ingest, start},
};

/// Reads the export through its manifest, as a user of it would.
const READER: &str = r#"
import json, sys
import duckdb

root, manifest = sys.argv[1], sys.argv[2]
con = duckdb.connect()
listed = f"read_json('{root}/{manifest}')"
entries = con.execute(f"SELECT key, readings FROM {listed} WHERE kind = 'readings'").fetchall()
files = [f"{root}/{key}" for key, _ in entries]
count, total = con.execute(f"SELECT count(*), sum(value) FROM read_parquet({files})").fetchone()
(hourly,) = con.execute(f"SELECT key FROM {listed} WHERE kind = 'rollups_1h'").fetchone()
summed, hourly_total = con.execute(
    f"SELECT sum(count), sum(sum) FROM read_parquet('{root}/{hourly}')"
).fetchone()
print(json.dumps({"listed": sum(n for _, n in entries), "count": count, "total": total,
                  "hourly_count": summed, "hourly_total": hourly_total}))
"#;

async fn export(platform: &Platform) -> Result<ExportTenantResponse, tonic::Status> {
    let request = ExportTenantRequest {
        tenant_id: platform.tenant_id.clone(),
    };
    Ok(platform
        .operator()
        .export_tenant(request)
        .await?
        .into_inner())
}

async fn delete_data(platform: &Platform, purge_archive: bool) -> Result<u64, tonic::Status> {
    let request = DeleteTenantDataRequest {
        tenant_id: platform.tenant_id.clone(),
        purge_archive,
    };
    let response = platform.operator().delete_tenant_data(request).await?;
    Ok(response.into_inner().objects_deleted)
}

/// How many rules and alerts the tenant has.
async fn rules_and_alerts(platform: &Platform) -> (usize, usize) {
    let mut alerts = platform.alerts(support::OPERATOR);
    let rules = alerts
        .list_alert_rules(ListAlertRulesRequest {
            tenant_id: platform.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    let raised = alerts
        .list_alerts(ListAlertsRequest {
            tenant_id: platform.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .alerts;
    (rules.len(), raised.len())
}

/// The manifest, each of its objects checked against its size and SHA-256.
async fn checked_manifest(objects: &Arc<dyn ObjectStore>, key: &str) -> Vec<Value> {
    let body = objects.get(&ObjectKey::new(key).unwrap()).await.unwrap();
    let entries: Vec<Value> = serde_json::from_slice(&body).unwrap();
    for entry in &entries {
        let key = ObjectKey::new(entry["key"].as_str().unwrap()).unwrap();
        let object = objects.get(&key).await.unwrap();
        assert_eq!(entry["bytes"], object.len(), "{entry}");
        let sha256: String = Sha256::digest(&object)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry["sha256"], sha256, "{entry}");
    }
    entries
}

/// DuckDB's count and sum of the export's readings, and the manifest's count.
fn read_with_duckdb(root: &Path, manifest: &str) -> Value {
    let python = std::env::var("MFG_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("this test needs Python with duckdb: run `scripts/test.sh`, or set MFG_TEST_PYTHON")
    });
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(READER)
        .arg(root)
        .arg(manifest)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn a_deleted_tenant_is_exported_then_deleted(backend: Backend, cold: Cold) {
    let (platform, objects, _) = start(backend, cold, true).await;
    create_rule(&platform, threshold(250.0, None, 0)).await;
    let now = now_micros();
    let two_days_ago = day_start(now) - 2 * DAY;
    let mut readings: Vec<Reading> = (0..300)
        .map(|i| reading("press-1", "temp", two_days_ago + i * MINUTE, i as f64))
        .collect();
    // Today's, up to a minute ago: the hot tier's newest day goes too.
    readings.extend((1..=60).map(|i| reading("press-2", "rpm", now - i * MINUTE, 1.5)));
    ingest(&platform, &readings).await;
    let total: f64 = readings.iter().map(|r| r.value).sum();

    let refused = export(&platform).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while rules_and_alerts(&platform).await.1 == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert was raised"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    platform
        .tenants
        .clone()
        .delete_tenant(DeleteTenantRequest {
            tenant_id: platform.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();

    let early = delete_data(&platform, false).await.unwrap_err();
    assert_eq!(
        early.code(),
        tonic::Code::FailedPrecondition,
        "before the export: {early:?}"
    );

    let exported = export(&platform).await.unwrap();
    assert_eq!(exported.readings, 360, "{exported:?}");
    assert!(exported.objects >= 2, "{exported:?}");
    let entries = checked_manifest(&objects, &exported.manifest_key).await;
    assert_eq!(entries.len() as u64, exported.objects);
    let kinds: std::collections::BTreeSet<&str> =
        entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    let every = ["readings", "rollups_15m", "rollups_1h", "rollups_1m"];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), every, "{entries:?}");
    let manifest = objects
        .get(&ObjectKey::new(&exported.manifest_key).unwrap())
        .await
        .unwrap();

    let again = export(&platform).await.unwrap();
    assert_eq!(again, exported, "nothing more to export");
    let rewritten = objects
        .get(&ObjectKey::new(&again.manifest_key).unwrap())
        .await
        .unwrap();
    assert_eq!(rewritten, manifest, "the same manifest");

    if let Some(archive) = &platform.archive {
        let read = read_with_duckdb(archive.path(), &exported.manifest_key);
        assert_eq!(read["listed"], 360, "{read}");
        assert_eq!(read["count"], 360, "{read}");
        assert_eq!(read["total"].as_f64(), Some(total), "{read}");
        assert_eq!(read["hourly_count"], 360, "the rollups too: {read}");
        assert_eq!(read["hourly_total"].as_f64(), Some(total), "{read}");
    }

    // Deleted, the tenant's rules and alerts are gone, its objects kept; purged, they go too.
    assert_eq!(delete_data(&platform, false).await.unwrap(), 0);
    assert_eq!(rules_and_alerts(&platform).await, (0, 0));
    let tenant: uuid::Uuid = platform.tenant_id.parse().unwrap();
    let prefix = mfg_storage::telemetry::archive::tenant_prefix(tenant);
    let kept = objects.list(&prefix).await.unwrap();
    assert_eq!(kept.len() as u64, exported.objects + 1, "{kept:?}");
    assert_eq!(delete_data(&platform, false).await.unwrap(), 0, "again");
    assert_eq!(
        delete_data(&platform, true).await.unwrap(),
        exported.objects + 1
    );
    assert!(objects.list(&prefix).await.unwrap().is_empty());
    let rules = objects.lifecycle_rules().await.unwrap();
    assert!(
        rules
            .iter()
            .all(|rule| rule.id != format!("tenant-{tenant}")),
        "{rules:?}"
    );
    assert_eq!(delete_data(&platform, true).await.unwrap(), 0, "again");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenant_is_exported_then_deleted_on_postgres_and_s3() {
    a_deleted_tenant_is_exported_then_deleted(Backend::Postgres, Cold::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenant_is_exported_then_deleted_on_sqlite_and_a_directory() {
    a_deleted_tenant_is_exported_then_deleted(Backend::Sqlite, Cold::Directory).await;
}
