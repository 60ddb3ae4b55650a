//! Running a tiering job to its end from a client: what scripts, benchmarks and tests want
//! from `StartTieringJob` and `GetTieringJob`.

use tonic::codegen::{Body, Bytes, StdError};

use crate::storage::v1::{
    GetTieringJobRequest, StartTieringJobRequest, TieringJob, TieringJobState,
    telemetry_service_client::TelemetryServiceClient,
};

impl<T> TelemetryServiceClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// Starts a tiering job as if the time were `as_of` (now if `None`) and waits for it to end;
    /// returns the ended job, succeeded or failed.
    pub async fn run_tiering_job(
        &mut self,
        as_of: Option<pbjson_types::Timestamp>,
    ) -> Result<TieringJob, tonic::Status> {
        let started = self
            .start_tiering_job(StartTieringJobRequest { as_of })
            .await?
            .into_inner();
        let mut job = started.job.unwrap_or_default();
        loop {
            let state = job.state();
            if matches!(state, TieringJobState::Succeeded | TieringJobState::Failed) {
                return Ok(job);
            }
            job = self
                .get_tiering_job(GetTieringJobRequest {
                    job_id: job.job_id.clone(),
                    wait: Some(pbjson_types::Duration {
                        seconds: 10,
                        nanos: 0,
                    }),
                })
                .await?
                .into_inner()
                .job
                .unwrap_or_default();
        }
    }
}
