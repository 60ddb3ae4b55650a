//! Cost reports: each tenant's usage priced line by line, its share of the shared costs and its
//! dedicated capacity, and the platform's total, in whole cents that add up.
//!
//! The arithmetic, in order:
//! 1. A usage record is priced with the book in force at its start: a count as `quantity /
//!    base units per unit × price`, a level as the same times the months it was held.
//! 2. A tenant's line of a meter is the exact sum of its records' amounts, rounded to the cent
//!    once; its direct cost is the sum of its lines.
//! 3. The shared costs of the period (each book's monthly amount for the months it was in force)
//!    are rounded to the cent once and split between the tenants in whole cents
//!    ([`Cents::split`]): evenly, or in proportion to direct cost.
//! 4. A tenant on the dedicated plan adds its capacity for the months of the period.
//! 5. The platform's total is its tenants' direct costs, the shared costs and the dedicated
//!    capacity, summed apart from the tenants' totals; the two are equal to the cent.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    meter::{Accrual, Meter},
    money::Cents,
    price_book::{PriceBook, PriceHistory, Split, months},
};

/// A tenant's plan, as far as cost goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Shared resources.
    Shared,
    /// Shared resources and an isolated API capacity of its own.
    Dedicated,
}

/// Some usage of one meter by one tenant over an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The tenant.
    pub tenant: Uuid,
    /// The meter.
    pub meter: Meter,
    /// The start of the interval.
    pub start: DateTime<Utc>,
    /// The end of the interval.
    pub end: DateTime<Utc>,
    /// How much, in the meter's base unit: a count, or the level held over the interval.
    pub quantity: f64,
}

/// One meter's line of a tenant's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The meter.
    pub meter: Meter,
    /// How much was used, in the price's unit (for a level, per month held).
    pub quantity: f64,
    /// The price's unit.
    pub unit: String,
    /// The amount over the quantity: the price, or the mean of the prices in force.
    pub unit_price_usd: f64,
    /// The line's amount.
    pub amount: Cents,
}

/// One tenant's cost over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantCost {
    /// The tenant.
    pub tenant: Uuid,
    /// Its lines, by meter.
    pub lines: Vec<Line>,
    /// The sum of its lines.
    pub direct: Cents,
    /// Its share of the shared costs.
    pub shared: Cents,
    /// Its dedicated capacity (zero on the shared plan).
    pub dedicated: Cents,
    /// direct + shared + dedicated.
    pub total: Cents,
}

impl TenantCost {
    /// The report of a tenant that costs nothing.
    pub fn nothing(tenant: Uuid) -> Self {
        Self {
            tenant,
            lines: Vec::new(),
            direct: Cents::default(),
            shared: Cents::default(),
            dedicated: Cents::default(),
            total: Cents::default(),
        }
    }
}

/// Every tenant's cost over a period, and the platform's.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// One report per tenant, in the order given.
    pub tenants: Vec<TenantCost>,
    /// The shared costs of the period.
    pub shared: Cents,
    /// How they were split (the book in force at the period's end).
    pub split: Split,
    /// The platform's total.
    pub total: Cents,
}

