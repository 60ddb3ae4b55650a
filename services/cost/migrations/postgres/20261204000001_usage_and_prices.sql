-- The cost service's ledger: usage by tenant, meter and hour, the idempotency keys of the
-- records counted into it, and the price books with the moment each came into force. Times
-- are microseconds since the Unix epoch.

CREATE TABLE usage_hours (
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    -- The start of the hour.
    hour BIGINT NOT NULL,
    -- A count, or a level times the seconds it was held within the hour.
    amount DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, hour, meter)
);

CREATE TABLE usage_keys (
    idempotency_key TEXT PRIMARY KEY,
    record_time BIGINT NOT NULL
);

CREATE TABLE price_books (
    effective_from BIGINT PRIMARY KEY,
    book TEXT NOT NULL
);
