//! Recommendations: ways a tenant could spend less, each from its own usage, with the figures it
//! rests on and a monthly saving priced with the book in force.
//!
//! | kind | when | saving a month |
//! | --- | --- | --- |
//! | hot retention | no query read raw hot data older than N days in the last 30 days, N (rounded up to a hot retention class) below the hot retention | the hot storage of the days beyond N, less what they cost in the cold tier |
//! | sampling rate | a series' minute rollups are flat (min = max) in at least 90% of its minutes with two readings or more, over the last day | nine tenths of its readings, sampled ten times less often: their ingest and hot storage |
//! | plan | a dedicated tenant's busiest hour of the last 30 days averaged at most half the shared plan's request limit | the dedicated capacity |
//! | plan, the reverse | a shared tenant's busiest hour averaged above 80% of its limit | none: the capacity is a cost (a negative saving), for fewer refusals |
//! | idle machines | machines registered more than 7 days ago that sent nothing for 7 days | their machine-months |

use super::{
    meter::Meter,
    price_book::{MONTHS_PER_DAY, PriceBook},
    report::Plan,
};

/// The share of flat minutes above which a series is worth sampling less often.
pub const FLAT_SHARE: f64 = 0.9;
/// How much less often a flat series would be sampled.
const SAMPLING_DIVISOR: f64 = 10.0;

/// What a recommendation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Shorten the hot retention.
    HotRetention,
    /// Sample less often.
    SamplingRate,
    /// Move between the shared and dedicated plans.
    Plan,
    /// Remove machines that send nothing.
    IdleMachines,
}

/// A way to spend less.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// What it is about.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// The reasoning, with its figures.
    pub detail: String,
    /// The estimated saving a month, in USD (negative: a cost, for something else gained).
    pub monthly_saving_usd: f64,
}

/// One series' recent shape.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFacts {
    /// The machine.
    pub machine_id: String,
    /// The metric.
    pub metric: String,
    /// Readings a day.
    pub readings_per_day: f64,
    /// The share of its minute rollups with min = max.
    pub flat_share: f64,
}

/// What the platform knows of a tenant's last 30 days.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantFacts {
    /// Its plan.
    pub plan: Plan,
    /// Its hot retention, in days.
    pub hot_days: u32,
    /// Bytes one day of its readings takes in the hot tier.
    pub hot_bytes_per_day: f64,
    /// Bytes the same day takes in the cold tier.
    pub cold_bytes_per_day: f64,
    /// Readings a day.
    pub readings_per_day: f64,
    /// The age in days of the oldest raw hot data a query read; `None` when none was read.
    pub oldest_raw_read_days: Option<u32>,
    /// Its series.
    pub series: Vec<SeriesFacts>,
    /// Its peak API rate, requests a second: the mean of its busiest hour.
    pub peak_requests_per_second: f64,
    /// The shared plan's request limit, a second (a shared tenant's own).
    pub shared_requests_per_second: f64,
    /// Machines that sent nothing for 7 days.
    pub idle_machines: Vec<String>,
}

/// The tenant's recommendations, largest saving first.
pub fn recommend(facts: &TenantFacts, book: &PriceBook) -> Vec<Recommendation> {
    let mut found: Vec<Recommendation> = [
        hot_retention(facts, book),
        sampling_rate(facts, book),
        plan(facts, book),
        idle_machines(facts, book),
    ]
    .into_iter()
    .flatten()
    .collect();
    found.sort_by(|a, b| b.monthly_saving_usd.total_cmp(&a.monthly_saving_usd));
    found
}

/// USD a month for `quantity` base units of a meter held all month (or counted once).
fn monthly(book: &PriceBook, meter: Meter, quantity: f64) -> f64 {
    book.prices
        .get(&meter)
        .map_or(0.0, |p| quantity / p.base_units_per_unit * p.unit_price_usd)
}

