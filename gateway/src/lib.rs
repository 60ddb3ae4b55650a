//! The REST-to-gRPC gateway at the edge of the platform.
//!
//! Not built yet: its issue adds the routes of the contract's `google.api.http` annotations,
//! authentication, rate limits and OpenAPI. Until then it answers liveness at `/healthz`, and
//! every other request with 501 and a `google.rpc.Status`-shaped body, never a made-up result.

use std::{net::SocketAddr, time::Duration};

use axum::{Json, Router, response::IntoResponse, routing::get};
use mfg_common::{ErrorCode, shutdown::CancellationToken};
use tokio::net::TcpListener;

/// The gateway's configuration; every option is a flag and an `MFG_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(
        long = "listen-addr",
        env = "MFG_GATEWAY_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen_addr: SocketAddr,
    /// How long in-flight requests may run after a shutdown signal.
    #[arg(long = "shutdown-grace", env = "MFG_SHUTDOWN_GRACE", default_value = "10s", value_parser = mfg_common::config::parse_duration)]
    pub shutdown_grace: Duration,
}

/// Returns the gateway's routes.
pub fn router() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .fallback(not_built)
}

async fn not_built() -> impl IntoResponse {
    let code = ErrorCode::Unimplemented;
    let body = serde_json::json!({
        "code": code.grpc_code() as i32,
        "message": "the REST gateway's routes are not built yet; use the gRPC services",
        "details": [],
    });
    (code.http_status(), Json(body))
}

/// Serves the gateway on `listener` until `shutdown` is cancelled, then drains for at most the
/// configured grace period.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let drain = shutdown.clone();
    let server = axum::serve(listener, router())
        .with_graceful_shutdown(async move { drain.cancelled().await });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            tracing::warn!("requests still running after the shutdown grace period were cut");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn healthz_is_live() {
        let response = router()
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn routes_not_built_answer_501_with_a_status_body() {
        let response = router()
            .oneshot(Request::get("/v1/tenants").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 4096).await.unwrap()).unwrap();
        assert_eq!(body["code"], 12);
        assert!(body["message"].as_str().unwrap().contains("not built"));
    }
}
