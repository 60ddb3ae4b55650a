//! The alert journal: the one writer of alerts and their events. The evaluator's shards send it
//! what their rules signal, callers their acknowledgements and resolves; it turns them into
//! alert changes and events, writes a group of them in one transaction, in which the database
//! gives each event the next cursor of its tenant's log, and only then answers and publishes
//! the events. So a tenant's cursors are in the order its events happened, whichever storage
//! process wrote them, and a restart finds every alert it must. With fast commit (the default on
//! PostgreSQL) a write is published once committed, before it is flushed, and kept until it is
//! known to be flushed ([`Unflushed`]), to be written again if the database server restarted.
//!
//! A write that fails because the database is unavailable is retried, with the same cursors,
//! until it succeeds; meanwhile the shards' sends wait and the evaluator sheds load, not
//! ingest.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use mfg_common::{
    audit::AuditRecord, clock::SharedClock, config::DatabaseArgs, db::DbPool,
    shutdown::CancellationToken,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    alerting::{
        domain::{
            alert::{Alert, AlertEvent, AlertState, EventType, SYSTEM},
            alert_eval::Signal,
        },
        store::{AlertStore, AlertWrite, RuleStateKey},
    },
    error::{Result, StorageError},
    micros::Micros,
};

use super::unflushed::Unflushed;

mod budget;
mod command;
mod write;

pub use command::Command;

/// How many commands one transaction takes at most.
const GROUP: usize = 512;

/// How the journal writes and fans out.
#[derive(Debug, Clone, Copy)]
pub struct JournalOptions {
    /// How many recent events the live fan-out keeps for subscribers that read slower than
    /// events come; one further behind is told it lagged.
    pub fan_out: usize,
    /// Whether a write waits until it is flushed to disk before its events are published.
    /// `false` (PostgreSQL: `synchronous_commit = off` for these transactions) publishes about
    /// a WAL flush sooner; the journal then keeps each write until the server's log is flushed
    /// past it and writes them again if the server restarted meanwhile ([`Unflushed`]).
    pub durable: bool,
}

/// How long the journal keeps taking commands after shutdown began, for the shards' last ones.
const DRAIN: Duration = Duration::from_millis(200);

/// The handle of the journal's task.
#[derive(Debug, Clone)]
pub struct Journal {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Arc<AlertEvent>>,
    published: Arc<std::sync::atomic::AtomicU64>,
    finished: Arc<tokio::sync::Mutex<Option<oneshot::Receiver<()>>>>,
}

/// What an unresolved alert is of: its tenant, rule and machine; a budget alert's rule is nil
/// and its machine its id.
type Key = (Uuid, Uuid, String);

fn key_of(alert: &Alert) -> Key {
    if alert.budget.is_some() {
        return (alert.tenant_id, Uuid::nil(), alert.alert_id.to_string());
    }
    (alert.tenant_id, alert.rule_id, alert.machine_id.clone())
}

/// Whether a key is of a rule's alert (not of a budget alert).
fn of_rule(key: &Key) -> bool {
    !key.1.is_nil()
}

/// The journal's task state.
struct Writer {
    store: Arc<dyn AlertStore>,
    clock: SharedClock,
    /// Every unresolved alert, by rule and machine.
    open: HashMap<Key, Alert>,
    /// Their keys by id.
    ids: HashMap<Uuid, Key>,
    events: broadcast::Sender<Arc<AlertEvent>>,
    published: Arc<std::sync::atomic::AtomicU64>,
    durable: bool,
    /// Fast writes not known to be on disk.
    unflushed: Unflushed,
}

/// One group of commands, applied in memory, waiting for its write.
#[derive(Default)]
struct Group {
    write: AlertWrite,
    /// The index in `write.events` of each alert's event of this group that may be merged
    /// with a later repeat.
    updated: HashMap<Uuid, usize>,
    /// The index in `write.alerts` of each alert this group changes.
    alerts: HashMap<Uuid, usize>,
    replies: Vec<Reply>,
}

enum Reply {
    Alert(oneshot::Sender<Result<Alert>>, Box<Result<Alert>>),
    Done(oneshot::Sender<Result<()>>),
    Count(oneshot::Sender<Result<u32>>, u32),
}

