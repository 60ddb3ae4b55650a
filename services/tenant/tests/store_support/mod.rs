//! What the tenant store's suites share: a store migrated on a test database, and a tenant.

#![allow(dead_code)]

use std::{collections::BTreeMap, sync::Arc};

use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_tenant::{
    domain::{Limits, Plan, Retention, Tenant, TenantId, TenantState, timestamp},
    store::{self, TenantStore},
};

pub async fn open(db: &TestDatabase) -> Arc<dyn TenantStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn TenantStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrations are idempotent");
    store
}

pub fn tenant(name: &str, max_machines: u32) -> Tenant {
    let now = timestamp(std::time::SystemTime::now());
    Tenant {
        id: TenantId::generate(),
        name: name.parse().unwrap(),
        display_name: format!("{name} inc"),
        plan: Plan::Shared,
        state: TenantState::Active,
        labels: BTreeMap::from([("region".to_owned(), "eu".to_owned())]),
        limits: Limits {
            max_machines,
            ingest_readings_per_second: 1000,
            api_requests_per_second: 10,
        },
        retention: Retention::DEFAULT,
        monthly_budget_usd: 1234.5,
        create_time: now,
        update_time: now,
        delete_time: None,
        onboarding: mfg_tenant::domain::Onboarding::done(),
        revision: 0,
    }
}
