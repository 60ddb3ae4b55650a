//! A graceful stop of the storage service while a machine's telemetry stream is open and
//! idle: the stream is told UNAVAILABLE at once, so the stop does not wait out the grace period.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{StreamTelemetryRequest, TelemetryBatch},
};
use support::{Backend, Platform, now_micros, reading};
use tonic::Code;

fn batch(sequence: u64, machine: &str, readings: Vec<Reading>) -> StreamTelemetryRequest {
    StreamTelemetryRequest {
        batch: Some(TelemetryBatch {
            sequence,
            machine_id: machine.to_owned(),
            readings,
        }),
    }
}

fn temps(start: i64, n: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| reading("", "temp", start + i as i64 * 1_000, i as f64))
        .collect()
}

async fn an_idle_stream_is_told_to_go_away_at_a_graceful_stop(backend: Backend) {
    let grace = Duration::from_secs(120);
    let mut platform = Platform::start_configured(
        backend,
        1_000_000,
        mfg_common::clock::system_clock(),
        move |mut config| {
            config.server.shutdown_grace = grace;
            config
        },
    )
    .await;
    let (requests, receiver) = tokio::sync::mpsc::channel(16);
    let mut acks = platform
        .client(&platform.write_key)
        .stream_telemetry(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let start = now_micros() - 60_000_000;
    requests
        .send(batch(1, "press-1", temps(start, 10)))
        .await
        .unwrap();
    let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
    assert_eq!(ack.accepted, 10);

    // The stream is open and idle; the stop must not wait out the grace period for it.
    let stopping = Instant::now();
    platform.stop_storage().await;
    assert!(
        stopping.elapsed() < grace / 4,
        "the stop took {:?}, waiting on an idle stream",
        stopping.elapsed()
    );
    let status = acks
        .next()
        .await
        .expect("the stream ends with a status")
        .expect_err("the stream ends with an error");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    drop(requests);
    platform.stop().await;
}

#[tokio::test]
async fn on_postgres() {
    an_idle_stream_is_told_to_go_away_at_a_graceful_stop(Backend::Postgres).await;
}

#[tokio::test]
async fn on_sqlite() {
    an_idle_stream_is_told_to_go_away_at_a_graceful_stop(Backend::Sqlite).await;
}
