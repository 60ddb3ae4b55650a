//! `mfg bench onboarding` on a small scale: tenants created through the gateway become active
//! by their provisioning runs, one at a time and several at once, and every call succeeds.

use mfg_bench::onboarding_bench::{OnboardingBench, run};

#[tokio::test]
async fn on_sqlite() {
    run(OnboardingBench {
        database_url: None,
        sequential: 2,
        at_once: 5,
    })
    .await
    .expect("every tenant becomes active");
}
