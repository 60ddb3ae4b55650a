-- The budget alerts raised: one row per tenant, month, basis (actual or forecast cost) and
-- threshold (as written, e.g. `0.8`), so a breach is alerted once a month whichever cost
-- process sees it first. A process claims a breach by inserting its row with the alert id the
-- storage service will raise it under; it marks it `raised` once the storage service holds
-- it. A claim not raised within a minute (its process failed) is taken over by the next check,
-- with the same alert id, which the storage service raises once. `ended`: the storage service
-- resolved the alerts of the month once it was over.
CREATE TABLE budget_alerts (
    tenant_id TEXT NOT NULL,
    month TEXT NOT NULL,
    basis TEXT NOT NULL CHECK (basis IN ('actual', 'forecast')),
    threshold TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    claim_time BIGINT NOT NULL,
    raised BOOLEAN NOT NULL DEFAULT FALSE,
    ended BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (tenant_id, month, basis, threshold)
);
CREATE INDEX budget_alerts_not_ended ON budget_alerts (month) WHERE NOT ended;
