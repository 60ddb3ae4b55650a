//! Budget alerts, as the cost service raises them: once per id whatever is retried, several of
//! a tenant's open at once, through the same lifecycle and fan-out as rule alerts, resolved
//! when their month ends, and kept over a restart. Only the platform's services raise them.

mod support;

use mfg_proto::storage::v1 as pb;
use support::{Backend, OPERATOR, Platform, alerts::*};
use tonic::Code;
use uuid::Uuid;

fn raise(platform: &Platform, alert_id: &str, threshold: f64) -> pb::RaiseBudgetAlertRequest {
    pb::RaiseBudgetAlertRequest {
        tenant_id: platform.tenant_id.clone(),
        alert_id: alert_id.to_owned(),
        breach: Some(pb::BudgetBreach {
            month: "2026-11".to_owned(),
            basis: pb::BudgetBasis::Actual.into(),
            threshold,
            limit_usd: 1_000.0,
            cost_usd: 1_000.0 * threshold + 1.0,
        }),
        severity: pb::Severity::Warning.into(),
    }
}

async fn raised(platform: &Platform, request: pb::RaiseBudgetAlertRequest) -> pb::Alert {
    platform
        .alerts(OPERATOR)
        .raise_budget_alert(request)
        .await
        .unwrap()
        .into_inner()
        .alert
        .unwrap()
}

async fn budget_alerts(backend: Backend) {
    let mut platform = Platform::start(backend, 100_000).await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    let (half, most) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());

    // Raised, and raised again by a retry: one alert, one event.
    let first = raised(&platform, raise(&platform, &half, 0.5)).await;
    assert_eq!(raised(&platform, raise(&platform, &half, 0.5)).await, first);
    let opened = subscriber.next().await;
    assert_eq!(opened.r#type, i32::from(pb::AlertEventType::Opened));
    let opened_alert = alert(&opened);
    assert_eq!(opened_alert.alert_id, half);
    assert_eq!(opened_alert.source, i32::from(pb::AlertSource::Budget));
    assert_eq!(
        (
            opened_alert.rule_id.as_str(),
            opened_alert.machine_id.as_str()
        ),
        ("", "")
    );
    assert_eq!(opened_alert.metric, "cost_usd");
    assert_eq!(opened_alert.trigger_value, 501.0);
    let breach = opened_alert.budget.as_ref().unwrap();
    assert_eq!((breach.month.as_str(), breach.threshold), ("2026-11", 0.5));

    // A second threshold of the month is a second alert, open beside the first.
    raised(&platform, raise(&platform, &most, 0.8)).await;
    let second = subscriber.next().await;
    assert_eq!(second.r#type, i32::from(pb::AlertEventType::Opened));
    assert_eq!(
        list(&platform, &platform.read_key, Some(pb::AlertState::Open))
            .await
            .len(),
        2
    );

    // A tenant's write key acknowledges it like any alert.
    platform
        .alerts(&platform.write_key)
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            tenant_id: platform.tenant_id.clone(),
            alert_id: half.clone(),
        })
        .await
        .unwrap();
    let acknowledged = subscriber.next().await;
    assert_eq!(
        (acknowledged.r#type, alert(&acknowledged).alert_id.as_str()),
        (i32::from(pb::AlertEventType::Acknowledged), half.as_str())
    );

    // Only the platform's services raise them, and what they send is checked.
    let status = platform
        .alerts(&platform.write_key)
        .raise_budget_alert(raise(&platform, &Uuid::now_v7().to_string(), 1.0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let mut invalid = raise(&platform, &Uuid::now_v7().to_string(), -1.0);
    invalid.breach.as_mut().unwrap().month = "2026-13".to_owned();
    let status = platform
        .alerts(OPERATOR)
        .raise_budget_alert(invalid)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    for field in ["breach.month", "breach.threshold"] {
        assert!(status.message().contains(field), "{field}: {status:?}");
    }

    // They are kept over a restart, with what they are about.
    drop(subscriber);
    platform.restart_storage().await;
    let listed = list(&platform, &platform.read_key, None).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].budget, first.budget);
    assert_eq!(listed[1].state, i32::from(pb::AlertState::Acknowledged));
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, acknowledged.cursor).await;

    // Their month's end resolves them, once; the months after keep theirs.
    let mut operator = platform.alerts(OPERATOR);
    let resolve = |month: &str| pb::ResolveBudgetAlertsRequest {
        tenant_id: platform.tenant_id.clone(),
        before_month: month.to_owned(),
    };
    let count = |response: tonic::Response<pb::ResolveBudgetAlertsResponse>| {
        response.into_inner().resolved_count
    };
    assert_eq!(
        count(
            operator
                .resolve_budget_alerts(resolve("2026-11"))
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(
        count(
            operator
                .resolve_budget_alerts(resolve("2026-12"))
                .await
                .unwrap()
        ),
        2
    );
    assert_eq!(
        count(
            operator
                .resolve_budget_alerts(resolve("2026-12"))
                .await
                .unwrap()
        ),
        0
    );
    for _ in 0..2 {
        let resolved = subscriber.next().await;
        assert_eq!(resolved.r#type, i32::from(pb::AlertEventType::Resolved));
        assert_eq!(alert(&resolved).resolved_by, "system");
    }

    // Raised again after it resolved: still the one alert, unchanged.
    let again = raised(&platform, raise(&platform, &half, 0.5)).await;
    assert_eq!(again.state, i32::from(pb::AlertState::Resolved));
    assert_eq!(list(&platform, &platform.read_key, None).await.len(), 2);
    drop(subscriber);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_alerts_on_postgres() {
    budget_alerts(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_alerts_on_sqlite() {
    budget_alerts(Backend::Sqlite).await;
}
