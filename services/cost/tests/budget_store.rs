//! The conformance suite of `CostStore`'s budgets: thresholds, and the breaches the budget
//! check claims, raises and ends, the same against PostgreSQL and SQLite.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mfg_common::testing::TestDatabase;
use mfg_cost::{
    domain::budget::{Basis, Breach},
    store::CostStore,
};
use support::{at, open};
use uuid::Uuid;

async fn budget_thresholds_are_kept_per_tenant(store: Arc<dyn CostStore>) {
    let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(store.budget_thresholds(acme).await.unwrap(), None);
    store
        .set_budget(acme, Some(&[0.5, 1.0]), at(4, 10, 0), None)
        .await
        .unwrap();
    store
        .set_budget(acme, Some(&[0.25, 0.9]), at(4, 11, 0), None)
        .await
        .unwrap();
    assert_eq!(
        store.budget_thresholds(acme).await.unwrap(),
        Some((vec![0.25, 0.9], at(4, 11, 0)))
    );
    assert_eq!(store.budget_thresholds(globex).await.unwrap(), None);
}

async fn a_breach_is_claimed_once_and_taken_over_when_its_claim_lapses(store: Arc<dyn CostStore>) {
    let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
    let breach = |tenant, month: &str, threshold: &str| Breach {
        tenant,
        month: month.to_owned(),
        basis: Basis::Actual,
        threshold: threshold.to_owned(),
    };
    let half = breach(acme, "2026-12", "0.5");
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let lease = Duration::minutes(1);
    let claim = async |breach: &Breach, id, now: DateTime<Utc>| {
        store
            .claim_breach(breach, id, now, now - lease)
            .await
            .unwrap()
    };
    // The first claim wins; another within the lease does not; after it, the claim is taken
    // over under the first id.
    assert_eq!(claim(&half, first, at(3, 10, 0)).await, Some(first));
    assert_eq!(claim(&half, second, at(3, 10, 0)).await, None);
    assert_eq!(claim(&half, second, at(3, 10, 2)).await, Some(first));
    assert_eq!(claim(&half, second, at(3, 10, 2)).await, None);
    assert!(store.raised_breaches("2026-12").await.unwrap().is_empty());
    // Once raised, it is never claimed again.
    store.breach_raised(&half).await.unwrap();
    assert_eq!(claim(&half, second, at(3, 12, 0)).await, None);
    assert_eq!(
        store.raised_breaches("2026-12").await.unwrap(),
        std::slice::from_ref(&half)
    );
    let forecast = Breach {
        basis: Basis::Forecast,
        ..half.clone()
    };
    assert_eq!(claim(&forecast, second, at(3, 12, 0)).await, Some(second));
    let other = breach(globex, "2027-01", "1");
    claim(&other, Uuid::now_v7(), at(3, 12, 0)).await;

    // A month's breaches end once, whether raised or not; later months' stay.
    assert!(store.unended_breaches("2026-12").await.unwrap().is_empty());
    assert_eq!(store.unended_breaches("2027-01").await.unwrap(), [acme]);
    store.end_breaches(acme, "2027-01").await.unwrap();
    assert!(store.unended_breaches("2027-01").await.unwrap().is_empty());
    assert_eq!(store.unended_breaches("2027-02").await.unwrap(), [globex]);

    store
        .set_budget(globex, Some(&[0.9]), at(3, 12, 0), None)
        .await
        .unwrap();
    let all = store.all_budget_thresholds().await.unwrap();
    assert_eq!(all.get(&globex), Some(&vec![0.9]));
    assert_eq!(all.get(&acme), None);
}

mfg_common::on_each_backend!(
    [
        postgres => open(&TestDatabase::postgres().await).await,
        sqlite => open(&TestDatabase::sqlite()).await,
    ],
    [
        budget_thresholds_are_kept_per_tenant,
        a_breach_is_claimed_once_and_taken_over_when_its_claim_lapses,
    ],
);
