//! Telemetry routes, served by the storage service: ingest a batch, query a series, read a
//! machine's latest values.
//!
//! `POST /v1/tenants/{tenantId}/telemetry` needs write scope and goes through the same path as
//! `StreamTelemetry`, answering the same counts. Queries need read scope. Query parameters are
//! the proto3 JSON forms (`start`/`end` in RFC 3339, `step` as a duration such as `60s`), and
//! `aggregation` takes `avg`, `min`, `max`, `sum`, `count` or `last` as well as the enum names.
//!
//! Tiering jobs, operator only: `POST /v1/maintenance/tiering` (body `{"asOf": "<RFC 3339>"}`, or
//! `{}` for now) starts one and answers 202 with it at once; `GET /v1/maintenance/tiering/{jobId}`
//! (`?wait=10s` to wait up to 20 s for it to end) follows it; `GET /v1/maintenance/tiering` lists
//! the recent ones.

use axum::{Router, extract::State, routing::get};
use mfg_common::auth::Scope;
use mfg_proto::storage::v1 as pb;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    json::{Path, Query, RawBody, Reply, from_value},
};

type Result<T> = std::result::Result<Reply<T>, ApiError>;

/// Returns the telemetry routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{tenant_id}/telemetry",
            axum::routing::post(ingest),
        )
        .route(
            "/v1/tenants/{tenant_id}/machines/{machine_id}/telemetry",
            get(query),
        )
        .route(
            "/v1/tenants/{tenant_id}/machines/{machine_id}/latest",
            get(latest),
        )
        .route(
            "/v1/maintenance/tiering",
            get(list_tiering_jobs).post(start_tiering_job),
        )
        .route("/v1/maintenance/tiering/{job_id}", get(get_tiering_job))
}

async fn start_tiering_job(
    State(state): State<AppState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<pb::TieringJob> {
    caller.require_operator()?;
    let request: pb::StartTieringJobRequest = from_value(body)?;
    let response = state.storage().start_tiering_job(request).await?;
    Ok(Reply::accepted(
        response.into_inner().job.unwrap_or_default(),
    ))
}

/// The parameters of a tiering job's read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JobQuery {
    /// How long to wait for the job to end, as a duration (`10s`).
    wait: Option<String>,
}

async fn get_tiering_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
    Query(query): Query<JobQuery>,
) -> Result<pb::TieringJob> {
    caller.require_operator()?;
    let mut request = Map::new();
    request.insert("jobId".to_owned(), Value::String(job_id));
    if let Some(wait) = query.wait {
        request.insert("wait".to_owned(), Value::String(wait));
    }
    let request: pb::GetTieringJobRequest = from_value(Value::Object(request))?;
    let response = state.storage().get_tiering_job(request).await?;
    Ok(Reply::ok(response.into_inner().job.unwrap_or_default()))
}

async fn list_tiering_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<crate::routes::ListQuery>,
) -> Result<pb::ListTieringJobsResponse> {
    caller.require_operator()?;
    let request = pb::ListTieringJobsRequest {
        page_size: query.page_size,
    };
    Ok(Reply::ok(
        state
            .storage()
            .list_tiering_jobs(request)
            .await?
            .into_inner(),
    ))
}

async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    RawBody(mut body): RawBody,
) -> Result<pb::IngestBatchResponse> {
    caller.authorize(&tenant_id, Scope::Write)?;
    if !body.is_object() {
        return Err(ApiError::invalid_field(
            "body",
            "must be an object with `readings`",
        ));
    }
    body["tenantId"] = Value::String(tenant_id);
    let request: pb::IngestBatchRequest = from_value(body)?;
    Ok(Reply::ok(
        state.storage().ingest_batch(request).await?.into_inner(),
    ))
}

/// The query parameters of a series query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeriesParams {
    metric: Option<String>,
    start: Option<String>,
    end: Option<String>,
    step: Option<String>,
    aggregation: Option<String>,
}

async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, machine_id)): Path<(String, String)>,
    Query(params): Query<SeriesParams>,
) -> Result<pb::QueryTelemetryResponse> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let mut request = Map::new();
    request.insert("tenantId".to_owned(), Value::String(tenant_id));
    request.insert("machineId".to_owned(), Value::String(machine_id));
    let fields = [
        ("metric", params.metric),
        ("start", params.start),
        ("end", params.end),
        ("step", params.step),
        (
            "aggregation",
            params.aggregation.map(|a| match a.as_str() {
                "avg" | "min" | "max" | "sum" | "count" | "last" => {
                    format!("AGGREGATION_{}", a.to_uppercase())
                }
                _ => a,
            }),
        ),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            request.insert(name.to_owned(), Value::String(value));
        }
    }
    // The parameters are checked as the request's proto3 JSON form; a value that does not
    // parse (a timestamp, a duration, an aggregation) is a 400 naming it.
    let request: pb::QueryTelemetryRequest = from_value(Value::Object(request))?;
    Ok(Reply::ok(
        state.storage().query_telemetry(request).await?.into_inner(),
    ))
}

async fn latest(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, machine_id)): Path<(String, String)>,
) -> Result<pb::GetLatestValuesResponse> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let request = pb::GetLatestValuesRequest {
        tenant_id,
        machine_id,
    };
    Ok(Reply::ok(
        state
            .storage()
            .get_latest_values(request)
            .await?
            .into_inner(),
    ))
}
