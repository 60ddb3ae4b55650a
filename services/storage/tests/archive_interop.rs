//! The archive is a dataset other engines read as it is: pyarrow and DuckDB (from the test
//! virtualenv that `scripts/test.sh` sets up, at `MFG_TEST_PYTHON`) read a Hive-partitioned
//! archive written through the local object store, and agree with what was written.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use mfg_storage::micros::Micros;
use mfg_storage::telemetry::{
    archive::{self, ArchivedReading},
    object_store::{LocalStore, ObjectStore},
};
use uuid::Uuid;

const READER: &str = r#"
import json, sys
import duckdb
import pyarrow.dataset as ds

root = sys.argv[1] + "/telemetry/v1"
table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
rows = duckdb.connect().execute(
    f"SELECT tenant::VARCHAR, dt::VARCHAR, count(*), sum(value) "
    f"FROM read_parquet('{root}/*/*/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
).fetchall()
print(json.dumps({
    "rows": table.num_rows,
    "columns": sorted(table.column_names),
    "ts": str(table.schema.field("ts").type),
    "groups": [[tenant, dt, count, total] for tenant, dt, count, total in rows],
}))
"#;

#[tokio::test]
async fn pyarrow_and_duckdb_read_the_archive() {
    let python = std::env::var("MFG_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("this test needs Python with pyarrow and duckdb: run `scripts/test.sh`, or set MFG_TEST_PYTHON")
    });
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();

    let mut expected: BTreeMap<(String, String), (u64, f64)> = BTreeMap::new();
    for tenant in [Uuid::now_v7(), Uuid::now_v7()] {
        for (d, day) in [
            (0, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()),
            (1, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
        ] {
            let start = Micros::start_of(day);
            let readings: Vec<ArchivedReading> = (0..500)
                .map(|i| ArchivedReading {
                    machine_id: format!("press-{}", i % 3),
                    metric: if i % 2 == 0 { "temp" } else { "rpm" }.to_owned(),
                    ts: start + i64::from(i) * 1_000_000,
                    value: f64::from(i) + f64::from(d),
                })
                .collect();
            let total: f64 = readings.iter().map(|r| r.value).sum();
            expected.insert((tenant.to_string(), day.to_string()), (500, total));
            let bytes = archive::encode_blocking(readings).await.unwrap();
            store
                .put(&archive::part_key(tenant, day).unwrap(), bytes)
                .await
                .unwrap();
        }
    }

    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(READER)
        .arg(dir.path())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(read["rows"], 2000);
    assert_eq!(
        read["columns"],
        serde_json::json!(["dt", "machine_id", "metric", "tenant", "ts", "value"])
    );
    assert_eq!(read["ts"], "timestamp[us, tz=UTC]");
    let groups: BTreeMap<(String, String), (u64, f64)> = read["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let key = (
                g[0].as_str().unwrap().to_owned(),
                g[1].as_str().unwrap().to_owned(),
            );
            (key, (g[2].as_u64().unwrap(), g[3].as_f64().unwrap()))
        })
        .collect();
    assert_eq!(
        groups, expected,
        "DuckDB sees each tenant's days as written, tenant ids as text"
    );
}
