-- Alert rules, per tenant. The selector and the condition are JSON in the form the storage
-- service's domain serializes (see `domain/alert_rule.rs`); rule ids are UUIDv7, so their
-- order is the order of creation.

CREATE TABLE alert_rules (
    tenant_id uuid NOT NULL,
    rule_id uuid NOT NULL,
    display_name text NOT NULL,
    metric text NOT NULL,
    selector jsonb NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    condition jsonb NOT NULL,
    disabled boolean NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, rule_id)
);
