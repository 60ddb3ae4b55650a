//! Queries of one series over a range: raw points or aggregated buckets, and the latest value
//! of every metric of a machine.
//!
//! A query is split by time into the sub-ranges each tier serves, transparently:
//! - **warm**, for buckets whose step is a whole number of minutes: every whole bucket that is
//!   rolled up (below the tenant's `rolled_to`) and kept (from its `warm_from`) is merged from
//!   hour rollups when the step is a whole number of hours, else from minute rollups. For a
//!   step over a minute that is not a whole number of them (a dashboard's range / 500), every
//!   whole minute rolled up and kept is merged from minute rollups, except the minutes a bucket
//!   boundary splits, whose readings are read raw (one round trip for all of them);
//! - **cold**, for the rest on days archived to the object store: the day's Parquet objects,
//!   found through the manifest, read and filtered to the series;
//! - **hot**, for the rest on days still in the database.
//!
//! Rollups merge exactly (min, max, sum, count, last), so an answer does not depend on the
//! tiers that served it; it says which ones did.

mod plan;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use uuid::Uuid;

use self::plan::{
    hot_parts, in_ranges, overlapping, overlaps, quarter_plan, split_minutes, warm_range,
};

use crate::{
    archive,
    domain::{Aggregation, Rollup, bucket_start, roll_up},
    error::{Result, StorageError},
    ingest::Ingest,
    object_store::{ObjectKey, ObjectStore},
    store::{
        ColdObject, Latest, Range, Resolution, SeriesId, SeriesKey, TelemetryStore, day_of,
        day_range,
    },
};

/// The most raw points one query returns; longer ranges need an aggregation.
pub const MAX_POINTS: usize = 100_000;
/// The most buckets one query returns.
pub const MAX_BUCKETS: i64 = 100_000;

/// A tier of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Raw readings in the database.
    Hot,
    /// Rollups in the database.
    Warm,
    /// Parquet in object storage.
    Cold,
}

/// What to read.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// The tenant.
    pub tenant: Uuid,
    /// The series.
    pub key: SeriesKey,
    /// The range.
    pub range: Range,
    /// Buckets of this width (µs) with this aggregation, or raw points.
    pub aggregate: Option<(i64, Aggregation)>,
}

/// The answer to a [`SeriesQuery`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesAnswer {
    /// Raw points `(ts µs, value)`, when no aggregation was asked.
    pub points: Vec<(i64, f64)>,
    /// Buckets `(start µs, value, count)`, when one was.
    pub buckets: Vec<(i64, f64, u64)>,
    /// The tiers that served the query.
    pub tiers: Vec<Tier>,
}

/// Answers queries.
#[derive(Debug, Clone)]
pub struct Queries {
    store: Arc<dyn TelemetryStore>,
    objects: Arc<dyn ObjectStore>,
    ingest: Ingest,
}

impl Queries {
    /// Creates the query side over the database and the cold tier's object store; the ingest
    /// path knows the tenants' numbers.
    pub fn new(
        store: Arc<dyn TelemetryStore>,
        objects: Arc<dyn ObjectStore>,
        ingest: Ingest,
    ) -> Self {
        Self {
            store,
            objects,
            ingest,
        }
    }

