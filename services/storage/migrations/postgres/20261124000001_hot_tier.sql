-- The hot tier on PostgreSQL.
--
-- Each tenant gets a number; a series (tenant, machine, metric) gets a 64-bit id whose upper 32
-- bits are the tenant's number. `readings` is partitioned by series id range, one partition per
-- tenant, and each tenant's partition by day. A reading row is three fixed-width columns.
-- Partitions are created by the service (ahead of time and on demand) and dropped whole once
-- archived: retention never deletes row by row, and each tenant's retention applies to its own
-- partitions.

CREATE TABLE storage_tenants (
    tenant_no integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL UNIQUE,
    next_series bigint NOT NULL DEFAULT 0 CHECK (next_series <= 4294967296),
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE series (
    series_id bigint PRIMARY KEY,
    tenant_no integer NOT NULL REFERENCES storage_tenants (tenant_no),
    machine_id text NOT NULL,
    metric text NOT NULL,
    UNIQUE (tenant_no, machine_id, metric)
);

CREATE TABLE readings (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series_id, ts)
) PARTITION BY RANGE (series_id);

-- The days of each tenant that have a hot partition.
CREATE TABLE hot_partitions (
    tenant_no integer NOT NULL REFERENCES storage_tenants (tenant_no),
    day date NOT NULL,
    PRIMARY KEY (tenant_no, day)
);
