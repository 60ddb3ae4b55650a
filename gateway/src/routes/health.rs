//! Liveness and readiness: `/healthz` answers while the process runs; `/readyz` answers 200
//! only when every upstream service reports SERVING over `grpc.health.v1.Health`.

use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_client::HealthClient},
};

use crate::AppState;

/// How long one upstream's health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Returns the health routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let checks = state
        .upstreams()
        .into_iter()
        .map(|(name, service, channel)| async move {
            let mut client = HealthClient::new(channel);
            let check = client.check(HealthCheckRequest {
                service: service.to_owned(),
            });
            let serving = matches!(
                tokio::time::timeout(CHECK_TIMEOUT, check).await,
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32
            );
            (name, serving)
        });
    let results = futures::future::join_all(checks).await;
    let ready = results.iter().all(|(_, serving)| *serving);
    let services: serde_json::Map<String, Value> = results
        .into_iter()
        .map(|(name, serving)| {
            (
                name.to_owned(),
                json!(if serving { "SERVING" } else { "NOT_SERVING" }),
            )
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "services": services })),
    )
}
