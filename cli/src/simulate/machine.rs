//! One simulated machine: its metrics' profiles, how it samples them, and its loop of sampling
//! and sending through an [`Uplink`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mfg_common::shutdown::CancellationToken;
use mfg_proto::common::v1::Reading;
use pbjson_types::Timestamp;
use rand::{Rng as _, SeedableRng as _, rngs::SmallRng};

use super::Scenario;
use mfg_uplink::Uplink;

/// How a metric behaves.
#[derive(Debug, Clone, Copy)]
struct Profile {
    name: &'static str,
    base: f64,
    /// Amplitude of a slow wave.
    wave: f64,
    /// Period of the wave, seconds.
    period: f64,
    noise: f64,
    /// Change per hour, reset at each 8-hour shift.
    drift: f64,
    /// Chance of a spike per sample, and its size.
    spike_chance: f64,
    spike: f64,
    /// A counter that grows by this much per second (the other fields are ignored).
    counter: f64,
    /// A counter that starts again from zero at this value; 0 never does.
    wraps_at: f64,
}

const fn gauge(
    name: &'static str,
    base: f64,
    wave: f64,
    period: f64,
    noise: f64,
    drift: f64,
    (spike_chance, spike): (f64, f64),
) -> Profile {
    Profile {
        name,
        base,
        wave,
        period,
        noise,
        drift,
        spike_chance,
        spike,
        counter: 0.0,
        wraps_at: 0.0,
    }
}

const fn counter(name: &'static str, per_second: f64) -> Profile {
    Profile {
        name,
        base: 0.0,
        wave: 0.0,
        period: 1.0,
        noise: 0.0,
        drift: 0.0,
        spike_chance: 0.0,
        spike: 0.0,
        counter: per_second,
        wraps_at: 0.0,
    }
}

/// A counter that starts again at `wraps_at` (a tool's wear, reset when it is changed).
const fn wrapping(name: &'static str, per_second: f64, wraps_at: f64) -> Profile {
    let mut profile = counter(name, per_second);
    profile.wraps_at = wraps_at;
    profile
}

/// 2026-12-01T00:00:00Z in µs: machines went into service some time before it.
const COUNTERS_FROM: i64 = 1_796_083_200 * 1_000_000;

/// The metrics of a machine, the first `--metrics` of them (then `metric_21`, … as gauges).
const PROFILES: [Profile; 20] = [
    gauge(
        "spindle_speed_rpm",
        9_000.0,
        1_500.0,
        600.0,
        60.0,
        0.0,
        (0.0005, -9_000.0),
    ),
    gauge("temperature_c", 55.0, 6.0, 1_800.0, 0.4, 2.0, (0.001, 25.0)),
    gauge("vibration_mm_s", 2.5, 0.8, 300.0, 0.3, 0.1, (0.002, 9.0)),
    gauge("power_kw", 18.0, 4.0, 900.0, 0.8, 0.3, (0.001, 12.0)),
    counter("part_count", 0.25),
    gauge(
        "feed_rate_mm_min",
        1_200.0,
        200.0,
        600.0,
        25.0,
        0.0,
        (0.0, 0.0),
    ),
    gauge(
        "coolant_temp_c",
        24.0,
        2.0,
        2_400.0,
        0.2,
        0.5,
        (0.0005, 10.0),
    ),
    gauge(
        "hydraulic_pressure_bar",
        180.0,
        10.0,
        420.0,
        1.5,
        -0.5,
        (0.001, -60.0),
    ),
    gauge("motor_current_a", 32.0, 6.0, 900.0, 0.9, 0.2, (0.001, 25.0)),
    gauge("torque_nm", 85.0, 15.0, 600.0, 2.0, 0.0, (0.001, 60.0)),
    gauge("cycle_time_s", 42.0, 3.0, 3_600.0, 0.5, 0.4, (0.0005, 20.0)),
    gauge(
        "air_pressure_bar",
        6.2,
        0.2,
        1_200.0,
        0.05,
        0.0,
        (0.0005, -2.0),
    ),
    gauge("humidity_pct", 45.0, 5.0, 7_200.0, 0.5, 0.0, (0.0, 0.0)),
    wrapping("tool_wear_pct", 0.002, 100.0),
    gauge(
        "axis_x_load_pct",
        40.0,
        15.0,
        240.0,
        2.0,
        0.0,
        (0.001, 45.0),
    ),
    gauge(
        "axis_y_load_pct",
        35.0,
        12.0,
        260.0,
        2.0,
        0.0,
        (0.001, 45.0),
    ),
    gauge(
        "axis_z_load_pct",
        30.0,
        10.0,
        280.0,
        2.0,
        0.0,
        (0.001, 50.0),
    ),
    gauge("voltage_v", 400.0, 4.0, 3_600.0, 1.0, 0.0, (0.0005, -60.0)),
    counter("energy_kwh", 0.005),
    gauge("oil_level_pct", 90.0, 0.5, 3_600.0, 0.1, -0.8, (0.0, 0.0)),
];

