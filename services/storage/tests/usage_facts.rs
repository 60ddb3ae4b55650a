//! The facts of a tenant's usage that the cost service's recommendations rest on, from
//! constructed usage: how far back its raw queries read (kept over a restart), which series
//! were flat in their minutes, which machines sent readings. Only the platform's services may
//! ask.

mod support;

use mfg_proto::{common::v1::Reading, storage::v1 as pb, tenant::v1 as tpb};
use support::{Backend, Platform, alerts::register_machines, now_micros, tiering::*};
use tonic::Code;

fn reading(machine: &str, micros: i64, value: f64) -> Reading {
    support::reading(machine, "temp", micros, value)
}

async fn facts(platform: &Platform) -> pb::GetTenantUsageFactsResponse {
    platform
        .operator()
        .get_tenant_usage_facts(pb::GetTenantUsageFactsRequest {
            tenant_id: platform.tenant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn usage_facts(backend: Backend) {
    let (mut platform, _, _) = start(backend, Cold::Directory, true).await;
    register_machines(&platform, 2).await;
    let now = now_micros();
    let start = now / MINUTE * MINUTE - 20 * MINUTE;
    // Ten minutes at 1 Hz: press-1 changes every second, m-000 never; m-001 sends nothing.
    let mut readings: Vec<Reading> = (0..600)
        .flat_map(|s| {
            let at = start + s * SECOND;
            [reading("press-1", at, s as f64), reading("m-000", at, 20.0)]
        })
        .collect();
    readings.push(reading("press-1", now - 10 * DAY, 1.0));
    ingest(&platform, &readings).await;
    tiering(&platform, now).await.unwrap();

    // Nothing read raw yet; a raw query from 10 days and an hour ago reads 11 days back.
    assert_eq!(facts(&platform).await.oldest_raw_read_days, None);
    let (points, _) = query(&platform, now - 10 * DAY - HOUR, now, 0).await;
    assert_eq!(points.len(), 601);
    // An aggregated query of whole rolled-up minutes reads no raw readings.
    query(&platform, start, start + 10 * MINUTE, 60).await;

    let answer = facts(&platform).await;
    assert_eq!(answer.oldest_raw_read_days, Some(11));
    assert!(answer.hot_days_held >= 2, "{answer:?}");
    assert_eq!(answer.active_machine_ids, ["m-000", "press-1"]);
    let shapes: Vec<_> = answer
        .series
        .iter()
        .map(|s| {
            (
                s.machine_id.as_str(),
                s.readings,
                s.busy_minutes,
                s.flat_minutes,
            )
        })
        .collect();
    assert_eq!(shapes, [("m-000", 600, 10, 10), ("press-1", 600, 10, 0)]);
    assert_eq!(answer.cold_bytes_per_reading, 0.0, "nothing archived yet");

    // The ages read are kept over a restart.
    platform.restart_storage().await;
    assert_eq!(facts(&platform).await.oldest_raw_read_days, Some(11));

    // A tenant's key may not ask.
    let key = platform.key(tpb::Scope::Admin).await;
    let status = platform
        .client(&key)
        .get_tenant_usage_facts(pb::GetTenantUsageFactsRequest {
            tenant_id: platform.tenant_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_facts_on_postgres() {
    usage_facts(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_facts_on_sqlite() {
    usage_facts(Backend::Sqlite).await;
}
