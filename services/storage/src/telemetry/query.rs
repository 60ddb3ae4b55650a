//! Queries of one series over a range: raw points or aggregated buckets, and the latest value
//! of every metric of a machine.
//!
//! A query is split by time into the sub-ranges each tier serves, transparently:
//! - **warm**, for buckets of at least a minute: within the whole minutes that are rolled up
//!   (below the tenant's `rolled_to`) and kept (from its `warm_from`), each bucket's whole
//!   hours, quarters and minutes from their rollups (`plan::cover`), merged here;
//! - **cold**, for the rest on days archived to the object store: the day's Parquet objects,
//!   found through the manifest, read and filtered to the series;
//! - **hot**, for the rest on days still in the database: the range's ends and, for a step of
//!   no whole minutes, the minutes a bucket boundary splits (for an additive aggregation, the
//!   sum and count of their smaller sides), each kind in one round trip.
//!
//! Rollups merge exactly (min, max, sum, count, last), so an answer does not depend on the
//! tiers that served it; it says which ones did. The database reads only the fields of rollups
//! the aggregation needs ([`Fields`]).

mod history;
mod plan;

pub use history::StoredHistory;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use uuid::Uuid;

use crate::telemetry::query::plan::{
    Cover, coalesce, cover, hot_parts, in_ranges, overlapping, overlaps,
};

use crate::{
    error::{Result, StorageError},
    micros::Micros,
    telemetry::{
        archive,
        domain::{Aggregation, Fields, Rollup, roll_up},
        ingest::Ingest,
        object_store::{ObjectKey, ObjectStore},
        store::{
            ColdObject, Latest, Range, Resolution, SeriesId, SeriesKey, TelemetryStore, day_range,
        },
    },
};

