-- Offboarding (decision 0014): `DeleteTenant` writes an `offboard` hand-off, with how the
-- tenant's data is to be deleted: at once after the export (`force`), and its objects in the
-- cold tier too (`purge_archive`). SQLite cannot change a CHECK, so the table is made again.
CREATE TABLE provisioning_outbox_new (
    request_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    owner TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    sent_time BIGINT,
    kind TEXT NOT NULL DEFAULT 'onboard' CHECK (kind IN ('onboard', 'reconcile', 'offboard')),
    force BOOLEAN NOT NULL DEFAULT 0,
    purge_archive BOOLEAN NOT NULL DEFAULT 0
);
INSERT INTO provisioning_outbox_new
    (request_id, tenant_id, create_time, owner, lease_until, attempts, sent_time, kind)
    SELECT request_id, tenant_id, create_time, owner, lease_until, attempts, sent_time, kind
    FROM provisioning_outbox;
DROP TABLE provisioning_outbox;
ALTER TABLE provisioning_outbox_new RENAME TO provisioning_outbox;
CREATE INDEX provisioning_outbox_unsent ON provisioning_outbox (create_time) WHERE sent_time IS NULL;
