//! Recommendations from constructed usage, through the tenant, storage and cost services: a
//! shared tenant whose raw queries read two days back, with a flat series, an idle machine and
//! a busy API gets each kind of recommendation once, each saving priced from its figures. The
//! cost service's clock runs 8 days ahead, so that a machine registered now was registered
//! more than 7 days before it.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, DurationRound as _, Utc};
use mfg_common::{clock::ManualClock, testing::Running};
use mfg_proto::{
    common::v1::Reading,
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    storage::v1::{self as spb, telemetry_service_client::TelemetryServiceClient},
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use mfg_tests::{
    TEST_OPERATOR_TOKEN, create_tenant, operator_channel, start_storage, start_tenant,
};
use pbjson_types::Timestamp;

fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap(),
    }
}

fn reading(machine: &str, at: DateTime<Utc>, value: f64) -> Reading {
    Reading {
        machine_id: machine.to_owned(),
        metric: "temp".to_owned(),
        ts: Some(timestamp(at)),
        value,
    }
}

fn usage(tenant: &str, meter: pb::Meter, quantity: f64, start: DateTime<Utc>) -> pb::UsageRecord {
    pb::UsageRecord {
        tenant_id: tenant.to_owned(),
        meter: meter.into(),
        quantity,
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(start + Duration::hours(1))),
        idempotency_key: format!("{tenant}/{}", meter.as_str_name()),
    }
}

async fn setup_tenant(tenant_service: &Running) -> String {
    let mut tenants = TenantServiceClient::new(operator_channel(tenant_service));
    let tenant = create_tenant(&mut tenants, "recommended").await;
    for machine in ["press-1", "flat-1", "idle-1"] {
        tenants
            .create_machine(tpb::CreateMachineRequest {
                tenant_id: tenant.clone(),
                machine: Some(tpb::Machine {
                    machine_id: machine.to_owned(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    tenant
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_appears_from_constructed_usage_with_its_saving() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let tenant_service = start_tenant(&url("tenant.db")).await;
    let storage = start_storage(&url("storage.db"), tenant_service.addr).await;
    let tenant = setup_tenant(&tenant_service).await;

    // Ten minutes at 1 Hz that ended a few minutes ago: press-1 changes every second, flat-1
    // never; idle-1 sends nothing. One reading of press-1 two days ago.
    let now = Utc::now();
    let start = now - Duration::minutes(20);
    let mut readings: Vec<Reading> = (0..600)
        .flat_map(|s| {
            let at = start + Duration::seconds(s);
            [
                reading("press-1", at, s as f64),
                reading("flat-1", at, 20.0),
            ]
        })
        .collect();
    readings.push(reading("press-1", now - Duration::days(2), 1.0));
    let mut telemetry = TelemetryServiceClient::new(operator_channel(&storage));
    let ingested = telemetry
        .ingest_batch(spb::IngestBatchRequest {
            tenant_id: tenant.clone(),
            readings,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ingested.accepted, 1_201);
    telemetry
        .run_tiering_job(Some(timestamp(now)))
        .await
        .unwrap();
    // A raw query reads back two days and an hour: three days, a hot retention class.
    telemetry
        .query_telemetry(spb::QueryTelemetryRequest {
            tenant_id: tenant.clone(),
            machine_id: "press-1".to_owned(),
            metric: "temp".to_owned(),
            start: Some(timestamp(now - Duration::days(2) - Duration::hours(1))),
            end: Some(timestamp(now)),
            ..Default::default()
        })
        .await
        .unwrap();

    let clock = Arc::new(ManualClock::new());
    clock.advance(StdDuration::from_secs(8 * 86_400));
    let cost_now = now + Duration::days(8);
    let config = mfg_cost::Config::new(url("cost.db"), tenant_service.addr.to_string())
        .with_admin_token(TEST_OPERATOR_TOKEN)
        .with_budget_alerts(storage.addr.to_string(), StdDuration::ZERO);
    let cost_clock = clock.clone();
    let cost_service = Running::start(mfg_proto::service_names::COST, move |l, s| {
        mfg_cost::run_with_clock(config, l, s, cost_clock)
    })
    .await;
    let mut cost = CostServiceClient::new(operator_channel(&cost_service));
    // As storage and the gateway meter it: 3 GB hot, and an hour at 90 requests a second.
    let hour = cost_now.duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(2);
    cost.record_usage(pb::RecordUsageRequest {
        batch_key: String::new(),
        records: vec![
            usage(&tenant, pb::Meter::HotStorage, 3e9, hour),
            usage(&tenant, pb::Meter::ApiRequests, 90.0 * 3_600.0, hour),
        ],
    })
    .await
    .unwrap();

    let found = cost
        .list_recommendations(pb::ListRecommendationsRequest {
            tenant_id: tenant.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .recommendations;
    let kinds: Vec<_> = found.iter().map(pb::Recommendation::kind).collect();
    assert_eq!(kinds.len(), 4, "{found:#?}");
    let of = |kind| found.iter().find(|r| r.kind() == kind).unwrap();
    let book = cost
        .get_price_book(pb::GetPriceBookRequest {})
        .await
        .unwrap()
        .into_inner()
        .price_book
        .unwrap();
    let price = |meter: pb::Meter| {
        let price = book.prices.iter().find(|p| p.meter() == meter).unwrap();
        price.unit_price_usd / price.base_units_per_unit
    };
    let facts = telemetry
        .get_tenant_usage_facts(spb::GetTenantUsageFactsRequest {
            tenant_id: tenant.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(facts.oldest_raw_read_days, Some(3));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);

    // Hot retention: 27 of 30 days, at the hot tier's bytes a day, less what they cost cold.
    let hot_per_day = 3e9 / f64::from(facts.hot_days_held);
    let readings_per_day = 1_200.0;
    let retention = of(pb::RecommendationKind::HotRetention);
    let saving = 27.0 * hot_per_day * price(pb::Meter::HotStorage)
        - 27.0 * facts.cold_bytes_per_reading * readings_per_day * price(pb::Meter::ColdStorage);
    assert!(
        close(retention.estimated_monthly_savings_usd, saving),
        "{retention:?} against {saving}"
    );
    assert_eq!(retention.title, "Keep 3 days hot instead of 30");

    // Sampling: flat-1 alone, nine tenths of its 600 readings a day.
    let sampling = of(pb::RecommendationKind::SamplingRate);
    assert!(sampling.detail.contains("flat-1/temp"), "{sampling:?}");
    assert!(!sampling.detail.contains("press-1"), "{sampling:?}");
    let fewer = 540.0;
    let saving = fewer * 730.0 / 24.0 * price(pb::Meter::IngestedReadings)
        + fewer * 30.0 * hot_per_day / readings_per_day * price(pb::Meter::HotStorage);
    assert!(
        close(sampling.estimated_monthly_savings_usd, saving),
        "{sampling:?} against {saving}"
    );

    // Plan: 90 requests a second against the shared plan's 100 costs the dedicated capacity.
    let plan = of(pb::RecommendationKind::Plan);
    assert_eq!(plan.title, "Move to the dedicated plan");
    assert!(close(
        plan.estimated_monthly_savings_usd,
        -book.dedicated_monthly_usd
    ));

    // Idle: idle-1, one machine-month.
    let idle = of(pb::RecommendationKind::IdleMachines);
    assert!(idle.detail.starts_with("idle-1 "), "{idle:?}");
    assert!(close(
        idle.estimated_monthly_savings_usd,
        price(pb::Meter::Machines)
    ));

    cost_service.stop().await;
    storage.stop().await;
    tenant_service.stop().await;
}
