-- The warm and cold tiers on SQLite: the same tables as on PostgreSQL (see there), with
-- timestamps as microseconds since the Unix epoch. SQLite has one writer at a time, so the
-- rollup job and the writers are serialized by `BEGIN IMMEDIATE`.

CREATE TABLE rollup_state (
    tenant_no INTEGER PRIMARY KEY REFERENCES storage_tenants (tenant_no),
    rolled_to INTEGER,
    warm_from INTEGER
);
INSERT INTO rollup_state (tenant_no) SELECT tenant_no FROM storage_tenants;

CREATE TABLE rollups_1m (
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID;

CREATE TABLE rollups_1h (
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID;

CREATE TABLE cold_objects (
    object_key TEXT PRIMARY KEY,
    tenant_no INTEGER NOT NULL REFERENCES storage_tenants (tenant_no),
    day TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed')),
    readings INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    create_time TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    commit_time TEXT
);
CREATE INDEX cold_objects_by_day ON cold_objects (tenant_no, day);
