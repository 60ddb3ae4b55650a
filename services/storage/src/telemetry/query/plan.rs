//! How a series query is cut: which part of its range the warm tier serves and at what
//! resolution, which minutes and quarters are read finer, and which days the hot tier holds.
//! Pure functions of ranges, steps and the manifest, tested here.

use std::collections::BTreeSet;

use crate::{
    micros::Micros,
    telemetry::store::{ColdObject, Range, Resolution, RollupState, day_range},
};

/// How a query of buckets of `step` is served: the ranges each rollup resolution serves and
/// the ranges read raw, each list disjoint, aligned to its resolution and oldest first.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Cover {
    /// The ranges of each resolution's rollups, in [`Resolution::ALL`]'s order.
    pub rollups: [Vec<Range>; 3],
    /// The ranges read raw.
    pub raw: Vec<Range>,
    /// The minutes a bucket boundary splits that are served by their minute rollup less the
    /// readings of their smaller side, which [`Cover::raw`] holds (additive aggregations only).
    pub splits: Vec<Split>,
}

/// A whole minute that a bucket boundary splits, served as its minute rollup (in
/// [`Cover::rollups`]) less the readings of its smaller side (in [`Cover::raw`]): what is left
/// belongs to the bucket of the other side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Split {
    /// The minute.
    pub minute: Range,
    /// Its smaller side, read raw.
    pub read: Range,
    /// Its other side, which the minute less the smaller side serves.
    pub rest: Range,
}

impl Split {
    /// The minute of `minute_start` split at `boundary`.
    fn at(minute_start: Micros, boundary: Micros) -> Self {
        let minute = Range {
            start: minute_start,
            end: minute_start + Resolution::Minute.micros(),
        };
        let left = Range {
            end: boundary,
            ..minute
        };
        let right = Range {
            start: boundary,
            ..minute
        };
        let (read, rest) = if boundary - minute.start <= minute.end - boundary {
            (left, right)
        } else {
            (right, left)
        };
        Self { minute, read, rest }
    }
}

impl Cover {
    /// Every range a rollup serves, oldest first.
    pub(super) fn warm(&self) -> Vec<Range> {
        let mut warm: Vec<Range> = self.rollups.iter().flatten().copied().collect();
        warm.sort_by_key(|r| r.start);
        warm
    }

    /// Whether `range` is exactly the smaller side of a minute a bucket boundary splits.
    pub(super) fn is_split_read(&self, range: Range) -> bool {
        self.splits
            .binary_search_by_key(&range.start, |split| split.read.start)
            .is_ok_and(|i| self.splits[i].read == range)
    }

    /// Serves `part` (inside one bucket) from the coarsest of `resolutions` (coarsest first)
    /// that fits whole units in it, and its ends from the finer ones; what no minute fits in
    /// is read raw.
    fn serve(&mut self, part: Range, resolutions: &[Resolution]) {
        if part.start >= part.end {
            return;
        }
        let Some((&resolution, finer)) = resolutions.split_first() else {
            push(&mut self.raw, part);
            return;
        };
        let width = resolution.micros();
        let inner = Range {
            start: part.start.ceil(width),
            end: part.end.floor(width),
        };
        if inner.start >= inner.end {
            self.serve(part, finer);
            return;
        }
        self.serve(
            Range {
                end: inner.start,
                ..part
            },
            finer,
        );
        push(&mut self.rollups[resolution.index()], inner);
        self.serve(
            Range {
                start: inner.end,
                ..part
            },
            finer,
        );
    }
}

/// How buckets of `step` over `range` are served: each bucket's whole hours from hour
/// rollups, the whole quarters around them from quarter rollups, the whole minutes around
/// those from minute rollups (only resolutions no wider than the step, and only where the
/// tenant's rollups are made and kept), and the rest raw: the range's ends outside the warm
/// tier and, for a step of no whole minutes, each minute a bucket boundary splits. For an
/// `additive` aggregation, such a minute is its rollup less its smaller side, read raw
/// ([`Split`]): a quarter of a minute's readings on average instead of all of them.
pub(super) fn cover(range: Range, step: i64, state: RollupState, additive: bool) -> Cover {
    let mut cover = Cover::default();
    let Some(warm) = warm_part(range, step, state) else {
        cover.serve(range, &[]);
        return cover;
    };
    let resolutions: Vec<Resolution> = Resolution::ALL
        .into_iter()
        .rev()
        .filter(|r| r.micros() <= step)
        .collect();
    cover.serve(
        Range {
            end: warm.start,
            ..range
        },
        &[],
    );
    let minute = Resolution::Minute.micros();
    let mut start = warm.start;
    while start < warm.end {
        let end = (start.floor(step) + step).min(warm.end);
        let mut part = Range { start, end };
        // The minute the bucket's first boundary splits was served with it.
        if let Some(before) = cover.splits.last()
            && before.minute.end > start
        {
            part.start = before.minute.end;
        }
        let split =
            (additive && end.floor(minute) != end).then(|| Split::at(end.floor(minute), end));
        if let Some(split) = split {
            part.end = split.minute.start;
        }
        cover.serve(part, &resolutions);
        if let Some(split) = split {
            push(&mut cover.rollups[Resolution::Minute.index()], split.minute);
            push(&mut cover.raw, split.read);
            cover.splits.push(split);
        }
        start = end;
    }
    cover.serve(
        Range {
            start: warm.end,
            ..range
        },
        &[],
    );
    cover
}

