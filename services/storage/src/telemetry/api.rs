//! The gRPC adapter of the storage service: `mfg.storage.v1.TelemetryService` on top of the
//! ingest path and the queries. It converts requests to domain types and answers; who may call
//! each RPC is the contract's, checked by the server's [`mfg_common::auth::AuthLayer`] (a
//! stream's tenant is checked here as it opens). [`crate::alerting::api::AlertApi`] serves
//! `mfg.storage.v1.AlertService` the same way.

pub(crate) mod convert;

use std::{pin::Pin, sync::Arc, time::Instant};

use futures::{Stream, StreamExt as _, stream::FuturesOrdered};
use mfg_common::{
    auth::{Caller, Scope},
    shutdown::{CancellationToken, WaitForCancellationFutureOwned},
};
use mfg_proto::{
    cost::v1::Meter,
    storage::v1::{self as pb, telemetry_service_server::TelemetryService},
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    error::StorageError,
    metrics::{StorageMetrics, Via},
    micros::Micros,
    service::{ReadyStorage, Storage},
    telemetry::ingest::{Ingest, Outcome},
};

/// How many batches of one stream may wait for their acks at once. Past that the server stops
/// reading the stream until the oldest is acked, and HTTP/2 flow control holds the client.
pub const STREAM_WINDOW: usize = 8;

/// Serves `mfg.storage.v1.TelemetryService`.
#[derive(Debug, Clone)]
pub struct TelemetryApi {
    storage: ReadyStorage,
    shutdown: CancellationToken,
    metrics: Arc<StorageMetrics>,
}

impl TelemetryApi {
    /// Creates the adapter over operations that become ready later; its telemetry streams end
    /// when `shutdown` is cancelled.
    pub fn new(
        storage: ReadyStorage,
        shutdown: CancellationToken,
        metrics: Arc<StorageMetrics>,
    ) -> Self {
        Self {
            storage,
            shutdown,
            metrics,
        }
    }

    fn storage(&self) -> Result<&Storage, StorageError> {
        self.storage.get().ok_or(StorageError::NotReady)
    }
}

