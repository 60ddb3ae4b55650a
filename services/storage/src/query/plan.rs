//! How a series query is cut: which part of its range the warm tier serves and at what
//! resolution, which minutes and quarters are read finer, and which days the hot tier holds.
//! Pure functions of ranges, steps and the manifest, tested here.

use std::collections::BTreeSet;

use crate::{
    domain::bucket_start,
    store::{ColdObject, Range, Resolution, RollupState, day_of, day_range},
};

/// The part of `range` the warm tier serves for buckets of `step`, rolled up and not expired,
/// with the resolution to read: whole buckets when the step is a whole number of minutes;
/// whole minutes when it is longer than a minute but not a whole number of them. Hours for a
/// step of whole hours; from a quarter of an hour, quarters with minutes around them
/// (`quarter_plan`); minutes below.
pub(super) fn warm_range(
    range: Range,
    step: i64,
    state: RollupState,
) -> Option<(Range, Resolution)> {
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
pub(super) fn split_minutes(warm: Range, step: i64) -> impl Iterator<Item = Range> {
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
pub(super) fn quarter_plan(warm: Range, step: i64) -> (Option<Range>, Vec<Range>) {
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
pub(super) fn in_ranges(ranges: &[Range], ts: i64) -> bool {
    let after = ranges.partition_point(|r| r.start_micros <= ts);
    after > 0 && ts < ranges[after - 1].end_micros
}

/// The objects whose day overlaps `range`.
pub(super) fn overlapping(cold: &[ColdObject], range: Range) -> impl Iterator<Item = &ColdObject> {
    cold.iter().filter(move |object| overlaps(object, range))
}

/// Whether the object's day overlaps `range`.
pub(super) fn overlaps(object: &ColdObject, range: Range) -> bool {
    let day = day_range(object.day);
    day.start_micros < range.end_micros && range.start_micros < day.end_micros
}

/// The parts of `range` on days that are not archived, which the hot tier serves. An archived
/// day is read from its objects only: on PostgreSQL its rows may still be in a partition that
/// other tenants' days share until the last of them is archived.
pub(super) fn hot_parts(range: Range, cold: &[ColdObject]) -> Vec<Range> {
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
