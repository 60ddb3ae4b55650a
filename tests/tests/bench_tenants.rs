//! `mfg bench tenants` on a small scale: the benchmarks' platform (`mfg::platform`, as `mfg up`
//! starts it) loads, ingests, answers, runs a tiering job and restarts its storage service, on
//! both databases, and every call of it succeeds.

use mfg_bench::tenants_bench::{TenantsBench, run};
use mfg_common::testing::TestDatabase;

fn small(database_url: Option<String>) -> TenantsBench {
    TenantsBench {
        database_url,
        tenants: 3,
        days: 12,
        readings_per_day: 4,
        ingest_readings: 3_000,
        requests: 10,
        skip_tiering: false,
    }
}

#[tokio::test]
async fn on_sqlite() {
    run(small(None)).await.expect("every phase succeeds");
}

#[tokio::test]
async fn on_postgres() {
    let database = TestDatabase::postgres().await;
    run(small(Some(database.url.clone())))
        .await
        .expect("every phase succeeds");
}
