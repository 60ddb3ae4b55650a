//! What both backends share: the SQL text that is the same on both (`$N` placeholders bind by
//! number on PostgreSQL and SQLite), the merge of late readings into rollups, and the macros
//! that write a statement in each dialect at compile time. The stores themselves are plain
//! generic Rust, once for both backends: `telemetry/store/sql.rs` (`impl TelemetryStore` for every
//! `HotTier`) and `alerting/store/sql.rs` (`impl AlertStore` for every `SqlBackend`); `backend.rs` is
//! what a backend says about itself: how it stores times and ids, begins a write and locks a
//! row, its statements whose SQL differs, and its hot tier's own functions.

use std::collections::{BTreeMap, HashMap};

use super::TenantNo;
use crate::telemetry::store::{Resolution, Row, SeriesId};
use crate::{micros::Micros, telemetry::domain::Rollup};

pub(crate) const SELECT_TENANT: &str = "SELECT tenant_no FROM storage_tenants WHERE tenant_id = $1";
pub(crate) const REGISTER_TENANT: &str = "INSERT INTO storage_tenants (tenant_id) VALUES ($1) \
     ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = excluded.tenant_id RETURNING tenant_no";
pub(crate) const REGISTER_ROLLUP_STATE: &str =
    "INSERT INTO rollup_state (tenant_no) VALUES ($1) ON CONFLICT DO NOTHING";
pub(crate) const TENANTS: &str =
    "SELECT tenant_no, tenant_id FROM storage_tenants ORDER BY tenant_no";
pub(crate) const SELECT_SERIES: &str =
    "SELECT series_id FROM series WHERE tenant_no = $1 AND machine_id = $2 AND metric = $3";
pub(crate) const INSERT_SERIES: &str =
    "INSERT INTO series (series_id, tenant_no, machine_id, metric) VALUES ($1, $2, $3, $4)";
pub(crate) const SET_NEXT_SERIES: &str =
    "UPDATE storage_tenants SET next_series = $2 WHERE tenant_no = $1";
pub(crate) const SERIES_OF: &str = "SELECT series_id, machine_id, metric FROM series \
     WHERE tenant_no = $1 ORDER BY machine_id, metric";
pub(crate) const HOT_DAYS: &str = "SELECT day FROM hot_days WHERE tenant_no = $1 ORDER BY day";
pub(crate) const FORGET_DAY: &str = "DELETE FROM hot_days WHERE tenant_no = $1 AND day = $2";
pub(crate) const ROLLUP_STATE: &str =
    "SELECT rolled_to, warm_from FROM rollup_state WHERE tenant_no = $1";
pub(crate) const SET_ROLLED_TO: &str =
    "UPDATE rollup_state SET rolled_to = $2 WHERE tenant_no = $1";
pub(crate) const SET_WARM_FROM: &str =
    "UPDATE rollup_state SET warm_from = $2 WHERE tenant_no = $1";
pub(crate) const PENDING_OBJECT: &str = "SELECT object_key FROM cold_objects \
     WHERE tenant_no = $1 AND day = $2 AND state = 'pending'";
pub(crate) const INSERT_PENDING_OBJECT: &str =
    "INSERT INTO cold_objects (object_key, tenant_no, day, state) VALUES ($1, $2, $3, 'pending')";
pub(crate) const COMMIT_OBJECT: &str = "UPDATE cold_objects SET state = 'committed', \
     readings = $2, bytes = $3, commit_time = $4 WHERE object_key = $1 AND state = 'pending'";
pub(crate) const COLD_OBJECTS: &str = "SELECT object_key, day, readings, bytes FROM cold_objects \
     WHERE tenant_no = $1 AND state = 'committed' AND day >= $2 AND day <= $3 \
     ORDER BY day, object_key";
pub(crate) const FORGET_OBJECT: &str = "DELETE FROM cold_objects WHERE object_key = $1";
/// An offboarded tenant's late readings (`$1 <= series_id < $2`).
pub(crate) const FORGET_LATE_READINGS: &str =
    "DELETE FROM late_readings WHERE series_id >= $1 AND series_id < $2";
