//! What the ingest path accepts: per-reading checks, the accepted time window and each tenant's
//! ingest rate. Pure functions of their inputs and a clock reading, so they are tested without a
//! server.

use std::time::{Duration, Instant, SystemTime};

use crate::micros::Micros;

/// The most readings one batch may carry; the rest are rejected.
pub const MAX_BATCH: usize = 10_000;
/// The longest metric name, in characters.
pub const MAX_METRIC_CHARS: usize = 128;
/// How far ahead of the server's clock a timestamp may be.
pub const MAX_AHEAD: Duration = Duration::from_secs(5 * 60);

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// A reading as it arrives, before any check.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingReading {
    /// The machine; empty means the batch's machine.
    pub machine_id: String,
    /// The metric's name.
    pub metric: String,
    /// When it was measured, in microseconds since the Unix epoch; `None` when missing.
    pub ts: Option<Micros>,
    /// The value.
    pub value: f64,
}

/// A reading that passed the checks that need no lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The reading's position in its batch.
    pub index: u32,
    /// The machine.
    pub machine_id: String,
    /// The metric's name.
    pub metric: String,
    /// When it was measured, in microseconds since the Unix epoch (UTC).
    pub ts: Micros,
    /// The value, finite.
    pub value: f64,
}

/// Why a reading was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// NaN or infinite.
    NotFinite,
    /// The machine is not registered with the tenant.
    UnknownMachine,
    /// Older than the tenant's hot retention.
    TooOld,
    /// More than [`MAX_AHEAD`] ahead of the server's clock.
    InFuture,
    /// An empty metric name, or one over [`MAX_METRIC_CHARS`].
    InvalidMetric,
    /// Past the per-batch limit.
    BatchLimit,
    /// No timestamp.
    MissingTimestamp,
}

/// A refused reading and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The reading's position in its batch.
    pub index: u32,
    /// Why.
    pub reason: RejectReason,
    /// A human-readable explanation.
    pub message: String,
}

impl Rejection {
    /// Creates a rejection.
    pub fn new(index: u32, reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            index,
            reason,
            message: message.into(),
        }
    }
}

/// The timestamps accepted at one moment: from the start of the tenant's hot retention to
/// [`MAX_AHEAD`] ahead of the server's clock, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The oldest accepted timestamp.
    pub oldest: Micros,
    /// The newest accepted timestamp.
    pub newest: Micros,
}

impl Window {
    /// The window at `now` for a hot retention of `hot_days`.
    pub fn at(now: SystemTime, hot_days: u32) -> Self {
        let now = Micros::of(now);
        Self {
            oldest: now - i64::from(hot_days) * DAY_MICROS,
            newest: now + MAX_AHEAD.as_micros() as i64,
        }
    }
}

/// Checks a batch's readings: the ones that pass, in order, and the rejected ones. Machines are
/// checked later, against the registry. An empty machine id takes `default_machine`.
pub fn screen(
    readings: Vec<IncomingReading>,
    default_machine: &str,
    window: Window,
) -> (Vec<Reading>, Vec<Rejection>) {
    let mut accepted = Vec::with_capacity(readings.len().min(MAX_BATCH));
    let mut rejected = Vec::new();
    for (index, reading) in readings.into_iter().enumerate() {
        let index = index as u32;
        if index as usize >= MAX_BATCH {
            rejected.push(Rejection::new(
                index,
                RejectReason::BatchLimit,
                format!("a batch holds at most {MAX_BATCH} readings"),
            ));
            continue;
        }
        let metric_chars = reading.metric.chars().count();
        let Some(ts) = reading.ts else {
            rejected.push(Rejection::new(
                index,
                RejectReason::MissingTimestamp,
                "the timestamp is missing",
            ));
            continue;
        };
        let refusal = if !reading.value.is_finite() {
            Some((
                RejectReason::NotFinite,
                format!("the value {} is not a finite number", reading.value),
            ))
        } else if metric_chars == 0 || metric_chars > MAX_METRIC_CHARS {
            Some((
                RejectReason::InvalidMetric,
                format!(
                    "the metric name must have 1 to {MAX_METRIC_CHARS} characters, not {metric_chars}"
                ),
            ))
        } else if ts < window.oldest {
            Some((
                RejectReason::TooOld,
                "the timestamp is older than the tenant's hot retention".to_owned(),
            ))
        } else if ts > window.newest {
            Some((
                RejectReason::InFuture,
                "the timestamp is more than 5 minutes ahead of the server's clock".to_owned(),
            ))
        } else {
            None
        };
        if let Some((reason, message)) = refusal {
            rejected.push(Rejection::new(index, reason, message));
            continue;
        }
        let machine_id = if reading.machine_id.is_empty() {
            default_machine.to_owned()
        } else {
            reading.machine_id
        };
        if machine_id.is_empty() {
            rejected.push(Rejection::new(
                index,
                RejectReason::UnknownMachine,
                "the reading names no machine, and neither does its batch",
            ));
            continue;
        }
        accepted.push(Reading {
            index,
            machine_id,
            metric: reading.metric,
            ts,
            value: reading.value,
        });
    }
    (accepted, rejected)
}

