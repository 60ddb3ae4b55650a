//! The statements of the hot tier on PostgreSQL (`hot.rs`). Each that reads `readings` names
//! the classes (`class = ANY(…)`), a time bound where it has one, and the series: run as unnamed
//! statements, they are planned with these values and touch only the leaves that can hold their
//! rows.

/// The bytes of the hot tier (every leaf of `readings`, and `late_readings`) and of the warm
/// tier (the rollups), tables and indexes.
pub(super) const TIER_BYTES: &str = "SELECT \
     CAST((SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0) \
           FROM pg_partition_tree('readings') WHERE isleaf) \
          + pg_total_relation_size('late_readings') AS BIGINT), \
     CAST(pg_total_relation_size('rollups_1m') + pg_total_relation_size('rollups_15m') \
          + pg_total_relation_size('rollups_1h') AS BIGINT)";
pub(super) const RECORD_DAY: &str = "INSERT INTO hot_days (tenant_no, day, class) \
     SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM cold_objects \
       WHERE tenant_no = $1 AND day = $2 AND state = 'committed') \
     ON CONFLICT DO NOTHING";
pub(super) const CLASS_OF_DAY: &str =
    "SELECT class FROM hot_days WHERE tenant_no = $1 AND day = $2";
/// The shares of the days a write touches, held until it commits: each (tenant, day) of the
/// arrays (sorted, so that writes lock in one order) probes the primary key in a lateral
/// subquery. A join of `hot_days` with the arrays was planned as a hash join over all of
/// `hot_days` when its statistics were stale (93,000 rows after 3,000 tenants' history came in):
/// 14 ms a write, a third of ingest.
pub(super) const SHARES: &str = "SELECT h.tenant_no, h.day, h.class \
     FROM unnest($1::int4[], $2::date[]) AS w(tenant_no, day) \
     CROSS JOIN LATERAL (SELECT tenant_no, day, class FROM hot_days \
                         WHERE tenant_no = w.tenant_no AND day = w.day FOR KEY SHARE) h";
/// The tenants' `rolled_to`, share-locked in the order of their numbers (the array is sorted),
/// each by a probe of the primary key as in [`SHARES`]. Reading it so holds the rollup job off
/// until the write commits: a row below it is merged by the write, a row above it rolled up by
/// the job.
pub(super) const ROLLED_TO: &str = "SELECT r.tenant_no, r.rolled_to \
     FROM unnest($1::int4[]) AS w(tenant_no) \
     CROSS JOIN LATERAL (SELECT tenant_no, rolled_to FROM rollup_state \
                         WHERE tenant_no = w.tenant_no FOR SHARE) r";
pub(super) const CLASSES: &str = "SELECT DISTINCT class FROM hot_days \
     WHERE tenant_no = $1 AND day >= coalesce($2, '-infinity') AND day <= coalesce($3, 'infinity')";
pub(super) const LOCK_SHARE: &str =
    "SELECT class FROM hot_days WHERE tenant_no = $1 AND day = $2 FOR UPDATE";
pub(super) const SHARES_LEFT: &str =
    "SELECT EXISTS (SELECT 1 FROM hot_days WHERE class = $1 AND day = $2)";

pub(super) const INSERT: &str = "INSERT INTO readings (series_id, ts, value, class) \
     SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[], $4::int4[]) \
     ON CONFLICT DO NOTHING RETURNING series_id, ts, value";
pub(super) const INSERT_LATE: &str = "INSERT INTO late_readings (series_id, ts, value) \
     SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[]) \
     ON CONFLICT DO NOTHING RETURNING series_id, ts, value";

/// The last reading of each of a machine's series: from the hot tier (the classes `$3`), or, for
/// a series with none left there, the last minute rollup's last reading. `UNION ALL … LIMIT 1`
/// reads the rollups only when the hot tier has nothing.
pub(super) const LATEST: &str = "SELECT s.metric, r.ts, r.value FROM series s \
     CROSS JOIN LATERAL ( \
         (SELECT ts, value FROM readings WHERE class = ANY($3) AND series_id = s.series_id \
          ORDER BY ts DESC LIMIT 1) \
         UNION ALL \
         (SELECT last_ts, last FROM rollups_1m WHERE series_id = s.series_id \
          ORDER BY bucket DESC LIMIT 1) \
         LIMIT 1) r \
     WHERE s.tenant_no = $1 AND s.machine_id = $2 ORDER BY s.metric";