/// The whole minutes of `range` that are rolled up and kept, when buckets of `step` can use
/// rollups (a step of at least a minute).
fn warm_part(range: Range, step: i64, state: RollupState) -> Option<Range> {
    let minute = Resolution::Minute.micros();
    if step < minute {
        return None;
    }
    let rolled_to = state.rolled_to?;
    let from = range.start.max(state.warm_from.unwrap_or(Micros::MIN));
    let warm = Range {
        start: from.ceil(minute),
        end: range.end.min(rolled_to).floor(minute),
    };
    (warm.start < warm.end).then_some(warm)
}

/// Ranges to read for `ranges` (disjoint, oldest first) in units of `width`: neighbours less
/// than `gap` units apart joined, since reading a few units more costs less than another
/// range (the caller drops what falls between).
pub(super) fn coalesce(ranges: &[Range], width: i64, gap: i64) -> Vec<Range> {
    let mut reads: Vec<Range> = Vec::new();
    for &range in ranges {
        match reads.last_mut() {
            Some(last) if range.start - last.end < gap * width => {
                last.end = range.end;
            }
            _ => reads.push(range),
        }
    }
    reads
}

/// Appends `range` to `ranges`, joining it to the last one when they touch.
fn push(ranges: &mut Vec<Range>, range: Range) {
    if range.start >= range.end {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => ranges.push(range),
    }
}

/// Whether `ts` falls in one of `ranges` (disjoint, oldest first).
pub(super) fn in_ranges(ranges: &[Range], ts: Micros) -> bool {
    let after = ranges.partition_point(|r| r.start <= ts);
    after > 0 && ts < ranges[after - 1].end
}

/// The objects whose day overlaps `range`.
pub(super) fn overlapping(cold: &[ColdObject], range: Range) -> impl Iterator<Item = &ColdObject> {
    cold.iter().filter(move |object| overlaps(object, range))
}

/// Whether the object's day overlaps `range`.
pub(super) fn overlaps(object: &ColdObject, range: Range) -> bool {
    let day = day_range(object.day);
    day.start < range.end && range.start < day.end
}

