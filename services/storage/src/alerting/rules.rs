//! The alerting operations: alert rules (create, read, list, change and delete, for a tenant
//! that exists and is not deleted), and alerts (read, list, acknowledge, resolve). Rules are
//! validated in full on every write, so a stored rule is always one the evaluator can run; each
//! change of a tenant's rules replaces the tenant's rules in the evaluator's index at once.

use std::sync::Arc;

use mfg_common::{
    Violations,
    audit::{Asker, AuditRecord, Auditor},
    clock::SharedClock,
    pagination::PageRequest,
};
use uuid::Uuid;

use super::{index::RuleIndex, journal::Journal};
use crate::{
    alerting::{
        domain::{
            alert::{Alert, AlertState, BudgetBreach},
            alert_rule::{AlertRule, MAX_RULES_PER_TENANT, RulePatch, RuleSpec, Severity},
        },
        store::AlertStore,
    },
    directory::{Directory, TenantState},
    error::{Result, StorageError},
    micros::Micros,
};

/// The id a page token carries: the last one of the page before.
fn page_key(page: &PageRequest) -> Result<Option<Uuid>> {
    page.after
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| StorageError::invalid("page_token", "is not a token returned by this API"))
}

/// The alerting operations.
#[derive(Debug, Clone)]
pub struct Alerting {
    store: Arc<dyn AlertStore>,
    directory: Directory,
    clock: SharedClock,
    index: Arc<RuleIndex>,
    journal: Journal,
    evaluator: super::Evaluator,
    auditor: Auditor,
}

/// A tenant's alert events are kept as long as its readings in the hot tier.
#[async_trait::async_trait]
impl crate::telemetry::tiering::KeptWithReadings for Alerting {
    async fn expire(&self, tenant: Uuid, before: Micros) -> Result<u64> {
        self.store.expire_events(tenant, before).await
    }
}

impl Alerting {
    /// Creates the operations over a store, the evaluator and its rule index, and the journal.
    pub fn new(
        store: Arc<dyn AlertStore>,
        directory: Directory,
        clock: SharedClock,
        index: Arc<RuleIndex>,
        journal: Journal,
        evaluator: super::Evaluator,
    ) -> Self {
        Self {
            store,
            directory,
            clock,
            index,
            journal,
            evaluator,
            auditor: Auditor::off(),
        }
    }

    /// The same, recording the changes of rules and alerts made by hand with `auditor`.
    #[must_use]
    pub fn auditing(mut self, auditor: Auditor) -> Self {
        self.auditor = auditor;
        self
    }

    /// The record of `asker` doing `action` to `resource` of `tenant`, when actions are
    /// recorded.
    fn audit(
        &self,
        asker: &Asker,
        tenant: Uuid,
        action: &str,
        resource: String,
    ) -> Option<AuditRecord> {
        let time = chrono::DateTime::from_timestamp_micros(self.now().0).unwrap_or_default();
        self.auditor
            .record(asker, Some(tenant), action, resource, time)
    }

    /// The evaluator, which observes ingest.
    pub fn evaluator(&self) -> &super::Evaluator {
        &self.evaluator
    }

