-- The storage service's audit outbox (decision 0014, `mfg_common::audit`): the changes of alert
-- rules and the alerts acknowledged or resolved by hand are recorded here in their own
-- transactions, and a relay appends them to the audit log of the provisioning service
-- (idempotent on the event's UUID v7), claiming rows under a lease. Times are µs since the epoch.
CREATE TABLE storage_audit_outbox (
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
CREATE INDEX storage_audit_outbox_unsent ON storage_audit_outbox (event_id) WHERE sent_time IS NULL;
