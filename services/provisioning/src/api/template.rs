//! The onboarding template over the contract: read, and changed after the storage service has
//! checked each rule, its refusals named as the template's fields.

use mfg_common::audit::Asker;
use mfg_common::{FieldViolation, error::field_violations};
use mfg_proto::provisioning::v1 as pb;
use tonic::Code;

use super::{Ready, convert::timestamp};
use crate::{
    domain::template::{Template, TemplateField},
    error::{ProvisioningError, Result},
};

/// How many times an update is tried when other changes keep coming first.
const ATTEMPTS: usize = 3;

impl Ready {
    /// Changes the `mask`'s fields of the template to `update`'s, once the storage service
    /// accepts each rule as it would accept one to create.
    pub(super) async fn update_template(
        &self,
        update: Option<pb::OnboardingTemplate>,
        mask: &[String],
        asker: &Asker,
    ) -> Result<Template> {
        let update = update.ok_or_else(|| ProvisioningError::invalid("template", "is required"))?;
        let fields = TemplateField::of_mask(mask)?;
        let update = Template {
            shared: update.shared_alert_rules,
            dedicated: update.dedicated_alert_rules,
            update_time: None,
        };
        self.check_rules(&update, &fields).await?;
        for _ in 0..ATTEMPTS {
            let current = self.store.template().await?;
            let mut changed = current.changed(update.clone(), &fields)?;
            let at = mfg_common::clock::micros(self.clock.system_now());
            let at = current.update_time.map_or(at, |before| {
                at.max(before + chrono::Duration::microseconds(1))
            });
            let resource = "onboarding-template".to_owned();
            let event = self.event(asker, None, "onboarding_template.update", resource);
            if self
                .store
                .set_template(&changed, current.update_time, at, Some(&event))
                .await?
            {
                changed.update_time = Some(at);
                return Ok(changed);
            }
        }
        Err(ProvisioningError::Aborted(
            "the onboarding template kept changing under this update; send it again".to_owned(),
        ))
    }

    /// Asks the storage service to check every rule of the fields changed; INVALID_ARGUMENT
    /// names each refused field in the template (`template.shared_alert_rules[2].metric`).
    async fn check_rules(&self, update: &Template, fields: &[TemplateField]) -> Result<()> {
        let mut violations = Vec::new();
        for &field in fields {
            for (n, rule) in update.field(field).iter().enumerate() {
                let Err(status) = self.steps.check_rule(rule.clone()).await else {
                    continue;
                };
                if status.code() != Code::InvalidArgument {
                    return Err(ProvisioningError::Upstream(format!(
                        "the storage service could not check the rules: {}",
                        status.message()
                    )));
                }
                let at = format!("template.{}[{n}]", field.name());
                violations.extend(field_violations(&status).into_iter().map(|v| {
                    let field = match v.field.strip_prefix("rule") {
                        Some(rest) => format!("{at}{rest}"),
                        None => at.clone(),
                    };
                    FieldViolation::new(field, v.description)
                }));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ProvisioningError::InvalidArgument(violations))
        }
    }
}

/// The template in the contract.
pub(super) fn template(template: Template) -> pb::OnboardingTemplate {
    pb::OnboardingTemplate {
        shared_alert_rules: template.shared,
        dedicated_alert_rules: template.dedicated,
        update_time: template.update_time.map(timestamp),
    }
}
