//! What the alert tests share: rules, readings, subscribers and listings.

use std::time::Duration;

use super::{Platform, reading};
use mfg_proto::{
    storage::v1::{
        self as pb, alert_condition::Kind, subscribe_alerts_request::Message as Inbound,
        subscribe_alerts_response::Message as Outbound,
    },
    tenant::v1 as tpb,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::Streaming;
use tonic_types::StatusExt as _;

pub const S: i64 = 1_000_000;

pub fn threshold(value: f64, clear: Option<f64>, for_s: i64) -> pb::AlertCondition {
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

pub async fn create_rule(platform: &Platform, condition: pb::AlertCondition) -> String {
    create_rule_for(platform, &["press-1"], pb::Severity::Major, condition).await
}

/// Creates a rule on `temp` of the listed machines (all of the tenant's when none).
pub async fn create_rule_for(
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
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap()
        .rule_id
}

/// Sends readings of `press-1`'s `temp`, one batch each, in order.
pub async fn send(platform: &Platform, readings: &[(i64, f64)]) {
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
pub async fn register_machines(platform: &Platform, machines: usize) {
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

/// A subscriber's request stream, its first message subscribing to the tenant's events after
/// `resume_after`; the sender keeps the stream open.
pub async fn subscription(
    platform: &Platform,
    resume_after: u64,
) -> (
    mpsc::Sender<pb::SubscribeAlertsRequest>,
    ReceiverStream<pb::SubscribeAlertsRequest>,
) {
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
    (requests, ReceiverStream::new(receiver))
}

pub struct Subscriber {
    _requests: mpsc::Sender<pb::SubscribeAlertsRequest>,
    pub events: Streaming<pb::SubscribeAlertsResponse>,
}

impl Subscriber {
    pub async fn open(platform: &Platform, token: &str, resume_after: u64) -> Self {
        let (requests, receiver) = subscription(platform, resume_after).await;
        let events = platform
            .alerts(token)
            .subscribe_alerts(receiver)
            .await
            .unwrap()
            .into_inner();
        Self {
            _requests: requests,
            events,
        }
    }

    /// A subscriber whose connection takes at most 16 KiB unread, like a client on a slow link.
    pub async fn open_with_small_windows(platform: &Platform, token: &str) -> Self {
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
        let (requests, receiver) = subscription(platform, 0).await;
        let events = client
            .subscribe_alerts(receiver)
            .await
            .unwrap()
            .into_inner();
        Self {
            _requests: requests,
            events,
        }
    }

    pub async fn next(&mut self) -> pb::AlertEvent {
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
    pub async fn until(&mut self, kind: pb::AlertEventType) -> Vec<pb::AlertEvent> {
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

pub fn alert(event: &pb::AlertEvent) -> &pb::Alert {
    event.alert.as_ref().unwrap()
}

/// The tenant's alerts, newest first; only those in `state` when given.
pub async fn list(
    platform: &Platform,
    token: &str,
    state: Option<pb::AlertState>,
) -> Vec<pb::Alert> {
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

pub async fn until_opened(subscriber: &mut Subscriber, machine: &str) -> Vec<pb::AlertEvent> {
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

/// `seconds` as a proto duration.
pub fn seconds(seconds: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds, nanos: 0 })
}

/// A threshold rule on `spindle_temp_c` of `press-1`.
pub fn threshold_rule() -> pb::AlertRule {
    pb::AlertRule {
        display_name: "Spindle too hot".to_owned(),
        metric: "spindle_temp_c".to_owned(),
        selector: Some(pb::MachineSelector {
            machine_ids: vec!["press-1".to_owned()],
            ..Default::default()
        }),
        severity: pb::Severity::Major.into(),
        condition: Some(pb::AlertCondition {
            kind: Some(Kind::Threshold(pb::ThresholdCondition {
                comparison: pb::Comparison::Greater.into(),
                value: 80.0,
                for_duration: seconds(30),
                clear_value: Some(75.0),
            })),
        }),
        ..Default::default()
    }
}

/// The fields an INVALID_ARGUMENT names.
pub fn violated(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// A stored rule of `tenant` on `metric`, made at `at`: over 80.5 for 30 s (clearing at 75), or
/// no data for a minute, from the machines labelled `line=a`.
pub fn stored_rule(
    tenant: uuid::Uuid,
    metric: &str,
    at: mfg_storage::micros::Micros,
) -> mfg_storage::alerting::domain::alert_rule::AlertRule {
    use mfg_storage::alerting::domain::alert_rule::{
        AlertRule, Comparison, Condition, MachineSelector, RuleSpec, Severity,
    };
    AlertRule {
        rule_id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        spec: RuleSpec {
            display_name: format!("{metric} too high"),
            metric: metric.to_owned(),
            selector: MachineSelector {
                machine_ids: Vec::new(),
                labels: [("line".to_owned(), "a".to_owned())].into(),
            },
            severity: Some(Severity::Critical),
            condition: Some(Condition::AnyOf(vec![
                Condition::Threshold {
                    comparison: Comparison::Greater,
                    value: 80.5,
                    for_micros: 30_000_000,
                    clear_value: Some(75.0),
                },
                Condition::NoData {
                    duration_micros: 60_000_000,
                },
            ])),
            disabled: false,
        },
        create_time: at,
        update_time: at,
    }
}
