//! The REST gateway through `mfg up` on port-0 listeners: routes, status codes, JSON shapes and
//! error bodies, on the embedded default and on PostgreSQL; a restart on the same data
//! directory finds everything.

use mfg_common::testing::TestDatabase;
use mfg_tests::Platform;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Api {
    http: Client,
    base: String,
    token: String,
}

impl Api {
    fn new(platform: &Platform) -> Self {
        Self {
            http: Client::new(),
            base: platform.base.clone(),
            token: platform.operator_token.clone(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        mfg_tests::http_call(&self.http, &self.base, method, path, token, body).await
    }

    async fn operator(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.token.clone();
        self.call(method, path, Some(&token), body).await
    }
}

fn assert_status_body(body: &Value, code: i64) {
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["details"].is_array(), "{body}");
}

async fn tour(api: &Api) -> String {
    let (status, ready) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, ready["ready"].clone()),
        (StatusCode::OK, json!(true)),
        "{ready}"
    );
    let (status, _) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, tenant) = api
        .operator(
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "acme-stamping", "display_name": "ACME"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    for field in [
        "id",
        "name",
        "displayName",
        "plan",
        "state",
        "limits",
        "retention",
        "monthlyBudgetUsd",
        "createTime",
        "updateTime",
    ] {
        assert!(
            tenant.get(field).is_some(),
            "tenant JSON lacks {field}: {tenant}"
        );
    }
    assert_eq!(tenant["plan"], "PLAN_SHARED");
    assert_eq!(
        tenant["displayName"], "ACME",
        "snake_case input is accepted"
    );
    assert_eq!(tenant["retention"]["hotDays"], 30);
    let created = tenant["createTime"].as_str().unwrap();
    assert!(
        created.starts_with("20") && created.ends_with('Z'),
        "RFC 3339 in UTC, ending in Z as proto3 JSON prefers: {tenant}"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    let id = tenant["id"].as_str().unwrap().to_owned();

    let (status, key) = api
        .operator(
            Method::POST,
            &format!("/v1/tenants/{id}/api-keys"),
            Some(json!({"displayName": "collector", "scopes": ["SCOPE_WRITE"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert!(key["secret"].as_str().unwrap().starts_with("mfg_"), "{key}");
    assert_eq!(key["apiKey"]["scopes"], json!(["SCOPE_WRITE"]));

    let (status, machine) = api
        .operator(
            Method::POST,
            &format!("/v1/tenants/{id}/machines"),
            Some(json!({"machineId": "press-7", "labels": {"line": "a"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{machine}");
    for field in ["machineId", "displayName", "labels", "createTime"] {
        assert!(
            machine.get(field).is_some(),
            "machine JSON lacks {field}: {machine}"
        );
    }

    let (status, list) = api
        .operator(Method::GET, "/v1/tenants?pageSize=10", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(list["nextPageToken"], "");
    let (status, keys) = api
        .operator(Method::GET, &format!("/v1/tenants/{id}/api-keys"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        keys["apiKeys"][0].get("secret").is_none(),
        "listing shows no secret: {keys}"
    );

    let (status, patched) = api
        .operator(
            Method::PATCH,
            &format!("/v1/tenants/{id}"),
            Some(json!({"limits": {"maxMachines": 3}, "labels": {"site": "lyon"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["limits"]["maxMachines"], 3);
    assert_eq!(
        patched["limits"]["ingestReadingsPerSecond"], 5000,
        "fields outside the body are kept"
    );
    assert_eq!(patched["displayName"], "ACME");

    let (status, machine) = api
        .operator(
            Method::PATCH,
            &format!("/v1/tenants/{id}/machines/press-7"),
            Some(json!({"displayName": "Press 7"})),
        )
        .await;
    assert_eq!(
        (status, machine["displayName"].clone()),
        (StatusCode::OK, json!("Press 7"))
    );
    assert_eq!(machine["labels"]["line"], "a");

    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"mfg_gateway_http_requests_total{method="POST",route="/v1/tenants",status="2xx"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("mfg_gateway_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    id
}

async fn errors(api: &Api, id: &str) {
    let (status, body) = api
        .operator(
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "acme-stamping"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_status_body(&body, 6);

    let (status, body) = api
        .operator(
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "Bad Name"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_status_body(&body, 3);
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"],
        "tenant.name"
    );

    let (status, body) = api
        .operator(Method::POST, "/v1/tenants", Some(json!({"name": 7})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a wrong type");
    assert_status_body(&body, 3);

    let malformed = api
        .http
        .post(format!("{}/v1/tenants", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_status_body(&malformed.json().await.unwrap(), 3);

    let oversized = api
        .http
        .post(format!("{}/v1/tenants", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(5 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_status_body(&oversized.json().await.unwrap(), 11);

    let (status, body) = api.operator(Method::GET, "/v1/no-such-route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_status_body(&body, 5);
    let (status, body) = api.operator(Method::PUT, "/v1/tenants", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_status_body(&body, 12);

    let (status, body) = api
        .operator(Method::GET, "/v1/tenants/not-a-uuid", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"],
        "tenant_id"
    );
    let (status, body) = api
        .operator(Method::GET, "/v1/tenants?pageSize=-1", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_status_body(&body, 3);
    let (status, body) = api
        .operator(
            Method::GET,
            &format!("/v1/tenants/{id}/machines/nope"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_status_body(&body, 5);
    for n in 0..2 {
        api.operator(
            Method::POST,
            &format!("/v1/tenants/{id}/machines"),
            Some(json!({"machineId": format!("m{n}")})),
        )
        .await;
    }
    let (status, body) = api
        .operator(
            Method::POST,
            &format!("/v1/tenants/{id}/machines"),
            Some(json!({"machineId": "over"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "FAILED_PRECONDITION maps to 400: {body}"
    );
    assert_status_body(&body, 9);

    let (status, body) = api.call(Method::GET, "/v1/tenants", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_status_body(&body, 16);
    let (status, _) = api
        .call(Method::GET, "/v1/tenants", Some("not-a-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_embedded_default_serves_the_tour_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let api = Api::new(&platform);
    let id = tour(&api).await;
    errors(&api, &id).await;
    let token = platform.operator_token.clone();
    platform.stop().await;

    let again = Platform::up(dir.path(), None).await;
    assert_eq!(
        again.operator_token, token,
        "the generated operator token is kept"
    );
    let api = Api::new(&again);
    let (status, tenant) = api
        .operator(Method::GET, &format!("/v1/tenants/{id}"), None)
        .await;
    assert_eq!(
        (status, tenant["name"].clone()),
        (StatusCode::OK, json!("acme-stamping"))
    );
    again.stop().await;
}

#[tokio::test]
async fn the_same_wiring_runs_on_postgres() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), Some(&db.url)).await;
    let api = Api::new(&platform);
    let id = tour(&api).await;
    errors(&api, &id).await;
    platform.stop().await;
}
