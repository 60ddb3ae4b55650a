//! What the journal is asked to do: by the evaluator's shards, what their rules signal; by
//! callers, acknowledgements, resolves and budget alerts; by the sweeps, what is gone.

use std::{collections::HashSet, sync::Arc};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    alerting::{
        domain::{
            alert::{Alert, EventType},
            alert_eval::{RuleState, Signal},
            alert_rule::AlertRule,
        },
        store::RuleStateKey,
    },
    error::Result,
    micros::Micros,
};

/// What the journal is asked to do.
#[derive(Debug)]
pub enum Command {
    /// A rule signalled for a machine; `state` is its evaluator state to store, if it changed.
    Signal {
        /// The rule.
        rule: Arc<AlertRule>,
        /// The machine.
        machine_id: String,
        /// What it signalled.
        signal: Signal,
        /// When: the reading's time, or the service's for no-data.
        at: Micros,
        /// The state to store.
        state: Option<RuleState>,
    },
    /// Evaluator states to store (or remove) without a signal.
    States(Vec<(RuleStateKey, Option<RuleState>)>),
    /// Acknowledge (`EventType::Acknowledged`) or resolve (`EventType::Resolved`) an alert by
    /// hand.
    Change {
        /// Its tenant.
        tenant: Uuid,
        /// The alert.
        alert_id: Uuid,
        /// The change.
        kind: EventType,
        /// Who.
        by: String,
        /// Its audit record, written with it.
        audit: Option<mfg_common::audit::AuditRecord>,
        /// The alert after.
        reply: oneshot::Sender<Result<Alert>>,
    },
    /// A machine is gone (deleted from its tenant): resolve its alerts.
    MachineGone {
        /// Its tenant.
        tenant: Uuid,
        /// The machine.
        machine_id: String,
        /// Done.
        reply: oneshot::Sender<Result<()>>,
    },
    /// Which machines have unresolved alerts.
    OpenMachines {
        /// The answer.
        reply: oneshot::Sender<HashSet<(Uuid, String)>>,
    },
    /// Raise a budget alert, unless its id was raised before: the alert, as raised now or
    /// then.
    RaiseBudget {
        /// The alert.
        alert: Box<Alert>,
        /// The alert raised.
        reply: oneshot::Sender<Result<Alert>>,
    },
    /// Resolve a tenant's budget alerts of the months before `month` (`YYYY-MM`).
    ResolveBudgets {
        /// The tenant.
        tenant: Uuid,
        /// The first month kept.
        month: String,
        /// How many were resolved.
        reply: oneshot::Sender<Result<u32>>,
    },
    /// A rule was deleted: resolve its alerts.
    RuleDeleted {
        /// Its tenant.
        tenant: Uuid,
        /// The rule.
        rule_id: Uuid,
        /// Done.
        reply: oneshot::Sender<Result<()>>,
    },
}