/// The most raw points one query returns; longer ranges need an aggregation.
pub const MAX_POINTS: usize = 100_000;
/// The most buckets one query returns.
pub const MAX_BUCKETS: i64 = 100_000;
/// Rollup ranges fewer than this many rollups apart are read as one range: an index scan of
/// its own costs about as much as ten rollups more in one.
const COALESCE_GAP: i64 = 8;

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
    pub points: Vec<(Micros, f64)>,
    /// Buckets `(start µs, value, count)`, when one was.
    pub buckets: Vec<(Micros, f64, u64)>,
    /// The tiers that served the query.
    pub tiers: Vec<Tier>,
    /// The start of the oldest range of raw hot readings it read, if it read any.
    pub oldest_hot: Option<Micros>,
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

    /// Answers a series query. The machine is checked while the series is read (the check
    /// may ask the tenant service): a query costs the longer of the two, not their sum.
    pub async fn series(&self, query: &SeriesQuery) -> Result<SeriesAnswer> {
        let check = self.require_machine(query.tenant, &query.key.machine_id);
        let ((), answer) = tokio::try_join!(check, self.read_series(query))?;
        Ok(answer)
    }

    /// Reads a series query's answer, whether or not its machine is registered.
    async fn read_series(&self, query: &SeriesQuery) -> Result<SeriesAnswer> {
        let Some(tenant) = self.ingest.find_tenant_no(query.tenant).await? else {
            return Ok(SeriesAnswer::default());
        };
        let Some(series) = self.store.find_series(tenant, &query.key).await? else {
            return Ok(SeriesAnswer::default());
        };
        let range = query.range;
        if range.start >= range.end {
            return Ok(SeriesAnswer::default());
        }
        let cold = self
            .store
            .cold_objects(tenant, range.start.day(), (range.end - 1).day())
            .await?;
        let mut tiers = BTreeSet::new();
        let mut answer = SeriesAnswer::default();
        match query.aggregate {
            None => {
                let mut points = Vec::new();
                for part in hot_parts(range, &cold) {
                    tiers.insert(Tier::Hot);
                    answer.oldest_hot =
                        Some(answer.oldest_hot.map_or(part.start, |o| o.min(part.start)));
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
                let state = self.store.rollup_state(tenant).await?;
                let cover = cover(range, step, state, aggregation.is_additive());
                let read = Read {
                    series,
                    key: &query.key,
                    step,
                    fields: aggregation.fields(),
                };
                let (buckets, oldest_hot) = self.buckets(&read, &cover, &cold, &mut tiers).await?;
                answer.oldest_hot = oldest_hot;
                answer.buckets = buckets
                    .iter()
                    .map(|(&start, rollup)| (start, rollup.value(aggregation), rollup.count))
                    .collect();
            }
        }
        answer.tiers = tiers.into_iter().collect();
        Ok(answer)
    }

    /// The buckets of `step` as `cover` serves them: its rollups and the readings of its raw
    /// ranges, from the hot tier, or from the cold tier and late readings on archived days;
    /// and the start of the oldest hot range read. Of a split minute's smaller side in the
    /// hot tier, only the sum and count are read: they are what the bucket of each side needs.
    /// The reads of the database are independent: all at once, on as many connections, so
    /// the answer waits for the longest, not for their sum.
    async fn buckets(
        &self,
        read: &Read<'_>,
        cover: &Cover,
        cold: &[ColdObject],
        tiers: &mut BTreeSet<Tier>,
    ) -> Result<(BTreeMap<Micros, Rollup>, Option<Micros>)> {
        let hot: Vec<Range> = cover
            .raw
            .iter()
            .flat_map(|&part| hot_parts(part, cold))
            .collect();
        let (summed, listed): (Vec<Range>, Vec<Range>) =
            hot.iter().partition(|&&range| cover.is_split_read(range));
        let [minutes, quarters, hours] = Resolution::ALL.map(|resolution| {
            self.rollups_in(read, resolution, &cover.rollups[resolution.index()])
        });
        let (minutes, quarters, hours, mut raw, sums) = tokio::try_join!(
            minutes,
            quarters,
            hours,
            self.store.points_in(read.series, &listed),
            self.store.sums_in(read.series, &summed),
        )?;
        let mut buckets = Buckets::new(read.step);
        let mut splits = Vec::new();
        for (start, rollup) in minutes {
            match cover
                .splits
                .binary_search_by_key(&start, |split| split.minute.start)
            {
                Ok(i) => splits.push((cover.splits[i], rollup)),
                Err(_) => buckets.add(start, &rollup),
            }
        }
        for (start, rollup) in quarters.iter().chain(&hours) {
            buckets.add(*start, rollup);
        }
        for (range, sum) in summed.iter().zip(&sums) {
            if sum.count > 0 {
                buckets.add(range.start, sum);
            }
        }
        let warm = cover.warm();
        if !warm.is_empty() {
            tiers.insert(Tier::Warm);
        }
        if !hot.is_empty() {
            tiers.insert(Tier::Hot);
        }
        if !cold.is_empty() {
            raw.extend(
                self.archived_readings(read, cover, cold, &mut buckets, tiers)
                    .await?,
            );
        }
        raw.sort_by_key(|&(ts, _)| ts);
        for (split, whole) in splits {
            let part = match summed.binary_search_by_key(&split.read.start, |range| range.start) {
                Ok(i) => sums[i],
                Err(_) => raw[in_range(&raw, split.read)]
                    .iter()
                    .fold(Rollup::NONE, |part, &(ts, value)| {
                        part.merge(&Rollup::of(ts, value))
                    }),
            };
            if let Some(rest) = whole.without(&part) {
                buckets.add(split.rest.start, &rest);
            }
        }
        for (start, rollup) in roll_up(raw, read.step) {
            buckets.add(start, &rollup);
        }
        Ok((buckets.by_start, hot.first().map(|range| range.start)))
    }

    /// On archived days, the readings of `cover`'s raw ranges (from the archive, and late
    /// readings after them: the first write of a reading wins), returned; and late readings in
    /// the warm tier's ranges that the archive lacks, added to `buckets` (they join the
    /// rollups when archived).
    async fn archived_readings(
        &self,
        read: &Read<'_>,
        cover: &Cover,
        cold: &[ColdObject],
        buckets: &mut Buckets,
        tiers: &mut BTreeSet<Tier>,
    ) -> Result<Vec<(Micros, f64)>> {
        let warm = cover.warm();
        let hull = Range {
            start: cover
                .raw
                .first()
                .into_iter()
                .chain(&warm)
                .map(|r| r.start)
                .min()
                .unwrap_or_default(),
            end: cover
                .raw
                .last()
                .into_iter()
                .chain(&warm)
                .map(|r| r.end)
                .max()
                .unwrap_or_default(),
        };
        let (late_warm, late_raw): (Vec<_>, Vec<_>) = self
            .store
            .late_points(read.series, hull)
            .await?
            .into_iter()
            .partition(|&(ts, _)| in_ranges(&warm, ts));
        if !late_warm.is_empty() || !late_raw.is_empty() {
            tiers.insert(Tier::Hot);
        }
        if !late_warm.is_empty() {
            let fresh = self.unarchived(cold, read.key, late_warm).await?;
            for (start, rollup) in roll_up(fresh, buckets.step) {
                buckets.add(start, &rollup);
            }
        }
        let mut archived = Vec::new();
        for object in cold {
            let parts: Vec<Range> = cover
                .raw
                .iter()
                .copied()
                .filter(|&part| overlaps(object, part))
                .collect();
            if parts.is_empty() {
                continue;
            }
            tiers.insert(Tier::Cold);
            archived.extend(self.cold_points(object, read.key, parts).await?);
        }
        archived.extend(late_raw);
        archived.sort_by_key(|&(ts, _)| ts);
        archived.dedup_by_key(|&mut (ts, _)| ts);
        Ok(archived)
    }

    /// A series' rollups of `resolution` in `ranges` (aligned, disjoint, oldest first), read
    /// in fewer ranges where they lie a few rollups apart, with the fields `read` needs.
    async fn rollups_in(
        &self,
        read: &Read<'_>,
        resolution: Resolution,
        ranges: &[Range],
    ) -> Result<Vec<(Micros, Rollup)>> {
        let reads = coalesce(ranges, resolution.micros(), COALESCE_GAP);
        let mut rollups = self
            .store
            .rollups_in(read.series, resolution, &reads, read.fields)
            .await?;
        if reads.len() < ranges.len() {
            rollups.retain(|&(start, _)| in_ranges(ranges, start));
        }
        Ok(rollups)
    }

    /// The readings of one series in some ranges (disjoint, oldest first), from one archived
    /// object: its footer, then the row groups that may hold the series (`archive::read_series`).
    async fn cold_points(
        &self,
        object: &ColdObject,
        key: &SeriesKey,
        ranges: Vec<Range>,
    ) -> Result<Vec<(Micros, f64)>> {
        let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
            return Ok(Vec::new());
        };
        let (start, end) = (first.start, last.end);
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

    /// The late points (oldest first) that the archived objects of their days lack.
    async fn unarchived(
        &self,
        cold: &[ColdObject],
        key: &SeriesKey,
        late: Vec<(Micros, f64)>,
    ) -> Result<Vec<(Micros, f64)>> {
        let mut archived = std::collections::HashSet::new();
        let days: BTreeSet<_> = late.iter().map(|&(ts, _)| ts.day()).collect();
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

    /// The last value of every metric of a machine, read while the machine is checked.
    pub async fn latest(&self, tenant: Uuid, machine_id: &str) -> Result<Vec<Latest>> {
        let read = async {
            match self.ingest.find_tenant_no(tenant).await? {
                Some(number) => self.store.latest(number, machine_id).await,
                None => Ok(Vec::new()),
            }
        };
        let ((), latest) = tokio::try_join!(self.require_machine(tenant, machine_id), read)?;
        Ok(latest)
    }

    /// The latest value of each metric of each machine of a tenant that sent readings, by
    /// machine id.
    pub async fn latest_of_tenant(&self, tenant: Uuid) -> Result<Vec<(String, Vec<Latest>)>> {
        let Some(tenant) = self.ingest.find_tenant_no(tenant).await? else {
            return Ok(Vec::new());
        };
        let machines: BTreeSet<String> = self
            .store
            .series_of(tenant)
            .await?
            .into_iter()
            .map(|(_, key)| key.machine_id)
            .collect();
        let mut latest = Vec::with_capacity(machines.len());
        for machine in machines {
            let values = self.store.latest(tenant, &machine).await?;
            latest.push((machine, values));
        }
        Ok(latest)
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

/// A read of a series in buckets.
struct Read<'a> {
    series: SeriesId,
    key: &'a SeriesKey,
    /// The buckets' width (µs).
    step: i64,
    /// The fields of rollups the aggregation needs.
    fields: Fields,
}

/// Buckets of a step, each the merge of the rollups added to it.
struct Buckets {
    by_start: BTreeMap<Micros, Rollup>,
    step: i64,
}

impl Buckets {
    fn new(step: i64) -> Self {
        Self {
            by_start: BTreeMap::new(),
            step,
        }
    }

    /// Adds a rollup of readings from `start` on to their bucket.
    fn add(&mut self, start: Micros, rollup: &Rollup) {
        self.by_start
            .entry(start.floor(self.step))
            .and_modify(|b| *b = b.merge(rollup))
            .or_insert(*rollup);
    }
}

/// The indices of the readings (sorted by time) in `range`.
fn in_range(readings: &[(Micros, f64)], range: Range) -> std::ops::Range<usize> {
    let from = readings.partition_point(|&(ts, _)| ts < range.start);
    let to = readings.partition_point(|&(ts, _)| ts < range.end);
    from..to
}
