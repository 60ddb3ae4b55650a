//! Budget alerts end to end, on a fake clock: the cost service compares a tenant's
//! month-to-date and forecast cost with its budget, raises each threshold crossed once a month
//! through the storage service, whose subscribers receive them like any alert, raises none
//! twice (a threshold resolved by hand, nor after a restart of the cost service), and resolves
//! them when the month ends.

use std::{collections::BTreeSet, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Datelike as _, Duration, TimeZone as _, Utc};
use mfg_common::{clock::ManualClock, testing::Running};
use mfg_proto::{
    cost::v1::{self as pb, cost_service_client::CostServiceClient},
    storage::v1::{
        self as spb, alert_service_client::AlertServiceClient,
        subscribe_alerts_response::Message as Outbound,
    },
    tenant::v1::tenant_service_client::TenantServiceClient,
};
use mfg_tests::{
    TEST_OPERATOR_TOKEN, create_tenant, operator_channel, start_storage, start_tenant,
};
use pbjson_types::Timestamp;
use tokio_stream::StreamExt as _;

const BUDGET: f64 = 10.0;

fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

fn move_to(clock: &ManualClock, at: DateTime<Utc>) {
    let now: DateTime<Utc> = mfg_common::clock::Clock::system_now(clock).into();
    clock.advance((at - now).to_std().expect("ahead"));
}

/// `usd` of API requests ($1 a million) over `[start, end)`.
fn requests(tenant: &str, usd: f64, start: DateTime<Utc>, end: DateTime<Utc>) -> pb::UsageRecord {
    pb::UsageRecord {
        tenant_id: tenant.to_owned(),
        meter: pb::Meter::ApiRequests.into(),
        quantity: usd * 1e6,
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
        idempotency_key: format!("{tenant}/{start}/{usd}"),
    }
}

/// A breach as the alert names it: basis and threshold.
type Crossed = (i32, String);

fn crossed(alert: &spb::Alert) -> Crossed {
    let breach = alert.budget.as_ref().expect("a budget alert");
    (breach.basis, breach.threshold.to_string())
}

/// The breaches the tenant's forecast response says are crossed.
fn expected(forecast: &pb::GetCostForecastResponse) -> BTreeSet<Crossed> {
    let mut all = BTreeSet::new();
    for threshold in [0.5, 0.8, 1.0] {
        if forecast.month_to_date_usd >= threshold * BUDGET {
            all.insert((i32::from(spb::BudgetBasis::Actual), threshold.to_string()));
        }
        if forecast.forecast_usd >= threshold * BUDGET {
            all.insert((i32::from(spb::BudgetBasis::Forecast), threshold.to_string()));
        }
    }
    all
}

struct Events(tonic::Streaming<spb::SubscribeAlertsResponse>);