    /// Answers a series query.
    pub async fn series(&self, query: &SeriesQuery) -> Result<SeriesAnswer> {
        self.require_machine(query.tenant, &query.key.machine_id)
            .await?;
        let Some(tenant) = self.ingest.find_tenant_no(query.tenant).await? else {
            return Ok(SeriesAnswer::default());
        };
        let Some(series) = self.store.find_series(tenant, &query.key).await? else {
            return Ok(SeriesAnswer::default());
        };
        let range = query.range;
        if range.start_micros >= range.end_micros {
            return Ok(SeriesAnswer::default());
        }
        let cold = self
            .store
            .cold_objects(
                tenant,
                day_of(range.start_micros),
                day_of(range.end_micros - 1),
            )
            .await?;
        let mut tiers = BTreeSet::new();
        let mut answer = SeriesAnswer::default();
        match query.aggregate {
            None => {
                let mut points = Vec::new();
                for part in hot_parts(range, &cold) {
                    tiers.insert(Tier::Hot);
                    points.extend(self.store.points(series, part).await?);
                }
                for object in overlapping(&cold, range) {
                    tiers.insert(Tier::Cold);
                    points.extend(self.cold_points(object, &query.key, vec![range]).await?);
                }
                // Readings that came after their day was archived, after the archived ones:
                // the first write of a reading wins.
                if !cold.is_empty() {
                    let late = self.store.late_points(series, range).await?;
                    if !late.is_empty() {
                        tiers.insert(Tier::Hot);
                        points.extend(late);
                    }
                }
                points.sort_by_key(|&(ts, _)| ts);
                points.dedup_by_key(|&mut (ts, _)| ts);
                if points.len() > MAX_POINTS {
                    return Err(StorageError::invalid(
                        "end",
                        format!(
                            "the range holds more than {MAX_POINTS} readings: narrow it or ask for an aggregation"
                        ),
                    ));
                }
                answer.points = points;
            }
            Some((step, aggregation)) => {
                let mut buckets: BTreeMap<i64, Rollup> = BTreeMap::new();
                let mut add = |start: i64, rollup: &Rollup| {
                    buckets
                        .entry(bucket_start(start, step))
                        .and_modify(|b| *b = b.merge(rollup))
                        .or_insert(*rollup);
                };
                let state = self.store.rollup_state(tenant).await?;
                let warm = warm_range(range, step, state);
                let raw: Vec<Range> = match warm {
                    None => vec![range],
                    Some((warm, _)) => {
                        let mut raw: Vec<Range> = [
                            Range {
                                start_micros: range.start_micros,
                                end_micros: warm.start_micros,
                            },
                            Range {
                                start_micros: warm.end_micros,
                                end_micros: range.end_micros,
                            },
                        ]
                        .into_iter()
                        .filter(|r| r.start_micros < r.end_micros)
                        .chain(split_minutes(warm, step))
                        .collect();
                        raw.sort_by_key(|r| r.start_micros);
                        raw
                    }
                };
                // The warm and the raw parts are independent reads: both at once, on two
                // connections, so the answer waits for the longer, not for both.
                let warm_rollups = async {
                    match warm {
                        Some((warm, Resolution::Quarter)) => {
                            self.quarters_and_minutes(series, warm, step).await
                        }
                        Some((warm, resolution)) => {
                            self.store.rollups(series, warm, resolution, step).await
                        }
                        None => Ok(Vec::new()),
                    }
                };
                let hot: Vec<Range> = raw
                    .iter()
                    .flat_map(|&part| hot_parts(part, &cold))
                    .collect();
                let (warm_rollups, raw_rollups) =
                    tokio::try_join!(warm_rollups, self.store.buckets_in(series, &hot, step))?;
                if warm.is_some() {
                    tiers.insert(Tier::Warm);
                }
                for (start, rollup) in warm_rollups.iter().chain(&raw_rollups) {
                    add(*start, rollup);
                }
                // Late readings (of archived days) join the warm tier when archived: until then,
                // those the archive lacks are added here.
                if let Some((warm, _)) = warm.filter(|_| !cold.is_empty()) {
                    let late = self.store.late_points(series, warm).await?;
                    if !late.is_empty() {
                        tiers.insert(Tier::Hot);
                        let fresh = self.unarchived(&cold, &query.key, late).await?;
                        for (start, rollup) in roll_up(fresh, step) {
                            add(start, &rollup);
                        }
                    }
                }
                if !hot.is_empty() {
                    tiers.insert(Tier::Hot);
                }
                let mut archived = Vec::new();
                for object in &cold {
                    let parts: Vec<Range> = raw
                        .iter()
                        .copied()
                        .filter(|&part| overlaps(object, part))
                        .collect();
                    if parts.is_empty() {
                        continue;
                    }
                    tiers.insert(Tier::Cold);
                    archived.extend(self.cold_points(object, &query.key, parts).await?);
                }
                // Late readings of the archived days, after the archived ones, each reading
                // once: the first write wins.
                for &part in raw
                    .iter()
                    .filter(|&&part| overlapping(&cold, part).next().is_some())
                {
                    let late = self.store.late_points(series, part).await?;
                    if !late.is_empty() {
                        tiers.insert(Tier::Hot);
                        archived.extend(late);
                    }
                }
                archived.sort_by_key(|&(ts, _)| ts);
                archived.dedup_by_key(|&mut (ts, _)| ts);
                for (start, rollup) in roll_up(archived, step) {
                    add(start, &rollup);
                }
                answer.buckets = buckets
                    .iter()
                    .map(|(&start, rollup)| (start, rollup.value(aggregation), rollup.count))
                    .collect();
            }
        }
        answer.tiers = tiers.into_iter().collect();
        Ok(answer)
    }

