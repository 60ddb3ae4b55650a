-- Alert rules, per tenant: the same table as on PostgreSQL (see there), with JSON as text and
-- times as microseconds since the Unix epoch.

CREATE TABLE alert_rules (
    tenant_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    metric TEXT NOT NULL,
    selector TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    condition TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, rule_id)
) WITHOUT ROWID;
