//! Alerts end to end over gRPC: readings in, rules evaluated on arrival, alerts opened,
//! repeated, resolved by their condition or by hand, events streamed to subscribers with a
//! resume cursor, and all of it across a restart of the storage service.

mod support;

use std::time::Duration;

use mfg_common::{
    clock::ManualClock,
    testing::{PrivatePostgres, Shutdown, TestDatabase},
};
use mfg_proto::{
    storage::v1::{
        self as pb, alert_condition::Kind, subscribe_alerts_request::Message as Inbound,
        subscribe_alerts_response::Message as Outbound,
    },
    tenant::v1 as tpb,
};
use support::{Backend, Platform, now_micros, reading};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Code, Streaming};

const S: i64 = 1_000_000;

fn threshold(value: f64, clear: Option<f64>, for_s: i64) -> pb::AlertCondition {
    pb::AlertCondition {
        kind: Some(Kind::Threshold(pb::ThresholdCondition {
            comparison: pb::Comparison::Greater.into(),
            value,
            for_duration: Some(pbjson_types::Duration {
                seconds: for_s,
                nanos: 0,
            }),
            clear_value: clear,
        })),
    }
}

async fn create_rule(platform: &Platform, condition: pb::AlertCondition) -> String {
    create_rule_for(platform, &["press-1"], pb::Severity::Major, condition).await
}