/// The last reading of each of a machine's series since `$4` (the tenant's last two hot days),
/// from the hot tier only: the leaves of those days, where a machine that reports has its
/// latest readings. A series without one there has a null row, and `LATEST` answers instead.
pub(super) const LATEST_RECENT: &str = "SELECT s.metric, r.ts, r.value FROM series s \
     LEFT JOIN LATERAL (SELECT ts, value FROM readings \
                        WHERE class = ANY($3) AND series_id = s.series_id AND ts >= $4 \
                        ORDER BY ts DESC LIMIT 1) r ON true \
     WHERE s.tenant_no = $1 AND s.machine_id = $2 ORDER BY s.metric";
/// The classes of a tenant's days in the hot tier, and its last day.
pub(super) const CLASSES_AND_LAST_DAY: &str =
    "SELECT class, max(day) FROM hot_days WHERE tenant_no = $1 GROUP BY class";

pub(super) const POINTS: &str = "SELECT ts, value FROM readings \
     WHERE class = ANY($4) AND series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";

/// A series' readings in the ranges `[$2[i], $3[i])`: an index range scan for each, one round
/// trip; bounded by `[$5, $6)` (the first start and the last end), so the plan prunes to
/// their days. `OFFSET 0` keeps the subquery from being pulled up into a join, which turned
/// into reading all of the series and filtering (100 s instead of 11 ms for 500 ranges). The
/// arrays come through `(SELECT $n)`, so the plan does not see them as constants: with
/// constants it spent ~36 ms before the first range (80 ms for 483 ranges instead of 15 ms).
/// Queries roll the readings up into their buckets: PostgreSQL's aggregation of them
/// (`date_bin`, the last value as the greatest `[epoch, value]`) cost more than the scans.
/// One row of two arrays: a row costs the service more to decode than an array's element.
pub(super) const POINTS_IN: &str = "SELECT array_agg(r.ts), array_agg(r.value) \
     FROM unnest((SELECT $2::timestamptz[]), (SELECT $3::timestamptz[])) AS e(from_ts, to_ts) \
     CROSS JOIN LATERAL (SELECT ts, value FROM readings \
                         WHERE class = ANY($4) AND series_id = $1 \
                           AND ts >= e.from_ts AND ts < e.to_ts AND ts >= $5 AND ts < $6 \
                         OFFSET 0) r";

/// The sum and count of a series' readings in each range `[$2[i], $3[i])`, as [`POINTS_IN`]
/// finds them, in the ranges' order: one row of two arrays. Each range's aggregate costs
/// less than sending its readings (the minutes a dashboard's buckets split hold ~15 each).
pub(super) const SUMS_IN: &str = "SELECT array_agg(r.sum ORDER BY e.n), array_agg(r.count ORDER BY e.n) \
     FROM unnest((SELECT $2::timestamptz[]), (SELECT $3::timestamptz[])) \
          WITH ORDINALITY AS e(from_ts, to_ts, n) \
     CROSS JOIN LATERAL (SELECT coalesce(sum(value), 0) AS sum, count(*) AS count FROM readings \
                         WHERE class = ANY($4) AND series_id = $1 \
                           AND ts >= e.from_ts AND ts < e.to_ts AND ts >= $5 AND ts < $6) r";

/// Rolls a tenant's (`$1 <= series_id < $2`) readings in `[$3, $4)` up into minute buckets,
/// replacing what was there.
pub(super) const ROLLUP_MINUTES: &str = "INSERT INTO rollups_1m \
       (series_id, bucket, min, max, sum, count, last_ts, last) \
     SELECT series_id, date_bin('1 minute', ts, 'epoch'), min(value), max(value), sum(value), \
            count(*), max(ts), (array_agg(value ORDER BY ts DESC))[1] \
     FROM readings \
     WHERE class = ANY($5) AND series_id >= $1 AND series_id < $2 AND ts >= $3 AND ts < $4 \
     GROUP BY 1, 2 \
     ON CONFLICT (series_id, bucket) DO UPDATE SET min = excluded.min, max = excluded.max, \
       sum = excluded.sum, count = excluded.count, last_ts = excluded.last_ts, \
       last = excluded.last";

pub(super) const COUNT_DAY: &str = "SELECT count(*) FROM readings \
     WHERE class = $5 AND series_id >= $1 AND series_id < $2 AND ts >= $3 AND ts < $4";

pub(super) const LATE_POINTS: &str = "SELECT ts, value FROM late_readings \
     WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts";
pub(super) const LATE_DAYS: &str = "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM late_readings \
     WHERE series_id >= $1 AND series_id < $2 ORDER BY 1";
pub(super) const REMOVE_LATE: &str = "DELETE FROM late_readings \
     WHERE series_id >= $1 AND series_id < $2 AND ts >= $3 AND ts < $4";
