-- Onboarding by the provisioning service (decision 0014). A tenant created while hand-off is on
-- starts `provisioning`; the run's outcome makes it `done` or `failed`, with the run's id and
-- the failed step's error. The API shows it as the tenant's state while the lifecycle state
-- (`state`) is active.
ALTER TABLE tenants ADD COLUMN onboarding TEXT NOT NULL DEFAULT 'done';
ALTER TABLE tenants ADD COLUMN provisioning_run_id TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN provisioning_error TEXT NOT NULL DEFAULT '';

-- The hand-off's outbox: a row is inserted in the transaction that creates the tenant, so no
-- tenant is left without a run. A relay claims unsent rows under a lease (µs since the epoch),
-- calls StartProvisioning with the row's request id (idempotent there), and marks it sent.
CREATE TABLE provisioning_outbox (
    request_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    owner TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    sent_time BIGINT
);
CREATE INDEX provisioning_outbox_unsent ON provisioning_outbox (create_time) WHERE sent_time IS NULL;