fn hot_retention(facts: &TenantFacts, book: &PriceBook) -> Option<Recommendation> {
    let read = facts.oldest_raw_read_days.unwrap_or(0);
    let needed = mfg_common::retention::hot_class(read).unwrap_or(facts.hot_days);
    if needed >= facts.hot_days {
        return None;
    }
    let days = f64::from(facts.hot_days - needed);
    let saving = monthly(book, Meter::HotStorage, days * facts.hot_bytes_per_day)
        - monthly(book, Meter::ColdStorage, days * facts.cold_bytes_per_day);
    (saving > 0.0).then(|| Recommendation {
        kind: Kind::HotRetention,
        title: format!("Keep {needed} days hot instead of {}", facts.hot_days),
        detail: format!(
            "No query read raw hot data older than {read} days in the last 30 days. The {days} \
             days beyond {needed} take {:.1} GB hot, {:.1} GB once archived, and stay queryable \
             from rollups and the cold tier.",
            days * facts.hot_bytes_per_day / 1e9,
            days * facts.cold_bytes_per_day / 1e9,
        ),
        monthly_saving_usd: saving,
    })
}

fn sampling_rate(facts: &TenantFacts, book: &PriceBook) -> Option<Recommendation> {
    let flat: Vec<&SeriesFacts> = facts
        .series
        .iter()
        .filter(|s| s.flat_share >= FLAT_SHARE)
        .collect();
    if flat.is_empty() {
        return None;
    }
    let fewer_per_day: f64 =
        flat.iter().map(|s| s.readings_per_day).sum::<f64>() * (1.0 - 1.0 / SAMPLING_DIVISOR);
    let per_month = fewer_per_day / MONTHS_PER_DAY;
    let hot_bytes_per_reading = if facts.readings_per_day > 0.0 {
        facts.hot_bytes_per_day / facts.readings_per_day
    } else {
        0.0
    };
    let saving = monthly(book, Meter::IngestedReadings, per_month)
        + monthly(
            book,
            Meter::HotStorage,
            fewer_per_day * f64::from(facts.hot_days) * hot_bytes_per_reading,
        );
    let names: Vec<String> = flat
        .iter()
        .take(5)
        .map(|s| format!("{}/{}", s.machine_id, s.metric))
        .collect();
    Some(Recommendation {
        kind: Kind::SamplingRate,
        title: format!("Sample {} flat series ten times less often", flat.len()),
        detail: format!(
            "{} series ({}{}) did not change within at least {:.0}% of their minutes. Sampled ten \
             times less often they would send {:.0} fewer readings a day.",
            flat.len(),
            names.join(", "),
            if flat.len() > names.len() {
                ", …"
            } else {
                ""
            },
            FLAT_SHARE * 100.0,
            fewer_per_day,
        ),
        monthly_saving_usd: saving,
    })
}

fn plan(facts: &TenantFacts, book: &PriceBook) -> Option<Recommendation> {
    let (peak, limit) = (
        facts.peak_requests_per_second,
        facts.shared_requests_per_second,
    );
    match facts.plan {
        Plan::Dedicated if peak <= limit / 2.0 => Some(Recommendation {
            kind: Kind::Plan,
            title: "Move to the shared plan".to_owned(),
            detail: format!(
                "The busiest hour of the last 30 days averaged {peak:.1} requests a second, \
                 within half the shared plan's {limit:.0}: the dedicated capacity is not used."
            ),
            monthly_saving_usd: book.dedicated_monthly_usd,
        }),
        Plan::Shared if peak > 0.8 * limit => Some(Recommendation {
            kind: Kind::Plan,
            title: "Move to the dedicated plan".to_owned(),
            detail: format!(
                "The busiest hour of the last 30 days averaged {peak:.1} requests a second against \
                 the shared plan's limit of {limit:.0}: its peaks are refused. Dedicated capacity \
                 costs more and has limits of its own."
            ),
            monthly_saving_usd: -book.dedicated_monthly_usd,
        }),
        Plan::Shared | Plan::Dedicated => None,
    }
}

