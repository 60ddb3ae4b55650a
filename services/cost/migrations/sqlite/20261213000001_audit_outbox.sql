-- The cost service's audit outbox (decision 0014, `mfg_common::audit`): the changes of budgets
-- and of the price book are recorded here in their own transactions, and a relay appends them
-- to the audit log of the provisioning service (idempotent on the event's UUID v7), claiming
-- rows under a lease. Times are µs since the epoch; a price-book change has no tenant ('').
CREATE TABLE cost_audit_outbox (
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
CREATE INDEX cost_audit_outbox_unsent ON cost_audit_outbox (event_id) WHERE sent_time IS NULL;
