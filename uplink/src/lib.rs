//! The client side of `StreamTelemetry` that a machine (or its collector) needs in production:
//! a bounded window of unacknowledged batches, kept until their acks arrive, and resent in
//! order on a new stream after the old one fails — a storage restart, a crash, a rate-limit
//! refusal. The server stores a reading once per tenant, machine, metric and timestamp, so a
//! batch that was stored but whose ack was lost counts as duplicates when it comes again, and
//! nothing acked is lost or stored twice.
//!
//! The simulator and `mfg up --demo` stream through it, and the crash test proves it.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use mfg_common::{grpc::TracedChannel, shutdown::CancellationToken};
use mfg_proto::{
    common::v1::Reading,
    storage::v1::{
        StreamTelemetryRequest, StreamTelemetryResponse, TelemetryBatch,
        telemetry_service_client::TelemetryServiceClient,
    },
};
use tokio::{sync::mpsc, task::JoinHandle};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The gRPC client an uplink streams through.
pub type TelemetryClient = TelemetryServiceClient<TracedChannel>;

/// How an uplink behaves.
#[derive(Debug, Clone, Copy)]
pub struct UplinkOptions {
    /// Batches sent and not yet acked, at most.
    pub window: usize,
    /// The first wait before reconnecting after a failure; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest wait before reconnecting.
    pub max_backoff: Duration,
}

