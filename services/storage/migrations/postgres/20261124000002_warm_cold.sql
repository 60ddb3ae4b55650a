-- The warm and cold tiers on PostgreSQL.
--
-- Rollups at 1 minute and 1 hour per series. `rollup_state` says, per tenant, how far the
-- rollups are complete (`rolled_to`: every bucket below it is rolled up) and from where they
-- are kept (`warm_from`: older buckets were expired). The rollup job takes a tenant's row
-- FOR UPDATE while it rolls up; writers read it FOR SHARE in their transaction and merge
-- readings older than `rolled_to` (late or backfilled) into the buckets they fall in, so a late
-- reading re-rolls only the buckets it touches, of its own series.
--
-- `cold_objects` is the manifest of the Parquet archive: one row per object, written `pending`
-- before the upload (so a retry reuses the key) and `committed` in the transaction that removes
-- the archived day from the hot tier.

CREATE TABLE rollup_state (
    tenant_no integer PRIMARY KEY REFERENCES storage_tenants (tenant_no),
    rolled_to timestamptz,
    warm_from timestamptz
);
INSERT INTO rollup_state (tenant_no) SELECT tenant_no FROM storage_tenants;

CREATE TABLE rollups_1m (
    series_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    count bigint NOT NULL,
    last_ts timestamptz NOT NULL,
    last double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
);

CREATE TABLE rollups_1h (LIKE rollups_1m INCLUDING ALL);

CREATE TABLE cold_objects (
    object_key text PRIMARY KEY,
    tenant_no integer NOT NULL REFERENCES storage_tenants (tenant_no),
    day date NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'committed')),
    readings bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    commit_time timestamptz
);
CREATE INDEX cold_objects_by_day ON cold_objects (tenant_no, day);
