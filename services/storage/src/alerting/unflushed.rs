//! The journal's fast commits that may not be on disk yet.
//!
//! With fast commit (`synchronous_commit = off`), the journal publishes a write's events once
//! PostgreSQL has committed it, before its log is flushed. A crash of the database server in
//! that moment loses the write, though subscribers have seen its events. So the journal keeps
//! each fast write until the server's log is known to be flushed past it, and when the server
//! turns out to have restarted since the last write, it writes everything it kept again (a
//! write can be made twice: alerts and states are upserted to their latest version, a stored
//! event is kept). Nothing a subscriber saw is then missing from the log, while the storage
//! service lives through the database's crash.
//!
//! Every write answers where the server's log stood ([`LogPosition`]). A commit that ended
//! before a write began ends before that write's `inserted`, so each write bounds those kept
//! before it, and a kept write is dropped once a later answer's `flushed` reaches its bound.

use std::collections::{HashMap, VecDeque};

use crate::alerting::store::{AlertWrite, LogPosition};

/// The fast writes not known to be on disk, oldest first.
#[derive(Debug, Default)]
pub struct Unflushed {
    /// Each with the log position its commit ends before, once a later write told it.
    writes: VecDeque<(AlertWrite, Option<i64>)>,
    /// When the server that answered the last write started.
    server_started: Option<i64>,
}

impl Unflushed {
    /// Records a fast write the server at `position` committed. When the server restarted
    /// since the last answer, returns what must be written again: every kept write and this
    /// one, merged. The caller writes that and records it in turn.
    pub fn committed(&mut self, write: &AlertWrite, position: LogPosition) -> Option<AlertWrite> {
        self.advance(position, Some(write))
    }

    /// Records where the server's log stands, from a check between writes; returns what must
    /// be written again, as [`Unflushed::committed`] does.
    pub fn observed(&mut self, position: LogPosition) -> Option<AlertWrite> {
        self.advance(position, None)
    }

    /// Every kept write, merged, and forgets them: at shutdown, to be written durably.
    pub fn take(&mut self) -> Option<AlertWrite> {
        let merged = merge(self.writes.drain(..).map(|(write, _)| write));
        (!merged.is_empty()).then_some(merged)
    }

    fn advance(&mut self, position: LogPosition, write: Option<&AlertWrite>) -> Option<AlertWrite> {
        let restarted = self
            .server_started
            .is_some_and(|started| started != position.server_started);
        self.server_started = Some(position.server_started);
        if restarted {
            let kept = self.writes.drain(..).map(|(write, _)| write);
            let merged = merge(kept.chain(write.cloned()));
            return (!merged.is_empty()).then_some(merged);
        }
        for (_, end) in &mut self.writes {
            end.get_or_insert(position.inserted);
        }
        self.writes
            .retain(|(_, end)| end.is_none_or(|end| end > position.flushed));
        if let Some(write) = write {
            self.writes.push_back((write.clone(), None));
        }
        None
    }

    /// Whether no write is kept.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many writes are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.writes.len()
    }
}

