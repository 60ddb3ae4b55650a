//! The buckets usage is summed in: hours, days and calendar months (UTC), each in a table of
//! its own; and how a period is covered by the fewest of them, so that reading a month of a
//! thousand tenants reads one row per tenant and meter, not 730.
//!
//! A period is costed by whole hours: the hours that start in it. Its cover is hours up to the
//! first midnight, days up to the first of a month, months, then days and hours again. A period
//! with no end (one that ends now: nothing is recorded later) is covered by months as soon as
//! it reaches the first of a month.

use chrono::{DateTime, Datelike as _, Duration, DurationRound as _, TimeZone as _, Utc};

/// The size of a bucket, and its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    /// One hour.
    Hour,
    /// One day, from midnight UTC.
    Day,
    /// One calendar month, from its first day at midnight UTC.
    Month,
}

/// The buckets of one grain that start in `[start, end)`, as µs since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Their size.
    pub grain: Grain,
    /// The start of the first.
    pub start: i64,
    /// The end of the last; `i64::MAX` for a piece with no end.
    pub end: i64,
}

impl Grain {
    /// The table of its buckets, and the column of their start.
    pub const fn table(self) -> (&'static str, &'static str) {
        match self {
            Self::Hour => ("usage_hours", "hour"),
            Self::Day => ("usage_days", "day"),
            Self::Month => ("usage_months", "month"),
        }
    }

    /// The start of the bucket `at` falls in.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Hour => at.duration_trunc(Duration::hours(1)).unwrap_or(at),
            Self::Day => at.duration_trunc(Duration::days(1)).unwrap_or(at),
            Self::Month => Utc
                .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(at),
        }
    }

    /// The grain whose buckets are made of this one's: a day of hours, a month of days.
    pub const fn parent(self) -> Option<Self> {
        match self {
            Self::Hour => Some(Self::Day),
            Self::Day => Some(Self::Month),
            Self::Month => None,
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Hour => start + Duration::hours(1),
            Self::Day => start + Duration::days(1),
            Self::Month => {
                let (year, month) = match start.month() {
                    12 => (start.year() + 1, 1),
                    month => (start.year(), month + 1),
                };
                Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
                    .single()
                    .unwrap_or(start)
            }
        }
    }
}

/// The first hour that starts at or after `at`.
pub fn ceil_hour(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = Grain::Hour.floor(at);
    if floor == at {
        at
    } else {
        Grain::Hour.next(floor)
    }
}

/// A moment given in µs since the epoch, as the ledger keeps it.
pub fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The fewest pieces whose buckets are the hours that start in `[start, end)`, or from
/// `start` on when `end` is `None`.
pub fn cover(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Vec<Piece> {
    let end = end.map(ceil_hour);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut cursor = ceil_hour(start);
    while end.is_none_or(|end| cursor < end) {
        let grain = [Grain::Month, Grain::Day, Grain::Hour]
            .into_iter()
            .find(|g| g.floor(cursor) == cursor && end.is_none_or(|end| g.next(cursor) <= end))
            .unwrap_or(Grain::Hour);
        let next = grain.next(cursor);
        let (from, to) = (cursor.timestamp_micros(), next.timestamp_micros());
        match pieces.last_mut() {
            Some(last) if last.grain == grain && last.end == from => last.end = to,
            _ => pieces.push(Piece {
                grain,
                start: from,
                end: to,
            }),
        }
        if end.is_none() && grain == Grain::Month {
            if let Some(last) = pieces.last_mut() {
                last.end = i64::MAX;
            }
            break;
        }
        cursor = next;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, hour, minute, 0)
            .unwrap()
    }

    fn piece(grain: Grain, start: DateTime<Utc>, end: DateTime<Utc>) -> Piece {
        Piece {
            grain,
            start: start.timestamp_micros(),
            end: end.timestamp_micros(),
        }
    }

    #[test]
    fn a_month_to_date_is_one_month_bucket() {
        let cover = cover(at(12, 1, 0, 0), None);
        assert_eq!(
            cover,
            [Piece {
                grain: Grain::Month,
                start: at(12, 1, 0, 0).timestamp_micros(),
                end: i64::MAX
            }]
        );
    }

    #[test]
    fn a_period_is_hours_then_days_then_months_then_days_then_hours() {
        // From 22:30 on 30 October to 02:10 on 3 December: the hours from 23:00 to midnight,
        // 31 October, November, 1 and 2 December, and the hours to 03:00 (02:00 starts
        // before the end).
        assert_eq!(
            cover(at(10, 30, 22, 30), Some(at(12, 3, 2, 10))),
            [
                piece(Grain::Hour, at(10, 30, 23, 0), at(10, 31, 0, 0)),
                piece(Grain::Day, at(10, 31, 0, 0), at(11, 1, 0, 0)),
                piece(Grain::Month, at(11, 1, 0, 0), at(12, 1, 0, 0)),
                piece(Grain::Day, at(12, 1, 0, 0), at(12, 3, 0, 0)),
                piece(Grain::Hour, at(12, 3, 0, 0), at(12, 3, 3, 0)),
            ]
        );
    }

    #[test]
    fn an_open_period_takes_months_from_the_first_of_a_month() {
        assert_eq!(
            cover(at(11, 30, 12, 0), None),
            [
                piece(Grain::Hour, at(11, 30, 12, 0), at(12, 1, 0, 0)),
                Piece {
                    grain: Grain::Month,
                    start: at(12, 1, 0, 0).timestamp_micros(),
                    end: i64::MAX
                },
            ]
        );
    }

    #[test]
    fn short_and_empty_periods() {
        assert_eq!(
            cover(at(12, 4, 10, 0), Some(at(12, 4, 12, 0))),
            [piece(Grain::Hour, at(12, 4, 10, 0), at(12, 4, 12, 0))]
        );
        assert!(cover(at(12, 4, 10, 5), Some(at(12, 4, 11, 0))).is_empty());
        assert!(cover(at(12, 4, 10, 0), Some(at(12, 4, 10, 0))).is_empty());
        assert_eq!(
            Grain::Month.next(at(12, 1, 0, 0)),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(Grain::Month.floor(at(12, 4, 10, 5)), at(12, 1, 0, 0));
    }
}
