//! Migrations on databases made by earlier versions: the data they hold is carried forward.

use std::collections::BTreeMap;

use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_tenant::{
    domain::{Limits, Plan, Retention, Tenant, TenantId, TenantState, timestamp},
    store,
};

/// The last migration before hot retention classes.
const BEFORE_CLASSES: i64 = 20261124000001;

fn tenant(name: &str, hot_days: u32) -> Tenant {
    let now = timestamp(std::time::SystemTime::now());
    Tenant {
        id: TenantId::generate(),
        name: name.parse().unwrap(),
        display_name: name.to_owned(),
        plan: Plan::Shared,
        state: TenantState::Active,
        labels: BTreeMap::new(),
        limits: Limits {
            max_machines: 10,
            ingest_readings_per_second: 1000,
            api_requests_per_second: 10,
        },
        retention: Retention {
            hot_days,
            ..Retention::DEFAULT
        },
        monthly_budget_usd: 0.0,
        create_time: now,
        update_time: now,
        delete_time: None,
        onboarding: mfg_tenant::domain::Onboarding::done(),
        revision: 0,
    }
}

/// A tenant's hot retention stored before the classes rounds up to its class, and one
/// already on a class (or beyond the longest, which validation refuses) is kept.
async fn hot_retention_rounds_up_to_its_class(db: TestDatabase, migrator: sqlx::migrate::Migrator) {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    match &pool {
        db::DbPool::Postgres(pg) => migrator.run_to(BEFORE_CLASSES, pg).await,
        db::DbPool::Sqlite(lite) => migrator.run_to(BEFORE_CLASSES, lite).await,
    }
    .expect("the earlier version's migrations");
    let odd = tenant("acme", 10);
    let on_class = tenant("globex", 90);
    let longest = tenant("initech", 36_500);
    for tenant in [&odd, &on_class, &longest] {
        insert_as_before_classes(&pool, tenant).await;
    }

    let store = store::open(pool);
    store.migrate().await.expect("migrate to this version");
    let hot_days = async |tenant: &Tenant| {
        let stored = store.get_tenant(tenant.id).await.unwrap().unwrap();
        stored.retention.hot_days
    };
    assert_eq!(hot_days(&odd).await, 14);
    assert_eq!(hot_days(&on_class).await, 90);
    assert_eq!(hot_days(&longest).await, 36_500);

    // Tenants stored before revisions are numbered in creation order, and changes go on from
    // the last of them.
    let listed: Vec<_> = store.list_tenant_changes(0, 10).await.unwrap();
    let revisions: Vec<_> = listed.iter().map(|t| (t.id, t.revision)).collect();
    assert_eq!(revisions, [(odd.id, 1), (on_class.id, 2), (longest.id, 3)]);
    let renamed = store
        .update_tenant(odd.id, &|t: Tenant| Ok(t), None)
        .await
        .unwrap();
    assert_eq!(renamed.revision, 4);
}

/// Inserts a tenant as the version before the classes did: its columns then.
async fn insert_as_before_classes(pool: &db::DbPool, tenant: &Tenant) {
    const INSERT: &str = "INSERT INTO tenants (id, name, display_name, plan, state, labels, \
         max_machines, ingest_readings_per_second, api_requests_per_second, hot_days, warm_days, \
         cold_days, monthly_budget_usd, create_time, update_time, delete_time) \
         VALUES ($1, $2, $3, 'shared', 'active', $4, 10, 1000, 10, $5, $6, $7, 0, $8, $8, NULL)";
    let labels = sqlx::types::Json(&tenant.labels);
    let days = |d: u32| i64::from(d);
    let retention = tenant.retention;
    match pool {
        db::DbPool::Postgres(pg) => sqlx::query(INSERT)
            .bind(tenant.id.0)
            .bind(tenant.name.as_str())
            .bind(tenant.display_name.as_str())
            .bind(labels)
            .bind(days(retention.hot_days))
            .bind(days(retention.warm_days))
            .bind(days(retention.cold_days))
            .bind(tenant.create_time)
            .execute(pg)
            .await
            .map(drop),
        db::DbPool::Sqlite(lite) => sqlx::query(INSERT)
            .bind(tenant.id.0)
            .bind(tenant.name.as_str())
            .bind(tenant.display_name.as_str())
            .bind(labels)
            .bind(days(retention.hot_days))
            .bind(days(retention.warm_days))
            .bind(days(retention.cold_days))
            .bind(tenant.create_time)
            .execute(lite)
            .await
            .map(drop),
    }
    .expect("insert");
}

#[tokio::test]
async fn hot_retention_rounds_up_to_its_class_on_postgres() {
    hot_retention_rounds_up_to_its_class(
        TestDatabase::postgres().await,
        db::migrator(store::migrations::POSTGRES, None),
    )
    .await;
}

#[tokio::test]
async fn hot_retention_rounds_up_to_its_class_on_sqlite() {
    hot_retention_rounds_up_to_its_class(
        TestDatabase::sqlite(),
        db::migrator(store::migrations::SQLITE, None),
    )
    .await;
}
