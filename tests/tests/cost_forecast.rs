//! The month's forecast on a fake clock, through the cost service: two tenants with nineteen
//! and a half days of synthetic usage, one steady and one noisy. The steady one's forecast is
//! within 2% of its true month; the noisy one's band is wider.

use std::sync::Arc;

use chrono::{DateTime, Datelike as _, Duration, TimeZone as _, Utc};
use mfg_common::clock::ManualClock;
use mfg_proto::{
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    tenant::v1::{self as tpb, tenant_service_client::TenantServiceClient},
};
use mfg_tests::{Running, TEST_OPERATOR_TOKEN, operator_channel, start_tenant};
use pbjson_types::Timestamp;

fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

/// Moves `clock` to `at`, which must be ahead of it.
fn move_to(clock: &ManualClock, at: DateTime<Utc>) {
    let now: DateTime<Utc> = mfg_common::clock::Clock::system_now(clock).into();
    clock.advance((at - now).to_std().expect("ahead"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_tenants_forecast_is_within_two_percent_and_noise_widens_the_band() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let tenant_service = start_tenant(&url("tenant.db")).await;
    let mut tenants = TenantServiceClient::new(operator_channel(&tenant_service));
    let mut ids = Vec::new();
    for name in ["steady", "noisy"] {
        let tenant = tenants
            .create_tenant(tpb::CreateTenantRequest {
                tenant: Some(tpb::Tenant {
                    name: name.to_owned(),
                    monthly_budget_usd: 40.0,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .tenant
            .unwrap();
        ids.push(tenant.id);
    }

    // The month after next, so that the tenants were created before it.
    let now = Utc::now();
    let month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap()
        + chrono::Months::new(2);
    let days_in_month = ((month + chrono::Months::new(1)) - month).num_days();
    let clock = Arc::new(ManualClock::new());
    move_to(&clock, month - Duration::days(1));
    let config = mfg_cost::Config::new(url("cost.db"), tenant_service.addr.to_string())
        .with_admin_token(TEST_OPERATOR_TOKEN);
    let cost_clock = clock.clone();
    let cost_service = Running::start(mfg_proto::service_names::COST, move |l, s| {
        mfg_cost::run_with_clock(config, l, s, cost_clock)
    })
    .await;
    let mut cost = CostServiceClient::new(operator_channel(&cost_service));

    // Shared costs split evenly from before the month, so that one tenant's usage does not
    // move the other's share.
    cost.update_price_book(pb::UpdatePriceBookRequest {
        price_book: Some(pb::PriceBook {
            split: pb::SharedCostSplit::Even.into(),
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["split".to_owned()],
        }),
    })
    .await
    .unwrap();

    // Noon on the 20th: a million API requests a day ($1) for the steady tenant, and between
    // half and one and a half million for the noisy one, until now.
    let today = month + Duration::days(19);
    move_to(&clock, today + Duration::hours(12));
    let noise = |day: i64| ((day * 7_919) % 101) as f64 / 100.0 - 0.5;
    let mut records = Vec::new();
    for day in 0..20 {
        let start = month + Duration::days(day);
        let end = if day == 19 {
            start + Duration::hours(12)
        } else {
            start + Duration::days(1)
        };
        let length = (end - start).num_seconds() as f64 / 86_400.0;
        for (id, requests) in [(&ids[0], 1e6), (&ids[1], 1e6 * (1.0 + noise(day)))] {
            records.push(pb::UsageRecord {
                tenant_id: id.clone(),
                meter: pb::Meter::ApiRequests.into(),
                quantity: requests * length,
                start_time: Some(timestamp(start)),
                end_time: Some(timestamp(end)),
                idempotency_key: format!("{id}/{day}"),
            });
        }
    }
    cost.record_usage(pb::RecordUsageRequest {
        records,
        batch_key: String::new(),
    })
    .await
    .unwrap();

    let forecast = |id: &String| {
        let mut cost = cost.clone();
        let tenant_id = id.clone();
        async move {
            cost.get_cost_forecast(pb::GetCostForecastRequest { tenant_id })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let (steady, noisy) = (forecast(&ids[0]).await, forecast(&ids[1]).await);
    // The true month: $1 a day of requests and half of $250 of shared costs a billing month of
    // 730 hours, each day.
    let truth = days_in_month as f64 * (1.0 + 250.0 * 24.0 / 730.0 / 2.0);
    let error = (steady.forecast_usd - truth).abs() / truth;
    assert!(
        error < 0.02,
        "{} against {truth}: {error:.4}",
        steady.forecast_usd
    );
    assert!(steady.forecast_low_usd <= steady.forecast_usd);
    assert!(steady.forecast_usd <= steady.forecast_high_usd);
    let width = |f: &pb::GetCostForecastResponse| f.forecast_high_usd - f.forecast_low_usd;
    assert!(
        width(&noisy) > width(&steady),
        "noisy {noisy:?}, steady {steady:?}"
    );
    assert_eq!(steady.budget_usd, 40.0);
    assert_eq!(steady.month_start, Some(timestamp(month)));
    cost_service.stop().await;
    tenant_service.stop().await;
}
