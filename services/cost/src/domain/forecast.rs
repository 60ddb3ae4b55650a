//! A tenant's cost for the month: what it has cost so far and a forecast of the whole month
//! with a band, from its daily cost.
//!
//! The method, as Kubecost's forecasts and AWS Cost Explorer's do, is a trend with a
//! prediction interval:
//! - the days of the month that have ended are fitted by least squares: a linear trend (cost =
//!   a + b·day) once two weeks of days show one (a slope of more than three standard errors),
//!   else their mean, so that a steady tenant's noise is not extrapolated as a trend;
//! - the forecast is the cost so far, plus the fit's prediction of the rest of today and of
//!   every day left;
//! - the band is the forecast ± 1.645 standard deviations of that prediction (a 90% interval
//!   under normal residuals): the residuals' variance times the days left plus the variance of
//!   the fitted line over them. Cost never goes down, so the low end is at least the cost so
//!   far. With fewer than two days ended there is no spread to measure: the band runs from the
//!   cost so far to twice the forecast. Before the first day has ended, today's rate so far
//!   stands for a day.

/// How many standard deviations the band spans on each side: a 90% interval.
pub const Z_90: f64 = 1.645;

/// The days that must have ended before a trend is fitted: two weeks.
const TREND_AFTER_DAYS: usize = 14;

/// What a month has cost so far, in USD.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthSoFar {
    /// The cost of each day of the month that has ended, first day first.
    pub days: Vec<f64>,
    /// The cost of today so far.
    pub today: f64,
    /// How much of today has passed, from 0 to 1.
    pub today_elapsed: f64,
    /// The days in the month.
    pub days_in_month: u32,
}

/// A forecast of the month, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The cost so far.
    pub month_to_date: f64,
    /// The forecast for the whole month.
    pub expected: f64,
    /// The low end of the band.
    pub low: f64,
    /// The high end of the band.
    pub high: f64,
}

/// Forecasts the month from its days so far.
pub fn forecast(month: &MonthSoFar) -> Forecast {
    let month_to_date = month.days.iter().sum::<f64>() + month.today;
    // Before a day has ended, today's rate so far stands for a day.
    let fit = if month.days.is_empty() && month.today_elapsed > 0.0 {
        Fit::of(&[month.today / month.today_elapsed])
    } else {
        Fit::of(&month.days)
    };
    // The rest of today (day index k, 0-based) and the days after it.
    let k = month.days.len();
    let left = (1.0 - month.today_elapsed).clamp(0.0, 1.0);
    let future: Vec<(f64, f64)> = std::iter::once((k as f64, left))
        .chain(((k + 1)..month.days_in_month as usize).map(|d| (d as f64, 1.0)))
        .filter(|&(_, weight)| weight > 0.0 && k < month.days_in_month as usize)
        .collect();
    let expected = month_to_date
        + future
            .iter()
            .map(|&(day, weight)| weight * fit.at(day).max(0.0))
            .sum::<f64>();
    let (low, high) = match fit.spread(&future) {
        Some(sd) => (expected - Z_90 * sd, expected + Z_90 * sd),
        None => (month_to_date, 2.0 * expected),
    };
    Forecast {
        month_to_date,
        expected,
        low: low.max(month_to_date),
        high: high.max(expected),
    }
}

/// A least-squares fit of daily cost: a line, or a constant.
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// Days fitted.
    n: f64,
    /// The mean day index.
    mean_day: f64,
    /// The sum of squared deviations of the day index (zero for a constant fit).
    sxx: f64,
    /// The intercept at the mean day.
    level: f64,
    /// The slope per day.
    slope: f64,
    /// The residuals' variance, if there are degrees of freedom left.
    variance: Option<f64>,
}

impl Fit {
    /// The line through `days` when two weeks of them show a trend (a slope of more than three
    /// standard errors), else their mean.
    fn of(days: &[f64]) -> Self {
        let constant = Self::constant(days);
        if days.len() < TREND_AFTER_DAYS {
            return constant;
        }
        let sxx: f64 = (0..days.len())
            .map(|d| (d as f64 - constant.mean_day).powi(2))
            .sum();
        let sxy: f64 = days
            .iter()
            .enumerate()
            .map(|(d, y)| (d as f64 - constant.mean_day) * (y - constant.level))
            .sum();
        let line = Self {
            sxx,
            slope: sxy / sxx,
            ..constant
        }
        .with_variance(days, 2.0);
        let slope_error = line.variance.map_or(0.0, |v| (v / sxx).sqrt());
        if line.slope.abs() > 3.0 * slope_error {
            line
        } else {
            constant
        }
    }

    /// The mean of `days`.
    fn constant(days: &[f64]) -> Self {
        let n = days.len() as f64;
        Self {
            n,
            mean_day: (n - 1.0).max(0.0) / 2.0,
            sxx: 0.0,
            level: if days.is_empty() {
                0.0
            } else {
                days.iter().sum::<f64>() / n
            },
            slope: 0.0,
            variance: None,
        }
        .with_variance(days, 1.0)
    }