/// The names of a machine's first `count` metrics.
pub fn metric_names(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| match PROFILES.get(i) {
            Some(profile) => profile.name.to_owned(),
            None => format!("metric_{}", i + 1),
        })
        .collect()
}

/// One simulated machine.
pub(super) struct Machine {
    id: String,
    rng: SmallRng,
    metrics: Vec<(String, Profile, f64)>,
    /// The machine sends nothing until then (micros).
    offline_until: i64,
    /// Each sample, the chance of an outage starting.
    outage_chance: f64,
    /// When the machine went into service (µs): its counters count from then.
    commissioned: i64,
    /// While it overheats (µs), its temperature runs 25 °C above normal.
    overheating: (i64, i64),
}

impl Machine {
    pub(super) fn new(id: String, scenario: &Scenario, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let metrics = metric_names(scenario.metrics)
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                // Past the named profiles, more vibration-like gauges.
                let profile = PROFILES.get(i).copied().unwrap_or(PROFILES[2]);
                let phase = rng.random::<f64>() * std::f64::consts::TAU;
                (name, profile, phase)
            })
            .collect();
        // In service since some day of the year before 2026-12-01, so that counters read as a
        // machine's would and go on across restarts.
        let commissioned = COUNTERS_FROM - rng.random_range(30..365) * 86_400 * 1_000_000;
        Self {
            id,
            rng,
            metrics,
            commissioned,
            overheating: (0, 0),
            offline_until: 0,
            // About one outage per machine-hour.
            outage_chance: 1.0 / (3_600.0 * scenario.hz),
        }
    }

    /// Runs the machine 25 °C hot from `from` until `until` (µs).
    pub(super) fn overheat(&mut self, from: i64, until: i64) {
        self.overheating = (from, until);
    }

    /// Samples every metric at `micros`; nothing during an outage.
    fn sample(&mut self, micros: i64, readings: &mut Vec<Reading>) {
        if micros < self.offline_until {
            return;
        }
        if self.rng.random::<f64>() < self.outage_chance {
            let seconds = self.rng.random_range(30..180);
            self.offline_until = micros + seconds * 1_000_000;
            return;
        }
        let seconds = micros as f64 / 1e6;
        let shift_hours = (seconds % (8.0 * 3_600.0)) / 3_600.0;
        let in_service = (micros - self.commissioned).max(0) as f64 / 1e6;
        let overheating = (self.overheating.0..self.overheating.1).contains(&micros);
        for (name, profile, phase) in &self.metrics {
            let value = if profile.counter > 0.0 {
                // Grows with time in service, so restarts continue where the last run left
                // off; wear starts again at each tool change.
                let count = (in_service * profile.counter).floor();
                if profile.wraps_at > 0.0 {
                    count % profile.wraps_at
                } else {
                    count
                }
            } else if overheating && name == "temperature_c" {
                profile.base + 25.0 + profile.noise * self.rng.random::<f64>()
            } else {
                let mut value = profile.base
                    + profile.wave
                        * (seconds * std::f64::consts::TAU / profile.period + phase).sin()
                    + profile.drift * shift_hours
                    + profile.noise * (self.rng.random::<f64>() * 2.0 - 1.0);
                if self.rng.random::<f64>() < profile.spike_chance {
                    value += profile.spike;
                }
                value
            };
            readings.push(Reading {
                machine_id: String::new(),
                metric: name.clone(),
                ts: Some(Timestamp {
                    seconds: micros.div_euclid(1_000_000),
                    nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
                }),
                value,
            });
        }
    }

    /// Samples on time and sends every `flush_every`, until `stop`; then finishes the uplink.
    pub(super) async fn run(
        mut self,
        uplink: Uplink,
        scenario: Scenario,
        stop: CancellationToken,
    ) -> Result<(), tonic::Status> {
        let period = (1e6 / scenario.hz) as i64;
        let tick = Duration::from_micros(period as u64).max(scenario.flush_every);
        // Samples fall on multiples of the period, so timestamps never repeat across runs.
        let mut next = micros_now().div_euclid(period) * period + period;
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Spread the machines over the period, so they do not all send at once.
        let spread = self.rng.random_range(0..tick.as_micros().max(1) as u64);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_micros(spread)) => {}
            () = stop.cancelled() => return uplink.finish().await,
        }
        let mut failed = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => break,
            }
            let now = micros_now();
            let mut readings = Vec::new();
            while next <= now {
                self.sample(next, &mut readings);
                next += period;
            }
            // After a long stall, batches stay under the server's limit of 10,000 readings.
            for chunk in readings.chunks(5_000) {
                tokio::select! {
                    sent = uplink.send(self.id.clone(), chunk.to_vec()) => {
                        if let Err(status) = sent {
                            failed = Some(status);
                        }
                    }
                    // The server is not taking more; what was never handed over is not sent.
                    () = stop.cancelled() => break,
                }
            }
            if failed.is_some() || stop.is_cancelled() {
                break;
            }
        }
        let finished = uplink.finish().await;
        match failed {
            Some(_) => finished.and(Err(tonic::Status::cancelled("the uplink stopped"))),
            None => finished,
        }
    }
}

pub(super) fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}