impl Events {
    /// The next events until those opened are `opened` (and no other was opened).
    async fn opened(&mut self, opened: &BTreeSet<Crossed>) {
        let mut seen = BTreeSet::new();
        while seen != *opened {
            let event = self.next().await;
            assert_eq!(event.r#type, i32::from(spb::AlertEventType::Opened));
            let breach = crossed(event.alert.as_ref().unwrap());
            assert!(
                opened.contains(&breach),
                "{breach:?} not in {opened:?}: {event:?}"
            );
            assert!(seen.insert(breach.clone()), "{breach:?} raised twice");
        }
    }

    async fn next(&mut self) -> spb::AlertEvent {
        let message = tokio::time::timeout(StdDuration::from_secs(20), self.0.next())
            .await
            .expect("an event within 20 s")
            .expect("open")
            .expect("no error");
        match message.message {
            Some(Outbound::Event(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn start_cost(
    url: &str,
    tenant: &Running,
    storage: &Running,
    clock: &Arc<ManualClock>,
) -> impl Future<Output = Running> {
    let config = mfg_cost::Config::new(url, tenant.addr.to_string())
        .with_admin_token(TEST_OPERATOR_TOKEN)
        .with_budget_alerts(storage.addr.to_string(), StdDuration::from_millis(50));
    let clock = clock.clone();
    Running::start(mfg_proto::service_names::COST, move |l, s| {
        mfg_cost::run_with_clock(config, l, s, clock)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_crossed_raise_one_alert_each_and_the_month_end_resolves_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let tenant_service = start_tenant(&url("tenant.db")).await;
    let storage = start_storage(&url("storage.db"), tenant_service.addr).await;
    let mut tenants = TenantServiceClient::new(operator_channel(&tenant_service));
    let tenant = create_tenant(&mut tenants, "budgeted").await;
    let (requests_out, requests_in) = tokio::sync::mpsc::channel(4);
    requests_out
        .send(spb::SubscribeAlertsRequest {
            message: Some(spb::subscribe_alerts_request::Message::Subscribe(
                spb::AlertSubscription {
                    tenant_id: tenant.clone(),
                    ..Default::default()
                },
            )),
        })
        .await
        .unwrap();
    let mut alerts = AlertServiceClient::new(operator_channel(&storage));
    let mut events = Events(
        alerts
            .subscribe_alerts(tokio_stream::wrappers::ReceiverStream::new(requests_in))
            .await
            .unwrap()
            .into_inner(),
    );

    // The month after next, so that the tenant was created before it; no shared costs, so the
    // tenant's cost is its requests alone.
    let now = Utc::now();
    let month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap()
        + chrono::Months::new(2);
    let clock = Arc::new(ManualClock::new());
    move_to(&clock, month - Duration::days(1));
    let cost_url = url("cost.db");
    let cost_service = start_cost(&cost_url, &tenant_service, &storage, &clock).await;
    let mut cost = CostServiceClient::new(operator_channel(&cost_service));
    cost.update_price_book(pb::UpdatePriceBookRequest {
        price_book: Some(pb::PriceBook::default()),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["shared_monthly_usd".to_owned()],
        }),
    })
    .await
    .unwrap();

    // Noon on the 10th: $0.20 a day so far, a forecast of about $6, 19% of the budget spent.
    let today = month + Duration::days(9);
    move_to(&clock, today + Duration::hours(12));
    // The budget only now: the month before cost the tenant its share of the shared costs.
    cost.update_budget(pb::UpdateBudgetRequest {
        tenant_id: tenant.clone(),
        budget: Some(pb::Budget {
            monthly_limit_usd: BUDGET,
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["monthly_limit_usd".to_owned()],
        }),
    })
    .await
    .unwrap();
    let mut records: Vec<_> = (0..9)
        .map(|day| {
            let start = month + Duration::days(day);
            requests(&tenant, 0.2, start, start + Duration::days(1))
        })
        .collect();
    records.push(requests(&tenant, 0.1, today, today + Duration::hours(12)));
    cost.record_usage(pb::RecordUsageRequest {
        records,
        batch_key: String::new(),
    })
    .await
    .unwrap();
    // Past the summaries kept while the clock stood still.
    clock.advance(StdDuration::from_secs(10));
    let first = expected(&forecast(&cost, &tenant).await);
    assert_eq!(
        first,
        BTreeSet::from([(i32::from(spb::BudgetBasis::Forecast), "0.5".to_owned())]),
        "{:?}",
        forecast(&cost, &tenant).await
    );
    events.opened(&first).await;

    // $4 more this morning: 59% spent, and a forecast past the budget.
    cost.record_usage(pb::RecordUsageRequest {
        batch_key: String::new(),
        records: vec![requests(
            &tenant,
            4.0,
            today + Duration::hours(6),
            today + Duration::hours(12),
        )],
    })
    .await
    .unwrap();
    clock.advance(StdDuration::from_secs(10));
    let second = expected(&forecast(&cost, &tenant).await);
    assert!(second.contains(&(i32::from(spb::BudgetBasis::Actual), "0.5".to_owned())));
    events
        .opened(&second.difference(&first).cloned().collect())
        .await;

    // The 50% alert resolved by hand stays resolved; a restarted cost service raises nothing
    // again, and the next threshold once.
    let listed = list(&mut alerts, &tenant).await;
    let half = listed
        .iter()
        .find(|a| crossed(a) == (i32::from(spb::BudgetBasis::Actual), "0.5".to_owned()))
        .unwrap();
    alerts
        .resolve_alert(spb::ResolveAlertRequest {
            tenant_id: tenant.clone(),
            alert_id: half.alert_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        events.next().await.r#type,
        i32::from(spb::AlertEventType::Resolved)
    );
    cost_service.stop().await;
    let cost_service = start_cost(&cost_url, &tenant_service, &storage, &clock).await;
    let mut cost = CostServiceClient::new(operator_channel(&cost_service));
    cost.record_usage(pb::RecordUsageRequest {
        batch_key: String::new(),
        records: vec![requests(
            &tenant,
            2.6,
            today + Duration::hours(11),
            today + Duration::hours(12),
        )],
    })
    .await
    .unwrap();
    clock.advance(StdDuration::from_secs(10));
    let third = expected(&forecast(&cost, &tenant).await);
    let actual_80 = (i32::from(spb::BudgetBasis::Actual), "0.8".to_owned());
    assert!(third.contains(&actual_80));
    assert!(third.is_superset(&second));
    events
        .opened(&third.difference(&second).cloned().collect())
        .await;
    let listed = list(&mut alerts, &tenant).await;
    let raised: Vec<Crossed> = listed.iter().map(crossed).collect();
    let unique: BTreeSet<Crossed> = raised.iter().cloned().collect();
    assert_eq!(raised.len(), unique.len(), "each once: {raised:?}");
    assert!(unique.contains(&actual_80));
    assert!(listed.iter().all(|a| {
        a.source == i32::from(spb::AlertSource::Budget)
            && a.budget.as_ref().unwrap().month == format!("{}-{:02}", month.year(), month.month())
    }));

    // The next month resolves the month's alerts that are still open, as the system.
    let open = listed
        .iter()
        .filter(|a| a.state != i32::from(spb::AlertState::Resolved))
        .count();
    move_to(
        &clock,
        month + chrono::Months::new(1) + Duration::minutes(30),
    );
    for _ in 0..open {
        let event = events.next().await;
        assert_eq!(event.r#type, i32::from(spb::AlertEventType::Resolved));
        assert_eq!(event.alert.unwrap().resolved_by, "system");
    }
    assert!(
        list(&mut alerts, &tenant)
            .await
            .iter()
            .all(|a| a.state == i32::from(spb::AlertState::Resolved))
    );
    drop(requests_out);
    cost_service.stop().await;
    storage.stop().await;
    tenant_service.stop().await;
}

async fn forecast(
    cost: &CostServiceClient<mfg_common::grpc::TracedChannel>,
    tenant: &str,
) -> pb::GetCostForecastResponse {
    cost.clone()
        .get_cost_forecast(pb::GetCostForecastRequest {
            tenant_id: tenant.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn list(
    alerts: &mut AlertServiceClient<mfg_common::grpc::TracedChannel>,
    tenant: &str,
) -> Vec<spb::Alert> {
    alerts
        .list_alerts(spb::ListAlertsRequest {
            tenant_id: tenant.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .alerts
}
