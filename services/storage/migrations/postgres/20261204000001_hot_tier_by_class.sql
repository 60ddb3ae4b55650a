-- The hot tier by retention class, then by day (docs/decisions/0002-hot-tier-layout.md): the
-- number of partitions no longer grows with the number of tenants.
--
-- `readings` is partitioned LIST (class), each class RANGE (ts) by UTC day; every leaf
-- (`readings_c{class}_{yyyymmdd}`, made by the service) has the primary key (series_id, ts).
-- `hot_days` records, for each tenant's day in the hot tier, the class its readings live in:
-- set by the first write of the day and kept, so a reading's key is in one class only. A day
-- leaves the hot tier per tenant (its share archived); its leaf is dropped with the last share.
-- `late_readings` holds readings that arrive for a day whose share was already archived.
--
-- Readings stored before are moved to class 0 ("before classes"), whose days leave as every
-- tenant's share of them is archived.

ALTER TABLE readings RENAME TO readings_by_tenant;
ALTER TABLE hot_partitions RENAME TO hot_days;
ALTER TABLE hot_days ADD COLUMN class integer NOT NULL DEFAULT 0;
ALTER TABLE hot_days ALTER COLUMN class DROP DEFAULT;
CREATE INDEX hot_days_by_class ON hot_days (class, day);

CREATE TABLE readings (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    class integer NOT NULL
) PARTITION BY LIST (class);

CREATE TABLE late_readings (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series_id, ts)
);

DO $$
DECLARE
    day date;
    leaf text;
BEGIN
    IF EXISTS (SELECT 1 FROM hot_days) THEN
        CREATE TABLE readings_c0 PARTITION OF readings FOR VALUES IN (0) PARTITION BY RANGE (ts);
    END IF;
    FOR day IN SELECT DISTINCT h.day FROM hot_days h ORDER BY 1 LOOP
        leaf := 'readings_c0_' || to_char(day, 'YYYYMMDD');
        EXECUTE format('CREATE TABLE %I PARTITION OF readings_c0 FOR VALUES FROM (%L) TO (%L)',
            leaf, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (series_id, ts)', leaf);
    END LOOP;
END $$;

INSERT INTO readings (series_id, ts, value, class)
SELECT series_id, ts, value, 0 FROM readings_by_tenant;
DROP TABLE readings_by_tenant;
