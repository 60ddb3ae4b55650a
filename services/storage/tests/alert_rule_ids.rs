//! A rule created under an id its caller chose (as onboarding does) is created once, and
//! `validate_only` checks a rule without creating it; on both backends.

mod support;

use mfg_proto::{storage::v1 as pb, tenant::v1 as tpb};
use support::{
    Backend, Platform,
    alerts::{threshold_rule, violated},
};
use tonic::Code;
use uuid::Uuid;

/// A rule created under an id its caller chose is created once: the same id again is
/// ALREADY_EXISTS, so a caller may retry. `validate_only` checks a rule as a create would and
/// creates nothing. On both backends.
async fn a_chosen_id_is_created_once_and_validate_only_creates_nothing(backend: Backend) {
    let platform = Platform::start(backend, 1_000).await;
    let admin = platform.key(tpb::Scope::Admin).await;
    let mut alerts = platform.alerts(&admin);
    let chosen = Uuid::now_v7().to_string();
    let create =
        |rule_id: &str, validate_only: bool, rule: pb::AlertRule| pb::CreateAlertRuleRequest {
            tenant_id: platform.tenant_id.clone(),
            rule: Some(rule),
            rule_id: rule_id.to_owned(),
            validate_only,
        };
    let count = |mut alerts: pb::alert_service_client::AlertServiceClient<_>| {
        let tenant_id = platform.tenant_id.clone();
        async move {
            let listed = alerts
                .list_alert_rules(pb::ListAlertRulesRequest {
                    tenant_id,
                    ..Default::default()
                })
                .await
                .unwrap();
            listed.into_inner().rules.len()
        }
    };

    let checked = alerts
        .create_alert_rule(create(&chosen, true, threshold_rule()))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(checked.rule_id, chosen, "the rule it would create");
    assert_eq!(
        count(alerts.clone()).await,
        0,
        "validate_only creates nothing"
    );
    let mut bad = threshold_rule();
    bad.metric = String::new();
    let refused = alerts
        .create_alert_rule(create("", true, bad))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated(&refused), ["rule.metric"]);

    let created = alerts
        .create_alert_rule(create(&chosen, false, threshold_rule()))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(created.rule_id, chosen);
    let again = alerts
        .create_alert_rule(create(&chosen, false, threshold_rule()))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    assert_eq!(count(alerts.clone()).await, 1, "created once");

    let not_an_id = alerts
        .create_alert_rule(create("press-1", false, threshold_rule()))
        .await
        .unwrap_err();
    assert_eq!(violated(&not_an_id), ["rule_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_id_is_created_once_on_sqlite() {
    a_chosen_id_is_created_once_and_validate_only_creates_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_id_is_created_once_on_postgres() {
    a_chosen_id_is_created_once_and_validate_only_creates_nothing(Backend::Postgres).await;
}