/// An offboarded tenant's objects and series (`tenant_no = $1`).
pub(crate) const FORGET_OBJECTS_AND_SERIES: [&str; 2] = [
    "DELETE FROM cold_objects WHERE tenant_no = $1",
    "DELETE FROM series WHERE tenant_no = $1",
];
/// A tenant's hour rollups (`[$1, $2)` its series), and the readings of those from `$3` on.
pub(crate) const ROLLUP_HOURS: &str = "SELECT count(*), \
     CAST(COALESCE(SUM(CASE WHEN bucket >= $3 THEN count ELSE 0 END), 0) AS BIGINT) \
     FROM rollups_1h WHERE series_id >= $1 AND series_id < $2";
pub(crate) const COLD_BYTES: &str = "SELECT tenant_no, CAST(SUM(bytes) AS BIGINT) \
     FROM cold_objects WHERE state = 'committed' GROUP BY tenant_no";

/// The rollups that new rows older than their tenant's `rolled_to` add to the warm tier, per
/// resolution, keyed by series and bucket start: what a writer merges in its transaction.
pub(crate) fn late_rollups(
    new: &[Row],
    rolled_to: &HashMap<TenantNo, Micros>,
) -> [BTreeMap<(SeriesId, Micros), Rollup>; 3] {
    let mut merged = [BTreeMap::new(), BTreeMap::new(), BTreeMap::new()];
    for row in new {
        let Some(&rolled_to) = rolled_to.get(&row.series_id.tenant()) else {
            continue;
        };
        if row.ts >= rolled_to {
            continue;
        }
        for (resolution, buckets) in Resolution::ALL.into_iter().zip(merged.iter_mut()) {
            let key = (row.series_id, row.ts.floor(resolution.micros()));
            buckets
                .entry(key)
                .and_modify(|r: &mut Rollup| r.add(row.ts, row.value))
                .or_insert_with(|| Rollup::of(row.ts, row.value));
        }
    }
    merged
}

/// The statements over all of a tenant's series (`$1 <= series_id < $2`): `EXPIRE_MINUTES`,
/// `EXPIRE_QUARTERS` and `EXPIRE_HOURS` (its rollups before `$3`).
/// `$of_tenant` is the dialect's predicate: PostgreSQL prunes partitions by the range itself;
/// SQLite seeks `(series_id, …)` for each of the tenant's series, where a range on `series_id`
/// alone would walk all the tenant's rows.
macro_rules! tenant_statements {
    ($of_tenant:literal) => {
        const EXPIRE_MINUTES: &str = concat!(
            "DELETE FROM rollups_1m WHERE ",
            $of_tenant,
            " AND bucket < $3"
        );
        const EXPIRE_QUARTERS: &str = concat!(
            "DELETE FROM rollups_15m WHERE ",
            $of_tenant,
            " AND bucket < $3"
        );
        const EXPIRE_HOURS: &str = concat!(
            "DELETE FROM rollups_1h WHERE ",
            $of_tenant,
            " AND bucket < $3"
        );
    };
}

/// `INSERT … ON CONFLICT DO UPDATE` merging one rollup (`$1` series, `$2` bucket, then min,
/// max, sum, count, last_ts, last) into a bucket of `$table`. `$least` and `$greatest` name the
/// dialect's two-argument minimum and maximum: `least`/`greatest` on PostgreSQL, the scalar
/// `min`/`max` on SQLite.
macro_rules! merge_into {
    ($table:literal, $least:literal, $greatest:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (series_id, bucket, min, max, sum, count, last_ts, last) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (series_id, bucket) DO UPDATE SET min = ",
            $least,
            "(",
            $table,
            ".min, excluded.min), max = ",
            $greatest,
            "(",
            $table,
            ".max, excluded.max), sum = ",
            $table,
            ".sum + excluded.sum, count = ",
            $table,
            ".count + excluded.count, last = CASE WHEN excluded.last_ts > ",
            $table,
            ".last_ts THEN excluded.last ELSE ",
            $table,
            ".last END, last_ts = ",
            $greatest,
            "(",
            $table,
            ".last_ts, excluded.last_ts)"
        )
    };
}