    /// The readings of one series in some ranges (disjoint, oldest first), from one archived
    /// object: its footer, then the row groups that may hold the series (`archive::read_series`).
    async fn cold_points(
        &self,
        object: &ColdObject,
        key: &SeriesKey,
        ranges: Vec<Range>,
    ) -> Result<Vec<(i64, f64)>> {
        let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
            return Ok(Vec::new());
        };
        let (start, end) = (first.start_micros, last.end_micros);
        let mut points = archive::read_series(
            self.objects.as_ref(),
            &ObjectKey::new(&object.key)?,
            object.bytes,
            &key.machine_id,
            &key.metric,
            start,
            end,
        )
        .await?;
        points.retain(|&(ts, _)| in_ranges(&ranges, ts));
        Ok(points)
    }

    /// The warm tier's buckets of `step` over `warm` from the quarter rollups a bucket boundary
    /// does not split, and from the minute rollups of the rest, both read at once.
    async fn quarters_and_minutes(
        &self,
        series: SeriesId,
        warm: Range,
        step: i64,
    ) -> Result<Vec<(i64, Rollup)>> {
        let (quarters, minutes) = quarter_plan(warm, step);
        let quarters = async {
            match quarters {
                Some(quarters) => {
                    self.store
                        .rollups(series, quarters, Resolution::Quarter, step)
                        .await
                }
                None => Ok(Vec::new()),
            }
        };
        let (mut rollups, minutes) = tokio::try_join!(
            quarters,
            self.store.minute_rollups_in(series, &minutes, step)
        )?;
        rollups.extend(minutes);
        Ok(rollups)
    }

    /// The late points (oldest first) that the archived objects of their days lack.
    async fn unarchived(
        &self,
        cold: &[ColdObject],
        key: &SeriesKey,
        late: Vec<(i64, f64)>,
    ) -> Result<Vec<(i64, f64)>> {
        let mut archived = std::collections::HashSet::new();
        let days: BTreeSet<_> = late.iter().map(|&(ts, _)| day_of(ts)).collect();
        for day in days {
            let range = day_range(day);
            for object in cold.iter().filter(|object| object.day == day) {
                let points = self.cold_points(object, key, vec![range]).await?;
                archived.extend(points.into_iter().map(|(ts, _)| ts));
            }
        }
        Ok(late
            .into_iter()
            .filter(|(ts, _)| !archived.contains(ts))
            .collect())
    }

    /// The last value of every metric of a machine.
    pub async fn latest(&self, tenant: Uuid, machine_id: &str) -> Result<Vec<Latest>> {
        self.require_machine(tenant, machine_id).await?;
        let Some(tenant) = self.ingest.find_tenant_no(tenant).await? else {
            return Ok(Vec::new());
        };
        self.store.latest(tenant, machine_id).await
    }

    /// A query names a registered machine: a typo is a NotFound, not an empty answer.
    async fn require_machine(&self, tenant: Uuid, machine_id: &str) -> Result<()> {
        if self
            .ingest
            .directory()
            .machine_exists(tenant, machine_id)
            .await?
        {
            Ok(())
        } else {
            Err(StorageError::MachineNotFound(machine_id.to_owned()))
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TelemetryStore> {
        &self.store
    }

    /// The ingest path.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }
}
