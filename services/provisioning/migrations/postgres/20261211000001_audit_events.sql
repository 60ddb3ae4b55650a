-- The audit log (decision 0014): every administrative action, appended by the service that did
-- it (idempotent on its UUID v7 id, so it sorts by time), never changed, and dropped past the
-- retention. `tenant_id` is empty for the platform's own resources; times are µs since the
-- epoch.
CREATE TABLE audit_events (
    event_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    time BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    service TEXT NOT NULL
);
CREATE INDEX audit_events_of_tenant ON audit_events (tenant_id, event_id);
CREATE INDEX audit_events_by_time ON audit_events (time);
