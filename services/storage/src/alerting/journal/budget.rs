//! Budget alerts in the journal: the cost service raises one per threshold crossed per month,
//! under an id it chose once, and resolves a month's when the next begins. They then live the
//! life of any alert: they are acknowledged and resolved by hand, and their events reach the
//! same subscribers.

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Command, Group, Journal, Writer, key_of};
use crate::{
    alerting::domain::alert::{Alert, EventType},
    error::{Result, StorageError},
};

impl Journal {
    /// Raises a budget alert, or returns the alert raised before under its id.
    pub async fn raise_budget(&self, alert: Alert) -> Result<Alert> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::RaiseBudget {
            alert: Box::new(alert),
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::ShuttingDown)?
    }

    /// Resolves a tenant's budget alerts of the months before `month` (`YYYY-MM`); returns how
    /// many it resolved.
    pub async fn resolve_budgets(&self, tenant: Uuid, month: String) -> Result<u32> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ResolveBudgets {
            tenant,
            month,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::ShuttingDown)?
    }
}

impl Writer {
    /// Opens a budget alert unless its id is known: unresolved (in memory) or stored. An id of
    /// another tenant's alert is refused as not found.
    pub(super) async fn raise_budget(&mut self, group: &mut Group, alert: Alert) -> Result<Alert> {
        if let Some(key) = self.ids.get(&alert.alert_id) {
            return self
                .open
                .get(key)
                .filter(|known| known.tenant_id == alert.tenant_id)
                .cloned()
                .ok_or_else(|| StorageError::AlertNotFound(alert.alert_id.to_string()));
        }
        if let Some(known) = self
            .store
            .get_alert(alert.tenant_id, alert.alert_id)
            .await?
        {
            return Ok(known);
        }
        let key = key_of(&alert);
        self.event(group, EventType::Opened, &alert);
        self.ids.insert(alert.alert_id, key.clone());
        self.open.insert(key, alert.clone());
        Ok(alert)
    }

    /// Resolves, as the system, a tenant's unresolved budget alerts of the months before
    /// `month`; returns how many.
    pub(super) fn resolve_budgets(&mut self, group: &mut Group, tenant: Uuid, month: &str) -> u32 {
        let ended: Vec<_> = self
            .open
            .iter()
            .filter(|(key, alert)| {
                key.0 == tenant
                    && alert
                        .budget
                        .as_ref()
                        .is_some_and(|breach| breach.month.as_str() < month)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in &ended {
            self.resolve_by_system(group, key);
        }
        u32::try_from(ended.len()).unwrap_or(u32::MAX)
    }
}
