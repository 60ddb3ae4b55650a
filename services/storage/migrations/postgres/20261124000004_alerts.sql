-- Alerts, their event log, and the evaluator's state per rule and machine.
--
-- `alerts` holds every alert; at most one per rule and machine is unresolved, which the partial
-- unique index guarantees whatever happens. `alert_events` is the log subscribers resume from:
-- `cursor` increases across tenants, in the order the events were written, and `alert` is the
-- alert as the event left it (JSON in the storage service's domain form).
-- `alert_rule_states` keeps what the evaluator must not forget over a restart: which rules
-- fire, "for" timers in progress, the last arrival for no-data.

CREATE TABLE alerts (
    alert_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    rule_id uuid NOT NULL,
    machine_id text NOT NULL,
    metric text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    state text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    count bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    trigger_value float8 NOT NULL,
    last_value float8 NOT NULL,
    acknowledged_by text,
    acknowledge_time timestamptz,
    resolved_by text,
    resolve_time timestamptz
);
CREATE INDEX alerts_by_tenant ON alerts (tenant_id, alert_id);
CREATE INDEX alerts_by_tenant_state ON alerts (tenant_id, state, alert_id);
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (tenant_id, rule_id, machine_id)
    WHERE state <> 'resolved';

CREATE TABLE alert_events (
    cursor bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    alert_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('opened', 'updated', 'acknowledged', 'resolved')),
    event_time timestamptz NOT NULL,
    alert jsonb NOT NULL
);
CREATE INDEX alert_events_by_tenant ON alert_events (tenant_id, cursor);

CREATE TABLE alert_rule_states (
    tenant_id uuid NOT NULL,
    rule_id uuid NOT NULL,
    machine_id text NOT NULL,
    state jsonb NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, machine_id)
);