fn idle_machines(facts: &TenantFacts, book: &PriceBook) -> Option<Recommendation> {
    let idle = &facts.idle_machines;
    if idle.is_empty() {
        return None;
    }
    let shown: Vec<&str> = idle.iter().take(5).map(String::as_str).collect();
    Some(Recommendation {
        kind: Kind::IdleMachines,
        title: format!("Remove {} machines that send nothing", idle.len()),
        detail: format!(
            "{}{} sent no reading for 7 days.",
            shown.join(", "),
            if idle.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ),
        monthly_saving_usd: monthly(book, Meter::Machines, idle.len() as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared tenant of 30 hot days, 1 GB hot and 0.1 GB cold a day, a million readings a
    /// day, whose raw reads went back the whole 30 days, with no flat series and no idle
    /// machine: nothing to recommend.
    fn facts() -> TenantFacts {
        TenantFacts {
            plan: Plan::Shared,
            hot_days: 30,
            hot_bytes_per_day: 1e9,
            cold_bytes_per_day: 1e8,
            readings_per_day: 1e6,
            oldest_raw_read_days: Some(30),
            series: vec![SeriesFacts {
                machine_id: "press-1".to_owned(),
                metric: "temp".to_owned(),
                readings_per_day: 1e6,
                flat_share: 0.2,
            }],
            peak_requests_per_second: 10.0,
            shared_requests_per_second: 100.0,
            idle_machines: Vec::new(),
        }
    }

    fn book() -> PriceBook {
        PriceBook::default()
    }

    fn only(facts: &TenantFacts) -> Recommendation {
        let found = recommend(facts, &book());
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn a_tenant_that_uses_what_it_pays_for_gets_none() {
        assert!(recommend(&facts(), &book()).is_empty());
    }

    #[test]
    fn hot_data_nobody_reads_raw_is_priced_hot_less_cold() {
        let found = only(&TenantFacts {
            oldest_raw_read_days: Some(7),
            ..facts()
        });
        assert_eq!(found.kind, Kind::HotRetention);
        // 23 days: 23 GB hot at $0.115, 2.3 GB cold at $0.023.
        let saving = 23.0 * 0.115 - 2.3 * 0.023;
        assert!(
            (found.monthly_saving_usd - saving).abs() < 1e-9,
            "{found:?}"
        );
        assert!(found.title.contains("Keep 7 days hot instead of 30"));
    }

    #[test]
    fn flat_series_are_priced_at_nine_tenths_of_their_readings() {
        let mut flat = facts();
        flat.series[0].flat_share = 0.95;
        let found = only(&flat);
        assert_eq!(found.kind, Kind::SamplingRate);
        // 900,000 fewer readings a day: their ingest for a month, and 30 days of them hot at
        // 1,000 bytes each (1 GB a day for a million readings).
        let per_month = 900_000.0 * 730.0 / 24.0;
        let ingest = per_month / 1e6 * book().prices[&Meter::IngestedReadings].unit_price_usd;
        let hot = 900_000.0 * 30.0 * 1_000.0 / 1e9 * 0.115;
        assert!(
            (found.monthly_saving_usd - (ingest + hot)).abs() < 1e-9,
            "{found:?}"
        );
        assert!(found.detail.contains("press-1/temp"));
    }

    #[test]
    fn a_plan_follows_the_api_rate_both_ways() {
        let idle = only(&TenantFacts {
            plan: Plan::Dedicated,
            ..facts()
        });
        assert_eq!(idle.kind, Kind::Plan);
        assert!((idle.monthly_saving_usd - book().dedicated_monthly_usd).abs() < 1e-9);
        let busy = only(&TenantFacts {
            peak_requests_per_second: 90.0,
            ..facts()
        });
        assert_eq!(busy.title, "Move to the dedicated plan");
        assert!(busy.monthly_saving_usd < 0.0, "a cost, not a saving");
        assert!(
            recommend(
                &TenantFacts {
                    plan: Plan::Dedicated,
                    peak_requests_per_second: 80.0,
                    ..facts()
                },
                &book()
            )
            .is_empty(),
            "a dedicated tenant that uses its capacity"
        );
    }

    #[test]
    fn idle_machines_are_priced_per_machine_month() {
        let found = only(&TenantFacts {
            idle_machines: vec!["press-9".to_owned(), "robot-3".to_owned()],
            ..facts()
        });
        assert_eq!(found.kind, Kind::IdleMachines);
        let price = book().prices[&Meter::Machines].unit_price_usd;
        assert!((found.monthly_saving_usd - 2.0 * price).abs() < 1e-12);
        assert!(found.detail.starts_with("press-9, robot-3"));
    }

    #[test]
    fn the_largest_saving_comes_first() {
        let found = recommend(
            &TenantFacts {
                plan: Plan::Dedicated,
                idle_machines: vec!["press-9".to_owned()],
                oldest_raw_read_days: Some(7),
                ..facts()
            },
            &book(),
        );
        let kinds: Vec<Kind> = found.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Plan, Kind::HotRetention, Kind::IdleMachines]);
    }
}
