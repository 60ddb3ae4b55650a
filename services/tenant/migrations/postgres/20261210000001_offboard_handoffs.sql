-- Offboarding (decision 0014): `DeleteTenant` writes an `offboard` hand-off, with how the
-- tenant's data is to be deleted: at once after the export (`force`), and its objects in the
-- cold tier too (`purge_archive`).
ALTER TABLE provisioning_outbox DROP CONSTRAINT provisioning_outbox_kind_check;
ALTER TABLE provisioning_outbox ADD CONSTRAINT provisioning_outbox_kind_check
    CHECK (kind IN ('onboard', 'reconcile', 'offboard'));
ALTER TABLE provisioning_outbox ADD COLUMN force boolean NOT NULL DEFAULT false;
ALTER TABLE provisioning_outbox ADD COLUMN purge_archive boolean NOT NULL DEFAULT false;
