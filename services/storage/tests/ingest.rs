//! Ingest over gRPC, end to end through a tenant service and a storage service: acks after
//! durable writes, dedupe across reconnects, each bad input, tenant states, rate limits, a
//! malformed frame, and the queries that read the data back.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        self as pb, Aggregation, IngestBatchRequest, QueryTelemetryRequest, RejectReason,
        StreamTelemetryRequest, TelemetryBatch,
    },
    tenant::v1 as tpb,
};
use support::{Backend, Platform, micros, now_micros, reading, ts};
use tonic::Code;
use tonic_types::StatusExt as _;

fn batch(sequence: u64, machine: &str, readings: Vec<Reading>) -> StreamTelemetryRequest {
    StreamTelemetryRequest {
        batch: Some(TelemetryBatch {
            sequence,
            machine_id: machine.to_owned(),
            readings,
        }),
    }
}

/// `n` temperature readings of a machine, one a millisecond from `start`; the machine id is
/// left to the batch.
fn temps(start: i64, n: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| reading("", "temp", start + i as i64 * 1_000, i as f64))
        .collect()
}

async fn count(platform: &Platform, machine: &str, metric: &str, start: i64, end: i64) -> u64 {
    let response = platform
        .operator()
        .query_telemetry(QueryTelemetryRequest {
            tenant_id: platform.tenant_id.clone(),
            machine_id: machine.to_owned(),
            metric: metric.to_owned(),
            start: Some(ts(start)),
            end: Some(ts(end)),
            step: Some(pbjson_types::Duration {
                seconds: 86_400,
                nanos: 0,
            }),
            aggregation: Aggregation::Count.into(),
        })
        .await
        .unwrap()
        .into_inner();
    response.buckets.iter().map(|b| b.value as u64).sum()
}