/// Creates a rule on `temp` of the listed machines (all of the tenant's when none).
async fn create_rule_for(
    platform: &Platform,
    machine_ids: &[&str],
    severity: pb::Severity,
    condition: pb::AlertCondition,
) -> String {
    let admin = platform.key(tpb::Scope::Admin).await;
    platform
        .alerts(&admin)
        .create_alert_rule(pb::CreateAlertRuleRequest {
            tenant_id: platform.tenant_id.clone(),
            rule: Some(pb::AlertRule {
                display_name: "Spindle too hot".to_owned(),
                metric: "temp".to_owned(),
                selector: Some(pb::MachineSelector {
                    machine_ids: machine_ids.iter().map(|id| (*id).to_owned()).collect(),
                    ..Default::default()
                }),
                severity: severity.into(),
                condition: Some(condition),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap()
        .rule_id
}

/// Sends readings of `press-1`'s `temp`, one batch each, in order.
async fn send(platform: &Platform, readings: &[(i64, f64)]) {
    let mut client = platform.client(&platform.write_key);
    for (ts, value) in readings {
        let ack = client
            .ingest_batch(pb::IngestBatchRequest {
                tenant_id: platform.tenant_id.clone(),
                readings: vec![reading("press-1", "temp", *ts, *value)],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ack.accepted + ack.duplicates, 1, "{ack:?}");
    }
}

/// Registers machines `m-000`, `m-001`, ….
async fn register_machines(platform: &Platform, machines: usize) {
    let mut tenants = platform.tenants.clone();
    for m in 0..machines {
        tenants
            .create_machine(tpb::CreateMachineRequest {
                tenant_id: platform.tenant_id.clone(),
                machine: Some(tpb::Machine {
                    machine_id: format!("m-{m:03}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
}

struct Subscriber {
    _requests: mpsc::Sender<pb::SubscribeAlertsRequest>,
    events: Streaming<pb::SubscribeAlertsResponse>,
}

impl Subscriber {
    async fn open(platform: &Platform, token: &str, resume_after: u64) -> Self {
        let (requests, receiver) = mpsc::channel(8);
        requests
            .send(pb::SubscribeAlertsRequest {
                message: Some(Inbound::Subscribe(pb::AlertSubscription {
                    tenant_id: platform.tenant_id.clone(),
                    resume_after,
                    ..Default::default()
                })),
            })
            .await
            .unwrap();
        let events = platform
            .alerts(token)
            .subscribe_alerts(ReceiverStream::new(receiver))
            .await
            .unwrap()
            .into_inner();
        Self {
            _requests: requests,
            events,
        }
    }

    /// A subscriber whose connection takes at most 16 KiB unread, like a client on a slow link.
    async fn open_with_small_windows(platform: &Platform, token: &str) -> Self {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", platform.storage_addr()))
                .unwrap()
                .initial_stream_window_size(16 * 1024)
                .initial_connection_window_size(16 * 1024)
                .connect_lazy();
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        let mut client = pb::alert_service_client::AlertServiceClient::with_interceptor(
            channel,
            move |mut request: tonic::Request<()>| {
                request
                    .metadata_mut()
                    .insert("authorization", bearer.clone());
                Ok(request)
            },
        );
        let (requests, receiver) = mpsc::channel(8);
        requests
            .send(pb::SubscribeAlertsRequest {
                message: Some(Inbound::Subscribe(pb::AlertSubscription {
                    tenant_id: platform.tenant_id.clone(),
                    ..Default::default()
                })),
            })
            .await
            .unwrap();
        let events = client
            .subscribe_alerts(ReceiverStream::new(receiver))
            .await
            .unwrap()
            .into_inner();
        Self {
            _requests: requests,
            events,
        }
    }

    async fn next(&mut self) -> pb::AlertEvent {
        let message = tokio::time::timeout(Duration::from_secs(20), self.events.next())
            .await
            .expect("an alert event within 20 s")
            .expect("the stream is open")
            .expect("no error");
        match message.message {
            Some(Outbound::Event(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Events until one of `kind` (included).
    async fn until(&mut self, kind: pb::AlertEventType) -> Vec<pb::AlertEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = event.r#type == i32::from(kind);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

fn alert(event: &pb::AlertEvent) -> &pb::Alert {
    event.alert.as_ref().unwrap()
}

/// The tenant's alerts, newest first; only those in `state` when given.
async fn list(platform: &Platform, token: &str, state: Option<pb::AlertState>) -> Vec<pb::Alert> {
    platform
        .alerts(token)
        .list_alerts(pb::ListAlertsRequest {
            tenant_id: platform.tenant_id.clone(),
            state: state.unwrap_or(pb::AlertState::Unspecified).into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .alerts
}

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
async fn a_pending_for_timer_continues_after_a_restart() {
    let mut platform = Platform::start(Backend::Sqlite, 100_000).await;
    create_rule(&platform, threshold(80.0, None, 10)).await;
    let t = now_micros() / S * S - 120 * S;
    send(
        &platform,
        &[(t, 81.0), (t + 2 * S, 82.0), (t + 4 * S, 83.0)],
    )
    .await;
    platform.restart_storage().await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    // 10 s after the first reading past 80, counted from before the restart.
    send(&platform, &[(t + 10 * S, 84.0)]).await;
    let opened = subscriber.next().await;
    assert_eq!(opened.r#type, i32::from(pb::AlertEventType::Opened));
    assert_eq!(alert(&opened).trigger_value, 84.0);
    assert_eq!(
        alert(&opened).first_seen_time.unwrap().seconds,
        (t + 10 * S) / S
    );
    drop(subscriber);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_of_change_window_continues_after_a_restart() {
    let mut platform = Platform::start(Backend::Sqlite, 100_000).await;
    let rate = pb::AlertCondition {
        kind: Some(Kind::RateOfChange(pb::RateOfChangeCondition {
            comparison: pb::Comparison::Greater.into(),
            per_second: 2.0,
            window: Some(pbjson_types::Duration {
                seconds: 3,
                nanos: 0,
            }),
        })),
    };
    create_rule(&platform, rate).await;
    let t = now_micros() / S * S - 120 * S;
    send(&platform, &[(t, 0.0), (t + S, 10.0)]).await;
    platform.restart_storage().await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    // The jump of 10 at t + 1 s is still within 3 s of the next readings: the window, refilled
    // from the stored readings, keeps the alert firing (5/s, then 10/3 a second) rather than
    // clearing it on the first flat second.
    send(&platform, &[(t + 2 * S, 10.0), (t + 3 * S, 10.0)]).await;
    let updated = subscriber.next().await;
    assert_eq!(
        updated.r#type,
        i32::from(pb::AlertEventType::Updated),
        "{updated:?}"
    );
    assert_eq!(alert(&updated).last_value, 5.0);
    // Once the jump has left the window, it clears.
    send(&platform, &[(t + 4 * S + S / 2, 10.0)]).await;
    let resolved = subscriber.until(pb::AlertEventType::Resolved).await;
    assert!(
        resolved[..resolved.len() - 1]
            .iter()
            .all(|e| e.r#type == i32::from(pb::AlertEventType::Updated)),
        "{resolved:?}"
    );
    drop(subscriber);
    platform.stop().await;
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
async fn until_opened(subscriber: &mut Subscriber, machine: &str) -> Vec<pb::AlertEvent> {
    let mut events = Vec::new();
    loop {
        let event = subscriber.next().await;
        let done = event.r#type == i32::from(pb::AlertEventType::Opened)
            && alert(&event).machine_id == machine;
        events.push(event);
        if done {
            return events;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_machine_has_its_alerts_resolved_and_is_no_longer_watched() {
    let clock = ManualClock::new();
    let platform = Platform::start_configured(
        Backend::Sqlite,
        100_000,
        std::sync::Arc::new(clock.clone()),
        |config| {
            config
                .with_alert_machine_sweep(Duration::from_millis(50))
                .with_alert_evaluations(100, 1)
        },
    )
    .await;
    create_rule(&platform, threshold(50.0, None, 0)).await;
    let no_data = pb::AlertCondition {
        kind: Some(Kind::NoData(pb::NoDataCondition {
            duration: Some(pbjson_types::Duration {
                seconds: 300,
                nanos: 0,
            }),
        })),
    };
    create_rule_for(
        &platform,
        &["press-1", "press-2"],
        pb::Severity::Critical,
        no_data,
    )
    .await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    let t = now_micros() / S * S;
    send(&platform, &[(t, 60.0)]).await;
    let opened = subscriber.next().await;
    assert_eq!(opened.r#type, i32::from(pb::AlertEventType::Opened));
    let hot = alert(&opened).alert_id.clone();

    // press-1 is deleted: once the directory's cache of it expires, the sweep resolves its
    // alert as the system.
    let mut tenants = platform.tenants.clone();
    tenants
        .delete_machine(tpb::DeleteMachineRequest {
            tenant_id: platform.tenant_id.clone(),
            machine_id: "press-1".to_owned(),
        })
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    let resolved = subscriber.next().await;
    assert_eq!(resolved.r#type, i32::from(pb::AlertEventType::Resolved));
    assert_eq!(alert(&resolved).alert_id, hot);
    assert_eq!(alert(&resolved).resolved_by, "system");

    // Silence past the no-data duration raises press-2's alert, and none for press-1.
    clock.advance(Duration::from_secs(300));
    let events = until_opened(&mut subscriber, "press-2").await;
    let silent = alert(events.last().unwrap()).alert_id.clone();
    // Whatever the evaluator sent with it is written before this acknowledgement.
    let admin = platform.key(tpb::Scope::Admin).await;
    platform
        .alerts(&admin)
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            tenant_id: platform.tenant_id.clone(),
            alert_id: silent.clone(),
        })
        .await
        .unwrap();
    let open = list(&platform, &admin, Some(pb::AlertState::Acknowledged)).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].alert_id, silent);
    let all = list(&platform, &admin, None).await;
    assert_eq!(
        all.len(),
        2,
        "press-1 (deleted) raised no no-data alert: {all:?}"
    );

    // Registered again and reporting, press-1 is watched again: silent, it raises a no-data
    // alert.
    tenants
        .create_machine(tpb::CreateMachineRequest {
            tenant_id: platform.tenant_id.clone(),
            machine: Some(tpb::Machine {
                machine_id: "press-1".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // Past the directory's memory of it as unknown, it reports again, and is watched anew.
    clock.advance(Duration::from_secs(2));
    send(&platform, &[(t + 313 * S, 1.0)]).await;
    clock.advance(Duration::from_secs(301));
    let events = until_opened(&mut subscriber, "press-1").await;
    assert_eq!(
        alert(events.last().unwrap()).severity,
        i32::from(pb::Severity::Critical)
    );
    drop(subscriber);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_loses_no_alert_change_and_doubles_none() {
    let postgres = PrivatePostgres::start().await;
    let storage_db = TestDatabase::postgres_on(&postgres.url()).await;
    let mut platform = Platform::start_on(
        Backend::Sqlite,
        storage_db,
        100_000,
        mfg_common::clock::system_clock(),
        |config| config,
    )
    .await;
    create_rule(&platform, threshold(50.0, None, 0)).await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    let t = now_micros() / S * S - 60 * S;
    send(&platform, &[(t, 60.0)]).await;
    let opened = subscriber.next().await;
    assert_eq!(opened.r#type, i32::from(pb::AlertEventType::Opened));

    // The database server crashes. A reading that clears the alert is evaluated as it
    // arrives; its own write fails, so it is not acked, and the journal holds the alert's
    // change, retrying, until the database is back: then it is written and published.
    postgres.stop(Shutdown::Immediate);
    let refused = platform
        .client(&platform.write_key)
        .ingest_batch(pb::IngestBatchRequest {
            tenant_id: platform.tenant_id.clone(),
            readings: vec![reading("press-1", "temp", t + S, 40.0)],
        })
        .await
        .expect_err("no write while the database is down");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    postgres.start_again();
    let resolved = subscriber.next().await;
    assert_eq!(resolved.r#type, i32::from(pb::AlertEventType::Resolved));
    assert_eq!(alert(&resolved).alert_id, alert(&opened).alert_id);
    assert_eq!(resolved.cursor, opened.cursor + 1);
    // The client resends the reading it has no ack for: now stored, not evaluated again.
    send(&platform, &[(t + S, 40.0)]).await;

    // After a restart of the storage service the log holds each change once, and the alert
    // is resolved.
    drop(subscriber);
    platform.restart_storage().await;
    let mut resumed = Subscriber::open(&platform, &platform.read_key, opened.cursor).await;
    let replayed = resumed.next().await;
    assert_eq!(replayed.cursor, resolved.cursor);
    assert_eq!(replayed.r#type, i32::from(pb::AlertEventType::Resolved));
    let alerts = list(&platform, &platform.read_key, None).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].state, i32::from(pb::AlertState::Resolved));
    assert_eq!(alerts[0].count, 1);
    drop(resumed);
    platform.stop().await;
}

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
