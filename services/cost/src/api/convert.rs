//! Conversions between the protobuf contract and the cost domain. A missing or invalid field
//! becomes an INVALID_ARGUMENT naming it; generated types go no further than this module.

use chrono::{DateTime, Utc};
use mfg_common::Violations;
use mfg_proto::cost::v1 as pb;
use pbjson_types::{FieldMask, Timestamp};

use uuid::Uuid;

use crate::{
    domain::{
        meter::Meter,
        price_book::{Price, PriceBook, Split},
        recommend,
        report::Usage,
    },
    error::{CostError, Result},
    store::KeyedUsage,
};

/// The most records one `RecordUsage` may carry.
pub const MAX_RECORDS: usize = 10_000;
/// How far after now a record may end: the clocks of the services that meter may run ahead of
/// this one's by that much.
const MAX_AHEAD: chrono::Duration = chrono::Duration::minutes(5);
/// The longest idempotency key, in characters.
const MAX_KEY_CHARS: usize = 200;

/// The longest price unit, in characters.
const MAX_UNIT_CHARS: usize = 64;

/// The fields of a price book an update may name.
const PRICE_BOOK_FIELDS: &str = "prices, shared_monthly_usd, dedicated_monthly_usd, split, \
     platform_monthly_target_usd, or `*`";

/// A moment as a timestamp.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// A timestamp as a moment, if chrono can hold it.
pub fn time(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

/// Usage records to count, each field checked: none may end more than [`MAX_AHEAD`] after
/// `now` (a report that ends now takes everything recorded; see `store::buckets`). Each has
/// its key, or with `batched` none (the request's batch key counts for all).
pub fn usage_records(
    records: Vec<pb::UsageRecord>,
    batched: bool,
    now: DateTime<Utc>,
) -> Result<Vec<KeyedUsage>> {
    if records.len() > MAX_RECORDS {
        return Err(CostError::invalid(
            "records",
            format!(
                "at most {MAX_RECORDS} records a call, not {}",
                records.len()
            ),
        ));
    }
    let mut violations = Violations::new();
    let mut checked = Vec::with_capacity(records.len());
    for (i, record) in records.into_iter().enumerate() {
        let field = |name: &str| format!("records[{i}].{name}");
        let tenant = Uuid::parse_str(&record.tenant_id).ok();
        if tenant.is_none() {
            violations.add(field("tenant_id"), "must be a tenant's UUID");
        }
        let meter = meter(record.meter);
        if meter.is_none() {
            violations.add(
                field("meter"),
                "must name a meter, e.g. METER_INGESTED_READINGS",
            );
        }
        if !(record.quantity.is_finite() && record.quantity >= 0.0) {
            violations.add(field("quantity"), "must be a finite quantity of at least 0");
        }
        let start = record.start_time.as_ref().and_then(time);
        let end = record.end_time.as_ref().and_then(time);
        if start.is_none() {
            violations.add(field("start_time"), "is required, a valid timestamp");
        }
        if end.is_none() {
            violations.add(field("end_time"), "is required, a valid timestamp");
        }
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            violations.add(field("end_time"), "must not be before start_time");
        }
        if let Some(end) = end
            && end > now + MAX_AHEAD
        {
            violations.add(
                field("end_time"),
                "must not be more than 5 minutes in the future",
            );
        }
        let key_chars = record.idempotency_key.chars().count();
        if batched && key_chars > 0 {
            violations.add(
                field("idempotency_key"),
                "must be empty: the request's batch_key counts for its records",
            );
        } else if !batched && (key_chars == 0 || key_chars > MAX_KEY_CHARS) {
            violations.add(
                field("idempotency_key"),
                format!("must have 1 to {MAX_KEY_CHARS} characters, or the request a batch_key"),
            );
        }
        if let (Some(tenant), Some(meter), Some(start), Some(end)) = (tenant, meter, start, end) {
            checked.push(KeyedUsage {
                idempotency_key: record.idempotency_key,
                usage: Usage {
                    tenant,
                    meter,
                    start,
                    end,
                    quantity: record.quantity,
                },
            });
        }
    }
    violations.finish().map_err(CostError::InvalidArgument)?;
    Ok(checked)
}

/// A request's batch key, checked: `None` when it has none.
pub fn batch_key(key: &str) -> Result<Option<&str>> {
    match key.chars().count() {
        0 => Ok(None),
        n if n > MAX_KEY_CHARS => Err(CostError::invalid(
            "batch_key",
            format!("must have at most {MAX_KEY_CHARS} characters"),
        )),
        _ => Ok(Some(key)),
    }
}

/// A meter of the contract, if it names one.
pub fn meter(value: i32) -> Option<Meter> {
    match pb::Meter::try_from(value).ok()? {
        pb::Meter::Unspecified => None,
        pb::Meter::IngestedReadings => Some(Meter::IngestedReadings),
        pb::Meter::HotStorage => Some(Meter::HotStorage),
        pb::Meter::WarmStorage => Some(Meter::WarmStorage),
        pb::Meter::ColdStorage => Some(Meter::ColdStorage),
        pb::Meter::ApiRequests => Some(Meter::ApiRequests),
        pb::Meter::QueryPoints => Some(Meter::QueryPoints),
        pb::Meter::AlertEvaluations => Some(Meter::AlertEvaluations),
        pb::Meter::Machines => Some(Meter::Machines),
    }
}

