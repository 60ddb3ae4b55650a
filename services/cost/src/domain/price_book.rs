//! The price book: what each metered resource costs, the shared costs of the platform, the
//! dedicated plan's capacity, and how shared costs are split; and its history, so that usage is
//! costed with the prices in force when it happened.
//!
//! The default prices are public list prices (AWS, us-east-1, on-demand, as published in
//! 2025), or compute at such a price behind a measured amount of work:
//!
//! | meter | unit | default | source |
//! | --- | --- | --- | --- |
//! | hot storage | GB-month | $0.115 | Amazon RDS for PostgreSQL, gp3 storage, Single-AZ |
//! | warm storage | GB-month | $0.115 | the same: rollups live in PostgreSQL too |
//! | cold storage | GB-month | $0.023 | Amazon S3 Standard, first 50 TB (Standard-IA: $0.0125) |
//! | ingested readings | million readings | $0.000056 | 5 vCPU-seconds per million (2 vCPU ingest 0.4M readings/s end to end with PostgreSQL, docs/BENCHMARKS.md) at AWS Fargate's $0.04048 per vCPU-hour |
//! | query points | million points | $0.0000023 | 0.2 vCPU-seconds per million points scanned (`mfg bench query`: ~70,000 points of a 30-day query in ~10 ms) at the same vCPU-hour |
//! | alert evaluations | million evaluations | $0.000011 | 1 vCPU-second per million evaluations, at the same vCPU-hour |
//! | API requests | million requests | $1.00 | Amazon API Gateway, HTTP APIs, first 300 million |
//! | machines | machine-month | $0.0035 | AWS IoT Core connectivity, $0.08 per million connection-minutes × 43,800 minutes |
//!
//! The dedicated plan's isolated API capacity is one AWS Fargate task of 2 vCPU and 4 GB
//! running all month: 730 h × (2 × $0.04048 + 4 × $0.004445) = $72.08. Shared platform costs
//! are the operator's to set (the control plane, network, operations); the default, $250 a
//! month, is a placeholder of that order: a db.t4g.medium Multi-AZ database ($0.130/h, $95), four
//! 0.25-vCPU service tasks ($37) and a load balancer ($16 plus capacity units).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::meter::Meter;

/// Hours in a billing month, as AWS prices a GB-month or a machine-month.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// A day as a fraction of a billing month.
pub const MONTHS_PER_DAY: f64 = 24.0 / HOURS_PER_MONTH;

/// AWS Fargate, Linux/x86, us-east-1: per vCPU-hour.
const VCPU_HOUR_USD: f64 = 0.040_48;

/// How shared costs are split between tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Equally between the tenants of the period.
    Even,
    /// In proportion to each tenant's direct cost (Kubecost's "weighted").
    Proportional,
}

/// The price of one meter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Price {
    /// The unit the price is for, e.g. `million readings`.
    pub unit: String,
    /// How many of the meter's base units one price unit holds.
    pub base_units_per_unit: f64,
    /// USD per unit.
    pub unit_price_usd: f64,
}

impl Price {
    fn new(unit: &str, base_units_per_unit: f64, unit_price_usd: f64) -> Self {
        Self {
            unit: unit.to_owned(),
            base_units_per_unit,
            unit_price_usd,
        }
    }
}

/// The prices and the shared costs in force from one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PriceBook {
    /// One price per meter.
    pub prices: BTreeMap<Meter, Price>,
    /// The platform's shared costs per month, in USD.
    pub shared_monthly_usd: f64,
    /// The dedicated plan's isolated API capacity per month, in USD.
    pub dedicated_monthly_usd: f64,
    /// How shared costs are split.
    pub split: Split,
    /// The platform's monthly cost target, in USD; zero for none.
    #[serde(default)]
    pub platform_monthly_target_usd: f64,
}

impl Default for PriceBook {
    fn default() -> Self {
        let compute = |vcpu_seconds: f64| vcpu_seconds / 3_600.0 * VCPU_HOUR_USD;
        let gb_month = 1e9;
        let prices = [
            (
                Meter::IngestedReadings,
                Price::new("million readings", 1e6, compute(5.0)),
            ),
            (Meter::HotStorage, Price::new("GB-month", gb_month, 0.115)),
            (Meter::WarmStorage, Price::new("GB-month", gb_month, 0.115)),
            (Meter::ColdStorage, Price::new("GB-month", gb_month, 0.023)),
            (Meter::ApiRequests, Price::new("million requests", 1e6, 1.0)),
            (
                Meter::QueryPoints,
                Price::new("million points", 1e6, compute(0.2)),
            ),
            (
                Meter::AlertEvaluations,
                Price::new("million evaluations", 1e6, compute(1.0)),
            ),
            (
                Meter::Machines,
                Price::new("machine-month", 1.0, 0.08 * 43_800.0 / 1e6),
            ),
        ];
        Self {
            prices: prices.into_iter().collect(),
            shared_monthly_usd: 250.0,
            dedicated_monthly_usd: HOURS_PER_MONTH * (2.0 * VCPU_HOUR_USD + 4.0 * 0.004_445),
            split: Split::Proportional,
            platform_monthly_target_usd: 0.0,
        }
    }
}

