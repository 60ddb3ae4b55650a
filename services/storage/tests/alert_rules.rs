//! Alert rules and alerts: the store's conformance suite on PostgreSQL and SQLite, and the rule
//! API over gRPC with its validation, update masks, scopes and tenant isolation.

mod support;

use std::sync::Arc;

use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_proto::{
    storage::v1::{self as pb, alert_condition::Kind},
    tenant::v1 as tpb,
};
use mfg_storage::{
    alerting::{
        domain::{
            alert::{Alert, AlertEvent, AlertState, EventType, SYSTEM},
            alert_eval::RuleState,
            alert_rule::{AlertRule, Severity},
        },
        store::{AlertStore, AlertWrite, RuleStateKey},
    },
    error::StorageError,
    micros::Micros,
    store,
};
use pbjson_types::FieldMask;
use support::{
    Backend, Platform,
    alerts::{seconds, stored_rule, threshold_rule, violated},
};
use tonic::Code;
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn AlertStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    store::open(pool.clone()).migrate().await.expect("migrate");
    store::open_alerts(pool)
}

async fn rules_round_trip(store: &dyn AlertStore) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let at = Micros(1_795_478_400_123_456);
    let first = stored_rule(a, "spindle_temp_c", at);
    let second = stored_rule(a, "vibration_mm_s", at);
    let other = stored_rule(b, "spindle_temp_c", at);
    for rule in [&first, &second, &other] {
        store.insert_rule(rule, 10, None).await.unwrap();
    }
    assert_eq!(
        store.get_rule(a, first.rule_id).await.unwrap(),
        Some(first.clone()),
        "every field and the microseconds survive"
    );
    assert_eq!(
        store.get_rule(b, first.rule_id).await.unwrap(),
        None,
        "another tenant's id"
    );
    let page = store.list_rules(a, None, 1).await.unwrap();
    assert_eq!(page, std::slice::from_ref(&first), "creation order");
    let rest = store.list_rules(a, Some(first.rule_id), 10).await.unwrap();
    assert_eq!(rest, std::slice::from_ref(&second));
    assert_eq!(store.all_rules().await.unwrap().len(), 3);

    let limited = store.insert_rule(&stored_rule(a, "x", at), 2, None).await;
    assert!(
        matches!(limited, Err(StorageError::RuleLimit(2))),
        "{limited:?}"
    );

    let updated = store
        .update_rule(
            a,
            second.rule_id,
            &|mut rule| {
                rule.spec.disabled = true;
                rule.spec.severity = Some(Severity::Minor);
                rule.update_time += 1;
                Ok(rule)
            },
            None,
        )
        .await
        .unwrap();
    assert!(updated.spec.disabled);
    assert_eq!(
        store.get_rule(a, second.rule_id).await.unwrap(),
        Some(updated)
    );
    let refused = store
        .update_rule(
            a,
            second.rule_id,
            &|_| Err(StorageError::invalid("rule", "no")),
            None,
        )
        .await;
    assert!(matches!(refused, Err(StorageError::InvalidArgument(_))));
    let missing = store
        .update_rule(b, second.rule_id, &|rule| Ok(rule), None)
        .await;
    assert!(matches!(missing, Err(StorageError::RuleNotFound(_))));

    assert!(!store.delete_rule(b, first.rule_id, None).await.unwrap());
    assert!(store.delete_rule(a, first.rule_id, None).await.unwrap());
    assert_eq!(store.get_rule(a, first.rule_id).await.unwrap(), None);
    assert!(store.get_rule(b, other.rule_id).await.unwrap().is_some());
}

