//! The gateway's router as a whole: the OpenAPI document and the routes cannot drift (every
//! documented route is served, never answered "no such route" or 405), the document is served
//! at `/v1/openapi.json`, and a request outliving the timeout is answered 504.

use axum::body::{Body, to_bytes};
use http::{Method, Request, StatusCode};
use mfg_gateway::{AppState, Config, openapi, router};
use tower::ServiceExt as _;

fn app() -> axum::Router {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: no upstream is needed to tell a routed request from an unrouted one.
    let mut config = Config::new(
        dir.path(),
        "127.0.0.1:1",
        "127.0.0.1:1",
        "127.0.0.1:1",
        "127.0.0.1:1",
    );
    config.operator.admin_token = Some(mfg_common::config::Secret::new("operator-token-for-tests"));
    let state = AppState::new(&config, "operator-token-for-tests").unwrap();
    router(state, &config)
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let document = openapi::document().unwrap();
    let routes = openapi::routes(&document);
    assert!(routes.len() >= 17);
    for route in routes {
        let path = route
            .path
            .replace("{tenantId}", "01a20c65-7cc4-737a-8cd8-9568c361dd9e")
            .replace("{keyId}", "01a20c657d52719b98d3a591dab20d03")
            .replace("{machineId}", "press-7");
        let method = Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let body = String::from_utf8(
            to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert!(
            !body.contains("no such route"),
            "{method} {path} is documented but not routed: {body}"
        );
        if status == StatusCode::OK {
            let documented =
                &document["paths"][&route.path][&route.method]["responses"]["200"]["content"];
            assert!(
                documented.get(&content_type).is_some(),
                "{method} {path} answers {content_type}, documented as {documented}"
            );
        }
        if path.starts_with("/v1/tenants") {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} needs a token: {body}"
            );
        }
    }
}

#[tokio::test]
async fn made_up_methods_and_paths_add_no_metric_series() {
    let app = app();
    for i in 0..50 {
        let request = Request::builder()
            .method(Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap())
            .uri(format!("/no/such/path/{i}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap();
    }
    let response = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(!text.contains("MADEUP"), "{text}");
    assert!(!text.contains("/no/such/path"), "{text}");
    let series = text
        .lines()
        .filter(|l| l.starts_with("mfg_gateway_http_requests_total"))
        .collect::<Vec<_>>();
    assert_eq!(
        series,
        [r#"mfg_gateway_http_requests_total{method="other",route="unmatched",status="4xx"} 50"#],
        "{text}"
    );
}

#[tokio::test]
async fn the_document_is_served() {
    let response = app()
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 22).await.unwrap()).unwrap();
    assert_eq!(body["openapi"], "3.0.3");
    assert!(body["paths"]["/v1/tenants/{tenantId}/machines/{machineId}"]["patch"].is_object());
}

#[tokio::test]
async fn a_request_that_outlives_the_timeout_is_answered_504() {
    // An upstream that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path(), &addr, &addr, &addr, &addr);
    config.options.request_timeout = std::time::Duration::from_millis(200);
    let state = AppState::new(&config, "operator-token-for-tests").unwrap();
    let request = Request::get("/v1/tenants")
        .header("authorization", "Bearer operator-token-for-tests")
        .body(Body::empty())
        .unwrap();
    let response = router(state, &config).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: serde_json::Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(body["code"], 4, "DEADLINE_EXCEEDED: {body}");
}
