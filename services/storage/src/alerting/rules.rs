//! The operations on alert rules: create, read, list, change and delete, for a tenant that
//! exists and is not deleted. Rules are validated in full on every write, so a stored rule is
//! always one the evaluator can run.

use std::sync::Arc;

use mfg_common::{Violations, clock::SharedClock, pagination::PageRequest};
use uuid::Uuid;

use crate::{
    directory::{Directory, TenantState},
    domain::{
        alert_rule::{AlertRule, MAX_RULES_PER_TENANT, RulePatch, RuleSpec},
        ingest::micros_since_epoch,
    },
    error::{Result, StorageError},
    store::AlertStore,
};

/// The alert-rule operations.
#[derive(Debug, Clone)]
pub struct AlertRules {
    store: Arc<dyn AlertStore>,
    directory: Directory,
    clock: SharedClock,
}

impl AlertRules {
    /// Creates the operations over a store.
    pub fn new(store: Arc<dyn AlertStore>, directory: Directory, clock: SharedClock) -> Self {
        Self {
            store,
            directory,
            clock,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AlertStore> {
        &self.store
    }

    /// Refuses a tenant that does not exist (NOT_FOUND) or is deleted.
    async fn check_tenant(&self, tenant: Uuid) -> Result<()> {
        let info = self.directory.tenant(tenant).await?;
        if info.state == TenantState::Deleted {
            return Err(StorageError::TenantDeleted(tenant.to_string()));
        }
        Ok(())
    }

    fn now_micros(&self) -> i64 {
        micros_since_epoch(self.clock.system_now())
    }

    /// Creates a rule.
    pub async fn create(&self, tenant: Uuid, spec: RuleSpec) -> Result<AlertRule> {
        let mut violations = Violations::new();
        spec.validate("rule.", &mut violations);
        violations.finish().map_err(StorageError::InvalidArgument)?;
        self.check_tenant(tenant).await?;
        let now = self.now_micros();
        let rule = AlertRule {
            rule_id: Uuid::now_v7(),
            tenant_id: tenant,
            spec,
            create_micros: now,
            update_micros: now,
        };
        self.store.insert_rule(&rule, MAX_RULES_PER_TENANT).await?;
        Ok(rule)
    }

    /// Returns a rule.
    pub async fn get(&self, tenant: Uuid, rule: Uuid) -> Result<AlertRule> {
        self.store
            .get_rule(tenant, rule)
            .await?
            .ok_or_else(|| StorageError::RuleNotFound(rule.to_string()))
    }

    /// Returns a page of a tenant's rules, in creation order, and the next page's token.
    pub async fn list(&self, tenant: Uuid, page: &PageRequest) -> Result<(Vec<AlertRule>, String)> {
        let after = page
            .after
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| {
                StorageError::invalid("page_token", "is not a token returned by this API")
            })?;
        let mut rules = self
            .store
            .list_rules(tenant, after, page.fetch_limit())
            .await?;
        let next = page.finish(&mut rules, |rule| rule.rule_id.to_string());
        Ok((rules, next))
    }

    /// Changes the fields a patch names; the changed rule must be valid as a whole.
    pub async fn update(&self, tenant: Uuid, rule: Uuid, patch: RulePatch) -> Result<AlertRule> {
        self.check_tenant(tenant).await?;
        let now = self.now_micros();
        self.store
            .update_rule(tenant, rule, &|mut current| {
                current.spec = patch
                    .apply(current.spec)
                    .map_err(StorageError::InvalidArgument)?;
                current.update_micros = now.max(current.update_micros);
                Ok(current)
            })
            .await
    }

    /// Deletes a rule.
    pub async fn delete(&self, tenant: Uuid, rule: Uuid) -> Result<()> {
        if self.store.delete_rule(tenant, rule).await? {
            Ok(())
        } else {
            Err(StorageError::RuleNotFound(rule.to_string()))
        }
    }
}
