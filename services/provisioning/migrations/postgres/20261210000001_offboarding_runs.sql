-- Offboarding runs (decision 0014): `offboard` (export, grace period, delete; reported to no
-- one), with how they delete: without the grace period (`force`), and the tenant's objects in
-- the cold tier too (`purge_archive`).
ALTER TABLE provisioning_runs DROP CONSTRAINT provisioning_runs_kind_check;
ALTER TABLE provisioning_runs ADD CONSTRAINT provisioning_runs_kind_check
    CHECK (kind IN ('onboard', 'reconcile', 'offboard'));
ALTER TABLE provisioning_runs ADD COLUMN force BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE provisioning_runs ADD COLUMN purge_archive BOOLEAN NOT NULL DEFAULT FALSE;
