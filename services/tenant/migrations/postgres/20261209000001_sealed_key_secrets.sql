-- A key created by onboarding keeps its secret sealed (AES-256-GCM under a key derived from the
-- pepper) until the operator claims it; the claim, or a revocation, erases it (decision 0014).
ALTER TABLE api_keys ADD COLUMN sealed_secret bytea;
