-- What a run does (decision 0014): `onboard` (every step; its outcome is the tenant's state) or
-- `reconcile` (a change of retention or budget applied again; reported to no one).
ALTER TABLE provisioning_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'onboard'
    CHECK (kind IN ('onboard', 'reconcile'));
