-- Tenants, their API keys and their machines.

CREATE TABLE tenants (
    id                          uuid PRIMARY KEY,
    -- Names stay reserved after a (soft) delete: the row is never removed.
    name                        text NOT NULL UNIQUE,
    display_name                text NOT NULL,
    plan                        text NOT NULL CHECK (plan IN ('shared', 'dedicated')),
    state                       text NOT NULL CHECK (state IN ('active', 'suspended', 'deleted')),
    labels                      jsonb NOT NULL DEFAULT '{}',
    max_machines                bigint NOT NULL CHECK (max_machines > 0),
    ingest_readings_per_second  bigint NOT NULL CHECK (ingest_readings_per_second > 0),
    api_requests_per_second     bigint NOT NULL CHECK (api_requests_per_second > 0),
    hot_days                    bigint NOT NULL CHECK (hot_days > 0),
    warm_days                   bigint NOT NULL CHECK (warm_days > 0),
    cold_days                   bigint NOT NULL CHECK (cold_days > 0),
    monthly_budget_usd          double precision NOT NULL CHECK (monthly_budget_usd >= 0),
    create_time                 timestamptz NOT NULL,
    update_time                 timestamptz NOT NULL,
    delete_time                 timestamptz
);

CREATE TABLE api_keys (
    key_id        uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    display_name  text NOT NULL,
    scopes        jsonb NOT NULL,
    -- HMAC-SHA-256 of the secret under the server's pepper; the secret itself is never stored.
    secret_hash   bytea NOT NULL,
    create_time   timestamptz NOT NULL,
    revoke_time   timestamptz
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, key_id);

CREATE TABLE machines (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    machine_id    text NOT NULL,
    display_name  text NOT NULL,
    labels        jsonb NOT NULL DEFAULT '{}',
    create_time   timestamptz NOT NULL,
    update_time   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, machine_id)
);