/// A meter as the contract names it.
pub fn meter_to_proto(meter: Meter) -> pb::Meter {
    match meter {
        Meter::IngestedReadings => pb::Meter::IngestedReadings,
        Meter::HotStorage => pb::Meter::HotStorage,
        Meter::WarmStorage => pb::Meter::WarmStorage,
        Meter::ColdStorage => pb::Meter::ColdStorage,
        Meter::ApiRequests => pb::Meter::ApiRequests,
        Meter::QueryPoints => pb::Meter::QueryPoints,
        Meter::AlertEvaluations => pb::Meter::AlertEvaluations,
        Meter::Machines => pb::Meter::Machines,
    }
}

pub fn split_to_proto(split: Split) -> pb::SharedCostSplit {
    match split {
        Split::Even => pb::SharedCostSplit::Even,
        Split::Proportional => pb::SharedCostSplit::Proportional,
    }
}

/// A price book as the contract carries it, changed last at `update_time` (none: never).
pub fn price_book(book: &PriceBook, update_time: Option<DateTime<Utc>>) -> pb::PriceBook {
    pb::PriceBook {
        prices: book
            .prices
            .iter()
            .map(|(&meter, price)| pb::Price {
                meter: meter_to_proto(meter).into(),
                unit: price.unit.clone(),
                base_units_per_unit: price.base_units_per_unit,
                unit_price_usd: price.unit_price_usd,
            })
            .collect(),
        shared_monthly_usd: book.shared_monthly_usd,
        split: split_to_proto(book.split).into(),
        update_time: update_time.map(timestamp),
        dedicated_monthly_usd: book.dedicated_monthly_usd,
        platform_monthly_target_usd: book.platform_monthly_target_usd,
    }
}

/// The price book `current` with the fields an update mask names taken from `update`. A price
/// given replaces its meter's price; the meters not given keep theirs.
pub fn price_book_update(
    update: Option<pb::PriceBook>,
    mask: Option<FieldMask>,
    current: &PriceBook,
) -> Result<PriceBook> {
    let update = update.ok_or_else(|| CostError::invalid("price_book", "is required"))?;
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(CostError::invalid(
            "update_mask",
            format!("is required: name the fields to change, {PRICE_BOOK_FIELDS}"),
        ));
    }
    let mut violations = Violations::new();
    let mut book = current.clone();
    for path in &paths {
        let all = path == "*";
        if all || path == "prices" {
            for (i, price) in update.prices.iter().enumerate() {
                if let Some((meter, price)) = self::price(price, i, &mut violations) {
                    book.prices.insert(meter, price);
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, price) in update.prices.iter().enumerate() {
                if !seen.insert(price.meter) {
                    violations.add(
                        format!("price_book.prices[{i}].meter"),
                        "is priced twice: give each meter one price",
                    );
                }
            }
        }
        if all || path == "shared_monthly_usd" {
            book.shared_monthly_usd = amount(
                update.shared_monthly_usd,
                "price_book.shared_monthly_usd",
                &mut violations,
            );
        }
        if all || path == "dedicated_monthly_usd" {
            book.dedicated_monthly_usd = amount(
                update.dedicated_monthly_usd,
                "price_book.dedicated_monthly_usd",
                &mut violations,
            );
        }
        if all || path == "platform_monthly_target_usd" {
            book.platform_monthly_target_usd = amount(
                update.platform_monthly_target_usd,
                "price_book.platform_monthly_target_usd",
                &mut violations,
            );
        }
        if all || path == "split" {
            match pb::SharedCostSplit::try_from(update.split) {
                Ok(pb::SharedCostSplit::Even) => book.split = Split::Even,
                Ok(pb::SharedCostSplit::Proportional) => book.split = Split::Proportional,
                _ => violations.add(
                    "price_book.split",
                    "must be SHARED_COST_SPLIT_EVEN or SHARED_COST_SPLIT_PROPORTIONAL",
                ),
            }
        }
        match path.as_str() {
            "*"
            | "prices"
            | "shared_monthly_usd"
            | "dedicated_monthly_usd"
            | "split"
            | "platform_monthly_target_usd" => {}
            "update_time" => violations.add("update_mask", "`update_time` is set by the service"),
            other => violations.add(
                "update_mask",
                format!(
                    "`{other}` is not a field of PriceBook that can change: {PRICE_BOOK_FIELDS}"
                ),
            ),
        }
    }
    violations.finish().map_err(CostError::InvalidArgument)?;
    Ok(book)
}

