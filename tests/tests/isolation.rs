//! The isolation matrix at the gateway: every route × a key of each scope × its own tenant and
//! another tenant, plus no token, a bad token, a revoked key and a deleted tenant's key.
//!
//! A key of another tenant gets 404 everywhere (nothing reveals that the tenant exists); within
//! its tenant a key gets 403 without the needed scope; operator-only routes give keys 403;
//! routes of any key (the price book) need only the scope.

use std::time::{Duration, Instant};

use mfg_common::auth::{Access, Scope};
use mfg_tests::Platform;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Needs {
    Read,
    Write,
    Admin,
    Operator,
}

struct Route {
    rpc: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    needs: Needs,
    /// Whether an allowed call succeeds: its sample body makes a valid request. Other allowed
    /// calls may fail, but never as a denial.
    succeeds: bool,
}

/// Every REST route of the contract, from its descriptors: a new RPC is covered the day it is
/// added. Path variables become fresh resources of the tenant (`{t}`, `{k}`, `{m}`, `{r}`) or
/// a made-up id.
fn routes() -> Vec<Route> {
    let mut routes = Vec::new();
    for rpc in mfg_gateway::contract::rpcs().unwrap() {
        let streaming = rpc.method.is_client_streaming() || rpc.method.is_server_streaming();
        if rpc.access == Access::Internal || streaming {
            continue;
        }
        let needs = match rpc.access {
            Access::Tenant(Scope::Read) | Access::AnyKey(Scope::Read) => Needs::Read,
            Access::Tenant(Scope::Write) | Access::AnyKey(Scope::Write) => Needs::Write,
            Access::Tenant(Scope::Admin) | Access::AnyKey(Scope::Admin) => Needs::Admin,
            Access::Operator(_) | Access::Internal => Needs::Operator,
        };
        for binding in &rpc.bindings {
            let mut path = binding.template.clone();
            for (field, placeholder) in [
                ("tenant_id", "{t}"),
                ("key_id", "{k}"),
                ("machine_id", "{m}"),
                ("rule_id", "{r}"),
            ] {
                path = path.replace(&format!("{{{field}}}"), placeholder);
            }
            for field in binding.path_fields() {
                path = path.replace(
                    &format!("{{{field}}}"),
                    "01a20c65-7cc4-737a-8cd8-9568c361dd9e",
                );
            }
            let sample = sample_body(rpc.name);
            let body = match (&binding.body, &sample) {
                (_, Some(Some(body))) => Some(body.clone()),
                (Some(_), _) => Some(json!({})),
                (None, _) => None,
            };
            routes.push(Route {
                rpc: rpc.name,
                method: Method::from_bytes(binding.method.as_str().as_bytes()).unwrap(),
                path,
                body,
                needs,
                succeeds: sample.is_some(),
            });
        }
    }
    routes
}

/// The body of an RPC's call that succeeds when allowed (`Some(None)`: no body needed), for
/// the RPCs whose allowed calls the matrix checks end to end.
fn sample_body(rpc: &str) -> Option<Option<Value>> {
    Some(match rpc {
        "CreateTenant" => Some(json!({"name": "NAME"})),
        "UpdateTenant" => Some(json!({"displayName": "x"})),
        "CreateApiKey" => Some(json!({"scopes": ["SCOPE_READ"]})),
        "CreateMachine" => Some(json!({"machineId": "NAME"})),
        "UpdateMachine" => Some(json!({"displayName": "y"})),
        "CreateAlertRule" => Some(rule()),
        "UpdateAlertRule" => Some(json!({"displayName": "z"})),
        "ListTenants" | "GetTenant" | "DeleteTenant" | "ListApiKeys" | "RevokeApiKey"
        | "ListMachines" | "GetMachine" | "DeleteMachine" | "ListAlertRules" | "GetAlertRule"
        | "DeleteAlertRule" | "ListAlerts" | "GetLatestValues" | "GetPriceBook"
        | "GetTenantCost" | "GetCostSummary" | "GetCostForecast" | "GetBudget" => None,
        "UpdateBudget" => Some(json!({"alertThresholds": [0.9]})),
        _ => return None,
    })
}

