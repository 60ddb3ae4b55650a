-- The tenant service's audit outbox (decision 0014): each administrative action (tenant, key and
-- machine changes) is recorded here, and the hand-off's relay appends it to the audit log of
-- the provisioning service (idempotent on the event's UUID v7), claiming rows under a lease as
-- it does the provisioning outbox's. Times are µs since the epoch.
CREATE TABLE audit_outbox (
    event_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    time BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    owner TEXT,
    lease_until BIGINT,
    sent_time BIGINT
);
CREATE INDEX audit_outbox_unsent ON audit_outbox (event_id) WHERE sent_time IS NULL;