    /// The fit with the variance of its residuals over `days`, for `parameters` fitted.
    fn with_variance(self, days: &[f64], parameters: f64) -> Self {
        let residuals: f64 = days
            .iter()
            .enumerate()
            .map(|(d, y)| (y - self.at(d as f64)).powi(2))
            .sum();
        Self {
            variance: (self.n > parameters).then(|| residuals / (self.n - parameters)),
            ..self
        }
    }

    /// The fitted cost of a day.
    fn at(&self, day: f64) -> f64 {
        self.level + self.slope * (day - self.mean_day)
    }

    /// The standard deviation of the summed prediction over `(day, weight)`: the residuals'
    /// variance for each (weighted) day, plus the variance of the fitted line summed over them.
    fn spread(&self, future: &[(f64, f64)]) -> Option<f64> {
        let variance = self.variance?;
        let weight: f64 = future.iter().map(|(_, w)| w).sum();
        let noise: f64 = future.iter().map(|(_, w)| w * w).sum();
        let mut line = weight * weight / self.n;
        if self.sxx > 0.0 {
            let moment: f64 = future.iter().map(|(d, w)| w * (d - self.mean_day)).sum();
            line += moment * moment / self.sxx;
        }
        Some((variance * (noise + line)).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise in [-1, 1] (a linear congruential sequence), so tests need no
    /// random generator.
    fn noise(seed: u64) -> impl Iterator<Item = f64> {
        std::iter::successors(Some(seed), |s| {
            Some(s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
        })
        .skip(1)
        .map(|s| ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
    }

    /// A month of 30 days costing `daily` each, give or take `jitter` (a fraction), seen at
    /// noon of day `today` (0-based).
    fn month(daily: f64, jitter: f64, today: usize, seed: u64) -> (MonthSoFar, f64) {
        let costs: Vec<f64> = noise(seed)
            .take(30)
            .map(|n| daily * (1.0 + jitter * n))
            .collect();
        let seen = MonthSoFar {
            days: costs[..today].to_vec(),
            today: costs[today] / 2.0,
            today_elapsed: 0.5,
            days_in_month: 30,
        };
        (seen, costs.iter().sum())
    }

    #[test]
    fn a_steady_tenants_forecast_is_within_2_percent_of_its_month() {
        // Steady: each day within 2% of $100. The 90% band holds the month in most runs.
        let (mut runs, mut covered) = (0, 0);
        for today in [3, 10, 20, 29] {
            for seed in 1..50 {
                let (seen, truth) = month(100.0, 0.02, today, seed);
                let forecast = forecast(&seen);
                let error = (forecast.expected - truth).abs() / truth;
                assert!(
                    error < 0.02,
                    "day {today}, seed {seed}: {forecast:?} for {truth}"
                );
                runs += 1;
                covered += usize::from(forecast.low <= truth && truth <= forecast.high);
            }
        }
        assert!(
            covered * 100 >= runs * 80,
            "{covered} of {runs} in the band"
        );
    }

    #[test]
    fn the_band_widens_with_noise_and_narrows_as_the_month_ends() {
        let width = |jitter: f64, today: usize| {
            let f = forecast(&month(100.0, jitter, today, 7).0);
            f.high - f.low
        };
        assert!(width(0.01, 10) < width(0.1, 10));
        assert!(width(0.1, 10) < width(0.3, 10));
        assert!(width(0.1, 25) < width(0.1, 10));
    }

    #[test]
    fn a_trend_is_followed() {
        // Cost growing by $10 a day from $100: the month is 30 × 100 + 10 × (0 + … + 29).
        let costs: Vec<f64> = (0..30).map(|d| 100.0 + 10.0 * f64::from(d)).collect();
        let seen = MonthSoFar {
            days: costs[..14].to_vec(),
            today: 0.0,
            today_elapsed: 0.0,
            days_in_month: 30,
        };
        let forecast = forecast(&seen);
        assert!((forecast.expected - 7_350.0).abs() < 1e-6, "{forecast:?}");
        assert!(
            (forecast.high - forecast.low).abs() < 1e-6,
            "an exact line has no spread"
        );
    }

    #[test]
    fn the_first_day_has_a_wide_band_and_the_last_none() {
        let first = forecast(&MonthSoFar {
            days: Vec::new(),
            today: 10.0,
            today_elapsed: 0.5,
            days_in_month: 30,
        });
        assert_eq!((first.month_to_date, first.low), (10.0, 10.0));
        assert!(first.high >= 2.0 * first.expected - 1e-9);
        let (seen, truth) = month(100.0, 0.2, 29, 3);
        let last = forecast(&MonthSoFar {
            today: seen.today * 2.0,
            today_elapsed: 1.0,
            ..seen
        });
        assert!((last.expected - truth).abs() < 1e-9);
        assert!((last.high - last.low).abs() < 1e-9);
    }
}
