-- Hot-tier layouts compared (docs/decisions/0002-hot-tier-layout.md, docs/BENCHMARKS.md):
--   l1  day partitions only
--   l2  LIST by hot retention class (a smallint column), then RANGE by day   <- chosen
--   l3  LIST by one of 16 tenant hash buckets (a smallint column), then RANGE by day
-- Each with 32 days, a primary key (series_id, ts) on every leaf, and the same rows:
-- 3,000 tenants x 3 series x 30 days x 24 readings a day (6.48M rows), tenants spread over
-- four classes (7, 30, 90 and 365 days). It loads each layout (INSERT … SELECT, timed), then
-- plans and runs `latest` and a 1-day range of one series six times each and prints the last.
-- Run on a scratch database:
--   psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS layouts' -c 'CREATE DATABASE layouts'
--   psql -h 127.0.0.1 -U postgres -d layouts -f scripts/bench/hot-layouts.sql
\set ON_ERROR_STOP 1
\set QUIET 1
CREATE TABLE l1 (series_id int8 NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL)
    PARTITION BY RANGE (ts);
CREATE TABLE l2 (series_id int8 NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL,
    class int2 NOT NULL) PARTITION BY LIST (class);
CREATE TABLE l3 (series_id int8 NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL,
    bucket int2 NOT NULL) PARTITION BY LIST (bucket);
DO $$
DECLARE d date; k int; leaf text;
BEGIN
  FOR k IN SELECT unnest(ARRAY[7, 30, 90, 365]) LOOP
    EXECUTE format('CREATE TABLE l2_c%s PARTITION OF l2 FOR VALUES IN (%s) PARTITION BY RANGE (ts)', k, k);
  END LOOP;
  FOR k IN 0..15 LOOP
    EXECUTE format('CREATE TABLE l3_b%s PARTITION OF l3 FOR VALUES IN (%s) PARTITION BY RANGE (ts)', k, k);
  END LOOP;
  FOR d IN SELECT generate_series(date '2026-11-03', date '2026-12-04', interval '1 day')::date LOOP
    leaf := format('l1_%s', to_char(d, 'YYYYMMDD'));
    EXECUTE format('CREATE TABLE %I PARTITION OF l1 FOR VALUES FROM (%L) TO (%L)', leaf, d::timestamptz, (d + 1)::timestamptz);
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (series_id, ts)', leaf);
    FOR k IN SELECT unnest(ARRAY[7, 30, 90, 365]) LOOP
      leaf := format('l2_c%s_%s', k, to_char(d, 'YYYYMMDD'));
      EXECUTE format('CREATE TABLE %I PARTITION OF l2_c%s FOR VALUES FROM (%L) TO (%L)', leaf, k, d::timestamptz, (d + 1)::timestamptz);
      EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (series_id, ts)', leaf);
    END LOOP;
    FOR k IN 0..15 LOOP
      leaf := format('l3_b%s_%s', k, to_char(d, 'YYYYMMDD'));
      EXECUTE format('CREATE TABLE %I PARTITION OF l3_b%s FOR VALUES FROM (%L) TO (%L)', leaf, k, d::timestamptz, (d + 1)::timestamptz);
      EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (series_id, ts)', leaf);
    END LOOP;
  END LOOP;
END $$;
CREATE UNLOGGED TABLE src AS
SELECT (t::int8 << 32) + s AS series_id, timestamptz '2026-11-04' + h * interval '1 hour' AS ts,
       random() AS value, (ARRAY[7, 30, 90, 365])[1 + t % 4]::int2 AS class,
       (t % 16)::int2 AS bucket
FROM generate_series(1, 3000) t, generate_series(0, 2) s, generate_series(0, 30 * 24 - 1) h;
CHECKPOINT;
\echo load (one connection):
\timing on
INSERT INTO l1 SELECT series_id, ts, value FROM src;
INSERT INTO l2 SELECT series_id, ts, value, class FROM src;
INSERT INTO l3 SELECT series_id, ts, value, bucket FROM src;
\timing off
VACUUM ANALYZE l1; VACUUM ANALYZE l2; VACUUM ANALYZE l3;
SELECT layout, count(*) AS leaves, pg_size_pretty(sum(pg_relation_size(c.oid))) AS heap,
       pg_size_pretty(sum(pg_indexes_size(c.oid))) AS indexes
FROM (VALUES ('l1'), ('l2'), ('l3')) v(layout)
JOIN pg_class c ON c.relname LIKE layout || '\_%' AND c.relkind = 'r'
GROUP BY layout ORDER BY layout;
-- Tenant 1234: class (ARRAY[7, 30, 90, 365])[1 + 1234 % 4] = 90, bucket 1234 % 16 = 2.
CREATE FUNCTION timings(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; result text;
BEGIN
  FOR i IN 1..6 LOOP
    result := '';
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, SUMMARY, COSTS OFF, TIMING OFF) ' || query LOOP
      IF line LIKE 'Planning Time%' OR line LIKE 'Execution Time%' THEN
        result := result || line || '  ';
      END IF;
    END LOOP;
  END LOOP;
  RETURN result;
END $$;
SELECT q AS query, timings(sql) FROM (VALUES
  ('l1 latest, today', 'SELECT ts, value FROM l1 WHERE series_id = 1234::int8 << 32 AND ts >= ''2026-12-03'' ORDER BY ts DESC LIMIT 1'),
  ('l1 latest, unbounded', 'SELECT ts, value FROM l1 WHERE series_id = 1234::int8 << 32 ORDER BY ts DESC LIMIT 1'),
  ('l2 latest, unbounded', 'SELECT ts, value FROM l2 WHERE class = 90 AND series_id = 1234::int8 << 32 ORDER BY ts DESC LIMIT 1'),
  ('l3 latest, unbounded', 'SELECT ts, value FROM l3 WHERE bucket = 2 AND series_id = 1234::int8 << 32 ORDER BY ts DESC LIMIT 1'),
  ('l2 latest, no class', 'SELECT ts, value FROM l2 WHERE series_id = 1234::int8 << 32 ORDER BY ts DESC LIMIT 1'),
  ('l1 1 day', 'SELECT count(*), avg(value) FROM l1 WHERE series_id = 1234::int8 << 32 AND ts >= ''2026-11-20'' AND ts < ''2026-11-21'''),
  ('l2 1 day', 'SELECT count(*), avg(value) FROM l2 WHERE class = 90 AND series_id = 1234::int8 << 32 AND ts >= ''2026-11-20'' AND ts < ''2026-11-21'''),
  ('l3 1 day', 'SELECT count(*), avg(value) FROM l3 WHERE bucket = 2 AND series_id = 1234::int8 << 32 AND ts >= ''2026-11-20'' AND ts < ''2026-11-21''')
) v(q, sql);