fn rule() -> Value {
    json!({
        "metric": "spindle_temp_c",
        "severity": "SEVERITY_MAJOR",
        "condition": {"threshold": {"comparison": "COMPARISON_GREATER", "value": 80}},
    })
}

struct World {
    http: Client,
    base: String,
    operator: String,
    counter: std::sync::atomic::AtomicUsize,
}

impl World {
    /// Runs `mfg up` in a temporary directory and returns a client world for it.
    async fn up() -> (tempfile::TempDir, Platform, Self) {
        let dir = tempfile::tempdir().unwrap();
        let platform = Platform::up(dir.path(), None).await;
        let world = Self {
            http: Client::new(),
            base: platform.base.clone(),
            operator: platform.operator_token.clone(),
            counter: Default::default(),
        };
        (dir, platform, world)
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

    async fn operator(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self
            .call(method, path, Some(&self.operator.clone()), body)
            .await;
        assert!(status.is_success(), "{status}: {value}");
        value
    }

    fn unique(&self, prefix: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("{prefix}-{n}")
    }

    async fn tenant(&self) -> String {
        let name = self.unique("tenant");
        // The matrix calls faster than the default limit of 100 requests a second.
        let tenant = json!({"name": name, "limits": {"apiRequestsPerSecond": 10_000}});
        let tenant = self
            .operator(Method::POST, "/v1/tenants", Some(tenant))
            .await;
        tenant["id"].as_str().unwrap().to_owned()
    }

    async fn key(&self, tenant: &str, scope: &str) -> (String, String) {
        let created = self
            .operator(
                Method::POST,
                &format!("/v1/tenants/{tenant}/api-keys"),
                Some(json!({"scopes": [scope]})),
            )
            .await;
        (
            created["apiKey"]["keyId"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn machine(&self, tenant: &str) -> String {
        let id = self.unique("m");
        self.operator(
            Method::POST,
            &format!("/v1/tenants/{tenant}/machines"),
            Some(json!({"machineId": id})),
        )
        .await;
        id
    }

    /// Fills a route's path and body with fresh resources of `tenant`, so that a call that is
    /// allowed does not disturb the next one.
    async fn request(&self, route: &Route, tenant: &str) -> (String, Option<Value>) {
        let mut path = route.path.replace("{t}", tenant);
        if path.contains("{k}") {
            path = path.replace("{k}", &self.key(tenant, "SCOPE_READ").await.0);
        }
        if path.contains("{m}") {
            path = path.replace("{m}", &self.machine(tenant).await);
        }
        if path.contains("{r}") {
            let created = self
                .operator(
                    Method::POST,
                    &format!("/v1/tenants/{tenant}/alert-rules"),
                    Some(rule()),
                )
                .await;
            path = path.replace("{r}", created["ruleId"].as_str().unwrap());
        }
        let body = route.body.as_ref().map(|body| {
            let text = body.to_string().replace("NAME", &self.unique("new"));
            serde_json::from_str(&text).unwrap()
        });
        (path, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_isolates_tenants_and_enforces_scopes() {
    let (_dir, platform, world) = World::up().await;

    let mine = world.tenant().await;
    let theirs = world.tenant().await;
    let scopes = [
        ("SCOPE_READ", Needs::Read),
        ("SCOPE_WRITE", Needs::Write),
        ("SCOPE_ADMIN", Needs::Admin),
    ];
    let mut checked = 0;
    for (scope, holds) in scopes {
        let (_, key) = world.key(&mine, scope).await;
        for route in routes() {
            // Another tenant's resources: 404, whatever the route and scope.
            if route.path.contains("{t}") {
                let (path, body) = world.request(&route, &theirs).await;
                let (status, value) = world
                    .call(route.method.clone(), &path, Some(&key), body)
                    .await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{scope} {} {path}: {value}",
                    route.method
                );
                assert_eq!(value["code"], 5);
                checked += 1;
            }
            // Its own tenant: allowed with the scope, 403 without it or for operator routes.
            let (path, body) = world.request(&route, &mine).await;
            let (status, value) = world
                .call(route.method.clone(), &path, Some(&key), body)
                .await;
            let allowed = route.needs != Needs::Operator && holds >= route.needs;
            if allowed && route.succeeds {
                assert!(
                    status.is_success(),
                    "{scope} {} {path} ({}) should pass: {status} {value}",
                    route.method,
                    route.rpc
                );
            } else if allowed {
                let denied = [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status)
                    || value["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(&format!("tenant `{mine}`")));
                assert!(
                    !denied,
                    "{scope} {} {path} ({}) is allowed: {status} {value}",
                    route.method, route.rpc
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{scope} {} {path}: {value}",
                    route.method
                );
                assert_eq!(value["code"], 7);
            }
            checked += 1;
        }
    }

    for route in routes() {
        let (path, body) = world.request(&route, &mine).await;
        let (status, _) = world
            .call(route.method.clone(), &path, None, body.clone())
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "no token: {} {path}",
            route.method
        );
        let (status, _) = world
            .call(route.method.clone(), &path, Some("mfg_forged_token"), body)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "bad token: {} {path}",
            route.method
        );
        checked += 2;
    }
    let all = routes();
    let of_a_tenant = all.iter().filter(|r| r.path.contains("{t}")).count();
    assert!(all.len() >= 40, "{} routes", all.len());
    assert_eq!(checked, 3 * (of_a_tenant + all.len()) + 2 * all.len());

    // A revoked key stops working within 1 s of the revocation.
    let (key_id, secret) = world.key(&mine, "SCOPE_READ").await;
    let own = format!("/v1/tenants/{mine}");
    assert_eq!(
        world.call(Method::GET, &own, Some(&secret), None).await.0,
        StatusCode::OK
    );
    world
        .operator(
            Method::DELETE,
            &format!("/v1/tenants/{mine}/api-keys/{key_id}"),
            None,
        )
        .await;
    let revoked = Instant::now();
    loop {
        // What is guaranteed: no request *sent* more than 1 s after the revocation succeeds.
        let sent = revoked.elapsed();
        let (status, _) = world.call(Method::GET, &own, Some(&secret), None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            sent <= Duration::from_millis(1000),
            "a revoked key still worked {sent:?} after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // A deleted tenant's keys stop working within 1 s too.
    let (_, secret) = world.key(&theirs, "SCOPE_ADMIN").await;
    let their_own = format!("/v1/tenants/{theirs}");
    assert_eq!(
        world
            .call(Method::GET, &their_own, Some(&secret), None)
            .await
            .0,
        StatusCode::OK
    );
    world.operator(Method::DELETE, &their_own, None).await;
    let deleted = Instant::now();
    loop {
        let sent = deleted.elapsed();
        let (status, _) = world
            .call(Method::GET, &their_own, Some(&secret), None)
            .await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            sent <= Duration::from_millis(1000),
            "a deleted tenant's key still worked {sent:?} after"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_shared_tenant_is_rate_limited_and_a_dedicated_one_is_not() {
    let (_dir, platform, world) = World::up().await;
    let create = |name: &str, plan: &str, rate: u32| json!({"name": name, "plan": plan, "limits": {"apiRequestsPerSecond": rate}});
    let shared = world
        .operator(
            Method::POST,
            "/v1/tenants",
            Some(create("flooder", "PLAN_SHARED", 5)),
        )
        .await;
    let dedicated = world
        .operator(
            Method::POST,
            "/v1/tenants",
            Some(create("steady", "PLAN_DEDICATED", 1000)),
        )
        .await;
    let (shared_id, dedicated_id) = (
        shared["id"].as_str().unwrap(),
        dedicated["id"].as_str().unwrap(),
    );
    let (_, shared_key) = world.key(shared_id, "SCOPE_READ").await;
    let (_, dedicated_key) = world.key(dedicated_id, "SCOPE_READ").await;

    let (shared_path, dedicated_path) = (
        format!("/v1/tenants/{shared_id}"),
        format!("/v1/tenants/{dedicated_id}"),
    );
    let flood = (0..60).map(|_| world.call(Method::GET, &shared_path, Some(&shared_key), None));
    let steady =
        (0..60).map(|_| world.call(Method::GET, &dedicated_path, Some(&dedicated_key), None));
    let started = Instant::now();
    let (flooded, served) = tokio::join!(
        futures::future::join_all(flood),
        futures::future::join_all(steady)
    );
    let took = started.elapsed().as_secs_f64();

    let limited: Vec<_> = flooded
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let passed = flooded
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    // The bucket holds one second's worth (5) and refills at 5 per second while the flood lasts.
    let most = 5 + (5.0 * took).ceil() as usize + 1;
    assert!(
        (5..=most).contains(&passed),
        "a burst of 5 passes, then 5 per second: {passed} passed in {took:.2} s"
    );
    assert_eq!(limited.len() + passed, 60);
    assert_eq!(
        limited[0].1["code"], 8,
        "RESOURCE_EXHAUSTED: {}",
        limited[0].1
    );
    assert!(
        served.iter().all(|(status, _)| *status == StatusCode::OK),
        "the dedicated tenant is never limited by another"
    );

    // The bucket refills one token every 200 ms, so a request right after the flood may pass;
    // of a few sent back to back, one is refused, and that answer carries Retry-After.
    let mut refused = None;
    for _ in 0..10 {
        let response = world
            .http
            .get(format!("{}/v1/tenants/{shared_id}", world.base))
            .bearer_auth(&shared_key)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = refused.expect("back-to-back requests of a flooding tenant are refused");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenants_keys_read_but_do_not_write() {
    let (_dir, platform, world) = World::up().await;
    let tenant = world.tenant().await;
    let (_, admin) = world.key(&tenant, "SCOPE_ADMIN").await;
    let machines = format!("/v1/tenants/{tenant}/machines");
    let patched = world
        .operator(
            Method::PATCH,
            &format!("/v1/tenants/{tenant}"),
            Some(json!({"state": "TENANT_STATE_SUSPENDED"})),
        )
        .await;
    assert_eq!(patched["state"], "TENANT_STATE_SUSPENDED", "{patched}");

    // Within the key cache's second, the suspension takes effect.
    let suspended = Instant::now();
    loop {
        let sent = suspended.elapsed();
        let body = json!({"machineId": world.unique("m")});
        let (status, body) = world
            .call(Method::POST, &machines, Some(&admin), Some(body))
            .await;
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(body["code"], 9, "FAILED_PRECONDITION: {body}");
            break;
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(
            sent <= Duration::from_millis(1000),
            "writes still passed {sent:?} after the suspension"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, _) = world.call(Method::GET, &machines, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "reads go on");

    world
        .operator(
            Method::PATCH,
            &format!("/v1/tenants/{tenant}"),
            Some(json!({"state": "TENANT_STATE_ACTIVE"})),
        )
        .await;
    let reactivated = Instant::now();
    loop {
        let sent = reactivated.elapsed();
        let body = json!({"machineId": world.unique("after")});
        let (status, body) = world
            .call(Method::POST, &machines, Some(&admin), Some(body))
            .await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(body["code"], 9, "{body}");
        assert!(
            sent <= Duration::from_millis(1000),
            "writes still refused {sent:?} after reactivation"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    platform.stop().await;
}