/// The `i`th price of an update, with its meter.
fn price(price: &pb::Price, i: usize, violations: &mut Violations) -> Option<(Meter, Price)> {
    let field = |name: &str| format!("price_book.prices[{i}].{name}");
    let meter = meter(price.meter);
    if meter.is_none() {
        violations.add(field("meter"), "must name a meter, e.g. METER_HOT_STORAGE");
    }
    let unit_chars = price.unit.chars().count();
    if unit_chars == 0 || unit_chars > MAX_UNIT_CHARS {
        violations.add(
            field("unit"),
            format!("must have 1 to {MAX_UNIT_CHARS} characters, e.g. `GB-month`"),
        );
    }
    if !(price.base_units_per_unit.is_finite() && price.base_units_per_unit > 0.0) {
        violations.add(
            field("base_units_per_unit"),
            "must be a positive number, e.g. 1e9 for a GB",
        );
    }
    let unit_price_usd = amount(price.unit_price_usd, &field("unit_price_usd"), violations);
    Some((
        meter?,
        Price {
            unit: price.unit.clone(),
            base_units_per_unit: price.base_units_per_unit,
            unit_price_usd,
        },
    ))
}

/// An amount in USD: finite and not negative.
fn amount(value: f64, field: &str, violations: &mut Violations) -> f64 {
    if value.is_finite() && value >= 0.0 {
        value
    } else {
        violations.add(field, "must be a finite amount of at least 0");
        0.0
    }
}

/// Converts a recommendation.
pub fn recommendation(found: recommend::Recommendation) -> pb::Recommendation {
    pb::Recommendation {
        kind: match found.kind {
            recommend::Kind::HotRetention => pb::RecommendationKind::HotRetention,
            recommend::Kind::SamplingRate => pb::RecommendationKind::SamplingRate,
            recommend::Kind::Plan => pb::RecommendationKind::Plan,
            recommend::Kind::IdleMachines => pb::RecommendationKind::IdleMachines,
        }
        .into(),
        title: found.title,
        detail: found.detail,
        estimated_monthly_savings_usd: found.monthly_saving_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    fn fields(error: CostError) -> Vec<String> {
        match error {
            CostError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("not invalid: {other}"),
        }
    }

    #[test]
    fn a_price_book_round_trips_through_the_contract() {
        let book = PriceBook::default();
        let proto = price_book(&book, None);
        assert_eq!(proto.prices.len(), Meter::ALL.len());
        assert_eq!(
            price_book_update(Some(proto), mask(&["*"]), &PriceBook::default()).unwrap(),
            book
        );
    }

    #[test]
    fn an_update_changes_only_the_fields_it_names() {
        let current = PriceBook::default();
        let update = pb::PriceBook {
            prices: vec![pb::Price {
                meter: pb::Meter::HotStorage.into(),
                unit: "GB-month".to_owned(),
                base_units_per_unit: 1e9,
                unit_price_usd: 0.2,
            }],
            shared_monthly_usd: 999.0,
            ..pb::PriceBook::default()
        };
        let changed = price_book_update(Some(update), mask(&["prices"]), &current).unwrap();
        assert_eq!(changed.prices[&Meter::HotStorage].unit_price_usd, 0.2);
        assert_eq!(
            changed.prices[&Meter::ColdStorage],
            current.prices[&Meter::ColdStorage]
        );
        assert_eq!(
            changed.shared_monthly_usd, current.shared_monthly_usd,
            "not named"
        );
    }

    #[test]
    fn a_bad_update_names_each_field_at_fault() {
        let update = pb::PriceBook {
            prices: vec![
                pb::Price {
                    meter: pb::Meter::Unspecified.into(),
                    unit: String::new(),
                    base_units_per_unit: 0.0,
                    unit_price_usd: -1.0,
                },
                pb::Price {
                    meter: pb::Meter::Machines.into(),
                    unit: "machine-month".to_owned(),
                    base_units_per_unit: 1.0,
                    unit_price_usd: 0.01,
                },
                pb::Price {
                    meter: pb::Meter::Machines.into(),
                    unit: "machine-month".to_owned(),
                    base_units_per_unit: 1.0,
                    unit_price_usd: 0.02,
                },
            ],
            shared_monthly_usd: f64::NAN,
            split: pb::SharedCostSplit::Unspecified.into(),
            ..pb::PriceBook::default()
        };
        let error = price_book_update(
            Some(update),
            mask(&["*", "update_time", "colour"]),
            &PriceBook::default(),
        )
        .unwrap_err();
        assert_eq!(
            fields(error),
            [
                "price_book.prices[0].meter",
                "price_book.prices[0].unit",
                "price_book.prices[0].base_units_per_unit",
                "price_book.prices[0].unit_price_usd",
                "price_book.prices[2].meter",
                "price_book.shared_monthly_usd",
                "price_book.split",
                "update_mask",
                "update_mask",
            ]
        );
        let missing = price_book_update(None, mask(&["*"]), &PriceBook::default()).unwrap_err();
        assert_eq!(fields(missing), ["price_book"]);
        let no_mask =
            price_book_update(Some(pb::PriceBook::default()), None, &PriceBook::default())
                .unwrap_err();
        assert_eq!(fields(no_mask), ["update_mask"]);
    }
}
