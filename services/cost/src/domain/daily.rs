//! A tenant's cost per day, for charts, adding up to its report's total to the cent.
//!
//! The report's direct cost is split between the days in proportion to each day's usage
//! priced; its shared share and dedicated capacity, which accrue with time, in proportion to
//! the part of each day inside the period. Each split is in whole cents that add up
//! ([`Cents::split`]), so the days add up to the report.

use chrono::{DateTime, Duration, DurationRound as _, Utc};

use super::{
    money::Cents,
    price_book::PriceHistory,
    report::{TenantCost, Usage, lines},
};

/// One day of a tenant's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCost {
    /// The start of the day, or of the period on its first day.
    pub start: DateTime<Utc>,
    /// The direct cost of the day's usage.
    pub direct: Cents,
    /// The direct cost and the day's part of the shared share and the dedicated capacity.
    pub total: Cents,
}

/// `report`'s cost over `[start, end)` per day (UTC), from the tenant's `usage` in the period.
pub fn daily(
    report: &TenantCost,
    usage: &[Usage],
    prices: &PriceHistory,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<DailyCost> {
    let days = days(start, end);
    let priced: Vec<f64> = days
        .iter()
        .map(|&(s, e)| {
            lines(
                usage.iter().filter(|u| u.tenant == report.tenant),
                prices,
                s,
                e,
            )
            .iter()
            .map(|line| line.quantity * line.unit_price_usd)
            .sum()
        })
        .collect();
    let lengths: Vec<f64> = days
        .iter()
        .map(|&(s, e)| (e - s).num_seconds() as f64)
        .collect();
    let direct = report.direct.split(&priced);
    let fixed = (report.shared + report.dedicated).split(&lengths);
    days.iter()
        .zip(direct.into_iter().zip(fixed))
        .map(|(&(start, _), (direct, fixed))| DailyCost {
            start,
            direct,
            total: direct + fixed,
        })
        .collect()
}

/// The days of `[start, end)`, the first and last cut to the period.
fn days(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut days = Vec::new();
    let mut day = start.duration_trunc(Duration::days(1)).unwrap_or(start);
    while day < end {
        let next = day + Duration::days(1);
        days.push((day.max(start), next.min(end)));
        day = next;
    }
    days
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        meter::Meter,
        price_book::PriceBook,
        report::{Plan, summarize},
    };

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn the_days_add_up_to_the_report_and_follow_the_usage() {
        let tenant = Uuid::from_u128(1);
        let mut book = PriceBook {
            shared_monthly_usd: 1_000.0,
            dedicated_monthly_usd: 100.0,
            ..PriceBook::default()
        };
        book.prices
            .get_mut(&Meter::ApiRequests)
            .unwrap()
            .unit_price_usd = 10.0;
        let prices = PriceHistory::new(book);
        // Three million requests on the 2nd, one million on the 3rd, nothing on the 4th.
        let usage = [(2, 3e6), (3, 1e6)].map(|(day, quantity)| Usage {
            tenant,
            meter: Meter::ApiRequests,
            start: at(day, 0),
            end: at(day + 1, 0),
            quantity,
        });
        // From noon on the 2nd to noon on the 4th: half a day, a day, half a day.
        let (start, end) = (at(2, 12), at(4, 12));
        let summary = summarize(&[(tenant, Plan::Dedicated)], &usage, &prices, start, end);
        let report = &summary.tenants[0];
        let days = daily(report, &usage, &prices, start, end);
        let starts: Vec<_> = days.iter().map(|d| d.start).collect();
        assert_eq!(starts, [at(2, 12), at(3, 0), at(4, 0)]);
        // $15 of the 2nd's second half, $10 of the 3rd.
        let direct: Vec<_> = days.iter().map(|d| d.direct).collect();
        assert_eq!(direct, [Cents(1_500), Cents(1_000), Cents(0)]);
        assert_eq!(report.direct, Cents(2_500));
        let total: Cents = days.iter().map(|d| d.total).sum();
        assert_eq!(total, report.total);
        // The fixed costs by length: a quarter, a half, a quarter.
        let fixed = report.shared + report.dedicated;
        let middle = days[1].total - days[1].direct;
        assert!((middle.0 - fixed.0 / 2).abs() <= 1, "{middle} of {fixed}");
    }
}
