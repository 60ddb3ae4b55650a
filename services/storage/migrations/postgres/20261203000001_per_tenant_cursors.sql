-- Alert event cursors are a position in the tenant's own log, given out by the database in
-- the transaction that writes the events: `alert_cursors` holds each tenant's last cursor, its
-- row locked by the writer until it commits, so two storage processes on one database never
-- give out the same cursor nor skip one. `server_started` is when the database server that
-- last gave one out started: with fast commit (synchronous_commit = off) a server crash can
-- lose cursors a subscriber saw, so the first write after a restart moves the tenant's
-- cursors past the time in µs (see ARCHITECTURE.md, Alerts).
-- `event_id` makes a write that is retried after an ambiguous commit land once.
CREATE TABLE alert_cursors (
    tenant_id uuid PRIMARY KEY,
    last_cursor bigint NOT NULL,
    server_started timestamptz
);
-- Cursors were one sequence across tenants: each tenant continues above the largest given.
INSERT INTO alert_cursors (tenant_id, last_cursor)
SELECT tenant_id, (SELECT max(cursor) FROM alert_events) FROM alert_events GROUP BY tenant_id;

ALTER TABLE alert_events ADD COLUMN event_id uuid;
UPDATE alert_events SET event_id = gen_random_uuid();
ALTER TABLE alert_events ALTER COLUMN event_id SET NOT NULL;
ALTER TABLE alert_events DROP CONSTRAINT alert_events_pkey;
ALTER TABLE alert_events ADD PRIMARY KEY (tenant_id, cursor);
DROP INDEX alert_events_by_tenant;
CREATE UNIQUE INDEX alert_events_by_id ON alert_events (event_id);