    /// The journal, whose events subscribers receive.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Reloads a tenant's rules into the evaluator's index.
    async fn reindex(&self, tenant: Uuid) -> Result<()> {
        let mut rules = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_rules(tenant, after, 1_000).await?;
            let done = page.len() < 1_000;
            after = page.last().map(|rule| rule.rule_id);
            rules.extend(page);
            if done {
                break;
            }
        }
        self.index.replace_tenant(tenant, rules);
        Ok(())
    }

    /// Reloads every tenant's rules into the index: what other replicas changed.
    pub async fn reindex_all(&self) -> Result<()> {
        self.index.replace_all(self.store.all_rules().await?);
        Ok(())
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

    fn now(&self) -> Micros {
        Micros::of(self.clock.system_now())
    }

    /// Creates a rule, under the id the caller chose (a rule under it already is
    /// [`StorageError::RuleExists`]) or a new one.
    pub async fn create(
        &self,
        tenant: Uuid,
        spec: RuleSpec,
        id: Option<Uuid>,
        asker: &Asker,
    ) -> Result<AlertRule> {
        let rule = self.validate(tenant, spec, id)?;
        self.check_tenant(tenant).await?;
        let audit = self.audit(asker, tenant, "alert_rule.create", rule_path(&rule));
        self.store
            .insert_rule(&rule, MAX_RULES_PER_TENANT, audit.as_ref())
            .await?;
        self.auditor.recorded();
        self.reindex(tenant).await?;
        Ok(rule)
    }

    /// The rule a create would make, checked, without creating it or looking the tenant up.
    pub fn validate(&self, tenant: Uuid, spec: RuleSpec, id: Option<Uuid>) -> Result<AlertRule> {
        let mut violations = Violations::new();
        spec.validate("rule.", &mut violations);
        violations.finish().map_err(StorageError::InvalidArgument)?;
        let now = self.now();
        Ok(AlertRule {
            rule_id: id.unwrap_or_else(Uuid::now_v7),
            tenant_id: tenant,
            spec,
            create_time: now,
            update_time: now,
        })
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
        let after = page_key(page)?;
        let mut rules = self
            .store
            .list_rules(tenant, after, page.fetch_limit())
            .await?;
        let next = page.finish(&mut rules, |rule| rule.rule_id.to_string());
        Ok((rules, next))
    }

    /// Changes the fields a patch names; the changed rule must be valid as a whole.
    pub async fn update(
        &self,
        tenant: Uuid,
        rule: Uuid,
        patch: RulePatch,
        asker: &Asker,
    ) -> Result<AlertRule> {
        self.check_tenant(tenant).await?;
        let now = self.now();
        let resource = format!("tenants/{tenant}/alert-rules/{rule}");
        let audit = self.audit(asker, tenant, "alert_rule.update", resource);
        let updated = self
            .store
            .update_rule(
                tenant,
                rule,
                &|mut current| {
                    current.spec = patch
                        .apply(current.spec)
                        .map_err(StorageError::InvalidArgument)?;
                    current.update_time = now.max(current.update_time);
                    Ok(current)
                },
                audit.as_ref(),
            )
            .await?;
        self.auditor.recorded();
        self.reindex(tenant).await?;
        Ok(updated)
    }

    /// Deletes a rule and resolves its alerts, as `asker` (or, offboarding, as no one).
    pub async fn delete(&self, tenant: Uuid, rule: Uuid, asker: Option<&Asker>) -> Result<()> {
        let resource = format!("tenants/{tenant}/alert-rules/{rule}");
        let audit =
            asker.and_then(|asker| self.audit(asker, tenant, "alert_rule.delete", resource));
        if !self.store.delete_rule(tenant, rule, audit.as_ref()).await? {
            return Err(StorageError::RuleNotFound(rule.to_string()));
        }
        self.auditor.recorded();
        self.reindex(tenant).await?;
        self.journal.rule_deleted(tenant, rule).await
    }

    /// Forgets an offboarded tenant: each of its rules deleted as [`Rules::delete`] does (the
    /// evaluator stops watching it, its alerts resolved), then every row of its alerting.
    pub async fn forget_tenant(&self, tenant: Uuid) -> Result<()> {
        loop {
            let rules = self.store.list_rules(tenant, None, 1_000).await?;
            if rules.is_empty() {
                break;
            }
            for rule in rules {
                match self.delete(tenant, rule.rule_id, None).await {
                    Ok(()) | Err(StorageError::RuleNotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        self.store.forget_tenant(tenant).await
    }

    /// Returns an alert.
    pub async fn alert(&self, tenant: Uuid, alert: Uuid) -> Result<Alert> {
        self.store
            .get_alert(tenant, alert)
            .await?
            .ok_or_else(|| StorageError::AlertNotFound(alert.to_string()))
    }

    /// Returns a page of a tenant's alerts, newest first, and the next page's token.
    pub async fn alerts(
        &self,
        tenant: Uuid,
        state: Option<AlertState>,
        page: &PageRequest,
    ) -> Result<(Vec<Alert>, String)> {
        let before = page_key(page)?;
        let mut alerts = self
            .store
            .list_alerts(tenant, state, before, page.fetch_limit())
            .await?;
        let next = page.finish(&mut alerts, |alert| alert.alert_id.to_string());
        Ok((alerts, next))
    }

    /// Acknowledges an open alert as `asker`.
    pub async fn acknowledge(&self, tenant: Uuid, alert: Uuid, asker: &Asker) -> Result<Alert> {
        let resource = format!("tenants/{tenant}/alerts/{alert}");
        let audit = self.audit(asker, tenant, "alert.acknowledge", resource);
        let acknowledged = self
            .journal
            .acknowledge(tenant, alert, asker.actor.clone(), audit)
            .await?;
        self.auditor.recorded();
        Ok(acknowledged)
    }

    /// Resolves an alert as `asker`.
    pub async fn resolve(&self, tenant: Uuid, alert: Uuid, asker: &Asker) -> Result<Alert> {
        let resource = format!("tenants/{tenant}/alerts/{alert}");
        let audit = self.audit(asker, tenant, "alert.resolve", resource);
        let resolved = self
            .journal
            .resolve(tenant, alert, asker.actor.clone(), audit)
            .await?;
        self.auditor.recorded();
        Ok(resolved)
    }

    /// Raises a budget alert of a tenant that exists under `alert_id`, or returns the one
    /// raised under it before.
    pub async fn raise_budget(
        &self,
        tenant: Uuid,
        alert_id: Uuid,
        breach: BudgetBreach,
        severity: Severity,
    ) -> Result<Alert> {
        self.check_tenant(tenant).await?;
        let alert = Alert::budget(tenant, alert_id, breach, severity, self.now());
        self.journal.raise_budget(alert).await
    }

    /// Resolves a tenant's budget alerts of the months before `month` (`YYYY-MM`).
    pub async fn resolve_budgets(&self, tenant: Uuid, month: String) -> Result<u32> {
        self.journal.resolve_budgets(tenant, month).await
    }
}

/// A rule's path, as the audit log names it.
fn rule_path(rule: &AlertRule) -> String {
    format!("tenants/{}/alert-rules/{}", rule.tenant_id, rule.rule_id)
}
