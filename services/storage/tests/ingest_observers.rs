//! Ingest's observers: what the storage service shows the process that embeds it (and, next,
//! the cost service's usage meter) of each batch, and when.

mod support;

use std::sync::{Arc, Mutex};

use mfg_proto::{common::v1::Reading, storage::v1::IngestBatchRequest};
use mfg_storage::telemetry::ingest::{AcceptedBatch, IngestObserver, Outcome};
use support::{Backend, Platform, now_micros, reading};

/// What ingest shows its observers: each batch's checked readings, and each batch's outcome.
#[derive(Debug, Default)]
struct Recorder {
    accepted: Mutex<Vec<(uuid::Uuid, usize)>>,
    committed: Mutex<Vec<(uuid::Uuid, u32, u32)>>,
}

impl IngestObserver for Recorder {
    fn accepted(&self, batch: &AcceptedBatch<'_>) {
        let seen = (batch.tenant, batch.readings.len());
        self.accepted.lock().unwrap().push(seen);
    }

    fn committed(&self, tenant: uuid::Uuid, outcome: &Outcome) {
        let seen = (tenant, outcome.accepted, outcome.duplicates);
        self.committed.lock().unwrap().push(seen);
    }
}

/// An observer of ingest (the cost service's usage meter will be one) sees each batch's
/// readings that passed their checks, then its outcome once it is durable and before the caller
/// has its ack; a resent batch is seen as duplicates, counted once.
async fn observers_see_each_batch_committed_before_its_ack(backend: Backend) {
    let recorder = Arc::new(Recorder::default());
    let observer: Arc<dyn IngestObserver> = recorder.clone();
    let platform = Platform::start_configured(
        backend,
        1_000_000,
        mfg_common::clock::system_clock(),
        move |mut config| {
            config.observers.push(observer);
            config
        },
    )
    .await;
    let tenant: uuid::Uuid = platform.tenant_id.parse().unwrap();
    let now = now_micros();
    let mut readings: Vec<Reading> = (0..5)
        .map(|i| reading("press-1", "temp", now - 1_000 - i, i as f64))
        .collect();
    readings.push(reading("press-9", "temp", now - 1_000, 1.0));
    for (accepted, duplicates) in [(5, 0), (0, 5)] {
        let outcome = platform
            .client(&platform.write_key)
            .ingest_batch(IngestBatchRequest {
                tenant_id: platform.tenant_id.clone(),
                readings: readings.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (outcome.accepted, outcome.duplicates),
            (accepted, duplicates)
        );
        assert_eq!(
            recorder.committed.lock().unwrap().last(),
            Some(&(tenant, accepted, duplicates)),
            "seen before the ack"
        );
    }
    assert_eq!(recorder.committed.lock().unwrap().len(), 2);
    assert_eq!(
        *recorder.accepted.lock().unwrap(),
        [(tenant, 5), (tenant, 5)]
    );
    platform.stop().await;
}

mfg_common::on_each_backend!(
    [
        postgres => Backend::Postgres,
        sqlite => Backend::Sqlite,
    ],
    [observers_see_each_batch_committed_before_its_ack],
);