fn thread_error(error: std::io::Error) -> StorageError {
    StorageError::Internal(format!("cannot start the alert journal's thread: {error}"))
}

impl Journal {
    /// Starts the journal on its own thread and runtime, with its own connections to
    /// `database`: it loads the unresolved alerts and the last cursor, then writes.
    ///
    /// Its own thread, because an alert's latency is mostly the journal's write: its task must
    /// run as soon as the database answers, not after whatever ingest work the service's
    /// workers are busy with, and a thread that mostly sleeps is run promptly when it wakes.
    pub async fn start(
        database: DatabaseArgs,
        clock: SharedClock,
        options: JournalOptions,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let (commands, receiver) = mpsc::channel(4 * GROUP);
        let (events, _) = broadcast::channel(options.fan_out.max(1));
        let (started, start_result) = oneshot::channel();
        let (finished, finished_receiver) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(thread_error)?;
        let publish = events.clone();
        let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = published.clone();
        std::thread::Builder::new()
            .name("mfg-alert-journal".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let opened = Self::open(&database, clock, publish, counted, options).await;
                    let (writer, pool) = match opened {
                        Ok(opened) => opened,
                        Err(error) => {
                            let _ = started.send(Err(error));
                            return;
                        }
                    };
                    let _ = started.send(Ok(()));
                    writer.run(receiver, shutdown).await;
                    pool.close().await;
                });
                let _ = finished.send(());
            })
            .map_err(thread_error)?;
        start_result
            .await
            .map_err(|_| StorageError::ShuttingDown)??;
        Ok(Self {
            commands,
            events,
            published,
            finished: Arc::new(tokio::sync::Mutex::new(Some(finished_receiver))),
        })
    }

    async fn open(
        database: &DatabaseArgs,
        clock: SharedClock,
        events: broadcast::Sender<Arc<AlertEvent>>,
        published: Arc<std::sync::atomic::AtomicU64>,
        options: JournalOptions,
    ) -> Result<(Writer, DbPool)> {
        let pool = mfg_common::db::connect(database).await?;
        let store = crate::store::open_alerts(pool.clone());
        let mut open = HashMap::new();
        let mut ids = HashMap::new();
        for alert in store.unresolved_alerts().await? {
            ids.insert(alert.alert_id, key_of(&alert));
            open.insert(key_of(&alert), alert);
        }
        let writer = Writer {
            store,
            clock,
            open,
            ids,
            events,
            published,
            durable: options.durable,
            unflushed: Unflushed::default(),
        };
        Ok((writer, pool))
    }

    /// Waits until the journal has written its last commands and closed its connections,
    /// after shutdown.
    pub async fn finished(&self) {
        if let Some(finished) = self.finished.lock().await.take() {
            let _ = finished.await;
        }
    }

    /// How many events were published.
    pub fn published(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a command; waits while the journal is busy.
    pub async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| StorageError::ShuttingDown)
    }

    /// Receives the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AlertEvent>> {
        self.events.subscribe()
    }

    /// Acknowledges an alert as `by`, writing `audit` with it.
    pub async fn acknowledge(
        &self,
        tenant: Uuid,
        alert_id: Uuid,
        by: String,
        audit: Option<AuditRecord>,
    ) -> Result<Alert> {
        self.change(tenant, alert_id, EventType::Acknowledged, by, audit)
            .await
    }

    /// Resolves an alert as `by`, writing `audit` with it.
    pub async fn resolve(
        &self,
        tenant: Uuid,
        alert_id: Uuid,
        by: String,
        audit: Option<AuditRecord>,
    ) -> Result<Alert> {
        self.change(tenant, alert_id, EventType::Resolved, by, audit)
            .await
    }

    async fn change(
        &self,
        tenant: Uuid,
        alert_id: Uuid,
        kind: EventType,
        by: String,
        audit: Option<AuditRecord>,
    ) -> Result<Alert> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Change {
            tenant,
            alert_id,
            kind,
            by,
            audit,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::ShuttingDown)?
    }

    /// Resolves the alerts of a machine that is gone, as [`SYSTEM`].
    pub async fn machine_gone(&self, tenant: Uuid, machine_id: String) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::MachineGone {
            tenant,
            machine_id,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::ShuttingDown)?
    }

    /// The machines with unresolved alerts.
    pub async fn open_machines(&self) -> Result<HashSet<(Uuid, String)>> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::OpenMachines { reply }).await?;
        answer.await.map_err(|_| StorageError::ShuttingDown)
    }

    /// Resolves the alerts of a deleted rule.
    pub async fn rule_deleted(&self, tenant: Uuid, rule_id: Uuid) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::RuleDeleted {
            tenant,
            rule_id,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StorageError::ShuttingDown)?
    }
}

