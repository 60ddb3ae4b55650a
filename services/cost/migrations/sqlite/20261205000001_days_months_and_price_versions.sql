-- Usage summed by day and by calendar month (UTC) as well as by hour, kept in the transaction
-- that adds to the hour, so that a month of 1,000 tenants is read as one row per tenant and
-- meter. And each price book names the book it replaced, uniquely, so that of two changes
-- made from the same book one wins and the other is retried on the winner.

CREATE TABLE usage_days (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- The start of the day.
    day INTEGER NOT NULL,
    amount REAL NOT NULL,
    PRIMARY KEY (tenant_id, day, meter)
);

CREATE TABLE usage_months (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- The start of the month.
    month INTEGER NOT NULL,
    amount REAL NOT NULL,
    PRIMARY KEY (tenant_id, month, meter)
);

INSERT INTO usage_days (tenant_id, meter, day, amount)
SELECT tenant_id, meter, hour - hour % 86400000000, sum(amount)
FROM usage_hours GROUP BY 1, 2, 3;

INSERT INTO usage_months (tenant_id, meter, month, amount)
SELECT tenant_id, meter,
       CAST(strftime('%s', hour / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000,
       sum(amount)
FROM usage_hours GROUP BY 1, 2, 3;

-- The effective_from of the book this one replaced; 0 for the first change of the defaults.
ALTER TABLE price_books ADD COLUMN replaces INTEGER;
CREATE UNIQUE INDEX price_books_replaces ON price_books (replaces);