async fn alerts_events_and_states_round_trip(store: &dyn AlertStore) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let at = Micros(1_795_478_400_123_456);
    let rule = stored_rule(a, "spindle_temp_c", at);
    store.insert_rule(&rule, 10, None).await.unwrap();
    let key = RuleStateKey {
        tenant_id: a,
        rule_id: rule.rule_id,
        machine_id: "press-1".to_owned(),
    };
    let mut state = RuleState::new(rule.spec.condition.as_ref().unwrap(), at);
    state.active = true;
    state.last_ts = Some(at);
    let mut alert = Alert::open(&rule, "press-1", 81.5, at);
    // Events are written without a cursor: the store gives out the next of the tenant's log.
    let event = |kind, alert: &Alert| AlertEvent {
        cursor: 0,
        event_id: Uuid::now_v7(),
        kind,
        alert: alert.clone(),
        time: at + 7,
    };
    let mut opened = event(EventType::Opened, &alert);
    let first = AlertWrite {
        alerts: vec![alert.clone()],
        events: vec![opened.clone()],
        states: vec![(key.clone(), Some(state.clone()))],
        ..AlertWrite::default()
    };
    let written = store.write_alerts(&first).await.unwrap();
    assert_eq!(written.cursors, [1], "the tenant's first event");
    opened.cursor = 1;
    // The same write again (a retry after a commit the writer did not hear of) stores nothing
    // more and answers the same cursor.
    let retry = AlertWrite {
        retried: true,
        ..first.clone()
    };
    assert_eq!(store.write_alerts(&retry).await.unwrap().cursors, [1]);
    assert_eq!(store.unresolved_alerts().await.unwrap(), [alert.clone()]);
    assert_eq!(
        store.get_alert(a, alert.alert_id).await.unwrap(),
        Some(alert.clone())
    );
    assert_eq!(store.get_alert(b, alert.alert_id).await.unwrap(), None);
    assert_eq!(store.rule_states().await.unwrap(), [(key.clone(), state)]);
    assert_eq!(store.last_cursor(a).await.unwrap(), 1);
    assert_eq!(store.last_cursor(b).await.unwrap(), 0);

    // A second unresolved alert of the same rule and machine is refused by the database.
    let twin = Alert::open(&rule, "press-1", 90.0, at + 1);
    let refused = store
        .write_alerts(&AlertWrite {
            alerts: vec![twin],
            ..AlertWrite::default()
        })
        .await;
    assert!(
        refused.is_err(),
        "one unresolved alert per rule and machine"
    );

    alert.repeat(85.0, at + 1_000_000);
    let updated = event(EventType::Updated, &alert);
    assert!(alert.resolve(SYSTEM, at + 2_000_000));
    let mut resolved = event(EventType::Resolved, &alert);
    let newer = Alert::open(&rule, "press-2", 99.0, at + 3_000_000);
    // Another tenant's event in the same write starts its own log.
    let other_rule = stored_rule(b, "spindle_temp_c", at);
    let others = event(
        EventType::Opened,
        &Alert::open(&other_rule, "press-1", 1.0, at),
    );
    let written = store
        .write_alerts(&AlertWrite {
            alerts: vec![alert.clone(), newer.clone()],
            events: vec![updated, others, resolved.clone()],
            states: vec![(key, None)],
            ..AlertWrite::default()
        })
        .await
        .unwrap();
    assert_eq!(written.cursors, [2, 1, 3], "each tenant's own sequence");
    resolved.cursor = 3;
    assert_eq!(
        store.get_alert(a, alert.alert_id).await.unwrap(),
        Some(alert.clone())
    );
    assert_eq!(
        store.unresolved_alerts().await.unwrap(),
        std::slice::from_ref(&newer)
    );
    assert!(store.rule_states().await.unwrap().is_empty());
    assert_eq!(
        store.list_alerts(a, None, None, 10).await.unwrap(),
        [newer.clone(), alert.clone()],
        "newest first"
    );
    assert_eq!(
        store
            .list_alerts(a, Some(AlertState::Resolved), None, 10)
            .await
            .unwrap(),
        [alert.clone()]
    );
    assert_eq!(
        store
            .list_alerts(a, None, Some(newer.alert_id), 10)
            .await
            .unwrap(),
        [alert.clone()],
        "the page after"
    );
    let events = store.events_after(a, 0, 10).await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], opened);
    assert_eq!(events[2], resolved);
    assert_eq!(store.events_after(a, 2, 10).await.unwrap(), [resolved]);
    assert_eq!(store.events_after(b, 0, 10).await.unwrap().len(), 1);
    assert_eq!(store.last_cursor(a).await.unwrap(), 3);
    assert_eq!(store.last_cursor(b).await.unwrap(), 1);

    // Retention removes a tenant's events older than a time, and only those.
    assert_eq!(store.expire_events(b, at + 7).await.unwrap(), 0);
    assert_eq!(
        store.expire_events(a, at + 7).await.unwrap(),
        0,
        "not older"
    );
    assert_eq!(store.expire_events(a, at + 8).await.unwrap(), 3);
    assert!(store.events_after(a, 0, 10).await.unwrap().is_empty());
    assert_eq!(
        store.get_alert(a, alert.alert_id).await.unwrap(),
        Some(alert),
        "alerts stay"
    );
}