impl Default for UplinkOptions {
    fn default() -> Self {
        Self {
            window: 8,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Counters shared by any number of uplinks.
#[derive(Debug)]
pub struct UplinkStats {
    /// Readings handed to an uplink (each once, however often it was resent).
    pub sent: AtomicU64,
    /// Readings the server stored.
    pub accepted: AtomicU64,
    /// Readings the server had stored before: resent after a lost ack, or sent twice.
    pub duplicates: AtomicU64,
    /// Readings the server refused.
    pub rejected: AtomicU64,
    /// Batches sent again on a new stream.
    pub resent: AtomicU64,
    /// Streams opened again after a failure.
    pub reconnects: AtomicU64,
    /// Ack latency in microseconds since a batch was first sent, for the whole run.
    total: Mutex<Histogram<u64>>,
    /// The same since [`UplinkStats::take_recent`] was last called.
    recent: Mutex<Histogram<u64>>,
}

impl Default for UplinkStats {
    fn default() -> Self {
        let histogram = || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        Self {
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            total: Mutex::new(histogram()),
            recent: Mutex::new(histogram()),
        }
    }
}

impl UplinkStats {
    /// Readings the server answered for: stored, duplicate or refused.
    pub fn acked(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
            + self.duplicates.load(Ordering::Relaxed)
            + self.rejected.load(Ordering::Relaxed)
    }

    /// The ack latencies of the whole run.
    pub fn total_latency(&self) -> Histogram<u64> {
        self.total
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ack latencies since the last call, emptied.
    pub fn take_recent(&self) -> Histogram<u64> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = recent.clone();
        recent.reset();
        taken
    }

    fn record(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
        for histogram in [&self.total, &self.recent] {
            histogram
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .saturating_record(micros);
        }
    }
}

/// One batch on its way.
struct Unacked {
    batch: TelemetryBatch,
    first_sent: Instant,
}

/// A resilient `StreamTelemetry` stream. [`Uplink::send`] waits while the window is full.
#[derive(Debug)]
pub struct Uplink {
    batches: mpsc::Sender<(String, Vec<Reading>)>,
    task: JoinHandle<Result<(), Status>>,
}

impl Uplink {
    /// Starts streaming through `client`. The uplink gives up only on an error that a retry
    /// cannot mend (a bad key, a suspended tenant, a malformed batch), or when `shutdown` is
    /// cancelled.
    pub fn start(
        client: TelemetryClient,
        options: UplinkOptions,
        stats: Arc<UplinkStats>,
        shutdown: CancellationToken,
    ) -> Self {
        let (batches, incoming) = mpsc::channel(1);
        let task = tokio::spawn(
            Link {
                client,
                options,
                stats,
                unacked: VecDeque::new(),
                sequence: 0,
                finished: false,
            }
            .run(incoming, shutdown),
        );
        Self { batches, task }
    }

    /// Sends a batch of `machine_id`'s readings (readings may name other machines of the same
    /// tenant). Fails once the uplink has given up.
    pub async fn send(&self, machine_id: String, readings: Vec<Reading>) -> Result<(), Status> {
        if self.batches.send((machine_id, readings)).await.is_ok() {
            return Ok(());
        }
        Err(Status::cancelled(
            "the uplink has stopped; finish() tells why",
        ))
    }

    /// Waits until every batch sent is acked, then closes the stream. Returns the error the
    /// uplink gave up on, if it did.
    pub async fn finish(self) -> Result<(), Status> {
        drop(self.batches);
        self.task
            .await
            .unwrap_or_else(|error| Err(Status::internal(format!("the uplink panicked: {error}"))))
    }
}

struct Link {
    client: TelemetryClient,
    options: UplinkOptions,
    stats: Arc<UplinkStats>,
    unacked: VecDeque<Unacked>,
    sequence: u64,
    /// Whether the sender is gone: once all is acked, the link ends.
    finished: bool,
}

/// Why a stream ended.
enum Ended {
    /// Everything was sent and acked.
    Done,
    /// Reconnect after this long.
    Retry(Duration),
}

impl Link {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<(String, Vec<Reading>)>,
        shutdown: CancellationToken,
    ) -> Result<(), Status> {
        let mut backoff = self.options.min_backoff;
        loop {
            let ended = tokio::select! {
                ended = self.stream(&mut incoming, &mut backoff) => ended?,
                () = shutdown.cancelled() => return Ok(()),
            };
            let wait = match ended {
                Ended::Done => return Ok(()),
                Ended::Retry(wait) => wait,
            };
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// Opens a stream, resends what is unacked, then sends and reads acks until the stream
    /// ends.
    async fn stream(
        &mut self,
        incoming: &mut mpsc::Receiver<(String, Vec<Reading>)>,
        backoff: &mut Duration,
    ) -> Result<Ended, Status> {
        if self.finished && self.unacked.is_empty() {
            return Ok(Ended::Done);
        }
        // Room for the whole window, so sending never waits on a stream that has stalled.
        let (requests, receiver) = mpsc::channel(self.options.window + 1);
        for unacked in &self.unacked {
            self.stats.resent.fetch_add(1, Ordering::Relaxed);
            let _ = requests.try_send(request(unacked.batch.clone()));
        }
        let mut acks = match self
            .client
            .stream_telemetry(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) => return self.retry_after(status, backoff),
        };
        loop {
            tokio::select! {
                message = acks.message() => match message {
                    Ok(Some(response)) => {
                        self.acknowledge(response);
                        *backoff = self.options.min_backoff;
                    }
                    // The server closed the stream (it is draining): reconnect at once.
                    Ok(None) => return Ok(Ended::Retry(Duration::ZERO)),
                    Err(status) => return self.retry_after(status, backoff),
                },
                next = incoming.recv(), if !self.finished && self.unacked.len() < self.options.window => {
                    match next {
                        Some((machine_id, readings)) => {
                            self.sequence += 1;
                            self.stats.sent.fetch_add(readings.len() as u64, Ordering::Relaxed);
                            let batch = TelemetryBatch { sequence: self.sequence, machine_id, readings };
                            // A closed request stream means the call is ending; its error comes
                            // on `acks`, and the batch is resent on the next stream.
                            let _ = requests.try_send(request(batch.clone()));
                            self.unacked.push_back(Unacked { batch, first_sent: Instant::now() });
                        }
                        None => self.finished = true,
                    }
                }
            }
            if self.finished && self.unacked.is_empty() {
                return Ok(Ended::Done);
            }
        }
    }

    fn acknowledge(&mut self, response: StreamTelemetryResponse) {
        let Some(ack) = response.ack else { return };
        let Some(position) = self
            .unacked
            .iter()
            .position(|u| u.batch.sequence == ack.sequence)
        else {
            return;
        };
        let Some(acked) = self.unacked.remove(position) else {
            return;
        };
        let stats = &self.stats;
        stats.record(acked.first_sent.elapsed());
        stats
            .accepted
            .fetch_add(u64::from(ack.accepted), Ordering::Relaxed);
        stats
            .duplicates
            .fetch_add(u64::from(ack.duplicates), Ordering::Relaxed);
        stats
            .rejected
            .fetch_add(ack.rejected.len() as u64, Ordering::Relaxed);
    }

    /// How long to wait before the next stream, or the status if retrying cannot help.
    fn retry_after(&self, status: Status, backoff: &mut Duration) -> Result<Ended, Status> {
        let wait = match status.code() {
            Code::ResourceExhausted => status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay)
                .unwrap_or(Duration::from_secs(1)),
            Code::Unavailable
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted => {
                let wait = *backoff;
                *backoff = (*backoff * 2).min(self.options.max_backoff);
                wait
            }
            _ => return Err(status),
        };
        tracing::debug!(code = ?status.code(), message = status.message(), ?wait, "stream ended; reconnecting");
        Ok(Ended::Retry(wait))
    }
}

fn request(batch: TelemetryBatch) -> StreamTelemetryRequest {
    StreamTelemetryRequest { batch: Some(batch) }
}