/// The parts of `range` on days that are not archived, which the hot tier serves. An archived
/// day is read from its objects only: on PostgreSQL its rows may still be in a partition that
/// other tenants' days share until the last of them is archived.
pub(super) fn hot_parts(range: Range, cold: &[ColdObject]) -> Vec<Range> {
    let archived: BTreeSet<_> = cold.iter().map(|object| object.day).collect();
    let mut parts: Vec<Range> = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let day = start.day();
        let end = day_range(day).end.min(range.end);
        if !archived.contains(&day) {
            match parts.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => parts.push(Range { start, end }),
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

    /// The range `[start, end)` in µs since the epoch.
    fn span(start: i64, end: i64) -> Range {
        Range {
            start: Micros(start),
            end: Micros(end),
        }
    }

    #[test]
    fn archived_days_are_left_to_the_cold_tier() {
        let first = Micros(1_793_491_200_000_000).day();
        let day = |n: u64| first.checked_add_days(chrono::Days::new(n)).unwrap();
        let archived = |d: chrono::NaiveDate| ColdObject {
            key: format!("part-{d}"),
            day: d,
            readings: 1,
            bytes: 1,
        };
        // From 06:00 on the first day to 06:00 on the fourth.
        let range = Range {
            start: day_range(day(0)).start + 6 * HOUR,
            end: day_range(day(3)).start + 6 * HOUR,
        };
        assert_eq!(hot_parts(range, &[]), [range]);
        assert_eq!(
            hot_parts(range, &[archived(day(1))]),
            [
                Range {
                    start: range.start,
                    end: day_range(day(1)).start
                },
                Range {
                    start: day_range(day(2)).start,
                    end: range.end
                },
            ]
        );
        let all: Vec<ColdObject> = (0..4).map(|n| archived(day(n))).collect();
        assert!(hot_parts(range, &all).is_empty());
    }

    /// Ranges in whole minutes.
    fn minutes(ranges: &[Range]) -> Vec<(i64, i64)> {
        ranges
            .iter()
            .map(|r| (r.start.0 / MINUTE, r.end.0 / MINUTE))
            .collect()
    }

    #[test]
    fn buckets_are_served_by_their_coarsest_whole_units() {
        // Buckets of 87 min from 0:00 (boundaries at 1:27, 2:54, 4:21), rollups kept from 0:05
        // and made up to 4:30, a range from 0:00:30 to 5:00.
        let state = RollupState {
            rolled_to: Some(Micros(270 * MINUTE)),
            warm_from: Some(Micros(5 * MINUTE)),
        };
        let range = span(MINUTE / 2, 300 * MINUTE);
        let cover = cover(range, 87 * MINUTE, state, false);
        let [minute, quarter, hour] = &cover.rollups;
        assert_eq!(minutes(hour), [(180, 240)]);
        assert_eq!(minutes(quarter), [(15, 75), (90, 165), (240, 255)]);
        assert_eq!(minutes(minute), [(5, 15), (75, 90), (165, 180), (255, 270)]);
        assert_eq!(
            cover.raw,
            [
                span(MINUTE / 2, 5 * MINUTE),
                span(270 * MINUTE, 300 * MINUTE)
            ]
        );
        assert_eq!(minutes(&cover.warm()).len(), 8);
    }

    #[test]
    fn a_step_of_whole_hours_is_served_by_hours() {
        let state = RollupState {
            rolled_to: Some(Micros(10 * HOUR)),
            warm_from: None,
        };
        let range = span(0, 10 * HOUR);
        let cover = cover(range, 2 * HOUR, state, true);
        assert_eq!(minutes(&cover.rollups[2]), [(0, 600)]);
        assert!(cover.rollups[..2].iter().all(Vec::is_empty));
        assert!(cover.raw.is_empty());
    }

    #[test]
    fn the_minutes_a_bucket_boundary_splits_are_read_raw() {
        let state = RollupState {
            rolled_to: Some(Micros(HOUR)),
            warm_from: None,
        };
        let range = span(0, 5 * MINUTE);
        // Boundaries at 1:30, 3:00 and 4:30: the second is on a minute and splits none.
        let cover = cover(range, 90_000_000, state, false);
        assert_eq!(minutes(&cover.rollups[0]), [(0, 1), (2, 4)]);
        assert_eq!(minutes(&cover.raw), [(1, 2), (4, 5)]);
        assert!(cover.splits.is_empty());
    }

    #[test]
    fn for_sums_a_split_minute_is_its_rollup_less_its_smaller_side() {
        let state = RollupState {
            rolled_to: Some(Micros(HOUR)),
            warm_from: None,
        };
        let range = span(0, 7 * MINUTE);
        // Buckets of 100 s: boundaries at 1:40 (the right side, 20 s, is read), 3:20 (the left
        // side, 20 s), 5:00 (none) and 6:40 (the right side).
        let cover = cover(range, 100_000_000, state, true);
        let second = 1_000_000;
        let sides: Vec<(i64, i64, i64, i64)> = cover
            .splits
            .iter()
            .map(|s| {
                (
                    s.read.start.0 / second,
                    s.read.end.0 / second,
                    s.rest.start.0 / second,
                    s.rest.end.0 / second,
                )
            })
            .collect();
        assert_eq!(
            sides,
            [
                (100, 120, 60, 100),
                (180, 200, 200, 240),
                (400, 420, 360, 400)
            ]
        );
        assert_eq!(
            cover.raw,
            cover.splits.iter().map(|s| s.read).collect::<Vec<_>>()
        );
        // Every minute is a rollup: the split ones too.
        assert_eq!(minutes(&cover.rollups[0]), [(0, 7)]);
    }

    #[test]
    fn without_rollups_or_below_a_minute_everything_is_raw() {
        let range = span(0, HOUR);
        let rolled = RollupState {
            rolled_to: Some(Micros(HOUR)),
            warm_from: None,
        };
        for (step, state) in [
            (45_000_000, rolled),
            (MINUTE, RollupState::default()),
            (
                MINUTE,
                RollupState {
                    warm_from: Some(Micros(HOUR)),
                    ..rolled
                },
            ),
        ] {
            let cover = cover(range, step, state, true);
            assert_eq!(cover.raw, [range], "step {step}, {state:?}");
            assert!(cover.warm().is_empty());
        }
    }

    #[test]
    fn ranges_a_few_units_apart_are_read_as_one() {
        let ranges = [
            span(0, MINUTE),
            span(3 * MINUTE, 4 * MINUTE),
            span(10 * MINUTE, 11 * MINUTE),
        ];
        assert_eq!(minutes(&coalesce(&ranges, MINUTE, 4)), [(0, 4), (10, 11)]);
        assert_eq!(coalesce(&ranges, MINUTE, 1), ranges);
    }

    #[test]
    fn readings_are_matched_to_sorted_ranges() {
        let ranges = [span(10, 20), span(30, 40)];
        let inside: Vec<i64> = (0..50)
            .filter(|&ts| in_ranges(&ranges, Micros(ts)))
            .collect();
        assert_eq!(inside, (10..20).chain(30..40).collect::<Vec<_>>());
        assert!(!in_ranges(&[], Micros(5)));
    }
}
