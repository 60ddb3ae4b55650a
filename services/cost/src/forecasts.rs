//! Each tenant's forecast of the current month, and the platform's ([`forecast`] over their
//! daily cost).
//!
//! The days of the month that have ended are costed one by one, as reports of a day (so a
//! day's shared costs are split as that day's usage says), and kept: a day is settled once it
//! ended more than [`SETTLED`] ago (later usage would come from a flush retried that long),
//! and is not costed again. Today's cost so far is the month to date less the ended days. So
//! a summary of a thousand tenants costs the month so far, and at most the days not settled.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{
    costing::{Costed, Costing, Period},
    domain::forecast::{Forecast, MonthSoFar, forecast},
    error::Result,
    store::buckets::Grain,
};

/// How long after its end a day's cost is taken as final.
pub const SETTLED: Duration = Duration::hours(1);

/// The forecasts of the month.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthForecasts {
    /// The start of the month.
    pub month_start: DateTime<Utc>,
    /// Each tenant's that lived in the month.
    pub tenants: HashMap<Uuid, Forecast>,
    /// The platform's.
    pub platform: Forecast,
}

/// The settled days of the current month, kept between calls, and the last forecasts with
/// the month so far they were made from: reused while it is (a kept summary).
#[derive(Debug, Default)]
pub struct Forecasts {
    settled: Mutex<Settled>,
    last: std::sync::Mutex<Option<(Arc<Costed>, Arc<MonthForecasts>)>>,
}

#[derive(Debug, Default)]
struct Settled {
    month_start: Option<DateTime<Utc>>,
    /// The ledger's version the days were costed at: late usage, recorded by any process,
    /// moves it.
    version: Option<i64>,
    /// By day of the month (0 for the first).
    days: HashMap<usize, DayCosts>,
}

/// One day's cost, in USD.
#[derive(Debug, Clone, Default)]
struct DayCosts {
    tenants: HashMap<Uuid, f64>,
    platform: f64,
}

impl Forecasts {
    /// The month's forecasts at `now`, from the ledger at `version` or later
    /// ([`Costing::version`]).
    pub async fn of_month(
        &self,
        costing: &Costing,
        now: DateTime<Utc>,
        version: i64,
    ) -> Result<Arc<MonthForecasts>> {
        let month_start = Grain::Month.floor(now);
        let today = Grain::Day.floor(now);
        let ended = usize::try_from((today - month_start).num_days()).unwrap_or(0);
        let days = {
            let mut settled = self.settled.lock().await;
            if settled.month_start != Some(month_start) || settled.version != Some(version) {
                *settled = Settled {
                    month_start: Some(month_start),
                    version: Some(version),
                    days: HashMap::new(),
                };
            }
            let mut days = Vec::with_capacity(ended);
            for day in 0..ended {
                let start = month_start + Duration::days(day as i64);
                let costs = match settled.days.get(&day) {
                    Some(costs) => costs.clone(),
                    None => {
                        let costs = day_costs(costing, start, now, version).await?;
                        if now - (start + Duration::days(1)) > SETTLED {
                            settled.days.insert(day, costs.clone());
                        }
                        costs
                    }
                };
                days.push(costs);
            }
            days
        };
        let period = Period {
            start: month_start,
            end: now,
            now,
        };
        let month_so_far = costing.summary_at(period, version).await?;
        if let Some((of, forecasts)) = crate::costing::lock(&self.last).as_ref()
            && Arc::ptr_eq(of, &month_so_far)
        {
            return Ok(forecasts.clone());
        }
        let so_far = &month_so_far.summary;
        let days_in_month =
            u32::try_from((Grain::Month.next(month_start) - month_start).num_days()).unwrap_or(30);
        let today_elapsed = (now - today).num_seconds() as f64 / 86_400.0;
        let month = |days: Vec<f64>, total: f64| {
            let today = (total - days.iter().sum::<f64>()).max(0.0);
            forecast(&MonthSoFar {
                days,
                today,
                today_elapsed,
                days_in_month,
            })
        };
        let tenants = so_far
            .tenants
            .iter()
            .map(|cost| {
                let of_days = days
                    .iter()
                    .map(|d| d.tenants.get(&cost.tenant).copied().unwrap_or(0.0))
                    .collect();
                (cost.tenant, month(of_days, cost.total.usd()))
            })
            .collect();
        let platform = month(
            days.iter().map(|d| d.platform).collect(),
            so_far.total.usd(),
        );
        let forecasts = Arc::new(MonthForecasts {
            month_start,
            tenants,
            platform,
        });
        *crate::costing::lock(&self.last) = Some((month_so_far, forecasts.clone()));
        Ok(forecasts)
    }
}

/// The cost of the day that starts at `start`, per tenant and for the platform.
async fn day_costs(
    costing: &Costing,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    version: i64,
) -> Result<DayCosts> {
    let period = Period {
        start,
        end: start + Duration::days(1),
        now,
    };
    let costed = costing.cost(period, version).await?;
    let summary = &costed.summary;
    Ok(DayCosts {
        tenants: summary
            .tenants
            .iter()
            .map(|t| (t.tenant, t.total.usd()))
            .collect(),
        platform: summary.total.usd(),
    })
}