/// Writes in the order they were made, as one: each alert once, at its first place, in its
/// last version (so an alert resolved comes before the one that replaced it for its rule and
/// machine); every event; every state change in order (the store keeps the last per key).
fn merge(writes: impl Iterator<Item = AlertWrite>) -> AlertWrite {
    let mut merged = AlertWrite {
        durable: false,
        ..AlertWrite::default()
    };
    let mut places = HashMap::new();
    for write in writes {
        merged.durable = write.durable;
        for alert in write.alerts {
            match places.get(&alert.alert_id) {
                Some(&place) => merged.alerts[place] = alert,
                None => {
                    places.insert(alert.alert_id, merged.alerts.len());
                    merged.alerts.push(alert);
                }
            }
        }
        merged.events.extend(write.events);
        merged.states.extend(write.states);
        merged.audit.extend(write.audit);
    }
    merged
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::alerting::domain::{
        alert::{Alert, AlertEvent, AlertState, EventType},
        alert_rule::Severity,
    };
    use crate::micros::Micros;

    fn alert(id: u128, state: AlertState) -> Alert {
        Alert {
            alert_id: Uuid::from_u128(id),
            tenant_id: Uuid::from_u128(10),
            rule_id: Uuid::from_u128(20),
            machine_id: "press-1".to_owned(),
            metric: "temp".to_owned(),
            severity: Severity::Minor,
            state,
            count: 1,
            first_seen: Micros(0),
            last_seen: Micros(0),
            trigger_value: 60.0,
            last_value: 60.0,
            acknowledged_by: None,
            acknowledge_time: None,
            resolved_by: None,
            resolve_time: None,
            budget: None,
        }
    }

    fn write(cursor: u64, alert: Alert) -> AlertWrite {
        AlertWrite {
            events: vec![AlertEvent {
                cursor,
                event_id: Uuid::from_u128(u128::from(cursor)),
                kind: EventType::Updated,
                alert: alert.clone(),
                time: Micros(0),
            }],
            alerts: vec![alert],
            states: Vec::new(),
            durable: false,
            retried: false,
            audit: Vec::new(),
        }
    }

    fn at(server_started: i64, inserted: i64, flushed: i64) -> LogPosition {
        LogPosition {
            server_started,
            inserted,
            flushed,
        }
    }

    #[test]
    fn a_write_is_kept_until_the_log_is_flushed_past_it() {
        let mut unflushed = Unflushed::default();
        assert!(
            unflushed
                .committed(&write(1, alert(1, AlertState::Open)), at(7, 100, 90))
                .is_none()
        );
        // The second write began at 200: the first ends before 200, but only 150 is flushed.
        assert!(
            unflushed
                .committed(&write(2, alert(1, AlertState::Open)), at(7, 200, 150))
                .is_none()
        );
        assert_eq!(unflushed.len(), 2);
        // Flushed to 200: the first is on disk; the second's end is only known now.
        assert!(
            unflushed
                .committed(&write(3, alert(1, AlertState::Open)), at(7, 300, 200))
                .is_none()
        );
        assert_eq!(unflushed.len(), 2);
        assert!(
            unflushed
                .committed(&write(4, alert(1, AlertState::Open)), at(7, 400, 400))
                .is_none()
        );
        assert_eq!(unflushed.len(), 1);
    }

    #[test]
    fn a_restarted_server_gets_every_kept_write_again_merged() {
        let mut unflushed = Unflushed::default();
        unflushed.committed(&write(1, alert(1, AlertState::Open)), at(7, 100, 90));
        unflushed.committed(&write(2, alert(1, AlertState::Resolved)), at(7, 200, 150));
        unflushed.committed(&write(3, alert(2, AlertState::Open)), at(7, 300, 150));
        // The server restarted (another start time), its log starting over below the bounds.
        let again = unflushed
            .committed(
                &write(4, alert(2, AlertState::Acknowledged)),
                at(8, 120, 120),
            )
            .expect("everything kept, written again");
        assert_eq!(
            again.events.iter().map(|e| e.cursor).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let alerts: Vec<_> = again
            .alerts
            .iter()
            .map(|a| (a.alert_id.as_u128(), a.state))
            .collect();
        assert_eq!(
            alerts,
            [(1, AlertState::Resolved), (2, AlertState::Acknowledged)]
        );
        assert!(!again.durable);
        assert_eq!(unflushed.len(), 0);
        // The write again is recorded like any other; a check finds it flushed.
        assert!(unflushed.committed(&again, at(8, 130, 120)).is_none());
        assert_eq!(unflushed.len(), 1);
        assert!(unflushed.observed(at(8, 140, 140)).is_none());
        assert!(unflushed.is_empty());
    }

    #[test]
    fn a_check_finds_a_restart_between_writes() {
        let mut unflushed = Unflushed::default();
        unflushed.committed(&write(1, alert(1, AlertState::Open)), at(7, 100, 90));
        let again = unflushed.observed(at(8, 50, 50)).expect("written again");
        assert_eq!(again.events.len(), 1);
        // Nothing kept: a restart needs nothing written.
        assert!(unflushed.observed(at(9, 50, 50)).is_none());
        unflushed.committed(&write(2, alert(1, AlertState::Resolved)), at(9, 60, 50));
        let last = unflushed.take().expect("kept at shutdown");
        assert_eq!(last.events[0].cursor, 2);
        assert!(unflushed.take().is_none());
    }
}
