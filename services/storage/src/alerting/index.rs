//! The rules the evaluator runs, indexed by tenant and metric, so that the ingest path learns in
//! one lookup whether a reading concerns any rule. The index is an immutable snapshot, replaced
//! whole when rules change: readers never wait for a writer.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use uuid::Uuid;

use crate::alerting::domain::alert_rule::AlertRule;

/// One tenant's rules.
#[derive(Debug, Default)]
pub struct TenantRules {
    /// The enabled rules, by metric.
    by_metric: HashMap<String, Vec<Arc<AlertRule>>>,
    /// Every rule, by id.
    by_id: HashMap<Uuid, Arc<AlertRule>>,
}

impl TenantRules {
    /// The enabled rules of a metric.
    pub fn of_metric(&self, metric: &str) -> &[Arc<AlertRule>] {
        self.by_metric.get(metric).map_or(&[], Vec::as_slice)
    }

    /// A rule by id.
    pub fn rule(&self, id: Uuid) -> Option<&Arc<AlertRule>> {
        self.by_id.get(&id)
    }

    /// The enabled rules.
    pub fn enabled(&self) -> impl Iterator<Item = &Arc<AlertRule>> {
        self.by_metric.values().flatten()
    }
}

/// A snapshot of every tenant's rules.
#[derive(Debug, Default)]
pub struct Index {
    by_tenant: HashMap<Uuid, Arc<TenantRules>>,
}

impl Index {
    /// A tenant's rules, if it has any.
    pub fn tenant(&self, tenant: Uuid) -> Option<&Arc<TenantRules>> {
        self.by_tenant.get(&tenant)
    }

    /// Every tenant's rules.
    pub fn tenants(&self) -> impl Iterator<Item = (&Uuid, &Arc<TenantRules>)> {
        self.by_tenant.iter()
    }
}

fn tenant_rules(rules: impl IntoIterator<Item = AlertRule>) -> TenantRules {
    let mut indexed = TenantRules::default();
    for rule in rules {
        let rule = Arc::new(rule);
        if !rule.spec.disabled {
            indexed
                .by_metric
                .entry(rule.spec.metric.clone())
                .or_default()
                .push(rule.clone());
        }
        indexed.by_id.insert(rule.rule_id, rule);
    }
    indexed
}

/// The current snapshot, replaceable.
#[derive(Debug, Default)]
pub struct RuleIndex {
    current: RwLock<Arc<Index>>,
}

impl RuleIndex {
    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Index> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces every tenant's rules.
    pub fn replace_all(&self, rules: Vec<AlertRule>) {
        let mut grouped: HashMap<Uuid, Vec<AlertRule>> = HashMap::new();
        for rule in rules {
            grouped.entry(rule.tenant_id).or_default().push(rule);
        }
        let index = Index {
            by_tenant: grouped
                .into_iter()
                .map(|(tenant, rules)| (tenant, Arc::new(tenant_rules(rules))))
                .collect(),
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(index);
    }

    /// Replaces one tenant's rules.
    pub fn replace_tenant(&self, tenant: Uuid, rules: Vec<AlertRule>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut by_tenant = current.by_tenant.clone();
        if rules.is_empty() {
            by_tenant.remove(&tenant);
        } else {
            by_tenant.insert(tenant, Arc::new(tenant_rules(rules)));
        }
        *current = Arc::new(Index { by_tenant });
    }
}
