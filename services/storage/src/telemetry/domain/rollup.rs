//! Rollups: the summary of one series over one time bucket (min, max, sum, count, last), as the
//! warm tier keeps them at one minute and one hour. Rollups merge: a bucket rolled up from
//! pieces (late readings, smaller buckets, several tiers) equals the bucket rolled up at once,
//! which is what makes query results independent of the tier that served them.

use std::collections::BTreeMap;

use crate::micros::Micros;

/// How a bucket's readings become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The mean.
    Avg,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
    /// The sum.
    Sum,
    /// The number of readings.
    Count,
    /// The latest reading.
    Last,
}

impl Aggregation {
    /// The fields of a rollup this aggregation's value needs.
    pub fn fields(self) -> Fields {
        match self {
            Self::Avg | Self::Sum => Fields::Sum,
            Self::Min => Fields::Min,
            Self::Max => Fields::Max,
            Self::Count => Fields::Count,
            Self::Last => Fields::Last,
        }
    }

    /// Whether the value depends on the bucket's sum and count only, so that a part of a
    /// bucket can be found by taking another part from the whole ([`Rollup::without`]).
    pub fn is_additive(self) -> bool {
        matches!(self, Self::Avg | Self::Sum | Self::Count)
    }
}

/// Which fields of a [`Rollup`] a read fills in: the count always (every bucket reports it),
/// and all the others or those one aggregation needs. A field left out is as in
/// [`Rollup::NONE`]. A dashboard's query reads thousands of rollups, and on PostgreSQL each
/// field of each costs about as much as finding the rollup: an average reads two of six.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fields {
    /// Every field.
    All,
    /// The sum.
    Sum,
    /// The count alone.
    Count,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
    /// The latest reading and its time.
    Last,
}

/// A field of a [`Rollup`] that a read may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// [`Rollup::min`].
    Min,
    /// [`Rollup::max`].
    Max,
    /// [`Rollup::sum`].
    Sum,
    /// [`Rollup::last_ts`].
    LastTs,
    /// [`Rollup::last`].
    Last,
}

impl Fields {
    /// Every variant.
    pub const ALL: [Self; 6] = [
        Self::All,
        Self::Sum,
        Self::Count,
        Self::Min,
        Self::Max,
        Self::Last,
    ];

    /// The fields filled in besides the count, in the order of [`Rollup`]'s.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::All => &[
                Field::Min,
                Field::Max,
                Field::Sum,
                Field::LastTs,
                Field::Last,
            ],
            Self::Sum => &[Field::Sum],
            Self::Count => &[],
            Self::Min => &[Field::Min],
            Self::Max => &[Field::Max],
            Self::Last => &[Field::LastTs, Field::Last],
        }
    }

    /// This variant's place in [`Fields::ALL`].
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|&fields| fields == self)
            .unwrap_or_default()
    }
}

impl Field {
    /// The field's column in the rollup tables.
    pub fn column(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
            Self::LastTs => "last_ts",
            Self::Last => "last",
        }
    }
}

/// The summary of a series' readings in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The sum of the values.
    pub sum: f64,
    /// How many readings.
    pub count: u64,
    /// When the latest reading was measured.
    pub last_ts: Micros,
    /// The latest reading's value.
    pub last: f64,
}

impl Rollup {
    /// The rollup of no readings, which merges into any rollup without changing it.
    pub const NONE: Self = Self {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        count: 0,
        last_ts: Micros(i64::MIN),
        last: 0.0,
    };

    /// The rollup of one reading.
    pub fn of(ts: Micros, value: f64) -> Self {
        Self {
            min: value,
            max: value,
            sum: value,
            count: 1,
            last_ts: ts,
            last: value,
        }
    }

    /// Adds a reading.
    pub fn add(&mut self, ts: Micros, value: f64) {
        *self = self.merge(&Self::of(ts, value));
    }

    /// Merges two rollups of the same series and bucket. Associative and commutative: the
    /// latest reading wins `last`; on equal timestamps the larger value does, so that the
    /// result never depends on the order of merging.
    pub fn merge(&self, other: &Self) -> Self {
        let other_is_later = (other.last_ts, other.last.total_cmp(&self.last))
            > (self.last_ts, std::cmp::Ordering::Equal);
        let (last_ts, last) = if other_is_later {
            (other.last_ts, other.last)
        } else {
            (self.last_ts, self.last)
        };
        Self {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            sum: self.sum + other.sum,
            count: self.count + other.count,
            last_ts,
            last,
        }
    }

    /// The rest of this rollup's readings once those of `part` (some of them) are taken away,
    /// or `None` when none are left. Exact in count; the sum is a difference, so it may differ
    /// from the sum of the rest in the last bits. Min, max and last cannot be taken away: they
    /// are this rollup's, so the rest is good only for an [additive](Aggregation::is_additive)
    /// aggregation.
    pub fn without(&self, part: &Self) -> Option<Self> {
        let count = self.count.checked_sub(part.count).filter(|&n| n > 0)?;
        Some(Self {
            sum: self.sum - part.sum,
            count,
            ..*self
        })
    }

