-- Tenants, their API keys and their machines. UUIDs are 16-byte blobs, timestamps RFC 3339
-- text, labels and scopes JSON text.

CREATE TABLE tenants (
    id                          BLOB PRIMARY KEY NOT NULL,
    -- Names stay reserved after a (soft) delete: the row is never removed.
    name                        TEXT NOT NULL UNIQUE,
    display_name                TEXT NOT NULL,
    plan                        TEXT NOT NULL CHECK (plan IN ('shared', 'dedicated')),
    state                       TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'deleted')),
    labels                      TEXT NOT NULL DEFAULT '{}',
    max_machines                INTEGER NOT NULL CHECK (max_machines > 0),
    ingest_readings_per_second  INTEGER NOT NULL CHECK (ingest_readings_per_second > 0),
    api_requests_per_second     INTEGER NOT NULL CHECK (api_requests_per_second > 0),
    hot_days                    INTEGER NOT NULL CHECK (hot_days > 0),
    warm_days                   INTEGER NOT NULL CHECK (warm_days > 0),
    cold_days                   INTEGER NOT NULL CHECK (cold_days > 0),
    monthly_budget_usd          REAL NOT NULL CHECK (monthly_budget_usd >= 0),
    create_time                 TEXT NOT NULL,
    update_time                 TEXT NOT NULL,
    delete_time                 TEXT
);

CREATE TABLE api_keys (
    key_id        BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    display_name  TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    -- HMAC-SHA-256 of the secret under the server's pepper; the secret itself is never stored.
    secret_hash   BLOB NOT NULL,
    create_time   TEXT NOT NULL,
    revoke_time   TEXT
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, key_id);

CREATE TABLE machines (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    machine_id    TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    labels        TEXT NOT NULL DEFAULT '{}',
    create_time   TEXT NOT NULL,
    update_time   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, machine_id)
);
