//! The onboarding template: what a new tenant of each plan is given. Today its default alert
//! rules, which the `default_alert_rules` step creates.
//!
//! The rules are kept as the storage service's contract has them: this service only hands
//! them on, and the storage service checks them (the API asks it to before a change is kept).
//! Each rule a run creates gets an id derived from the step's key and its place in
//! the template ([`rule_id`]), so creating it again finds it, and undoing the step finds every
//! rule it may have created whatever the template says since.

use chrono::{DateTime, Utc};
use mfg_proto::{provisioning::v1 as pb, storage::v1::AlertRule, tenant::v1::Plan};
use prost::Message as _;
use uuid::Uuid;

use crate::error::{ProvisioningError, Result};

/// The most rules a plan's template holds.
pub const MOST_RULES: usize = 20;

/// The onboarding template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    /// The alert rules of a new tenant of the shared plan.
    pub shared: Vec<AlertRule>,
    /// The alert rules of a new tenant of the dedicated plan.
    pub dedicated: Vec<AlertRule>,
    /// When it was last changed; `None` while it never was.
    pub update_time: Option<DateTime<Utc>>,
}

/// A field of the template an update may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateField {
    /// `shared_alert_rules`.
    SharedAlertRules,
    /// `dedicated_alert_rules`.
    DedicatedAlertRules,
}

impl TemplateField {
    /// The fields an update mask's paths name: `*` (or no path) for all. An unknown path is
    /// INVALID_ARGUMENT on `update_mask`.
    pub fn of_mask(paths: &[String]) -> Result<Vec<Self>> {
        let all = vec![Self::SharedAlertRules, Self::DedicatedAlertRules];
        if paths.is_empty() {
            return Ok(all);
        }
        let mut fields = Vec::new();
        for path in paths {
            match path.as_str() {
                "*" => return Ok(all),
                "shared_alert_rules" | "sharedAlertRules" => fields.push(Self::SharedAlertRules),
                "dedicated_alert_rules" | "dedicatedAlertRules" => {
                    fields.push(Self::DedicatedAlertRules);
                }
                other => {
                    return Err(ProvisioningError::invalid(
                        "update_mask",
                        format!(
                            "`{other}` is not a field of the template: name shared_alert_rules, \
                             dedicated_alert_rules or `*`"
                        ),
                    ));
                }
            }
        }
        Ok(fields)
    }

    /// The field's name in the contract.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SharedAlertRules => "shared_alert_rules",
            Self::DedicatedAlertRules => "dedicated_alert_rules",
        }
    }
}

impl Template {
    /// The alert rules a new tenant of `plan` is given (the shared plan's when it has none).
    pub fn rules(&self, plan: Plan) -> &[AlertRule] {
        match plan {
            Plan::Dedicated => &self.dedicated,
            Plan::Shared | Plan::Unspecified => &self.shared,
        }
    }

    /// This template with `fields` taken from `update`, each rule stripped of what its
    /// creation sets (id, tenant, times). A list longer than [`MOST_RULES`] is
    /// INVALID_ARGUMENT on it.
    pub fn changed(&self, update: Self, fields: &[TemplateField]) -> Result<Self> {
        let mut changed = self.clone();
        let Self {
            shared, dedicated, ..
        } = update;
        for field in fields {
            let (list, target) = match field {
                TemplateField::SharedAlertRules => (&shared, &mut changed.shared),
                TemplateField::DedicatedAlertRules => (&dedicated, &mut changed.dedicated),
            };
            if list.len() > MOST_RULES {
                return Err(ProvisioningError::invalid(
                    format!("template.{}", field.name()),
                    format!(
                        "holds {} rules; a plan's template holds at most {MOST_RULES}",
                        list.len()
                    ),
                ));
            }
            *target = list.iter().cloned().map(as_template_rule).collect();
        }
        Ok(changed)
    }

    /// The rules of `field`.
    pub fn field(&self, field: TemplateField) -> &[AlertRule] {
        match field {
            TemplateField::SharedAlertRules => &self.shared,
            TemplateField::DedicatedAlertRules => &self.dedicated,
        }
    }

