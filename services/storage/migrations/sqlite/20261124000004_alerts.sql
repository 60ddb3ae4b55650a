-- Alerts, their event log, and the evaluator's state per rule and machine: the same tables as
-- on PostgreSQL (see there), with JSON as text and times as microseconds since the Unix epoch.

CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    trigger_value REAL NOT NULL,
    last_value REAL NOT NULL,
    acknowledged_by TEXT,
    acknowledge_time INTEGER,
    resolved_by TEXT,
    resolve_time INTEGER
) WITHOUT ROWID;
CREATE INDEX alerts_by_tenant ON alerts (tenant_id, alert_id);
CREATE INDEX alerts_by_tenant_state ON alerts (tenant_id, state, alert_id);
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (tenant_id, rule_id, machine_id)
    WHERE state <> 'resolved';

CREATE TABLE alert_events (
    cursor INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('opened', 'updated', 'acknowledged', 'resolved')),
    event_time INTEGER NOT NULL,
    alert TEXT NOT NULL
);
CREATE INDEX alert_events_by_tenant ON alert_events (tenant_id, cursor);

CREATE TABLE alert_rule_states (
    tenant_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, machine_id)
) WITHOUT ROWID;