impl Writer {
    /// Writes groups of commands until shutdown; then, until the shards have sent their last
    /// ones (nothing arrives for [`DRAIN`]).
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        loop {
            let first = if shutdown.is_cancelled() {
                tokio::time::timeout(DRAIN, commands.recv())
                    .await
                    .ok()
                    .flatten()
            } else {
                tokio::select! {
                    command = commands.recv() => command,
                    () = shutdown.cancelled() => continue,
                    () = tokio::time::sleep(write::CHECK), if !self.unflushed.is_empty() => {
                        self.check(&shutdown).await;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let mut group = Group::default();
            group.write.durable = self.durable;
            self.apply(first, &mut group).await;
            while group.replies.len() + group.write.events.len() < GROUP {
                let Ok(next) = commands.try_recv() else { break };
                self.apply(next, &mut group).await;
            }
            if !self.write(&mut group.write, &shutdown).await {
                return;
            }
            self.published.fetch_add(
                group.write.events.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            for event in group.write.events {
                // Nobody listening is fine: the log has it.
                let _ = self.events.send(Arc::new(event));
            }
            for reply in group.replies {
                match reply {
                    Reply::Alert(sender, result) => {
                        let _ = sender.send(*result);
                    }
                    Reply::Done(sender) => {
                        let _ = sender.send(Ok(()));
                    }
                    Reply::Count(sender, count) => {
                        let _ = sender.send(Ok(count));
                    }
                }
            }
        }
        // The last fast writes, flushed before the pool closes: nothing is left to a restart
        // of the database server that this service would not see.
        if let Some(mut last) = self.unflushed.take() {
            last.durable = true;
            self.write_retrying(&last, &shutdown).await;
        }
    }

    fn now(&self) -> Micros {
        Micros::of(self.clock.system_now())
    }

    fn event(&mut self, group: &mut Group, kind: EventType, alert: &Alert) {
        let time = self.now();
        if kind == EventType::Updated
            && let Some(&index) = group.updated.get(&alert.alert_id)
        {
            // A repeat of an alert this group already changed: one event says both.
            group.write.events[index].alert = alert.clone();
            group.write.events[index].time = time;
            return;
        }
        if matches!(kind, EventType::Opened | EventType::Updated) {
            group
                .updated
                .insert(alert.alert_id, group.write.events.len());
        } else {
            group.updated.remove(&alert.alert_id);
        }
        // Its cursor is given out by the database, in the write's transaction.
        group.write.events.push(AlertEvent {
            cursor: 0,
            event_id: Uuid::now_v7(),
            kind,
            alert: alert.clone(),
            time,
        });
        if let Some(&index) = group.alerts.get(&alert.alert_id) {
            group.write.alerts[index] = alert.clone();
        } else {
            group
                .alerts
                .insert(alert.alert_id, group.write.alerts.len());
            group.write.alerts.push(alert.clone());
        }
    }

    async fn apply(&mut self, command: Command, group: &mut Group) {
        match command {
            Command::Signal {
                rule,
                machine_id,
                signal,
                at,
                state,
            } => {
                let key = (rule.tenant_id, rule.rule_id, machine_id.clone());
                if let Some(state) = state {
                    group.write.states.push((
                        RuleStateKey {
                            tenant_id: rule.tenant_id,
                            rule_id: rule.rule_id,
                            machine_id: machine_id.clone(),
                        },
                        Some(state),
                    ));
                }
                match signal {
                    Signal::Quiet => {}
                    Signal::Firing(value) => {
                        if let Some(mut alert) = self.open.remove(&key) {
                            alert.repeat(value, at);
                            self.event(group, EventType::Updated, &alert);
                            self.open.insert(key, alert);
                        } else {
                            let alert = Alert::open(&rule, &machine_id, value, at);
                            self.event(group, EventType::Opened, &alert);
                            self.ids.insert(alert.alert_id, key.clone());
                            self.open.insert(key, alert);
                        }
                    }
                    Signal::Cleared => self.resolve_by_system(group, &key),
                }
            }
            Command::States(states) => group.write.states.extend(states),
            Command::Change {
                tenant,
                alert_id,
                kind,
                by,
                audit,
                reply,
            } => {
                let result = self.change(group, tenant, alert_id, kind, &by).await;
                if let (Ok(_), Some(record)) = (&result, audit) {
                    group.write.audit.push(record);
                }
                group.replies.push(Reply::Alert(reply, Box::new(result)));
            }
            Command::MachineGone {
                tenant,
                machine_id,
                reply,
            } => {
                self.resolve_all_by_system(group, |key| {
                    of_rule(key) && key.0 == tenant && key.2 == machine_id
                });
                group.replies.push(Reply::Done(reply));
            }
            Command::OpenMachines { reply } => {
                let machines = self
                    .open
                    .keys()
                    .filter(|key| of_rule(key))
                    .map(|(tenant, _, machine)| (*tenant, machine.clone()))
                    .collect();
                let _ = reply.send(machines);
            }
            Command::RaiseBudget { alert, reply } => {
                let raised = self.raise_budget(group, *alert).await;
                group.replies.push(Reply::Alert(reply, Box::new(raised)));
            }
            Command::ResolveBudgets {
                tenant,
                month,
                reply,
            } => {
                let resolved = self.resolve_budgets(group, tenant, &month);
                group.replies.push(Reply::Count(reply, resolved));
            }
            Command::RuleDeleted {
                tenant,
                rule_id,
                reply,
            } => {
                self.resolve_all_by_system(group, |(t, r, _)| *t == tenant && *r == rule_id);
                group.replies.push(Reply::Done(reply));
            }
        }
    }

    /// Resolves the unresolved alerts whose rule and machine `which` picks: their rule or
    /// their machine is gone.
    fn resolve_all_by_system(&mut self, group: &mut Group, which: impl Fn(&Key) -> bool) {
        let keys: Vec<Key> = self.open.keys().filter(|key| which(key)).cloned().collect();
        for key in keys {
            self.resolve_by_system(group, &key);
        }
    }

    /// Resolves the unresolved alert of a rule and machine, if there is one: its condition
    /// cleared, or its rule or machine is gone.
    fn resolve_by_system(&mut self, group: &mut Group, key: &Key) {
        if let Some(mut alert) = self.open.remove(key) {
            self.ids.remove(&alert.alert_id);
            alert.resolve(SYSTEM, self.now());
            self.event(group, EventType::Resolved, &alert);
        }
    }

    /// Acknowledges or resolves an alert by hand. Acknowledging an acknowledged alert, or
    /// resolving a resolved one, returns it unchanged; acknowledging a resolved one is refused.
    async fn change(
        &mut self,
        group: &mut Group,
        tenant: Uuid,
        alert_id: Uuid,
        kind: EventType,
        by: &str,
    ) -> Result<Alert> {
        let not_found = || StorageError::AlertNotFound(alert_id.to_string());
        let Some(key) = self
            .ids
            .get(&alert_id)
            .filter(|key| key.0 == tenant)
            .cloned()
        else {
            // Not unresolved: resolved, another tenant's, or none.
            let alert = self
                .store
                .get_alert(tenant, alert_id)
                .await?
                .ok_or_else(not_found)?;
            if kind == EventType::Acknowledged {
                return Err(StorageError::AlertResolved(alert_id.to_string()));
            }
            return Ok(alert);
        };
        let mut alert = self.open.remove(&key).ok_or_else(not_found)?;
        let now = self.now();
        let changed = match kind {
            EventType::Acknowledged => alert.acknowledge(by, now),
            _ => alert.resolve(by, now),
        };
        if changed {
            self.event(group, kind, &alert);
        }
        if alert.state == AlertState::Resolved {
            self.ids.remove(&alert_id);
        } else {
            self.open.insert(key, alert.clone());
        }
        Ok(alert)
    }
}
