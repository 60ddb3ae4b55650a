//! The demo's alert rules: a hot spindle (`temperature_c` above 75, cleared below 65), strong
//! vibration (`vibration_mm_s` above 8 for 5 s) and a silent machine (no `part_count` for 2
//! minutes; the simulated outages last 30–180 s). They are the onboarding template of both
//! plans, so each demo tenant is given them by its onboarding run, as an operator's tenants
//! would be.

use anyhow::Context as _;
use mfg_common::grpc::lazy_channel;
use mfg_proto::{
    provisioning::v1::{self as ppb, provisioning_service_client::ProvisioningServiceClient},
    storage::v1::{self as pb, alert_condition::Kind, alert_service_client::AlertServiceClient},
};

use crate::{simulate::SimTenant, up::Addresses};

/// The demo's three rules.
fn alert_rules() -> Vec<pb::AlertRule> {
    let threshold = |value: f64, for_s: i64, clear: Option<f64>| {
        Kind::Threshold(pb::ThresholdCondition {
            comparison: pb::Comparison::Greater.into(),
            value,
            for_duration: Some(seconds(for_s)),
            clear_value: clear,
        })
    };
    let silent = Kind::NoData(pb::NoDataCondition {
        duration: Some(seconds(120)),
    });
    [
        (
            "Spindle too hot",
            "temperature_c",
            pb::Severity::Major,
            threshold(75.0, 0, Some(65.0)),
        ),
        (
            "Strong vibration",
            "vibration_mm_s",
            pb::Severity::Minor,
            threshold(8.0, 5, None),
        ),
        (
            "Machine silent",
            "part_count",
            pb::Severity::Warning,
            silent,
        ),
    ]
    .into_iter()
    .map(|(name, metric, severity, condition)| pb::AlertRule {
        display_name: name.to_owned(),
        metric: metric.to_owned(),
        severity: severity.into(),
        condition: Some(pb::AlertCondition {
            kind: Some(condition),
        }),
        ..Default::default()
    })
    .collect()
}

fn seconds(seconds: i64) -> pbjson_types::Duration {
    pbjson_types::Duration { seconds, nanos: 0 }
}

/// Makes the demo's rules the onboarding template of both plans, unless the operator set one.
pub async fn set_onboarding_template(addresses: &Addresses) -> anyhow::Result<()> {
    let mut provisioning = ProvisioningServiceClient::new(
        lazy_channel(&format!("http://{}", addresses.provisioning))?
            .with_bearer(addresses.operator_token.expose())?,
    );
    let template = provisioning
        .get_onboarding_template(ppb::GetOnboardingTemplateRequest {})
        .await?
        .into_inner()
        .template
        .unwrap_or_default();
    if template.update_time.is_some() {
        return Ok(());
    }
    provisioning
        .update_onboarding_template(ppb::UpdateOnboardingTemplateRequest {
            template: Some(ppb::OnboardingTemplate {
                shared_alert_rules: alert_rules(),
                dedicated_alert_rules: alert_rules(),
                update_time: None,
            }),
            update_mask: None,
        })
        .await
        .context("cannot set the onboarding template")?;
    Ok(())
}

/// Gives each tenant that has no alert rule the demo's: one onboarded before the template
/// held them (a data directory from an earlier version), or without onboarding.
pub async fn give_tenants_without_rules(
    addresses: &Addresses,
    tenants: &[SimTenant],
) -> anyhow::Result<()> {
    let mut alerts = AlertServiceClient::new(
        lazy_channel(&format!("http://{}", addresses.storage))?
            .with_bearer(addresses.operator_token.expose())?,
    );
    for tenant in tenants {
        let existing = alerts
            .list_alert_rules(pb::ListAlertRulesRequest {
                tenant_id: tenant.id.clone(),
                page_size: 1,
                page_token: String::new(),
            })
            .await?
            .into_inner();
        if !existing.rules.is_empty() {
            continue;
        }
        for rule in alert_rules() {
            let name = rule.display_name.clone();
            alerts
                .create_alert_rule(pb::CreateAlertRuleRequest {
                    tenant_id: tenant.id.clone(),
                    rule: Some(rule),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("cannot create the rule `{name}` of {}", tenant.name))?;
        }
    }
    Ok(())
}