#[tonic::async_trait]
impl TelemetryService for TelemetryApi {
    async fn stream_telemetry(
        &self,
        request: Request<Streaming<pb::StreamTelemetryRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<pb::StreamTelemetryResponse, Status>> + Send>>>,
        Status,
    > {
        let caller = Caller::of(&request)?;
        let Caller::Tenant(principal) = &caller else {
            return Err(Status::permission_denied(
                "StreamTelemetry carries one tenant's readings: authenticate with an API key of \
                 the tenant, of write scope",
            ));
        };
        caller.authorize(&principal.tenant_id, Scope::Write)?;
        let tenant = convert::tenant_id(&principal.tenant_id)?;
        let ingest = self.storage()?.ingest.clone();
        let stream = AckStream {
            ingest,
            tenant,
            inbound: request.into_inner(),
            in_flight: FuturesOrdered::new(),
            ending: None,
            closed: false,
            stopping: Box::pin(self.shutdown.clone().cancelled_owned()),
            metrics: self.metrics.clone(),
            _open: self.metrics.stream_opened(),
        };
        Ok(Response::new(Box::pin(stream.into_stream())))
    }

    async fn ingest_batch(
        &self,
        request: Request<pb::IngestBatchRequest>,
    ) -> Result<Response<pb::IngestBatchResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let readings = request.readings.into_iter().map(convert::reading).collect();
        let started = Instant::now();
        let outcome = match self.storage()?.ingest.ingest(tenant, "", readings).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let status = Status::from(error);
                self.metrics.refused(Via::Unary, status.code());
                return Err(status);
            }
        };
        self.metrics.acked(Via::Unary, &outcome, started.elapsed());
        let ack = convert::ack(0, outcome);
        Ok(Response::new(pb::IngestBatchResponse {
            accepted: ack.accepted,
            duplicates: ack.duplicates,
            rejected: ack.rejected,
        }))
    }

    async fn query_telemetry(
        &self,
        request: Request<pb::QueryTelemetryRequest>,
    ) -> Result<Response<pb::QueryTelemetryResponse>, Status> {
        let query = convert::series_query(request.get_ref())?;
        let storage = self.storage()?;
        let answer = storage.queries.series(&query).await?;
        if let Some(oldest) = answer.oldest_hot {
            storage.usage.raw_reads().read(query.tenant, oldest);
        }
        if let Some(meter) = &storage.meter {
            meter.add(
                query.tenant,
                Meter::QueryPoints,
                crate::metering::query_points(&answer),
            );
        }
        Ok(Response::new(convert::query_response(answer)))
    }

    async fn start_tiering_job(
        &self,
        request: Request<pb::StartTieringJobRequest>,
    ) -> Result<Response<pb::StartTieringJobResponse>, Status> {
        let storage = self.storage()?;
        let as_of = match &request.get_ref().as_of {
            Some(as_of) => convert::micros(as_of),
            None => Micros::of(storage.clock.system_now()),
        };
        let job = storage.jobs.start(as_of).await?;
        Ok(Response::new(pb::StartTieringJobResponse {
            job: Some(convert::tiering_job(job, Vec::new())),
        }))
    }

    async fn get_tiering_job(
        &self,
        request: Request<pb::GetTieringJobRequest>,
    ) -> Result<Response<pb::GetTieringJobResponse>, Status> {
        let request = request.get_ref();
        let id = convert::job_id(&request.job_id)?;
        let wait = convert::job_wait(request.wait.as_ref())?;
        let (job, failures) = self.storage()?.jobs.get(id, wait).await?;
        Ok(Response::new(pb::GetTieringJobResponse {
            job: Some(convert::tiering_job(job, failures)),
        }))
    }

    async fn list_tiering_jobs(
        &self,
        request: Request<pb::ListTieringJobsRequest>,
    ) -> Result<Response<pb::ListTieringJobsResponse>, Status> {
        let limit = match request.get_ref().page_size {
            0 => 20,
            size @ 1..=100 => size.unsigned_abs(),
            _ => {
                return Err(StorageError::invalid("page_size", "must be between 1 and 100").into());
            }
        };
        let jobs = self.storage()?.jobs.list(limit).await?;
        Ok(Response::new(pb::ListTieringJobsResponse {
            jobs: jobs
                .into_iter()
                .map(|job| convert::tiering_job(job, Vec::new()))
                .collect(),
        }))
    }

    async fn prepare_tenant_storage(
        &self,
        request: Request<pb::PrepareTenantStorageRequest>,
    ) -> Result<Response<pb::PrepareTenantStorageResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let storage = self.storage()?;
        let (hot_days, _) = retention_of(storage, tenant, request.retention).await?;
        let now = Micros::of(storage.clock.system_now());
        let archive_prefix = storage.tiering.prepare(tenant, hot_days, now).await?;
        Ok(Response::new(pb::PrepareTenantStorageResponse {
            archive_prefix,
        }))
    }

    async fn release_tenant_storage(
        &self,
        request: Request<pb::ReleaseTenantStorageRequest>,
    ) -> Result<Response<pb::ReleaseTenantStorageResponse>, Status> {
        let tenant = convert::tenant_id(&request.get_ref().tenant_id)?;
        self.storage()?.tiering.release(tenant).await?;
        Ok(Response::new(pb::ReleaseTenantStorageResponse {}))
    }

    async fn prepare_tenant_archive(
        &self,
        request: Request<pb::PrepareTenantArchiveRequest>,
    ) -> Result<Response<pb::PrepareTenantArchiveResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let storage = self.storage()?;
        let (hot_days, cold_days) = retention_of(storage, tenant, request.retention).await?;
        let rule = storage
            .tiering
            .prepare_archive(tenant, hot_days, cold_days)
            .await?;
        Ok(Response::new(pb::PrepareTenantArchiveResponse {
            archive_prefix: rule.prefix,
            expire_after_days: rule.expire_after_days,
            transition_after_days: rule.transition_after_days.unwrap_or(0),
        }))
    }

    async fn release_tenant_archive(
        &self,
        request: Request<pb::ReleaseTenantArchiveRequest>,
    ) -> Result<Response<pb::ReleaseTenantArchiveResponse>, Status> {
        let tenant = convert::tenant_id(&request.get_ref().tenant_id)?;
        self.storage()?.tiering.release(tenant).await?;
        Ok(Response::new(pb::ReleaseTenantArchiveResponse {}))
    }

    async fn export_tenant(
        &self,
        request: Request<pb::ExportTenantRequest>,
    ) -> Result<Response<pb::ExportTenantResponse>, Status> {
        let tenant = convert::tenant_id(&request.get_ref().tenant_id)?;
        let storage = self.storage()?;
        let now = Micros::of(storage.clock.system_now());
        let export = storage.tiering.export(tenant, now).await?;
        Ok(Response::new(pb::ExportTenantResponse {
            manifest_key: export.manifest_key.as_str().to_owned(),
            objects: export.objects,
            readings: export.readings,
            bytes: export.bytes,
        }))
    }

    async fn delete_tenant_data(
        &self,
        request: Request<pb::DeleteTenantDataRequest>,
    ) -> Result<Response<pb::DeleteTenantDataResponse>, Status> {
        let request = request.get_ref();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        let objects_deleted = self
            .storage()?
            .delete_tenant_data(tenant, request.purge_archive)
            .await?;
        Ok(Response::new(pb::DeleteTenantDataResponse {
            objects_deleted,
        }))
    }

    async fn get_tenant_usage_facts(
        &self,
        request: Request<pb::GetTenantUsageFactsRequest>,
    ) -> Result<Response<pb::GetTenantUsageFactsResponse>, Status> {
        let tenant = convert::tenant_id(&request.get_ref().tenant_id)?;
        let storage = self.storage()?;
        let tenant_no = storage.ingest.find_tenant_no(tenant).await?;
        let facts = storage.usage.facts(tenant, tenant_no).await?;
        Ok(Response::new(convert::usage_facts(facts)))
    }

    async fn get_latest_values(
        &self,
        request: Request<pb::GetLatestValuesRequest>,
    ) -> Result<Response<pb::GetLatestValuesResponse>, Status> {
        let request = request.get_ref();
        let tenant = convert::tenant_id(&request.tenant_id)?;
        mfg_common::labels::validate_machine_id(&request.machine_id)
            .map_err(|description| StorageError::invalid("machine_id", description))?;
        let storage = self.storage()?;
        let latest = storage.queries.latest(tenant, &request.machine_id).await?;
        if let Some(meter) = &storage.meter {
            meter.add(tenant, Meter::QueryPoints, latest.len() as f64);
        }
        Ok(Response::new(pb::GetLatestValuesResponse {
            values: latest.into_iter().map(convert::latest).collect(),
        }))
    }

    async fn list_latest_values(
        &self,
        request: Request<pb::ListLatestValuesRequest>,
    ) -> Result<Response<pb::ListLatestValuesResponse>, Status> {
        let tenant = convert::tenant_id(&request.get_ref().tenant_id)?;
        let storage = self.storage()?;
        let machines = storage.queries.latest_of_tenant(tenant).await?;
        if let Some(meter) = &storage.meter {
            let points: usize = machines.iter().map(|(_, values)| values.len()).sum();
            meter.add(tenant, Meter::QueryPoints, points as f64);
        }
        Ok(Response::new(pb::ListLatestValuesResponse {
            machines: machines
                .into_iter()
                .map(|(machine_id, values)| pb::MachineLatestValues {
                    machine_id,
                    values: values.into_iter().map(convert::latest).collect(),
                })
                .collect(),
        }))
    }
}