    /// The bucket's value under an aggregation.
    pub fn value(&self, aggregation: Aggregation) -> f64 {
        match aggregation {
            Aggregation::Avg => self.sum / self.count as f64,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Sum => self.sum,
            Aggregation::Count => self.count as f64,
            Aggregation::Last => self.last,
        }
    }
}

/// Rolls readings `(ts, value)` up into buckets of `width_micros`, keyed by bucket start.
pub fn roll_up(
    readings: impl IntoIterator<Item = (Micros, f64)>,
    width_micros: i64,
) -> BTreeMap<Micros, Rollup> {
    let mut buckets: BTreeMap<Micros, Rollup> = BTreeMap::new();
    for (ts, value) in readings {
        buckets
            .entry(ts.floor(width_micros))
            .and_modify(|rollup| rollup.add(ts, value))
            .or_insert_with(|| Rollup::of(ts, value));
    }
    buckets
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MINUTE: i64 = 60_000_000;
    const HOUR: i64 = 60 * MINUTE;

    /// Readings of one series: unique timestamps within three hours around the epoch, and
    /// integer values, so that sums are exact whatever the order of addition.
    fn readings() -> impl Strategy<Value = Vec<(Micros, f64)>> {
        proptest::collection::btree_map(-HOUR..2 * HOUR, -1_000_000i32..1_000_000, 1..300).prop_map(
            |m| {
                m.into_iter()
                    .map(|(ts, v)| (Micros(ts), f64::from(v)))
                    .collect()
            },
        )
    }

    #[test]
    fn a_bucket_summarizes_its_readings() {
        let readings = [(5, 2.0), (1, 8.0), (MINUTE + 1, 1.0), (3, -4.0)];
        let buckets = roll_up(readings.map(|(ts, v)| (Micros(ts), v)), MINUTE);
        let first = buckets[&Micros(0)];
        assert_eq!(
            (first.min, first.max, first.sum, first.count),
            (-4.0, 8.0, 6.0, 3)
        );
        assert_eq!((first.last_ts, first.last), (Micros(5), 2.0));
        assert_eq!(first.value(Aggregation::Avg), 2.0);
        assert_eq!(buckets[&Micros(MINUTE)].value(Aggregation::Count), 1.0);
        assert_eq!(
            Micros(-1).floor(MINUTE),
            Micros(-MINUTE),
            "buckets before the epoch align too"
        );
    }

    proptest! {
        #[test]
        fn late_readings_re_roll_to_the_same_buckets(readings in readings(), split in any::<prop::sample::Index>()) {
            // Readings that arrive in two parts (the second one late) give the same buckets.
            let at = split.index(readings.len() + 1);
            let (early, late) = readings.split_at(at);
            let mut merged = roll_up(early.iter().copied(), MINUTE);
            for (start, rollup) in roll_up(late.iter().copied(), MINUTE) {
                merged.entry(start).and_modify(|r| *r = r.merge(&rollup)).or_insert(rollup);
            }
            prop_assert_eq!(merged, roll_up(readings.iter().copied(), MINUTE));
        }

        #[test]
        fn hours_from_minutes_equal_hours_from_readings(readings in readings()) {
            let mut hours: BTreeMap<Micros, Rollup> = BTreeMap::new();
            for (start, minute) in roll_up(readings.iter().copied(), MINUTE) {
                hours
                    .entry(start.floor(HOUR))
                    .and_modify(|r| *r = r.merge(&minute))
                    .or_insert(minute);
            }
            prop_assert_eq!(hours, roll_up(readings.iter().copied(), HOUR));
        }

        #[test]
        fn a_part_taken_from_a_bucket_leaves_the_rest(readings in readings(), split in any::<prop::sample::Index>()) {
            // Integer values: the sums are exact, so the difference is too.
            let at = split.index(readings.len() + 1);
            let (part, rest) = readings.split_at(at);
            // Readings from -1 h to 2 h, shifted into one bucket of 4 h.
            let whole = |r: &[(Micros, f64)]| roll_up(r.iter().map(|&(ts, v)| (ts + HOUR, v)), 4 * HOUR).into_values().next();
            let left = whole(&readings).unwrap().without(&whole(part).unwrap_or(Rollup { count: 0, sum: 0.0, ..Rollup::of(Micros(0), 0.0) }));
            for aggregation in [Aggregation::Avg, Aggregation::Sum, Aggregation::Count] {
                prop_assert_eq!(
                    left.map(|r| r.value(aggregation)),
                    whole(rest).map(|r| r.value(aggregation))
                );
            }
        }

        #[test]
        fn merging_is_commutative_and_associative(a in readings(), b in readings(), c in readings()) {
            let whole = |r: &Vec<(Micros, f64)>| roll_up(r.iter().copied(), 4 * HOUR).into_values().next().unwrap();
            let (a, b, c) = (whole(&a), whole(&b), whole(&c));
            prop_assert_eq!(a.merge(&b), b.merge(&a));
            prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
        }
    }
}
