-- Budget alerts: the cost service raises them when a tenant's cost crosses a threshold of its
-- monthly limit. `budget` holds what was crossed (JSON in the storage service's domain form);
-- it is NULL for an alert of a rule. A budget alert has no rule nor machine, and several of a
-- tenant's may be unresolved at once, so only rule alerts are kept to one unresolved per rule
-- and machine. The cost service gives each breach one id, which keeps it to one alert.
ALTER TABLE alerts ADD COLUMN budget jsonb;
DROP INDEX alerts_one_unresolved;
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (tenant_id, rule_id, machine_id)
    WHERE state <> 'resolved' AND budget IS NULL;