/// The acks of one `StreamTelemetry` stream: it reads the stream's batches, keeps up to
/// [`STREAM_WINDOW`] of them in flight, and acks each in order once it is durable. A malformed
/// frame, or a batch the tenant may not send now (over its rate, suspended, deleted), ends the
/// stream with its status, after the acks of the batches before it; a client resends what was
/// not acked.
///
/// It is the response stream itself, not a task of its own with a channel: an idle stream then
/// costs only this state, and the batches are read only as fast as the client takes its acks.
struct AckStream {
    ingest: Ingest,
    tenant: uuid::Uuid,
    inbound: Streaming<pb::StreamTelemetryRequest>,
    in_flight: FuturesOrdered<InFlight>,
    /// Why the stream ends, once the batches before are acked.
    ending: Option<Status>,
    /// The client sent its last batch.
    closed: bool,
    /// Ready when the service stops. Made once, so a turn of the stream does not register
    /// with the process's one token again (its lock is shared by every stream).
    stopping: Pin<Box<WaitForCancellationFutureOwned>>,
    metrics: Arc<StorageMetrics>,
    /// Counts the stream as open while it lives.
    _open: crate::metrics::OpenStream,
}

/// A batch waiting for its write: its sequence, when it arrived, and the outcome.
type InFlight = Pin<Box<dyn Future<Output = (u64, Instant, Result<Outcome, StorageError>)> + Send>>;

