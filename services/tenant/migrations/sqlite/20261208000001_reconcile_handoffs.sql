-- What a hand-off starts (decision 0014): `onboard`, written with a new tenant, or `reconcile`,
-- written with a change of an onboarded tenant's retention or budget, so the provisioning
-- service applies it again.
ALTER TABLE provisioning_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'onboard'
    CHECK (kind IN ('onboard', 'reconcile'));
