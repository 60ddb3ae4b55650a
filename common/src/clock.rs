//! Time as a dependency: services take a [`Clock`], so tests run on a [`ManualClock`] instead of
//! sleeping.

use std::{
    fmt::Debug,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

/// `time` to the microsecond, the precision both databases keep, so that what a service
/// returns equals what it reads back later.
pub fn micros(time: SystemTime) -> chrono::DateTime<chrono::Utc> {
    let time = chrono::DateTime::<chrono::Utc>::from(time);
    chrono::DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Returns the current monotonic instant, for timeouts and expiries.
    fn now(&self) -> Instant;
    /// Returns the current wall-clock time, for timestamps that users see.
    fn system_now(&self) -> SystemTime;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Returns the real clock, shared.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<(Instant, SystemTime)>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// Creates a clock stopped at the current time.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new((Instant::now(), SystemTime::now()))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 += by;
        state.1 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0
    }
    fn system_now(&self) -> SystemTime {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}
