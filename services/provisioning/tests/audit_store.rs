//! The audit log's table behaves the same on both backends: an event is appended once however
//! often it is sent, listed newest first by tenant, action (exactly, or its resource kind's)
//! and time, page by page, and dropped once past the retention.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_provisioning::{
    domain::audit::{AuditEvent, AuditFilter},
    store::{self, ProvisioningStore},
};
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn ProvisioningStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn ProvisioningStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn event(tenant: Option<Uuid>, action: &str, minute: i64) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        tenant,
        actor: "operator".to_owned(),
        action: action.to_owned(),
        resource: format!("resource/{minute}"),
        time: t0() + Duration::minutes(minute),
        request_id: format!("request-{minute}"),
        trace_id: String::new(),
        service: "provisioning".to_owned(),
    }
}

async fn events_are_appended_once_and_listed_by_filter(store: Arc<dyn ProvisioningStore>) {
    let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
    let events = [
        event(Some(acme), "provisioning_run.start", 0),
        event(Some(acme), "provisioning_run.retry", 1),
        event(Some(globex), "provisioning_run.start", 2),
        event(None, "onboarding_template.update", 3),
        event(Some(acme), "provisioning_runs.other", 4),
    ];
    assert_eq!(store.append_audit(&events).await.unwrap(), 5);
    assert_eq!(store.append_audit(&events[..2]).await.unwrap(), 0, "once");

    let list = async |filter: AuditFilter, before, limit| {
        let found = store.audit_events(&filter, before, limit).await.unwrap();
        found.into_iter().map(|e| e.resource).collect::<Vec<_>>()
    };
    let all = AuditFilter::default();
    assert_eq!(
        list(all.clone(), None, 10).await,
        [
            "resource/4",
            "resource/3",
            "resource/2",
            "resource/1",
            "resource/0"
        ],
        "newest first"
    );
    let acme_only = AuditFilter {
        tenant: Some(acme),
        ..all.clone()
    };
    assert_eq!(
        list(acme_only.clone(), None, 10).await,
        ["resource/4", "resource/1", "resource/0"]
    );
    let kind = AuditFilter {
        action: "provisioning_run".to_owned(),
        ..acme_only.clone()
    };
    assert_eq!(
        list(kind, None, 10).await,
        ["resource/1", "resource/0"],
        "a kind's actions, not another kind's that starts alike"
    );
    let exact = AuditFilter {
        action: "provisioning_run.retry".to_owned(),
        ..all.clone()
    };
    assert_eq!(list(exact, None, 10).await, ["resource/1"]);
    let window = AuditFilter {
        start: Some(t0() + Duration::minutes(1)),
        end: Some(t0() + Duration::minutes(3)),
        ..all.clone()
    };
    assert_eq!(list(window, None, 10).await, ["resource/2", "resource/1"]);
    let page = store.audit_events(&all, None, 2).await.unwrap();
    assert_eq!(
        list(all.clone(), Some(page[1].id), 2).await,
        ["resource/2", "resource/1"],
        "the next page"
    );

    let first = store.audit_events(&all, None, 10).await.unwrap();
    assert_eq!(first.last().unwrap(), &events[0], "kept as appended");
    let cut = t0() + Duration::minutes(2);
    assert_eq!(store.forget_audit_before(cut).await.unwrap(), 2);
    assert_eq!(list(all, None, 10).await.len(), 3);
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [events_are_appended_once_and_listed_by_filter],
);
