-- Each tenant's budget thresholds: the fractions of its monthly limit whose crossing, by its
-- actual or forecast cost, is alerted on. The limit itself is the tenant's monthlyBudgetUsd,
-- kept by the tenant service; a tenant without a row has the default thresholds.

CREATE TABLE budgets (
    tenant_id TEXT PRIMARY KEY,
    -- A JSON array of fractions, ascending.
    thresholds TEXT NOT NULL,
    update_time BIGINT NOT NULL
);