    /// The template as the store keeps it: its rules, encoded as the contract's message.
    pub fn encode(&self) -> Vec<u8> {
        pb::OnboardingTemplate {
            shared_alert_rules: self.shared.clone(),
            dedicated_alert_rules: self.dedicated.clone(),
            update_time: None,
        }
        .encode_to_vec()
    }

    /// The template the store kept as `bytes`, changed last at `update_time`.
    pub fn decode(bytes: &[u8], update_time: DateTime<Utc>) -> Result<Self> {
        let stored = pb::OnboardingTemplate::decode(bytes).map_err(|error| {
            ProvisioningError::Internal(format!("the stored onboarding template: {error}"))
        })?;
        Ok(Self {
            shared: stored.shared_alert_rules,
            dedicated: stored.dedicated_alert_rules,
            update_time: Some(update_time),
        })
    }
}

/// A rule without what its creation sets.
fn as_template_rule(rule: AlertRule) -> AlertRule {
    AlertRule {
        rule_id: String::new(),
        tenant_id: String::new(),
        create_time: None,
        update_time: None,
        ..rule
    }
}

/// The id of the `n`th rule that the step keyed `step_key` creates: the same for every attempt
/// of the step, and for no other step.
pub fn rule_id(step_key: &str, n: usize) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:mfg:provisioning:{step_key}/alert-rule/{n}").as_bytes(),
    )
}

/// The ids of every rule that the step keyed `step_key` may have created.
pub fn rule_ids(step_key: &str) -> impl Iterator<Item = Uuid> + '_ {
    (0..MOST_RULES).map(move |n| rule_id(step_key, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: &str) -> AlertRule {
        AlertRule {
            rule_id: "set by creation".to_owned(),
            metric: metric.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn an_update_replaces_the_lists_it_names_and_strips_what_creation_sets() {
        let before = Template {
            shared: vec![rule("a")],
            dedicated: vec![rule("b")],
            update_time: None,
        };
        let update = Template {
            shared: vec![rule("c"), rule("d")],
            dedicated: Vec::new(),
            update_time: None,
        };
        let fields = TemplateField::of_mask(&["sharedAlertRules".to_owned()]).unwrap();
        let after = before.changed(update, &fields).unwrap();
        let metrics: Vec<_> = after.shared.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(metrics, ["c", "d"]);
        assert!(after.shared.iter().all(|r| r.rule_id.is_empty()));
        assert_eq!(after.dedicated, before.dedicated, "not named, kept");
        assert_eq!(after.rules(Plan::Dedicated), &before.dedicated[..]);
    }

    #[test]
    fn a_template_too_long_or_an_unknown_path_names_the_field() {
        let long = Template {
            dedicated: vec![rule("a"); MOST_RULES + 1],
            ..Template::default()
        };
        let fields = TemplateField::of_mask(&["*".to_owned()]).unwrap();
        let error = Template::default().changed(long, &fields).unwrap_err();
        assert!(
            matches!(&error, ProvisioningError::InvalidArgument(v) if v[0].field == "template.dedicated_alert_rules"),
            "{error:?}"
        );
        let error = TemplateField::of_mask(&["rules".to_owned()]).unwrap_err();
        assert!(
            matches!(&error, ProvisioningError::InvalidArgument(v) if v[0].field == "update_mask"),
            "{error:?}"
        );
    }

    #[test]
    fn rule_ids_are_the_steps_own() {
        let ids: Vec<_> = rule_ids("run/default_alert_rules").collect();
        assert_eq!(ids[3], rule_id("run/default_alert_rules", 3));
        assert_ne!(ids[0], rule_id("other/default_alert_rules", 0));
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            MOST_RULES
        );
    }

    #[test]
    fn the_template_is_kept_as_the_contract_encodes_it() {
        let template = Template {
            shared: vec![rule("a")],
            dedicated: vec![rule("b"), rule("c")],
            update_time: None,
        };
        let at = DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap();
        let kept = Template::decode(&template.encode(), at).unwrap();
        assert_eq!(
            kept,
            Template {
                update_time: Some(at),
                ..template
            }
        );
    }
}
