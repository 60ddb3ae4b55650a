//! [`Micros`]: a moment as the storage service names it.

use std::{
    ops::{Add, AddAssign, Sub},
    time::{SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, NaiveDate, Utc};

/// A moment in microseconds since the Unix epoch, UTC: PostgreSQL's resolution, and how every
/// reading, range, bucket and cursor of this service names time. Durations stay plain `i64`
/// microseconds (a bucket's width, a day): a moment plus or minus one is a moment, and the
/// difference of two moments is a duration.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Micros(pub i64);

crate::column::transparent_column!(Micros(i64));

impl Micros {
    /// The earliest moment.
    pub const MIN: Self = Self(i64::MIN);
    /// The latest moment.
    pub const MAX: Self = Self(i64::MAX);

    /// A clock reading, truncated to microseconds.
    pub fn of(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(after.as_micros() as i64),
            Err(before) => Self(-(before.duration().as_micros() as i64)),
        }
    }

    /// A date-time, truncated to microseconds.
    pub fn of_datetime(time: DateTime<Utc>) -> Self {
        Self(time.timestamp_micros())
    }

    /// The start of a UTC day.
    pub fn start_of(day: NaiveDate) -> Self {
        Self::of_datetime(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
    }

    /// As a date-time (the epoch for a moment chrono cannot represent).
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// The UTC day it falls on.
    pub fn day(self) -> NaiveDate {
        self.to_datetime().date_naive()
    }

    /// The start of the bucket of width `width` (µs) that holds it; buckets are aligned to the
    /// epoch, also before it.
    pub fn floor(self, width: i64) -> Self {
        Self(self.0.div_euclid(width) * width)
    }

    /// `micros` later, or the latest moment if that overflows.
    pub fn saturating_add(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// `micros` earlier, or the earliest moment if that overflows.
    pub fn saturating_sub(self, micros: i64) -> Self {
        Self(self.0.saturating_sub(micros))
    }

    /// The first bucket start of width `width` (µs) at or after it.
    pub fn ceil(self, width: i64) -> Self {
        let floor = self.floor(width);
        if floor == self { floor } else { floor + width }
    }
}

impl Add<i64> for Micros {
    type Output = Self;

    fn add(self, micros: i64) -> Self {
        Self(self.0 + micros)
    }
}

impl AddAssign<i64> for Micros {
    fn add_assign(&mut self, micros: i64) {
        self.0 += micros;
    }
}

impl Sub<i64> for Micros {
    type Output = Self;

    fn sub(self, micros: i64) -> Self {
        Self(self.0 - micros)
    }
}

/// The time from one moment to another, in µs.
impl Sub for Micros {
    type Output = i64;

    fn sub(self, earlier: Self) -> i64 {
        self.0 - earlier.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::domain::ingest::DAY_MICROS as DAY;

    #[test]
    fn buckets_are_aligned_to_the_epoch_on_both_sides_of_it() {
        assert_eq!(Micros(-1).floor(60), Micros(-60));
        assert_eq!(Micros(-60).floor(60), Micros(-60));
        assert_eq!(Micros(59).floor(60), Micros(0));
        assert_eq!(Micros(-59).ceil(60), Micros(0));
        assert_eq!(Micros(0).ceil(60), Micros(0));
        assert_eq!(Micros(1).ceil(60), Micros(60));
    }

    #[test]
    fn a_day_starts_at_its_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let start = Micros::start_of(day);
        assert_eq!(start.day(), day);
        assert_eq!((start - 1).day(), day.pred_opt().unwrap());
        assert_eq!((start + DAY - 1).day(), day);
        assert_eq!(start.floor(DAY), start);
    }
}
