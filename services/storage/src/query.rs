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

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use uuid::Uuid;

use crate::{
    archive,
    domain::{Aggregation, Rollup, bucket_start, roll_up},
    error::{Result, StorageError},
    ingest::Ingest,
    object_store::{ObjectKey, ObjectStore},
    store::{
        ColdObject, Latest, Range, Resolution, RollupState, SeriesId, SeriesKey, TelemetryStore,
        day_of, day_range,
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

/// The part of `range` the warm tier serves for buckets of `step`, rolled up and not expired,
/// with the resolution to read: whole buckets when the step is a whole number of minutes;
/// whole minutes when it is longer than a minute but not a whole number of them. Hours for a
/// step of whole hours; from a quarter of an hour, quarters with minutes around them
/// (`quarter_plan`); minutes below.
fn warm_range(range: Range, step: i64, state: RollupState) -> Option<(Range, Resolution)> {
    let minute = Resolution::Minute.micros();
    let finest = if step >= Resolution::Quarter.micros() {
        Resolution::Quarter
    } else {
        Resolution::Minute
    };
    let (resolution, align) = if step % Resolution::Hour.micros() == 0 {
        (Resolution::Hour, step)
    } else if step % minute == 0 {
        (finest, step)
    } else if step > minute {
        // Whole minutes; the ones a bucket boundary splits are read raw (`split_minutes`).
        (finest, minute)
    } else {
        return None;
    };
    let rolled_to = state.rolled_to?;
    let from = range.start_micros.max(state.warm_from.unwrap_or(i64::MIN));
    let start = bucket_start(from, align)
        + if from.rem_euclid(align) == 0 {
            0
        } else {
            align
        };
    let end = bucket_start(range.end_micros.min(rolled_to), align);
    (start < end).then_some((
        Range {
            start_micros: start,
            end_micros: end,
        },
        resolution,
    ))
}

/// The minutes of `warm` (minute-aligned) that a boundary of buckets of `step` splits: their
/// minute rollups cannot be split, so their readings are read raw. None when the step is a
/// whole number of minutes.
fn split_minutes(warm: Range, step: i64) -> impl Iterator<Item = Range> {
    let minute = Resolution::Minute.micros();
    let first = bucket_start(warm.start_micros, step) + step;
    let boundaries = if step % minute == 0 {
        None
    } else {
        Some((0..).map(move |i| first + i * step))
    };
    boundaries
        .into_iter()
        .flatten()
        .take_while(move |&boundary| boundary < warm.end_micros)
        .filter(move |boundary| boundary.rem_euclid(minute) != 0)
        .map(move |boundary| {
            let start = bucket_start(boundary, minute);
            Range {
                start_micros: start,
                end_micros: start + minute,
            }
        })
}

/// How quarter rollups serve `warm` (minute-aligned) for buckets of `step` (at least a
/// quarter): the range of whole quarters inside it, whose quarters a bucket boundary splits
/// the store leaves out, and the minute ranges for the rest (disjoint, oldest first): the
/// partial quarters at both ends and each quarter a boundary splits.
fn quarter_plan(warm: Range, step: i64) -> (Option<Range>, Vec<Range>) {
    let quarter = Resolution::Quarter.micros();
    let inner = Range {
        start_micros: bucket_start(warm.start_micros + quarter - 1, quarter),
        end_micros: bucket_start(warm.end_micros, quarter),
    };
    if inner.start_micros >= inner.end_micros {
        return (None, vec![warm]);
    }
    let head = Range {
        start_micros: warm.start_micros,
        end_micros: inner.start_micros,
    };
    let tail = Range {
        start_micros: inner.end_micros,
        end_micros: warm.end_micros,
    };
    let split = (1..)
        .map(|i| bucket_start(inner.start_micros, step) + i * step)
        .take_while(|&boundary| boundary < inner.end_micros)
        .filter(|boundary| boundary.rem_euclid(quarter) != 0)
        .map(|boundary| {
            let start = bucket_start(boundary, quarter);
            Range {
                start_micros: start,
                end_micros: start + quarter,
            }
        });
    let mut minutes: Vec<Range> = Vec::new();
    for range in std::iter::once(head).chain(split).chain([tail]) {
        if range.start_micros >= range.end_micros {
            continue;
        }
        match minutes.last_mut() {
            Some(last) if last.end_micros >= range.start_micros => {
                last.end_micros = last.end_micros.max(range.end_micros);
            }
            _ => minutes.push(range),
        }
    }
    (Some(inner), minutes)
}

/// Whether `ts` falls in one of `ranges` (disjoint, oldest first).
fn in_ranges(ranges: &[Range], ts: i64) -> bool {
    let after = ranges.partition_point(|r| r.start_micros <= ts);
    after > 0 && ts < ranges[after - 1].end_micros
}

/// The objects whose day overlaps `range`.
fn overlapping(cold: &[ColdObject], range: Range) -> impl Iterator<Item = &ColdObject> {
    cold.iter().filter(move |object| overlaps(object, range))
}

/// Whether the object's day overlaps `range`.
fn overlaps(object: &ColdObject, range: Range) -> bool {
    let day = day_range(object.day);
    day.start_micros < range.end_micros && range.start_micros < day.end_micros
}

/// The parts of `range` on days that are not archived, which the hot tier serves. An archived
/// day is read from its objects only: on PostgreSQL its rows may still be in a partition that
/// other tenants' days share until the last of them is archived.
fn hot_parts(range: Range, cold: &[ColdObject]) -> Vec<Range> {
    let archived: BTreeSet<_> = cold.iter().map(|object| object.day).collect();
    let mut parts: Vec<Range> = Vec::new();
    let mut start = range.start_micros;
    while start < range.end_micros {
        let day = day_of(start);
        let end = day_range(day).end_micros.min(range.end_micros);
        if !archived.contains(&day) {
            match parts.last_mut() {
                Some(last) if last.end_micros == start => last.end_micros = end,
                _ => parts.push(Range {
                    start_micros: start,
                    end_micros: end,
                }),
            }
        }
        start = end;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;
    const HOUR: i64 = 60 * MINUTE;

    #[test]
    fn archived_days_are_left_to_the_cold_tier() {
        let first = day_of(1_793_491_200_000_000);
        let day = |n: u64| first.checked_add_days(chrono::Days::new(n)).unwrap();
        let archived = |d: chrono::NaiveDate| ColdObject {
            key: format!("part-{d}"),
            day: d,
            readings: 1,
            bytes: 1,
        };
        // From 06:00 on the first day to 06:00 on the fourth.
        let range = Range {
            start_micros: day_range(day(0)).start_micros + 6 * HOUR,
            end_micros: day_range(day(3)).start_micros + 6 * HOUR,
        };
        assert_eq!(hot_parts(range, &[]), [range]);
        assert_eq!(
            hot_parts(range, &[archived(day(1))]),
            [
                Range {
                    start_micros: range.start_micros,
                    end_micros: day_range(day(1)).start_micros,
                },
                Range {
                    start_micros: day_range(day(2)).start_micros,
                    end_micros: range.end_micros,
                },
            ]
        );
        let all: Vec<ColdObject> = (0..4).map(|n| archived(day(n))).collect();
        assert!(hot_parts(range, &all).is_empty());
    }

    #[test]
    fn the_warm_tier_serves_whole_rolled_up_buckets_only() {
        let state = RollupState {
            rolled_to: Some(10 * HOUR),
            warm_from: Some(HOUR),
        };
        let range = Range {
            start_micros: 30 * MINUTE,
            end_micros: 12 * HOUR,
        };
        assert_eq!(
            warm_range(range, HOUR, state),
            Some((
                Range {
                    start_micros: HOUR,
                    end_micros: 10 * HOUR
                },
                Resolution::Hour
            ))
        );
        assert_eq!(
            warm_range(range, 15 * MINUTE, state).map(|(_, r)| r),
            Some(Resolution::Quarter)
        );
        assert_eq!(
            warm_range(range, 10 * MINUTE, state).map(|(_, r)| r),
            Some(Resolution::Minute)
        );
        assert_eq!(warm_range(range, 45_000_000, state), None);
        assert_eq!(warm_range(range, HOUR, RollupState::default()), None);
    }

    #[test]
    fn a_step_of_no_whole_minutes_is_served_by_whole_minutes() {
        let state = RollupState {
            rolled_to: Some(10 * HOUR + 30_000_000),
            warm_from: None,
        };
        let range = Range {
            start_micros: 30 * MINUTE + 1,
            end_micros: 12 * HOUR,
        };
        assert_eq!(
            warm_range(range, 90_000_000, state),
            Some((
                Range {
                    start_micros: 31 * MINUTE,
                    end_micros: 10 * HOUR
                },
                Resolution::Minute
            ))
        );
    }

    #[test]
    fn the_minutes_a_bucket_boundary_splits_are_read_raw() {
        let warm = Range {
            start_micros: 0,
            end_micros: 5 * MINUTE,
        };
        // Boundaries at 1:30, 3:00 and 4:30: the second is on a minute and splits none.
        let split: Vec<_> = split_minutes(warm, 90_000_000)
            .map(|r| (r.start_micros / MINUTE, r.end_micros / MINUTE))
            .collect();
        assert_eq!(split, [(1, 2), (4, 5)]);
        assert_eq!(split_minutes(warm, 2 * MINUTE).count(), 0);
    }

    #[test]
    fn quarters_serve_whole_quarters_and_minutes_the_rest() {
        let minutes = |ranges: &[Range]| -> Vec<(i64, i64)> {
            ranges
                .iter()
                .map(|r| (r.start_micros / MINUTE, r.end_micros / MINUTE))
                .collect()
        };
        // Buckets of 87 min from 0:00: boundaries at 1:27, 2:54, 4:21; the warm range
        // starts at 0:05 and ends at 4:30.
        let warm = Range {
            start_micros: 5 * MINUTE,
            end_micros: 270 * MINUTE,
        };
        let (quarters, edges) = quarter_plan(warm, 87 * MINUTE);
        assert_eq!(
            quarters,
            Some(Range {
                start_micros: 15 * MINUTE,
                end_micros: 270 * MINUTE
            })
        );
        assert_eq!(minutes(&edges), [(5, 15), (75, 90), (165, 180), (255, 270)]);
        // A step of whole quarters splits none.
        let (_, edges) = quarter_plan(warm, 45 * MINUTE);
        assert_eq!(minutes(&edges), [(5, 15)]);
        // Less than a whole quarter: minutes only.
        let short = Range {
            start_micros: 5 * MINUTE,
            end_micros: 20 * MINUTE,
        };
        assert_eq!(quarter_plan(short, 87 * MINUTE), (None, vec![short]));
    }

    #[test]
    fn readings_are_matched_to_sorted_ranges() {
        let ranges = [
            Range {
                start_micros: 10,
                end_micros: 20,
            },
            Range {
                start_micros: 30,
                end_micros: 40,
            },
        ];
        let inside: Vec<i64> = (0..50).filter(|&ts| in_ranges(&ranges, ts)).collect();
        assert_eq!(inside, (10..20).chain(30..40).collect::<Vec<_>>());
        assert!(!in_ranges(&[], 5));
    }
}
