-- The hot tier on SQLite (the embedded default). The same model as on PostgreSQL: tenant
-- numbers, 64-bit series ids whose upper 32 bits are the tenant's number, and narrow reading
-- rows clustered by (series_id, ts). SQLite has no partitions: archived days are removed by a
-- range delete on that primary key.

CREATE TABLE storage_tenants (
    tenant_no INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL UNIQUE,
    next_series INTEGER NOT NULL DEFAULT 0 CHECK (next_series <= 4294967296),
    create_time TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE series (
    series_id INTEGER PRIMARY KEY,
    tenant_no INTEGER NOT NULL REFERENCES storage_tenants (tenant_no),
    machine_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (tenant_no, machine_id, metric)
);

-- ts: microseconds since the Unix epoch, UTC.
CREATE TABLE readings (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;

CREATE TABLE hot_partitions (
    tenant_no INTEGER NOT NULL REFERENCES storage_tenants (tenant_no),
    day TEXT NOT NULL,
    PRIMARY KEY (tenant_no, day)
);