/// Prices the usage of `tenants` over `[start, end)`. Usage of other tenants, and usage
/// outside the period, is ignored; a record that straddles an end counts in the proportion of
/// it inside.
pub fn summarize(
    tenants: &[(Uuid, Plan)],
    usage: &[Usage],
    prices: &PriceHistory,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Summary {
    let mut by_tenant: HashMap<Uuid, Vec<&Usage>> = HashMap::new();
    for record in usage {
        by_tenant.entry(record.tenant).or_default().push(record);
    }
    let mut reports: Vec<TenantCost> = tenants
        .iter()
        .map(|&(tenant, plan)| {
            let records = by_tenant.get(&tenant).map_or(&[][..], Vec::as_slice);
            let lines = lines(records.iter().copied(), prices, start, end);
            let direct = lines.iter().map(|l| l.amount).sum();
            let dedicated = match plan {
                Plan::Shared => Cents::default(),
                Plan::Dedicated => monthly(prices, start, end, |b| b.dedicated_monthly_usd),
            };
            TenantCost {
                tenant,
                lines,
                direct,
                shared: Cents::default(),
                dedicated,
                total: Cents::default(),
            }
        })
        .collect();
    let shared = monthly(prices, start, end, |b| b.shared_monthly_usd);
    let split = prices.at(end).split;
    let weights: Vec<f64> = match split {
        Split::Even => vec![1.0; reports.len()],
        Split::Proportional => reports.iter().map(|r| r.direct.0 as f64).collect(),
    };
    for (report, share) in reports.iter_mut().zip(shared.split(&weights)) {
        report.shared = share;
        report.total = report.direct + report.shared + report.dedicated;
    }
    let total = reports.iter().map(|r| r.direct).sum::<Cents>()
        + shared
        + reports.iter().map(|r| r.dedicated).sum::<Cents>();
    Summary {
        tenants: reports,
        shared,
        split,
        total,
    }
}

/// The lines of one tenant's `usage` over `[start, end)`, one per meter it used, by meter.
pub fn lines<'a>(
    usage: impl IntoIterator<Item = &'a Usage>,
    prices: &PriceHistory,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<Line> {
    // Per meter: (units, exact USD).
    let mut sums: BTreeMap<Meter, (f64, f64)> = BTreeMap::new();
    for record in usage {
        let book = prices.at(record.start);
        let Some(price) = book.prices.get(&record.meter) else {
            continue;
        };
        let units = billable(record, start, end) / price.base_units_per_unit;
        let sum = sums.entry(record.meter).or_default();
        sum.0 += units;
        sum.1 += units * price.unit_price_usd;
    }
    let book = prices.at(end);
    sums.into_iter()
        .map(|(meter, (units, usd))| Line {
            meter,
            quantity: units,
            unit: book
                .prices
                .get(&meter)
                .map_or_else(String::new, |p| p.unit.clone()),
            unit_price_usd: if units > 0.0 { usd / units } else { 0.0 },
            amount: Cents::round(usd),
        })
        .collect()
}

/// A record's usage inside `[start, end)`, in its meter's base units: a count in proportion to
/// the part of its interval inside (all of it for an instant inside), a level times the months
/// it was held inside.
fn billable(record: &Usage, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    let inside = months(record.start.max(start), record.end.min(end)).max(0.0);
    match record.meter.accrual() {
        Accrual::Level => record.quantity * inside,
        Accrual::Count if record.start < record.end => {
            record.quantity * inside / months(record.start, record.end)
        }
        Accrual::Count if (start..end).contains(&record.start) => record.quantity,
        Accrual::Count => 0.0,
    }
}

/// A monthly amount of the books in force over `[start, end)`, for the months each was in
/// force, rounded to the cent once.
fn monthly(
    prices: &PriceHistory,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    amount: impl Fn(&PriceBook) -> f64,
) -> Cents {
    Cents::round(
        prices
            .over(start, end)
            .map(|(s, e, book)| amount(book) * months(s, e))
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone as _};
    use proptest::prelude::*;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).unwrap()
    }

    fn tenant(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn usage(n: u128, meter: Meter, from: u32, to: u32, quantity: f64) -> Usage {
        Usage {
            tenant: tenant(n),
            meter,
            start: day(from),
            end: day(to),
            quantity,
        }
    }

    /// A book whose prices are round: $1 a million readings, $0.10 a GB-month hot, $1,000 of
    /// shared costs and $100 of dedicated capacity a month.
    fn book(split: Split) -> PriceBook {
        let mut book = PriceBook {
            shared_monthly_usd: 1_000.0,
            dedicated_monthly_usd: 100.0,
            split,
            ..PriceBook::default()
        };
        book.prices
            .get_mut(&Meter::IngestedReadings)
            .unwrap()
            .unit_price_usd = 1.0;
        book.prices
            .get_mut(&Meter::HotStorage)
            .unwrap()
            .unit_price_usd = 0.10;
        book
    }

    #[test]
    fn a_tenant_pays_its_lines_its_share_and_its_capacity() {
        // 73 hours: a tenth of a month.
        let (start, end) = (day(1), day(1) + Duration::hours(73));
        let usage = [
            Usage {
                end,
                ..usage(1, Meter::IngestedReadings, 1, 1, 30e6)
            },
            // 500 GB held for the whole period: 50 GB-months.
            Usage {
                end,
                ..usage(1, Meter::HotStorage, 1, 1, 500e9)
            },
            Usage {
                end,
                ..usage(2, Meter::IngestedReadings, 1, 1, 10e6)
            },
        ];
        let prices = PriceHistory::new(book(Split::Proportional));
        let tenants = [(tenant(1), Plan::Shared), (tenant(2), Plan::Dedicated)];
        let summary = summarize(&tenants, &usage, &prices, start, end);
        let [one, two] = &summary.tenants[..] else {
            panic!("two reports");
        };
        assert_eq!(one.lines.len(), 2);
        assert_eq!(one.lines[0].amount, Cents(3_000), "30 million readings");
        assert_eq!(one.lines[1].amount, Cents(500), "50 GB-months");
        assert!((one.lines[1].quantity - 50.0).abs() < 1e-9);
        assert_eq!(one.direct, Cents(3_500));
        assert_eq!(two.direct, Cents(1_000));
        // $100 of shared costs for a tenth of a month, split 35:10.
        assert_eq!(summary.shared, Cents(10_000));
        assert_eq!((one.shared, two.shared), (Cents(7_778), Cents(2_222)));
        assert_eq!((one.dedicated, two.dedicated), (Cents(0), Cents(1_000)));
        assert_eq!(two.total, Cents(1_000 + 2_222 + 1_000));
        assert_eq!(summary.total, Cents(3_500 + 1_000 + 10_000 + 1_000));
    }

    #[test]
    fn usage_is_costed_with_the_prices_in_force_when_it_happened() {
        let mut prices = PriceHistory::new(book(Split::Even));
        let mut dearer = book(Split::Even);
        dearer
            .prices
            .get_mut(&Meter::IngestedReadings)
            .unwrap()
            .unit_price_usd = 3.0;
        prices.change(day(16), dearer);
        // A million readings a day for the month: 15 days at $1, 15 at $3.
        let usage: Vec<Usage> = (1..=30)
            .map(|d| Usage {
                end: day(d) + Duration::days(1),
                ..usage(1, Meter::IngestedReadings, d, d, 1e6)
            })
            .collect();
        let month = summarize(
            &[(tenant(1), Plan::Shared)],
            &usage,
            &prices,
            day(1),
            day(30) + Duration::days(1),
        );
        let line = &month.tenants[0].lines[0];
        assert_eq!(line.amount, Cents(6_000));
        assert!((line.unit_price_usd - 2.0).abs() < 1e-9, "the mean price");
        // Half a day of a record counts half of it.
        let half = summarize(
            &[(tenant(1), Plan::Shared)],
            &usage,
            &prices,
            day(1),
            day(1) + Duration::hours(12),
        );
        assert_eq!(half.tenants[0].lines[0].amount, Cents(50));
    }

    #[test]
    fn an_even_split_differs_by_a_cent_at_most() {
        let prices = PriceHistory::new(book(Split::Even));
        let tenants: Vec<(Uuid, Plan)> = (0..3).map(|n| (tenant(n), Plan::Shared)).collect();
        // $1,000 over 73 h = $100.00 in three: 33.34, 33.33, 33.33.
        let summary = summarize(&tenants, &[], &prices, day(1), day(1) + Duration::hours(73));
        let shares: Vec<Cents> = summary.tenants.iter().map(|t| t.shared).collect();
        assert_eq!(shares, [Cents(3_334), Cents(3_333), Cents(3_333)]);
        assert_eq!(summary.total, Cents(10_000));
    }

    fn any_usage() -> impl Strategy<Value = Vec<Usage>> {
        let meter = proptest::sample::select(Meter::ALL.to_vec());
        proptest::collection::vec((0u128..6, meter, 1u32..29, 0u32..48, 0.0f64..1e12), 0..60)
            .prop_map(|records| {
                records
                    .into_iter()
                    .map(|(n, meter, d, hours, quantity)| Usage {
                        tenant: tenant(n),
                        meter,
                        start: day(d),
                        end: day(d) + Duration::hours(i64::from(hours)),
                        quantity,
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn the_tenants_add_up_to_the_platform_to_the_cent(
            usage in any_usage(),
            plans in proptest::collection::vec(any::<bool>(), 1..6),
            even in any::<bool>(),
            change_on in 2u32..28,
            shared in 0.0f64..100_000.0,
        ) {
            let split = if even { Split::Even } else { Split::Proportional };
            let mut prices = PriceHistory::new(book(split));
            prices.change(day(change_on), PriceBook { shared_monthly_usd: shared, ..book(split) });
            let tenants: Vec<(Uuid, Plan)> = plans
                .iter()
                .enumerate()
                .map(|(n, &dedicated)| {
                    (tenant(n as u128), if dedicated { Plan::Dedicated } else { Plan::Shared })
                })
                .collect();
            let summary = summarize(&tenants, &usage, &prices, day(1), day(30));
            let totals: Cents = summary.tenants.iter().map(|t| t.total).sum();
            prop_assert_eq!(totals, summary.total);
            let shares: Cents = summary.tenants.iter().map(|t| t.shared).sum();
            prop_assert_eq!(shares, summary.shared);
            for report in &summary.tenants {
                prop_assert_eq!(report.direct, report.lines.iter().map(|l| l.amount).sum::<Cents>());
                prop_assert_eq!(report.total, report.direct + report.shared + report.dedicated);
            }
            let direct: f64 = summary.tenants.iter().map(|t| t.direct.0 as f64).sum();
            for report in &summary.tenants {
                let exact = match split {
                    Split::Even => summary.shared.0 as f64 / tenants.len() as f64,
                    Split::Proportional if direct > 0.0 => {
                        summary.shared.0 as f64 * report.direct.0 as f64 / direct
                    }
                    Split::Proportional => summary.shared.0 as f64 / tenants.len() as f64,
                };
                prop_assert!((report.shared.0 as f64 - exact).abs() < 1.0 + 1e-6);
            }
        }
    }
}
