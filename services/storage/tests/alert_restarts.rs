//! Alerts across restarts and failures: pending timers and rate windows continue after a
//! restart of the storage service, a deleted machine's alerts are resolved, and a crash of the
//! database loses no alert change and doubles none, with fast commit too.

mod support;

use std::time::Duration;

use mfg_common::{
    clock::ManualClock,
    testing::{PrivatePostgres, Shutdown, TestDatabase},
};
use mfg_proto::{
    storage::v1::{self as pb, alert_condition::Kind},
    tenant::v1 as tpb,
};
use support::{Backend, Platform, alerts::*, now_micros, reading};
use tonic::Code;

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
    // 5/s at t + 2 s, or 10/3 at t + 3 s when both repeats were written in one group (one
    // event says both); without the refilled window the slope would be 0 and it would resolve.
    let last = alert(&updated).last_value;
    assert!(last == 5.0 || last == 10.0 / 3.0, "{updated:?}");
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

/// A window with nothing to save (no alert, no timer) is rebuilt after a restart too.
async fn a_rate_of_change_window_with_no_saved_state_is_rebuilt_after_a_restart(backend: Backend) {
    let mut platform = Platform::start(backend, 100_000).await;
    let rate = pb::AlertCondition {
        kind: Some(Kind::RateOfChange(pb::RateOfChangeCondition {
            comparison: pb::Comparison::Greater.into(),
            per_second: 5.0,
            window: Some(pbjson_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        })),
    };
    create_rule(&platform, rate).await;
    let t = now_micros() / S * S - 120 * S;
    send(&platform, &[(t, 100.0), (t + S, 101.0)]).await;
    platform.restart_storage().await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    // 100 → 150 in 3 s is 16.7/s: the window holds t and t + 1 s from before the restart.
    send(&platform, &[(t + 3 * S, 150.0)]).await;
    let opened = subscriber.next().await;
    assert_eq!(
        opened.r#type,
        i32::from(pb::AlertEventType::Opened),
        "{opened:?}"
    );
    drop(subscriber);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_window_with_no_saved_state_is_rebuilt_on_postgres() {
    a_rate_of_change_window_with_no_saved_state_is_rebuilt_after_a_restart(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_window_with_no_saved_state_is_rebuilt_on_sqlite() {
    a_rate_of_change_window_with_no_saved_state_is_rebuilt_after_a_restart(Backend::Sqlite).await;
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
    // Next in the tenant's log; with fast commit, the first cursor after the server's
    // restart is past the time in µs, above any a crash may have lost.
    assert!(resolved.cursor > opened.cursor, "{resolved:?}");
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
async fn with_fast_commit_a_database_crash_loses_no_event_a_subscriber_saw() {
    let postgres = PrivatePostgres::start().await;
    let storage_db = TestDatabase::postgres_on(&postgres.url()).await;
    let storage_url = storage_db.url.clone();
    let mut platform = Platform::start_on(
        Backend::Sqlite,
        storage_db,
        100_000,
        mfg_common::clock::system_clock(),
        |mut config| {
            config.options.alert_commit = mfg_storage::AlertCommit::Fast;
            config
        },
    )
    .await;
    create_rule(&platform, threshold(50.0, None, 0)).await;
    let mut subscriber = Subscriber::open(&platform, &platform.read_key, 0).await;
    let t = now_micros() / S * S - 60 * S;
    send(&platform, &[(t, 60.0)]).await;
    let opened = subscriber.next().await;
    let alert_id = alert(&opened).alert_id.clone();
    let admin = platform.key(tpb::Scope::Admin).await;
    let db = sqlx::PgPool::connect(&storage_url).await.unwrap();
    platform
        .alerts(&admin)
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            tenant_id: platform.tenant_id.clone(),
            alert_id: alert_id.clone(),
        })
        .await
        .unwrap();
    let acknowledged = subscriber.next().await;
    assert_eq!(
        acknowledged.r#type,
        i32::from(pb::AlertEventType::Acknowledged)
    );

    // The database server crashes before its log is flushed past the acknowledgement, which
    // the subscriber has seen. Whether this server would have flushed it by chance or not,
    // the database is made to look as if it had not: the event and the alert's change gone
    // (removed just before the crash, before the journal's next check could see them flushed).
    sqlx::query("DELETE FROM alert_events WHERE cursor = $1")
        .bind(i64::try_from(acknowledged.cursor).unwrap())
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE alerts SET state = 'open', acknowledged_by = NULL, acknowledge_time = NULL",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let crashed = u64::try_from(now_micros()).unwrap();
    postgres.stop(Shutdown::Immediate);
    postgres.start_again();

    // The journal's next write (or its check, every second) finds the server restarted and
    // writes again what it had not seen flushed: the acknowledgement, then the resolve.
    platform
        .alerts(&admin)
        .resolve_alert(pb::ResolveAlertRequest {
            tenant_id: platform.tenant_id.clone(),
            alert_id: alert_id.clone(),
        })
        .await
        .unwrap();
    let resolved = subscriber.next().await;
    assert_eq!(resolved.r#type, i32::from(pb::AlertEventType::Resolved));
    assert!(resolved.cursor > acknowledged.cursor, "{resolved:?}");
    // Written again before the resolve was published, not left to the service's next stop.
    let db = sqlx::PgPool::connect(&storage_url).await.unwrap();
    let events: Vec<i64> = sqlx::query_scalar("SELECT cursor FROM alert_events ORDER BY cursor")
        .fetch_all(&db)
        .await
        .unwrap();
    let cursors = [opened.cursor, acknowledged.cursor, resolved.cursor];
    assert_eq!(events, cursors.map(|c| i64::try_from(c).unwrap()));
    db.close().await;

    drop(subscriber);
    platform.restart_storage().await;
    let mut resumed = Subscriber::open(&platform, &platform.read_key, opened.cursor).await;
    assert_eq!(resumed.next().await.cursor, acknowledged.cursor);
    assert_eq!(resumed.next().await.cursor, resolved.cursor);
    let alerts = list(&platform, &platform.read_key, None).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].state, i32::from(pb::AlertState::Resolved));
    assert!(!alerts[0].acknowledged_by.is_empty(), "{alerts:?}");
    // The first write after the database server's restart moved the tenant's cursors past
    // the time (µs) then; a restart of the storage service loses none, so they go on from there.
    assert!(resolved.cursor >= crashed, "{resolved:?}");
    send(&platform, &[(t + S, 70.0)]).await;
    let reopened = resumed.next().await;
    assert_eq!(reopened.r#type, i32::from(pb::AlertEventType::Opened));
    assert_eq!(reopened.cursor, resolved.cursor + 1, "{reopened:?}");
    drop(resumed);
    platform.stop().await;
}
