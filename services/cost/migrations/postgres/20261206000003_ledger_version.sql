-- How many times usage was recorded into hours a cost process may keep in memory as settled
-- (started more than half an hour before it was recorded): a backfill, or a flush held up. A
-- process that keeps settled hours, days and months reads this first and forgets them when it
-- changed, whichever process recorded the usage.
CREATE TABLE ledger_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO ledger_version (id, version) VALUES (1, 0);
