-- Alert event cursors are a position in the tenant's own log, given out in the transaction
-- that writes the events (see the PostgreSQL migration of the same name). SQLite commits
-- durably, so it needs no restart marker.
CREATE TABLE alert_cursors (
    tenant_id TEXT PRIMARY KEY,
    last_cursor INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO alert_cursors (tenant_id, last_cursor)
SELECT tenant_id, (SELECT max(cursor) FROM alert_events) FROM alert_events GROUP BY tenant_id;

CREATE TABLE alert_events_by_tenant_log (
    tenant_id TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('opened', 'updated', 'acknowledged', 'resolved')),
    event_time INTEGER NOT NULL,
    alert TEXT NOT NULL,
    PRIMARY KEY (tenant_id, cursor)
) WITHOUT ROWID;
INSERT INTO alert_events_by_tenant_log
    (tenant_id, cursor, event_id, alert_id, kind, event_time, alert)
SELECT tenant_id, cursor, lower(hex(randomblob(16))), alert_id, kind, event_time, alert
FROM alert_events;
DROP TABLE alert_events;
ALTER TABLE alert_events_by_tenant_log RENAME TO alert_events;
CREATE INDEX alert_events_by_time ON alert_events (tenant_id, event_time);
