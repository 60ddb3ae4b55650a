-- Offboarding runs (decision 0014): `offboard` (export, grace period, delete; reported to no
-- one), with how they delete: without the grace period (`force`), and the tenant's objects in
-- the cold tier too (`purge_archive`). SQLite cannot change a CHECK, and `provisioning_steps`
-- refers to this table, so rather than making it again, `kind` is dropped (its CHECK is its
-- own) and added again with the new one, its values kept aside meanwhile.
ALTER TABLE provisioning_runs ADD COLUMN kind_before TEXT;
UPDATE provisioning_runs SET kind_before = kind;
ALTER TABLE provisioning_runs DROP COLUMN kind;
ALTER TABLE provisioning_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'onboard'
    CHECK (kind IN ('onboard', 'reconcile', 'offboard'));
UPDATE provisioning_runs SET kind = kind_before;
ALTER TABLE provisioning_runs DROP COLUMN kind_before;
ALTER TABLE provisioning_runs ADD COLUMN force BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE provisioning_runs ADD COLUMN purge_archive BOOLEAN NOT NULL DEFAULT FALSE;