async fn a_stream_is_acked_in_order_once_stored(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    let start = now_micros() - 60_000_000;
    let (requests, receiver) = tokio::sync::mpsc::channel(16);
    let mut acks = platform
        .client(&platform.write_key)
        .stream_telemetry(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    for sequence in 1..=6u64 {
        let machine = if sequence % 2 == 0 {
            "press-2"
        } else {
            "press-1"
        };
        let from = start + (sequence as i64) * 1_000_000;
        requests
            .send(batch(sequence, machine, temps(from, 100)))
            .await
            .unwrap();
    }
    for sequence in 1..=6u64 {
        let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
        assert_eq!(ack.sequence, sequence, "acks come in order");
        assert_eq!((ack.accepted, ack.duplicates), (100, 0));
        assert!(ack.rejected.is_empty());
        // Acked means stored: the batch is readable now.
        let machine = if sequence % 2 == 0 {
            "press-2"
        } else {
            "press-1"
        };
        let stored = count(&platform, machine, "temp", start, now_micros()).await;
        assert!(
            stored >= sequence.div_ceil(2) * 100,
            "batch {sequence} is stored"
        );
    }
    drop(requests);
    assert!(
        acks.next().await.is_none(),
        "the stream ends when the client's does"
    );
    assert_eq!(
        count(&platform, "press-1", "temp", start, now_micros()).await,
        300
    );
    assert_eq!(
        count(&platform, "press-2", "temp", start, now_micros()).await,
        300
    );
    platform.stop().await;
}

async fn a_machine_that_reconnects_and_resends_stores_nothing_twice(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    let start = now_micros() - 60_000_000;
    let batches: Vec<StreamTelemetryRequest> = (0..4u64)
        .map(|i| batch(i, "press-1", temps(start + i as i64 * 1_000_000, 250)))
        .collect();

    // The first connection sends three batches and drops after the first ack.
    let mut client = platform.client(&platform.write_key);
    let mut first = client
        .stream_telemetry(futures::stream::iter(batches[..3].to_vec()))
        .await
        .unwrap()
        .into_inner();
    let ack = first.next().await.unwrap().unwrap().ack.unwrap();
    assert_eq!((ack.sequence, ack.accepted), (0, 250));
    drop(first);

    // The second resends everything not acked, and the acked batch as well.
    let acks: Vec<pb::TelemetryAck> = client
        .stream_telemetry(futures::stream::iter(batches.clone()))
        .await
        .unwrap()
        .into_inner()
        .map(|r| r.unwrap().ack.unwrap())
        .collect()
        .await;
    assert_eq!(acks.len(), 4);
    assert_eq!((acks[0].accepted, acks[0].duplicates), (0, 250));
    for ack in &acks {
        assert_eq!(
            ack.accepted + ack.duplicates,
            250,
            "every reading is counted once"
        );
    }
    assert_eq!((acks[3].accepted, acks[3].duplicates), (250, 0));
    assert_eq!(
        count(&platform, "press-1", "temp", start, now_micros()).await,
        1_000,
        "each reading stored exactly once"
    );

    // Repeats inside one batch count as duplicates; the first value is kept.
    let t = start + 10_000_000;
    let outcome = platform
        .operator()
        .ingest_batch(IngestBatchRequest {
            tenant_id: platform.tenant_id.clone(),
            readings: vec![
                reading("press-2", "rpm", t, 1.0),
                reading("press-2", "rpm", t, 2.0),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((outcome.accepted, outcome.duplicates), (1, 1));
    platform.stop().await;
}

async fn each_bad_reading_is_rejected_and_the_rest_stored(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    let now = now_micros();
    let day = 86_400_000_000;
    let mut readings = vec![
        reading("press-1", "temp", now - 1_000, 20.0),
        reading("press-1", "temp", now - 2_000, f64::NAN),
        reading("press-1", "temp", now - 3_000, f64::INFINITY),
        reading("press-1", "temp", now - 4_000, f64::NEG_INFINITY),
        reading("press-9", "temp", now - 5_000, 1.0),
        reading("press-1", "temp", now - 31 * day, 1.0),
        reading("press-1", "temp", now + 6 * 60_000_000, 1.0),
        reading("press-1", "", now - 6_000, 1.0),
        reading("press-1", &"x".repeat(129), now - 7_000, 1.0),
        Reading {
            ts: None,
            ..reading("press-1", "temp", 0, 1.0)
        },
        reading("", "temp", now - 8_000, 1.0),
        reading("press-2", "temp", now - 9_000, 21.0),
    ];
    readings.extend((0..10_000).map(|i| reading("press-2", "rpm", now - 1_000_000 - i, 1.0)));
    let outcome = platform
        .client(&platform.write_key)
        .ingest_batch(IngestBatchRequest {
            tenant_id: platform.tenant_id.clone(),
            readings,
        })
        .await
        .unwrap()
        .into_inner();
    let reasons: Vec<(u32, RejectReason)> = outcome
        .rejected
        .iter()
        .map(|r| (r.index, r.reason()))
        .collect();
    let mut expected = vec![
        (1, RejectReason::NotFinite),
        (2, RejectReason::NotFinite),
        (3, RejectReason::NotFinite),
        (4, RejectReason::UnknownMachine),
        (5, RejectReason::TooOld),
        (6, RejectReason::InFuture),
        (7, RejectReason::InvalidMetric),
        (8, RejectReason::InvalidMetric),
        (9, RejectReason::MissingTimestamp),
        (10, RejectReason::UnknownMachine),
    ];
    expected.extend((10_000..10_012).map(|i| (i, RejectReason::BatchLimit)));
    assert_eq!(reasons, expected);
    assert!(outcome.rejected.iter().all(|r| !r.message.is_empty()));
    // Two valid readings, and the rpm readings up to the limit of 10,000 in all.
    assert_eq!(outcome.accepted, 10_000 - 10);
    assert_eq!(outcome.duplicates, 0);
    assert_eq!(count(&platform, "press-1", "temp", now - day, now).await, 1);
    assert_eq!(count(&platform, "press-2", "temp", now - day, now).await, 1);
    platform.stop().await;
}

async fn suspended_and_deleted_tenants_are_refused(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    platform
        .operator()
        .ingest_batch(ingest_one(&platform))
        .await
        .unwrap();

    platform.set_state(tpb::TenantState::Suspended).await;
    // Caches hold a tenant's state, and a key's answer, for at most a second.
    refusal(
        &platform,
        &platform.write_key,
        Code::FailedPrecondition,
        "suspended",
    )
    .await;
    refusal(
        &platform,
        support::OPERATOR,
        Code::FailedPrecondition,
        "suspended",
    )
    .await;

    platform
        .tenants
        .clone()
        .delete_tenant(tpb::DeleteTenantRequest {
            tenant_id: platform.tenant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    refusal(&platform, &platform.write_key, Code::Unauthenticated, "").await;
    refusal(
        &platform,
        support::OPERATOR,
        Code::FailedPrecondition,
        "deleted",
    )
    .await;
    platform.stop().await;
}

fn ingest_one(platform: &Platform) -> IngestBatchRequest {
    IngestBatchRequest {
        tenant_id: platform.tenant_id.clone(),
        readings: vec![reading("press-1", "temp", now_micros(), 1.0)],
    }
}

/// Sends one reading until it is refused with `code` and a message containing `words` (for at
/// most three seconds: caches hold answers for at most one).
async fn refusal(platform: &Platform, token: &str, code: Code, words: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = platform
            .client(token)
            .ingest_batch(ingest_one(platform))
            .await;
        match answer {
            Err(status) if status.code() == code && status.message().contains(words) => return,
            other if Instant::now() > deadline => {
                panic!("not refused with {code:?} ({words}) after three seconds: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn over_its_rate_a_tenant_is_told_when_to_retry(backend: Backend) {
    let clock = mfg_common::clock::ManualClock::new();
    let platform = Platform::start_with_clock(backend, 100, Arc::new(clock.clone())).await;
    let now = now_micros();
    let readings = |offset: i64| {
        (0..150)
            .map(|i| reading("press-1", "temp", now - offset - i * 1_000, 1.0))
            .collect::<Vec<_>>()
    };
    let client = || platform.client(&platform.write_key);
    let first = client()
        .ingest_batch(IngestBatchRequest {
            tenant_id: platform.tenant_id.clone(),
            readings: readings(0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.accepted, 150,
        "a second's worth and more passes at once"
    );
    let refused = client()
        .ingest_batch(IngestBatchRequest {
            tenant_id: platform.tenant_id.clone(),
            readings: readings(1_000_000),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let retry = refused
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a retry hint");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(600),
        "{retry:?}"
    );

    // On a stream, the refusal ends the stream after the acks of earlier batches.
    clock.advance(Duration::from_secs(2));
    let acks: Vec<Result<pb::StreamTelemetryResponse, tonic::Status>> = client()
        .stream_telemetry(futures::stream::iter(vec![
            batch(1, "press-1", temps(now - 5_000_000, 150)),
            batch(2, "press-1", temps(now - 4_000_000, 150)),
        ]))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(acks.len(), 2);
    assert_eq!(
        acks[0].as_ref().unwrap().ack.as_ref().unwrap().accepted,
        150
    );
    let status = acks[1].as_ref().unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.get_details_retry_info().is_some());
    platform.stop().await;
}

async fn callers_need_the_right_key(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    let stream = |token: &str| {
        let mut client = platform.client(token);
        async move {
            let mut acks = client
                .stream_telemetry(futures::stream::iter(vec![batch(
                    1,
                    "press-1",
                    temps(now_micros(), 1),
                )]))
                .await?
                .into_inner();
            acks.next().await.unwrap()
        }
    };
    assert_eq!(
        stream(&platform.read_key).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        stream(support::OPERATOR).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        stream("mfg_nonsense").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        stream(&platform.write_key)
            .await
            .unwrap()
            .ack
            .unwrap()
            .accepted,
        1
    );

    let other = uuid::Uuid::new_v4().to_string();
    let refused = platform
        .client(&platform.write_key)
        .ingest_batch(IngestBatchRequest {
            tenant_id: other.clone(),
            readings: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::NotFound,
        "another tenant does not exist for a key"
    );
    let refused = platform
        .client(&platform.read_key)
        .query_telemetry(QueryTelemetryRequest {
            tenant_id: other,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    platform.stop().await;
}

async fn queries_return_points_buckets_and_latest_values(backend: Backend) {
    let platform = Platform::start(backend, 1_000_000).await;
    // One reading a second for ten minutes, value = the second; aligned to the minute.
    let start = (now_micros() - 3_600_000_000) / 60_000_000 * 60_000_000;
    let readings: Vec<Reading> = (0..600)
        .map(|s| reading("press-1", "temp", start + s * 1_000_000, s as f64))
        .chain([reading("press-1", "rpm", start, 1500.0)])
        .collect();
    for chunk in readings.chunks(250) {
        platform
            .client(&platform.write_key)
            .ingest_batch(IngestBatchRequest {
                tenant_id: platform.tenant_id.clone(),
                readings: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
    let query =
        |aggregation: Aggregation, step_seconds: i64, from: i64, to: i64| QueryTelemetryRequest {
            tenant_id: platform.tenant_id.clone(),
            machine_id: "press-1".to_owned(),
            metric: "temp".to_owned(),
            start: Some(ts(start + from * 1_000_000)),
            end: Some(ts(start + to * 1_000_000)),
            step: (step_seconds > 0).then_some(pbjson_types::Duration {
                seconds: step_seconds,
                nanos: 0,
            }),
            aggregation: aggregation.into(),
        };
    let mut client = platform.client(&platform.read_key);
    let raw = client
        .query_telemetry(query(Aggregation::Unspecified, 0, 10, 15))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        raw.points
            .iter()
            .map(|p| (micros(p.ts.as_ref().unwrap()), p.value))
            .collect::<Vec<_>>(),
        (10..15)
            .map(|s| (start + s * 1_000_000, s as f64))
            .collect::<Vec<_>>()
    );
    assert_eq!(raw.tiers, vec![i32::from(mfg_proto::common::v1::Tier::Hot)]);
    assert!(raw.buckets.is_empty());

    let expect = |aggregation, values: [f64; 10]| {
        let mut client = client.clone();
        let request = query(aggregation, 60, 0, 600);
        async move {
            let answer = client.query_telemetry(request).await.unwrap().into_inner();
            assert!(answer.points.is_empty());
            let got: Vec<(i64, f64, u64)> = answer
                .buckets
                .iter()
                .map(|b| (micros(b.start.as_ref().unwrap()), b.value, b.count))
                .collect();
            let want: Vec<(i64, f64, u64)> = values
                .iter()
                .enumerate()
                .map(|(m, v)| (start + m as i64 * 60_000_000, *v, 60))
                .collect();
            assert_eq!(got, want, "{aggregation:?}");
        }
    };
    let minute = |f: &dyn Fn(f64) -> f64| -> [f64; 10] { std::array::from_fn(|m| f(m as f64)) };
    expect(Aggregation::Min, minute(&|m| m * 60.0)).await;
    expect(Aggregation::Max, minute(&|m| m * 60.0 + 59.0)).await;
    expect(Aggregation::Last, minute(&|m| m * 60.0 + 59.0)).await;
    expect(Aggregation::Count, [60.0; 10]).await;
    expect(Aggregation::Sum, minute(&|m| 60.0 * m * 60.0 + 1770.0)).await;
    expect(Aggregation::Avg, minute(&|m| m * 60.0 + 29.5)).await;

    let bad = client
        .query_telemetry(QueryTelemetryRequest {
            step: None,
            ..query(Aggregation::Avg, 0, 0, 600)
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["step"]);
    let bad = client
        .query_telemetry(query(Aggregation::Unspecified, 0, 600, 0))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let latest = client
        .get_latest_values(pb::GetLatestValuesRequest {
            tenant_id: platform.tenant_id.clone(),
            machine_id: "press-1".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .values;
    let latest: Vec<(String, i64, f64)> = latest
        .into_iter()
        .map(|v| (v.metric, micros(v.ts.as_ref().unwrap()), v.value))
        .collect();
    assert_eq!(
        latest,
        vec![
            ("rpm".to_owned(), start, 1500.0),
            ("temp".to_owned(), start + 599 * 1_000_000, 599.0)
        ]
    );
    platform.stop().await;
}

mfg_common::on_each_backend!(
    [
        postgres => Backend::Postgres,
        sqlite => Backend::Sqlite,
    ],
    [
        a_stream_is_acked_in_order_once_stored,
        a_machine_that_reconnects_and_resends_stores_nothing_twice,
        each_bad_reading_is_rejected_and_the_rest_stored,
        suspended_and_deleted_tenants_are_refused,
        over_its_rate_a_tenant_is_told_when_to_retry,
        callers_need_the_right_key,
        queries_return_points_buckets_and_latest_values,
    ],
);