/// Two storage processes writing one tenant's events to one database at once: every cursor is
/// given out once, and none is skipped.
async fn two_writers_give_out_each_cursor_once(db: &TestDatabase) {
    let (one, two) = (open(db).await, open(db).await);
    let tenant = Uuid::now_v7();
    let rule = stored_rule(tenant, "temp", Micros(1_795_478_400_000_000));
    fn write(rule: &AlertRule, machine: usize) -> AlertWrite {
        AlertWrite {
            events: (0..5)
                .map(|_| AlertEvent {
                    cursor: 0,
                    event_id: Uuid::now_v7(),
                    kind: EventType::Opened,
                    alert: Alert::open(rule, &format!("press-{machine}"), 1.0, Micros(0)),
                    time: Micros(0),
                })
                .collect(),
            ..AlertWrite::default()
        }
    }
    let writer = |store: Arc<dyn AlertStore>, first: usize| {
        let rule = rule.clone();
        async move {
            let mut cursors = Vec::new();
            for machine in first..first + 20 {
                let written = store.write_alerts(&write(&rule, machine)).await.unwrap();
                cursors.extend(written.cursors);
            }
            cursors
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(writer(one.clone(), 0)),
        tokio::spawn(writer(two, 100))
    );
    let mut cursors: Vec<u64> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    cursors.sort_unstable();
    assert_eq!(cursors, (1..=200).collect::<Vec<u64>>());
    assert_eq!(one.last_cursor(tenant).await.unwrap(), 200);
    assert_eq!(one.events_after(tenant, 0, 1_000).await.unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_give_out_each_cursor_once_on_postgres() {
    two_writers_give_out_each_cursor_once(&TestDatabase::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_give_out_each_cursor_once_on_sqlite() {
    two_writers_give_out_each_cursor_once(&TestDatabase::sqlite()).await;
}

mfg_common::on_each_backend!(
    [
        postgres => &*open(&TestDatabase::postgres().await).await,
        sqlite => &*open(&TestDatabase::sqlite()).await,
    ],
    [
        rules_round_trip,
        alerts_events_and_states_round_trip,
    ],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_managed_over_grpc_with_validation_scopes_and_isolation() {
    let platform = Platform::start(Backend::Sqlite, 1_000).await;
    let admin = platform.key(tpb::Scope::Admin).await;
    let mut alerts = platform.alerts(&admin);
    let tenant_id = platform.tenant_id.clone();
    let create = |rule: pb::AlertRule| pb::CreateAlertRuleRequest {
        tenant_id: tenant_id.clone(),
        rule: Some(rule),
        ..Default::default()
    };

    let created = alerts
        .create_alert_rule(create(threshold_rule()))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert!(Uuid::parse_str(&created.rule_id).is_ok());
    assert_eq!(created.tenant_id, platform.tenant_id);
    assert_eq!(created.condition, threshold_rule().condition);
    assert_eq!(created.create_time, created.update_time);
    let get = |rule_id: &str| pb::GetAlertRuleRequest {
        tenant_id: platform.tenant_id.clone(),
        rule_id: rule_id.to_owned(),
    };
    let read = platform.alerts(&platform.read_key);
    let fetched = read
        .clone()
        .get_alert_rule(get(&created.rule_id))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(fetched, created, "a read key reads rules");

    // Every invalid field is named at once.
    let mut bad = threshold_rule();
    bad.metric = String::new();
    bad.severity = pb::Severity::Unspecified.into();
    bad.selector = Some(pb::MachineSelector {
        machine_ids: vec!["press-1".to_owned()],
        labels: [("line".to_owned(), "a".to_owned())].into(),
    });
    bad.condition = Some(pb::AlertCondition {
        kind: Some(Kind::AnyOf(pb::AnyOfCondition {
            conditions: vec![
                pb::AlertCondition {
                    kind: Some(Kind::Threshold(pb::ThresholdCondition {
                        comparison: pb::Comparison::Less.into(),
                        value: 10.0,
                        for_duration: None,
                        clear_value: Some(5.0),
                    })),
                },
                pb::AlertCondition {
                    kind: Some(Kind::RateOfChange(pb::RateOfChangeCondition {
                        comparison: pb::Comparison::Unspecified.into(),
                        per_second: 2.0,
                        window: seconds(0),
                    })),
                },
            ],
        })),
    });
    let status = alerts.create_alert_rule(create(bad)).await.unwrap_err();
    assert_eq!(
        violated(&status),
        [
            "rule.condition.any_of.conditions[1].rate_of_change.comparison",
            "rule.metric",
            "rule.selector",
            "rule.severity",
            "rule.condition.any_of.conditions[0].threshold.clear_value",
            "rule.condition.any_of.conditions[1].rate_of_change.window",
        ]
    );
    let no_condition = pb::AlertRule {
        condition: None,
        ..threshold_rule()
    };
    let status = alerts
        .create_alert_rule(create(no_condition))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), ["rule.condition"]);

    // An update changes only what its mask names, and the result must be valid as a whole.
    let update = |rule: pb::AlertRule, paths: &[&str]| pb::UpdateAlertRuleRequest {
        tenant_id: platform.tenant_id.clone(),
        rule_id: created.rule_id.clone(),
        rule: Some(rule),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let no_data = pb::AlertRule {
        metric: "ignored".to_owned(),
        condition: Some(pb::AlertCondition {
            kind: Some(Kind::NoData(pb::NoDataCondition {
                duration: seconds(120),
            })),
        }),
        severity: pb::Severity::Critical.into(),
        ..Default::default()
    };
    let updated = alerts
        .update_alert_rule(update(no_data.clone(), &["condition", "severity"]))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(updated.condition, no_data.condition);
    assert_eq!(updated.severity, i32::from(pb::Severity::Critical));
    assert_eq!(updated.metric, "spindle_temp_c", "not in the mask");
    assert_eq!(updated.create_time, created.create_time);
    let status = alerts
        .update_alert_rule(update(no_data.clone(), &["rule_id", "colour"]))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), ["update_mask", "update_mask"]);
    let status = alerts
        .update_alert_rule(update(pb::AlertRule::default(), &["metric"]))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), ["rule.metric"]);

    // Scopes: a read key may not write; a key of another tenant sees nothing.
    let status = read
        .clone()
        .create_alert_rule(create(threshold_rule()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let other = platform.other_tenant().await;
    let other_admin = platform.key_of(&other, tpb::Scope::Admin).await;
    let status = platform
        .alerts(&other_admin)
        .get_alert_rule(get(&created.rule_id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let mut others = platform.alerts(&other_admin);
    let their_rules = others
        .list_alert_rules(pb::ListAlertRulesRequest {
            tenant_id: other.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(their_rules.rules.is_empty());

    // Pages in creation order.
    for _ in 0..2 {
        alerts
            .create_alert_rule(create(threshold_rule()))
            .await
            .unwrap();
    }
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = alerts
            .list_alert_rules(pb::ListAlertRulesRequest {
                tenant_id: platform.tenant_id.clone(),
                page_size: 2,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.rules.into_iter().map(|r| r.rule_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], created.rule_id);
    assert!(listed.windows(2).all(|w| w[0] < w[1]));

    // Delete.
    let delete = pb::DeleteAlertRuleRequest {
        tenant_id: platform.tenant_id.clone(),
        rule_id: created.rule_id.clone(),
    };
    alerts.delete_alert_rule(delete.clone()).await.unwrap();
    let status = alerts.delete_alert_rule(delete).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = alerts
        .get_alert_rule(get(&created.rule_id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = alerts.get_alert_rule(get("not-a-uuid")).await.unwrap_err();
    assert_eq!(violated(&status), ["rule_id"]);
    platform.stop().await;
}