/// A tenant's ingest rate as a token bucket of readings, refilled at the rate and holding at
/// most one second's worth. A batch is admitted while the bucket is not empty and may take it
/// into debt, so that a batch larger than a second's worth still passes, and the debt delays
/// the next one: over time the tenant gets its rate, not more.
#[derive(Debug, Clone)]
pub struct IngestRate {
    per_second: u32,
    tokens: f64,
    updated: Instant,
}

impl IngestRate {
    /// A full bucket at `per_second`.
    pub fn new(per_second: u32, now: Instant) -> Self {
        Self {
            per_second,
            tokens: f64::from(per_second),
            updated: now,
        }
    }

    /// The rate.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes `readings` from the bucket, or says how long to wait before trying again.
    /// `per_second` is the tenant's current rate (limits change at run time).
    pub fn take(&mut self, readings: usize, per_second: u32, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(per_second.max(1));
        self.per_second = per_second;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.updated = now;
        if self.tokens <= 0.0 {
            let wait = (-self.tokens + 1.0) / rate;
            return Err(Duration::from_secs_f64(wait).max(Duration::from_millis(1)));
        }
        self.tokens -= readings as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(metric: &str, ts: Option<Micros>, value: f64) -> IncomingReading {
        IncomingReading {
            machine_id: String::new(),
            metric: metric.to_owned(),
            ts,
            value,
        }
    }

    #[test]
    fn each_bad_reading_is_rejected_with_its_reason_and_the_rest_pass() {
        let now = SystemTime::now();
        let window = Window::at(now, 30);
        let t = Micros::of(now);
        let readings = vec![
            reading("temp", Some(t), 20.5),
            reading("temp", Some(t), f64::NAN),
            reading("temp", Some(t), f64::INFINITY),
            reading("temp", Some(t), f64::NEG_INFINITY),
            reading("", Some(t), 1.0),
            reading(&"m".repeat(129), Some(t), 1.0),
            reading(&"m".repeat(128), Some(t), 1.0),
            reading("temp", Some(t - 31 * DAY_MICROS), 1.0),
            reading("temp", Some(t + 6 * 60 * 1_000_000), 1.0),
            reading("temp", Some(t + 4 * 60 * 1_000_000), 1.0),
            reading("temp", None, 1.0),
        ];
        let (accepted, rejected) = screen(readings, "press-1", window);
        assert_eq!(
            accepted.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![0, 6, 9]
        );
        assert!(accepted.iter().all(|r| r.machine_id == "press-1"));
        let reasons: Vec<(u32, RejectReason)> =
            rejected.iter().map(|r| (r.index, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (1, RejectReason::NotFinite),
                (2, RejectReason::NotFinite),
                (3, RejectReason::NotFinite),
                (4, RejectReason::InvalidMetric),
                (5, RejectReason::InvalidMetric),
                (7, RejectReason::TooOld),
                (8, RejectReason::InFuture),
                (10, RejectReason::MissingTimestamp),
            ]
        );
    }

    #[test]
    fn readings_past_the_batch_limit_are_rejected() {
        let now = SystemTime::now();
        let t = Micros::of(now);
        let readings = (0..MAX_BATCH + 3)
            .map(|i| reading("temp", Some(t - i as i64), 1.0))
            .collect();
        let (accepted, rejected) = screen(readings, "m", Window::at(now, 30));
        assert_eq!(accepted.len(), MAX_BATCH);
        assert_eq!(rejected.len(), 3);
        assert!(
            rejected
                .iter()
                .all(|r| r.reason == RejectReason::BatchLimit)
        );
        assert_eq!(rejected[0].index as usize, MAX_BATCH);
    }

    #[test]
    fn a_reading_without_any_machine_is_refused() {
        let now = SystemTime::now();
        let (accepted, rejected) = screen(
            vec![reading("temp", Some(Micros::of(now)), 1.0)],
            "",
            Window::at(now, 30),
        );
        assert!(accepted.is_empty());
        assert_eq!(rejected[0].reason, RejectReason::UnknownMachine);
    }

    #[test]
    fn the_rate_admits_a_second_of_readings_then_asks_to_wait() {
        let start = Instant::now();
        let mut rate = IngestRate::new(1_000, start);
        assert!(rate.take(600, 1_000, start).is_ok());
        assert!(
            rate.take(600, 1_000, start).is_ok(),
            "the bucket may go into debt"
        );
        let wait = rate.take(1, 1_000, start).unwrap_err();
        assert!(
            wait >= Duration::from_millis(200) && wait <= Duration::from_millis(202),
            "{wait:?}"
        );
        assert!(rate.take(1, 1_000, start + wait).is_ok());
    }

    #[test]
    fn over_time_the_rate_holds_for_batches_larger_than_a_second() {
        let start = Instant::now();
        let mut rate = IngestRate::new(1_000, start);
        let mut now = start;
        let mut admitted = 0;
        while now < start + Duration::from_secs(60) {
            match rate.take(5_000, 1_000, now) {
                Ok(()) => admitted += 5_000,
                Err(wait) => now += wait,
            }
        }
        // One second's burst, then 1,000/s, to within a batch.
        assert!((60_000..=66_000).contains(&admitted), "{admitted}");
    }
}
