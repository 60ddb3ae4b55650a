-- Usage summed by day and by calendar month (UTC) as well as by hour, kept in the transaction
-- that adds to the hour, so that a month of 1,000 tenants is read as one row per tenant and
-- meter. And each price book names the book it replaced, uniquely, so that of two changes
-- made from the same book one wins and the other is retried on the winner.

CREATE TABLE usage_days (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- The start of the day.
    day BIGINT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, day, meter)
);

CREATE TABLE usage_months (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- The start of the month.
    month BIGINT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, month, meter)
);

INSERT INTO usage_days (tenant_id, meter, day, amount)
SELECT tenant_id, meter, hour - hour % 86400000000, sum(amount)
FROM usage_hours GROUP BY 1, 2, 3;

INSERT INTO usage_months (tenant_id, meter, month, amount)
SELECT tenant_id, meter,
       (extract(epoch FROM date_trunc('month', to_timestamp(hour / 1e6) AT TIME ZONE 'UTC'))
        * 1000000)::BIGINT,
       sum(amount)
FROM usage_hours GROUP BY 1, 2, 3;

-- The effective_from of the book this one replaced; 0 for the first change of the defaults.
ALTER TABLE price_books ADD COLUMN replaces BIGINT;
CREATE UNIQUE INDEX price_books_replaces ON price_books (replaces);
