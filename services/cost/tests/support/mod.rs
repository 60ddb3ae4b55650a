//! What the cost service's integration tests share: a migrated store on a test database, and
//! moments of December 2026.

use std::sync::Arc;

use chrono::{DateTime, TimeZone as _, Utc};
use mfg_common::{config::DatabaseArgs, db, testing::TestDatabase};
use mfg_cost::store::{self, CostStore};

/// The cost store on `db`, migrated (twice: migrations are idempotent).
pub async fn open(db: &TestDatabase) -> Arc<dyn CostStore> {
    let pool = db::connect(&DatabaseArgs::new(&db.url))
        .await
        .expect("connect");
    let store: Arc<dyn CostStore> = Arc::from(store::open(pool));
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrations are idempotent");
    store
}

/// A moment of December 2026, UTC.
pub fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, hour, minute, 0)
        .unwrap()
}
