//! Conversions between the protobuf contract and the domain. A missing or invalid field becomes
//! an INVALID_ARGUMENT naming it; generated types go no further than this module.

use mfg_common::Violations;
use mfg_proto::{common::v1 as common, storage::v1 as pb};
use pbjson_types::Timestamp;
use uuid::Uuid;

use crate::{
    error::{Result, StorageError},
    micros::Micros,
    telemetry::{
        domain::{
            Aggregation,
            ingest::{IncomingReading, RejectReason},
            tiering::{Failure, Job, JobState},
        },
        ingest::Outcome,
        query::{MAX_BUCKETS, SeriesAnswer, SeriesQuery, Tier},
        store::{Latest, Range, SeriesKey},
    },
};

/// Parses a tenant id.
pub fn tenant_id(value: &str) -> Result<Uuid> {
    Uuid::parse_str(value).map_err(|_| StorageError::invalid("tenant_id", "must be a UUID"))
}

/// Converts a timestamp to a moment, truncated to microseconds.
pub fn micros(ts: &Timestamp) -> Micros {
    Micros(
        ts.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(ts.nanos) / 1_000),
    )
}

/// Converts a moment to a timestamp.
pub fn timestamp(at: Micros) -> Timestamp {
    Timestamp {
        seconds: at.0.div_euclid(1_000_000),
        nanos: (at.0.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Converts a reading; timestamps keep microseconds.
pub fn reading(reading: common::Reading) -> IncomingReading {
    IncomingReading {
        ts: reading.ts.as_ref().map(micros),
        machine_id: reading.machine_id,
        metric: reading.metric,
        value: reading.value,
    }
}

fn reason(reason: RejectReason) -> pb::RejectReason {
    match reason {
        RejectReason::NotFinite => pb::RejectReason::NotFinite,
        RejectReason::UnknownMachine => pb::RejectReason::UnknownMachine,
        RejectReason::TooOld => pb::RejectReason::TooOld,
        RejectReason::InFuture => pb::RejectReason::InFuture,
        RejectReason::InvalidMetric => pb::RejectReason::InvalidMetric,
        RejectReason::BatchLimit => pb::RejectReason::BatchLimit,
        RejectReason::MissingTimestamp => pb::RejectReason::MissingTimestamp,
    }
}

/// Converts an outcome to an ack.
pub fn ack(sequence: u64, outcome: Outcome) -> pb::TelemetryAck {
    pb::TelemetryAck {
        sequence,
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        rejected: outcome
            .rejected
            .into_iter()
            .map(|r| pb::RejectedReading {
                index: r.index,
                reason: reason(r.reason).into(),
                message: r.message,
            })
            .collect(),
    }
}

/// Converts and checks a query.
pub fn series_query(request: &pb::QueryTelemetryRequest) -> Result<SeriesQuery> {
    let mut violations = Violations::new();
    let tenant = violations.check(
        "tenant_id",
        Uuid::parse_str(&request.tenant_id).map_err(|_| "must be a UUID".to_owned()),
    );
    violations.check(
        "machine_id",
        mfg_common::labels::validate_machine_id(&request.machine_id),
    );
    let metric_chars = request.metric.chars().count();
    if metric_chars == 0 {
        violations.add("metric", "is required");
    } else if metric_chars > crate::telemetry::domain::ingest::MAX_METRIC_CHARS {
        violations.add(
            "metric",
            format!(
                "must have at most {} characters, not {metric_chars}",
                crate::telemetry::domain::ingest::MAX_METRIC_CHARS
            ),
        );
    }
    let start = request.start.as_ref().map(micros);
    let end = request.end.as_ref().map(micros);
    if start.is_none() {
        violations.add("start", "is required");
    }
    if end.is_none() {
        violations.add("end", "is required");
    }
    if let (Some(start), Some(end)) = (start, end)
        && start >= end
    {
        violations.add("end", "must be after start");
    }
    let aggregation = match pb::Aggregation::try_from(request.aggregation) {
        Ok(pb::Aggregation::Unspecified) => None,
        Ok(pb::Aggregation::Avg) => Some(Aggregation::Avg),
        Ok(pb::Aggregation::Min) => Some(Aggregation::Min),
        Ok(pb::Aggregation::Max) => Some(Aggregation::Max),
        Ok(pb::Aggregation::Sum) => Some(Aggregation::Sum),
        Ok(pb::Aggregation::Count) => Some(Aggregation::Count),
        Ok(pb::Aggregation::Last) => Some(Aggregation::Last),
        Err(_) => {
            violations.add(
                "aggregation",
                format!("{} is not an aggregation", request.aggregation),
            );
            None
        }
    };
    let step = request
        .step
        .as_ref()
        .map(|d| d.seconds.saturating_mul(1_000_000) + i64::from(d.nanos) / 1_000);
    let aggregate = match (aggregation, step) {
        (None, Some(step)) if step != 0 => {
            violations.add("aggregation", "is required with a step");
            None
        }
        (None, _) => None,
        (Some(_), None | Some(0)) => {
            violations.add("step", "is required with an aggregation");
            None
        }
        (Some(_), Some(step)) if step < 0 => {
            violations.add("step", "must be positive");
            None
        }
        (Some(aggregation), Some(step)) => {
            if let (Some(start), Some(end)) = (start, end)
                && (end - start) / step > MAX_BUCKETS
            {
                violations.add(
                    "step",
                    format!("the range would hold more than {MAX_BUCKETS} buckets"),
                );
            }
            Some((step, aggregation))
        }
    };
    violations.finish().map_err(StorageError::InvalidArgument)?;
    Ok(SeriesQuery {
        tenant: tenant.unwrap_or_default(),
        key: SeriesKey {
            machine_id: request.machine_id.clone(),
            metric: request.metric.clone(),
        },
        range: Range {
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
        },
        aggregate,
    })
}

fn tier(tier: Tier) -> common::Tier {
    match tier {
        Tier::Hot => common::Tier::Hot,
        Tier::Warm => common::Tier::Warm,
        Tier::Cold => common::Tier::Cold,
    }
}

/// Converts a query's answer.
pub fn query_response(answer: SeriesAnswer) -> pb::QueryTelemetryResponse {
    pb::QueryTelemetryResponse {
        points: answer
            .points
            .into_iter()
            .map(|(ts, value)| pb::Point {
                ts: Some(timestamp(ts)),
                value,
            })
            .collect(),
        buckets: answer
            .buckets
            .into_iter()
            .map(|(start, value, count)| pb::Bucket {
                start: Some(timestamp(start)),
                value,
                count,
            })
            .collect(),
        tiers: answer.tiers.into_iter().map(|t| tier(t).into()).collect(),
    }
}

/// Converts a latest value.
pub fn latest(latest: Latest) -> pb::LatestValue {
    pb::LatestValue {
        metric: latest.metric,
        ts: Some(timestamp(latest.ts)),
        value: latest.value,
    }
}

/// Parses a tiering job's id.
pub fn job_id(value: &str) -> Result<Uuid> {
    Uuid::parse_str(value).map_err(|_| StorageError::invalid("job_id", "must be a UUID"))
}

/// How long `GetTieringJob` may wait: at most 20 s, so that a REST call ends within the
/// gateway's 30 s timeout.
pub fn job_wait(wait: Option<&pbjson_types::Duration>) -> Result<std::time::Duration> {
    let Some(wait) = wait else {
        return Ok(std::time::Duration::ZERO);
    };
    let seconds = u64::try_from(wait.seconds)
        .ok()
        .filter(|&s| s <= 20 && wait.nanos >= 0)
        .ok_or_else(|| StorageError::invalid("wait", "must be between 0 and 20 seconds"))?;
    Ok(std::time::Duration::from_secs(seconds)
        + std::time::Duration::from_nanos(u64::try_from(wait.nanos).unwrap_or(0)))
    .map(|wait| wait.min(std::time::Duration::from_secs(20)))
}

/// Converts a tiering job.
pub fn tiering_job(job: Job, failures: Vec<Failure>) -> pb::TieringJob {
    let state = match job.state {
        JobState::Queued => pb::TieringJobState::Queued,
        JobState::Running => pb::TieringJobState::Running,
        JobState::Succeeded => pb::TieringJobState::Succeeded,
        JobState::Failed => pb::TieringJobState::Failed,
    };
    let report = job.report;
    pb::TieringJob {
        job_id: job.id.to_string(),
        state: state.into(),
        as_of: Some(timestamp(job.as_of)),
        create_time: Some(timestamp(job.created_at)),
        start_time: job.started_at.map(timestamp),
        end_time: job.finished_at.map(timestamp),
        tenants_total: job.tenants_total,
        tenants_done: job.tenants_done,
        tenants_failed: job.tenants_failed,
        report: Some(pb::TieringReport {
            rollup_buckets_written: report.rollup_buckets_written,
            readings_archived: report.readings_archived,
            objects_written: report.objects_written,
            hot_partitions_dropped: report.hot_partitions_dropped,
            warm_rows_expired: report.warm_rows_expired,
            cold_objects_expired: report.cold_objects_expired,
            alert_events_expired: report.alert_events_expired,
        }),
        failures: failures
            .into_iter()
            .map(|failure| pb::TieringFailure {
                tenant_id: failure.tenant.to_string(),
                code: failure.code,
                message: failure.message,
            })
            .collect(),
    }
}

/// Converts a tenant's usage facts.
pub fn usage_facts(facts: crate::usage::UsageFacts) -> pb::GetTenantUsageFactsResponse {
    pb::GetTenantUsageFactsResponse {
        hot_days_held: facts.hot_days_held,
        oldest_raw_read_days: facts.oldest_raw_read_days,
        series: facts
            .series
            .into_iter()
            .map(|shape| pb::SeriesShape {
                machine_id: shape.machine_id,
                metric: shape.metric,
                readings: shape.readings,
                busy_minutes: shape.busy_minutes,
                flat_minutes: shape.flat_minutes,
            })
            .collect(),
        active_machine_ids: facts.active_machines,
        cold_bytes_per_reading: facts.cold_bytes_per_reading,
    }
}
