//! Alerts end to end over gRPC: readings in, rules evaluated on arrival, alerts opened,
//! repeated, resolved by their condition or by hand, and events streamed to subscribers with a
//! resume cursor. What must hold across restarts is in `alert_restarts.rs`.

mod support;

use std::time::Duration;

use mfg_common::clock::ManualClock;
use mfg_proto::{
    storage::v1::{
        self as pb, alert_condition::Kind, subscribe_alerts_response::Message as Outbound,
    },
    tenant::v1 as tpb,
};
use support::{Backend, Platform, alerts::*, now_micros, reading};
use tokio_stream::StreamExt as _;
use tonic::Code;

async fn lifecycle(backend: Backend) {
    let mut platform = Platform::start(backend, 100_000).await;
    let rule_id = create_rule(&platform, threshold(80.0, Some(75.0), 0)).await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    let t = now_micros() / S * S - 120 * S;

    // Flapping inside the hysteresis band is one alert; back below 75 resolves it.
    send(
        &platform,
        &[
            (t, 70.0),
            (t + S, 81.0),
            (t + 2 * S, 79.0),
            (t + 3 * S, 85.0),
        ],
    )
    .await;
    send(&platform, &[(t + 4 * S, 74.0)]).await;
    let events = subscriber.until(pb::AlertEventType::Resolved).await;
    let opened = &events[0];
    assert_eq!(opened.r#type, i32::from(pb::AlertEventType::Opened));
    assert_eq!(alert(opened).trigger_value, 81.0);
    assert_eq!(alert(opened).rule_id, rule_id);
    assert_eq!(alert(opened).machine_id, "press-1");
    assert_eq!(alert(opened).severity, i32::from(pb::Severity::Major));
    let resolved = alert(events.last().unwrap());
    assert_eq!(resolved.alert_id, alert(opened).alert_id, "one alert");
    assert_eq!((resolved.count, resolved.last_value), (2, 85.0));
    assert_eq!(resolved.resolved_by, "system");
    assert!(events.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let first_cursor = opened.cursor;

    // A resend of readings already evaluated raises nothing.
    send(&platform, &[(t + 3 * S, 85.0)]).await;

    // A new firing is a new alert; a write key acknowledges it.
    send(&platform, &[(t + 5 * S, 90.0)]).await;
    let reopened = subscriber.next().await;
    assert_eq!(reopened.r#type, i32::from(pb::AlertEventType::Opened));
    let alert_id = alert(&reopened).alert_id.clone();
    assert_ne!(alert_id, alert(opened).alert_id);
    let mut writer = platform.alerts(&platform.write_key);
    let acknowledge = pb::AcknowledgeAlertRequest {
        tenant_id: platform.tenant_id.clone(),
        alert_id: alert_id.clone(),
    };
    let acked = writer
        .acknowledge_alert(acknowledge.clone())
        .await
        .unwrap()
        .into_inner()
        .alert
        .unwrap();
    assert_eq!(acked.state, i32::from(pb::AlertState::Acknowledged));
    assert!(acked.acknowledged_by.starts_with("key:"), "{acked:?}");
    let event = subscriber.next().await;
    assert_eq!(event.r#type, i32::from(pb::AlertEventType::Acknowledged));
    let again = writer
        .acknowledge_alert(acknowledge)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.alert.unwrap().acknowledge_time,
        acked.acknowledge_time
    );
    let status = platform
        .alerts(&platform.read_key)
        .resolve_alert(pb::ResolveAlertRequest {
            tenant_id: platform.tenant_id.clone(),
            alert_id: alert_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "a read key only reads"
    );

    // After a restart the acknowledged alert is still the one that repeats, and clears.
    drop(subscriber);
    platform.restart_storage().await;
    let listed = list(&platform, &platform.read_key, None).await;
    assert_eq!(listed.len(), 2, "newest first: {listed:?}");
    assert_eq!(listed[0].alert_id, alert_id);
    assert_eq!(listed[0].state, i32::from(pb::AlertState::Acknowledged));
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, first_cursor).await;
    // Resuming after the first event replays the rest of the log, in order, from before the
    // restart.
    let replayed = subscriber.until(pb::AlertEventType::Acknowledged).await;
    assert!(replayed[0].cursor > first_cursor);
    assert!(replayed.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert!(replayed.iter().any(|e| {
        e.r#type == i32::from(pb::AlertEventType::Opened) && alert(e).alert_id == alert_id
    }));
    send(&platform, &[(t + 6 * S, 95.0)]).await;
    let repeat = subscriber.next().await;
    assert_eq!(repeat.r#type, i32::from(pb::AlertEventType::Updated));
    assert_eq!(
        alert(&repeat).alert_id,
        alert_id,
        "the same alert, not a new one"
    );
    assert_eq!(alert(&repeat).count, 2);
    assert_eq!(
        alert(&repeat).state,
        i32::from(pb::AlertState::Acknowledged)
    );
    send(&platform, &[(t + 7 * S, 60.0)]).await;
    let cleared = subscriber.next().await;
    assert_eq!(cleared.r#type, i32::from(pb::AlertEventType::Resolved));
    let open = list(&platform, &platform.read_key, Some(pb::AlertState::Open)).await;
    assert!(open.is_empty());

    // A cursor no event has had yet is refused, rather than silently skipping what comes.
    let (_requests, beyond) = subscription(&platform, cleared.cursor + 1_000_000).await;
    let status = platform
        .alerts(&platform.read_key)
        .subscribe_alerts(beyond)
        .await
        .expect_err("a cursor beyond the log");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // The newest cursor itself is fine: nothing to replay, then live events.
    let mut caught_up = Subscriber::open(&platform, &platform.read_key, cleared.cursor).await;
    send(&platform, &[(t + 8 * S, 99.0)]).await;
    assert_eq!(
        caught_up.next().await.r#type,
        i32::from(pb::AlertEventType::Opened)
    );
    drop(caught_up);

    // Another tenant sees nothing of it.
    let other = platform.other_tenant().await;
    let other_key = platform.key_of(&other, tpb::Scope::Admin).await;
    let status = platform
        .alerts(&other_key)
        .get_alert(pb::GetAlertRequest {
            tenant_id: platform.tenant_id.clone(),
            alert_id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    drop(subscriber);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_on_postgres() {
    lifecycle(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_on_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_fires_when_the_clock_passes_the_silence() {
    let clock = ManualClock::new();
    let platform =
        Platform::start_with_clock(Backend::Sqlite, 100_000, std::sync::Arc::new(clock.clone()))
            .await;
    let condition = pb::AlertCondition {
        kind: Some(Kind::NoData(pb::NoDataCondition {
            duration: Some(pbjson_types::Duration {
                seconds: 300,
                nanos: 0,
            }),
        })),
    };
    create_rule(&platform, condition).await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    // The machine is watched from the rule's creation: silent for 300 s of the service's
    // clock, it raises an alert.
    clock.advance(Duration::from_secs(299));
    clock.advance(Duration::from_secs(2));
    let opened = subscriber.next().await;
    assert_eq!(opened.r#type, i32::from(pb::AlertEventType::Opened));
    assert!(alert(&opened).trigger_value >= 300.0, "{opened:?}");
    let t = now_micros() / S * S;
    send(&platform, &[(t, 1.0)]).await;
    let resolved = subscriber.next().await;
    assert_eq!(resolved.r#type, i32::from(pb::AlertEventType::Resolved));
    drop(subscriber);
    platform.stop().await;
}

/// Events until an `Opened` one of `machine` (included).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_lags_alone_and_still_receives_every_event() {
    const MACHINES: usize = 100;
    const BATCHES: i64 = 80;
    const FAN_OUT: usize = 1_024;
    let platform = Platform::start_configured(
        Backend::Sqlite,
        10_000_000,
        mfg_common::clock::system_clock(),
        |config| config.with_alert_fan_out(FAN_OUT),
    )
    .await;
    register_machines(&platform, MACHINES).await;
    create_rule_for(
        &platform,
        &[],
        pb::Severity::Warning,
        threshold(0.0, None, 0),
    )
    .await;
    let mut fast = Subscriber::open(&platform, &platform.read_key, 0).await;
    let mut slow = Subscriber::open_with_small_windows(&platform, &platform.read_key).await;

    // Every reading fires: each batch is an event per machine (repeats written together are
    // one event), thousands in all, more than the fan-out keeps and the slow subscriber's
    // buffers hold.
    let t = now_micros() / S * S - 120 * S;
    let mut client = platform.client(&platform.write_key);
    for b in 0..BATCHES {
        let readings = (0..MACHINES)
            .map(|m| reading(&format!("m-{m:03}"), "temp", t + b * S, 1.0 + b as f64))
            .collect();
        client
            .ingest_batch(pb::IngestBatchRequest {
                tenant_id: platform.tenant_id.clone(),
                readings,
            })
            .await
            .unwrap();
    }
    let mut fast_cursors = Vec::new();
    let mut finished = std::collections::HashSet::new();
    while finished.len() < MACHINES {
        let event = fast.next().await;
        fast_cursors.push(event.cursor);
        if alert(&event).count == BATCHES as u64 {
            finished.insert(alert(&event).machine_id.clone());
        }
    }
    assert!(fast_cursors.windows(2).all(|w| w[0] < w[1]));
    let total = fast_cursors.len();

    // The slow one has read nothing so far; it was told it lagged, then resumed from the log.
    let mut slow_cursors = Vec::new();
    let mut lagged = 0;
    while slow_cursors.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(20), slow.events.next())
            .await
            .expect("a message within 20 s")
            .unwrap()
            .unwrap();
        match message.message {
            Some(Outbound::Event(event)) => slow_cursors.push(event.cursor),
            Some(Outbound::Lagged(lag)) => {
                lagged += 1;
                assert_eq!(lag.resume_after, slow_cursors.last().copied().unwrap_or(0));
            }
            None => {}
        }
    }
    assert!(lagged >= 1, "the slow subscriber was told it lagged");
    assert_eq!(slow_cursors, fast_cursors, "every event, in order, once");
    drop((fast, slow));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_evaluator_coalesces_readings_and_misses_no_alert() {
    const MACHINES: usize = 40;
    // One batch in flight on one shard: concurrent batches are coalesced.
    let platform = Platform::start_configured(
        Backend::Sqlite,
        10_000_000,
        mfg_common::clock::system_clock(),
        |config| config.with_alert_evaluations(1, 1),
    )
    .await;
    register_machines(&platform, MACHINES).await;
    create_rule_for(
        &platform,
        &[],
        pb::Severity::Critical,
        threshold(90.0, Some(50.0), 0),
    )
    .await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;

    // Each machine: 200 readings at 10 with one spike to 95 somewhere, all sent at once.
    let t = now_micros() / S * S - 600 * S;
    let sends = (0..MACHINES).map(|m| {
        let mut client = platform.client(&platform.write_key);
        let tenant_id = platform.tenant_id.clone();
        async move {
            let spike = (m * 7) % 200;
            let readings = (0..200)
                .map(|i| {
                    let value = if i == spike { 95.0 } else { 10.0 };
                    reading(&format!("m-{m:03}"), "temp", t + i as i64 * S, value)
                })
                .collect();
            client
                .ingest_batch(pb::IngestBatchRequest {
                    tenant_id,
                    readings,
                })
                .await
                .unwrap();
        }
    });
    futures::future::join_all(sends).await;

    // Every spike opened an alert, though most readings were coalesced (dropping them instead
    // fails this test).
    let mut opened = std::collections::HashSet::new();
    while opened.len() < MACHINES {
        let event = subscriber.next().await;
        if event.r#type == i32::from(pb::AlertEventType::Opened) {
            assert_eq!(alert(&event).trigger_value, 95.0);
            opened.insert(alert(&event).machine_id.clone());
        }
    }
    drop(subscriber);
    platform.stop().await;
}

#[tokio::test]
async fn a_key_and_a_tenant_hold_at_most_their_subscriptions() {
    let platform = Platform::start_configured(
        Backend::Sqlite,
        100_000,
        mfg_common::clock::system_clock(),
        |config| config.with_alert_subscribers(2, 3),
    )
    .await;
    let first = Subscriber::open(&platform, &platform.read_key, 0).await;
    let _second = Subscriber::open(&platform, &platform.read_key, 0).await;
    let refused = |token: String| {
        let platform = &platform;
        async move {
            let (_requests, stream) = subscription(platform, 0).await;
            platform
                .alerts(&token)
                .subscribe_alerts(stream)
                .await
                .expect_err("over the cap")
        }
    };
    let status = refused(platform.read_key.clone()).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--alert-subscribers-per-key"),
        "{status:?}"
    );

    // Another key of the tenant has its own share, up to the tenant's.
    let _third = Subscriber::open(&platform, &platform.write_key, 0).await;
    let status = refused(platform.write_key.clone()).await;
    assert!(
        status.message().contains("--alert-subscribers-per-tenant"),
        "{status:?}"
    );

    // A subscription that ends gives its place back.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_requests, stream) = subscription(&platform, 0).await;
        match platform
            .alerts(&platform.read_key)
            .subscribe_alerts(stream)
            .await
        {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the place never came back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    platform.stop().await;
}
