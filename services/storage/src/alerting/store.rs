//! The alerting half's store: one trait, [`AlertStore`], implemented once over the shared
//! database's backends (`sql.rs`): rules, evaluator state and the alert journal.

pub(crate) mod sql;

use mfg_common::audit::AuditRecord;
use uuid::Uuid;

use crate::{
    alerting::domain::{
        alert::{Alert, AlertEvent, AlertState},
        alert_eval::RuleState,
        alert_rule::AlertRule,
    },
    error::Result,
    micros::Micros,
};

/// A change computed from a rule's current value, inside the store's transaction.
pub type RuleChange<'a> = &'a (dyn Fn(AlertRule) -> Result<AlertRule> + Send + Sync);

/// Where alert rules are kept, in the storage service's database (its migrations create the
/// tables, run by [`TelemetryStore::migrate`]).
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts a rule, unless its tenant already has `limit` rules
    /// ([`crate::error::StorageError::RuleLimit`]), with its audit record.
    async fn insert_rule(
        &self,
        rule: &AlertRule,
        limit: u64,
        audit: Option<&AuditRecord>,
    ) -> Result<()>;
    /// Returns a rule of a tenant.
    async fn get_rule(&self, tenant: Uuid, rule: Uuid) -> Result<Option<AlertRule>>;
    /// Lists a tenant's rules by id (creation order) after `after`, at most `limit`.
    async fn list_rules(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AlertRule>>;
    /// Every rule of every tenant: what the evaluator loads when it starts.
    async fn all_rules(&self) -> Result<Vec<AlertRule>>;
    /// Changes a rule atomically ([`crate::error::StorageError::RuleNotFound`] if it does not
    /// exist), with its audit record; returns it changed.
    async fn update_rule(
        &self,
        tenant: Uuid,
        rule: Uuid,
        change: RuleChange<'_>,
        audit: Option<&AuditRecord>,
    ) -> Result<AlertRule>;
    /// Removes a rule and the evaluator's states of it, with its audit record (written only
    /// when it existed); returns whether it existed.
    async fn delete_rule(
        &self,
        tenant: Uuid,
        rule: Uuid,
        audit: Option<&AuditRecord>,
    ) -> Result<bool>;
    /// Removes every rule, state, alert and event of an offboarded tenant.
    async fn forget_tenant(&self, tenant: Uuid) -> Result<()>;

    /// Writes alerts, events and evaluator states in one transaction. Writing the same again
    /// changes nothing (an event already stored is kept). PostgreSQL answers where its log
    /// stood; SQLite `None`.
    async fn write_alerts(&self, write: &AlertWrite) -> Result<Written>;
    /// Where the server's log stands (PostgreSQL; SQLite `None`).
    async fn log_position(&self) -> Result<Option<LogPosition>>;
    /// Every alert that is not resolved, of every tenant.
    async fn unresolved_alerts(&self) -> Result<Vec<Alert>>;
    /// Returns an alert of a tenant.
    async fn get_alert(&self, tenant: Uuid, alert: Uuid) -> Result<Option<Alert>>;
    /// Lists a tenant's alerts, newest first, before `before`, optionally in one state.
    async fn list_alerts(
        &self,
        tenant: Uuid,
        state: Option<AlertState>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Alert>>;
    /// Removes a tenant's events older than `before`; returns how many. A subscriber
    /// resuming from an older cursor resumes at the oldest event kept.
    async fn expire_events(&self, tenant: Uuid, before: Micros) -> Result<u64>;
    /// The cursor of a tenant's last event; 0 before its first.
    async fn last_cursor(&self, tenant: Uuid) -> Result<u64>;
    /// A tenant's events after a cursor, oldest first, at most `limit`.
    async fn events_after(&self, tenant: Uuid, cursor: u64, limit: i64) -> Result<Vec<AlertEvent>>;
    /// Every stored evaluator state.
    async fn rule_states(&self) -> Result<Vec<(RuleStateKey, RuleState)>>;
}

/// Which rule and machine an evaluator state is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleStateKey {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The rule.
    pub rule_id: Uuid,
    /// The machine.
    pub machine_id: String,
}

/// What a write of the alert journal did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The cursor of each event of the write, in its order: given out by the database in the
    /// write's transaction for an event without one, the event's own otherwise.
    pub cursors: Vec<u64>,
    /// Where the server's log stood (PostgreSQL); `None` on SQLite.
    pub position: Option<LogPosition>,
}

/// What the alert journal writes at once.
#[derive(Debug, Clone)]
pub struct AlertWrite {
    /// Alerts, created or changed.
    pub alerts: Vec<Alert>,
    /// Events, in the order they happened. Those without a cursor (0) are given the next ones
    /// of their tenant's log; those with one (written before, kept until flushed) keep it.
    pub events: Vec<AlertEvent>,
    /// Evaluator states to store, or to remove (`None`).
    pub states: Vec<(RuleStateKey, Option<RuleState>)>,
    /// Whether the commit waits until the write is flushed to disk (see
    /// [`crate::alerting::journal::Journal::start`]).
    pub durable: bool,
    /// Whether an earlier attempt of this write may have been committed unheard of (it failed
    /// with the outcome unknown): its events are looked for before cursors are given out.
    pub retried: bool,
    /// The audit records of the alerts changed by hand (`mfg_common::audit`), written in the
    /// same transaction; written again, a record is kept once.
    pub audit: Vec<AuditRecord>,
}

impl Default for AlertWrite {
    fn default() -> Self {
        Self {
            alerts: Vec::new(),
            events: Vec::new(),
            states: Vec::new(),
            durable: true,
            retried: false,
            audit: Vec::new(),
        }
    }
}

/// Where a PostgreSQL server's write-ahead log stood while a journal write ran: how the
/// journal knows which of its fast commits (`synchronous_commit = off`) are on disk, and
/// whether the server restarted since its last write (see `alerting::unflushed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    /// When the server started (µs since the epoch): another value means it restarted.
    pub server_started: i64,
    /// How far its log was inserted: every commit that ended before the write began ends
    /// before this.
    pub inserted: i64,
    /// How far its log was flushed to disk.
    pub flushed: i64,
}

impl AlertWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.events.is_empty()
            && self.states.is_empty()
            && self.audit.is_empty()
    }
}