impl AckStream {
    fn into_stream(self) -> impl Stream<Item = Result<pb::StreamTelemetryResponse, Status>> {
        futures::stream::unfold(Some(self), |state| async move {
            let mut state = state?;
            let ack = state.next_ack().await?;
            // After an error, the stream ends.
            let state = ack.is_ok().then_some(state);
            Some((
                ack.map(|ack| pb::StreamTelemetryResponse { ack: Some(ack) }),
                state,
            ))
        })
    }

    /// The next ack, the status that ends the stream, or `None` when it is over.
    async fn next_ack(&mut self) -> Option<Result<pb::TelemetryAck, Status>> {
        loop {
            if self.in_flight.is_empty() {
                if let Some(status) = self.ending.take() {
                    return Some(Err(status));
                }
                if self.closed {
                    return None;
                }
            }
            let reading =
                !self.closed && self.ending.is_none() && self.in_flight.len() < STREAM_WINDOW;
            tokio::select! {
            biased;
            Some((sequence, arrived, outcome)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                return Some(match outcome {
                    Ok(outcome) => {
                        self.metrics.acked(Via::Stream, &outcome, arrived.elapsed());
                        Ok(convert::ack(sequence, outcome))
                    }
                    Err(error) => {
                        let status = Status::from(error);
                        self.metrics.refused(Via::Stream, status.code());
                        Err(status)
                    }
                });
            }
            next = self.inbound.message(), if reading => self.receive(next).await,
            () = self.stopping.as_mut(), if reading => {
                self.ending = Some(Status::unavailable(
                    "the storage service is stopping: reconnect and resend what was not acked",
                ));
            }
            else => return None}
        }
    }

    async fn receive(&mut self, next: Result<Option<pb::StreamTelemetryRequest>, Status>) {
        match next {
            Ok(Some(request)) => {
                let Some(batch) = request.batch else {
                    self.ending = Some(Status::invalid_argument(
                        "a StreamTelemetryRequest must carry a batch",
                    ));
                    return;
                };
                let readings = batch.readings.into_iter().map(convert::reading).collect();
                let arrived = Instant::now();
                // Boxed: the submit's state lives only while it runs, not in every idle stream.
                let submitted =
                    Box::pin(self.ingest.submit(self.tenant, &batch.machine_id, readings)).await;
                match submitted {
                    Ok(pending) => {
                        let sequence = batch.sequence;
                        self.in_flight.push_back(Box::pin(async move {
                            (sequence, arrived, pending.outcome().await)
                        }));
                    }
                    Err(error) => {
                        let status = Status::from(error);
                        self.metrics.refused(Via::Stream, status.code());
                        self.ending = Some(status);
                    }
                }
            }
            Ok(None) => self.closed = true,
            Err(status) => {
                self.ending = Some(
                    if status.code() == tonic::Code::Internal
                        || status.code() == tonic::Code::InvalidArgument
                    {
                        Status::invalid_argument(format!("malformed frame: {}", status.message()))
                    } else {
                        status
                    },
                );
            }
        }
    }
}

/// A tenant's hot and cold retention in days: as the request gives it, or, unset, as the
/// tenant service has it.
async fn retention_of(
    storage: &Storage,
    tenant: uuid::Uuid,
    retention: Option<mfg_proto::common::v1::Retention>,
) -> Result<(u32, u32), StorageError> {
    match retention {
        Some(retention) if retention.hot_days > 0 && retention.cold_days > 0 => {
            Ok((retention.hot_days, retention.cold_days))
        }
        Some(_) => Err(StorageError::invalid(
            "retention",
            "hot_days and cold_days must be positive; leave retention unset to use the tenant's",
        )),
        None => {
            let info = storage.ingest.directory().tenant(tenant).await?;
            Ok((info.hot_days, info.cold_days))
        }
    }
}