/// Every price book with the moment it came into force, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceHistory {
    books: Vec<(DateTime<Utc>, PriceBook)>,
}

impl PriceHistory {
    /// A history of books given with the moments they came into force, in any order; the
    /// default book from the beginning of time until the first.
    pub fn of(mut books: Vec<(DateTime<Utc>, PriceBook)>) -> Self {
        books.sort_by_key(|(from, _)| *from);
        let mut history = Self::new(PriceBook::default());
        for (from, book) in books {
            history.change(from, book);
        }
        history
    }

    /// A history of one book, in force from the beginning of time.
    pub fn new(book: PriceBook) -> Self {
        Self {
            books: vec![(DateTime::<Utc>::MIN_UTC, book)],
        }
    }

    /// Records a book in force from `from` on; an earlier `from` than the latest book's is
    /// taken as the latest's (the past is not rewritten).
    pub fn change(&mut self, from: DateTime<Utc>, book: PriceBook) {
        let latest = self.books.last().map(|(at, _)| *at);
        let from = latest.map_or(from, |latest| from.max(latest));
        if latest == Some(from) {
            self.books.pop();
        }
        self.books.push((from, book));
    }

    /// The book in force at `at`.
    pub fn at(&self, at: DateTime<Utc>) -> &PriceBook {
        self.in_force(at).1
    }

    /// The book in force at `at`, with the moment it came into force (`None` for the default
    /// book, in force until the first change).
    pub fn in_force(&self, at: DateTime<Utc>) -> (Option<DateTime<Utc>>, &PriceBook) {
        let after = self.books.partition_point(|(from, _)| *from <= at);
        let (from, book) = &self.books[after.saturating_sub(1)];
        ((*from != DateTime::<Utc>::MIN_UTC).then_some(*from), book)
    }

    /// The latest book, with the moment it came into force (`None` for the default book).
    pub fn latest(&self) -> (Option<DateTime<Utc>>, &PriceBook) {
        self.in_force(DateTime::<Utc>::MAX_UTC)
    }

    /// The books in force over `[start, end)`, each with the part of it that it covers.
    pub fn over(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>, &PriceBook)> {
        let books = &self.books;
        books
            .iter()
            .enumerate()
            .filter_map(move |(i, (from, book))| {
                let until = books.get(i + 1).map_or(DateTime::<Utc>::MAX_UTC, |b| b.0);
                let (s, e) = (start.max(*from), end.min(until));
                (s < e).then_some((s, e, book))
            })
    }
}

/// The hours from `start` to `end`, as a fraction of a billing month.
pub fn months(start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    (end - start).num_microseconds().unwrap_or(0) as f64 / 3.6e9 / HOURS_PER_MONTH
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_defaults_price_every_meter() {
        let book = PriceBook::default();
        assert_eq!(book.prices.len(), Meter::ALL.len());
        let dedicated = book.dedicated_monthly_usd;
        assert!((dedicated - 72.08).abs() < 0.01, "{dedicated}");
        let readings = &book.prices[&Meter::IngestedReadings];
        assert!((readings.unit_price_usd - 0.000_056).abs() < 1e-6);
    }

    #[test]
    fn a_moment_is_costed_with_the_book_then_in_force() {
        let cheap = PriceBook {
            shared_monthly_usd: 100.0,
            ..PriceBook::default()
        };
        let dear = PriceBook {
            shared_monthly_usd: 200.0,
            ..PriceBook::default()
        };
        let mut history = PriceHistory::new(cheap.clone());
        history.change(day(10), dear.clone());
        assert_eq!(history.at(day(9)), &cheap);
        assert_eq!(history.at(day(10)), &dear);
        let parts: Vec<_> = history
            .over(day(1), day(20))
            .map(|(s, e, b)| (s, e, b.shared_monthly_usd))
            .collect();
        assert_eq!(parts, [(day(1), day(10), 100.0), (day(10), day(20), 200.0)]);
        // The past is not rewritten: a change dated before the latest takes effect with it.
        history.change(day(5), cheap.clone());
        assert_eq!(history.at(day(9)), &cheap);
        assert_eq!(history.at(day(12)), &cheap);
    }

    #[test]
    fn a_month_is_730_hours() {
        assert!((months(day(1), day(1) + chrono::Duration::hours(73)) - 0.1).abs() < 1e-12);
    }
}
