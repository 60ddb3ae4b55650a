//! REST to gRPC, generated from the contract: one route per `google.api.http` binding of every
//! unary RPC the edge serves, and one handler for all of them. A request is checked against
//! the RPC's declared access (before its body is read, when the path names the tenant), turned
//! into the RPC's request message (path variables, the body as its rule says, query
//! parameters for the remaining fields), sent to the service as raw protobuf, and the answer
//! (or its `response_body` field) written back as proto3 JSON with the RPC's success status.
//!
//! Only what the contract cannot say is written by hand elsewhere: the alert events as
//! Server-Sent Events, and the `Retry-After` header of a throttled call (`error`).

mod message;
mod upstream;

pub use upstream::ON_BEHALF_OF;

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, RawPathParams, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter},
};
use mfg_common::{ErrorCode, auth::Access};

use crate::{
    AppState,
    auth::Caller,
    contract::{Binding, Rpc},
    error::ApiError,
};

/// A route's path variables, `(field, value)`, in the template's order.
type Params = Vec<(String, String)>;

/// One binding of one RPC: what a route dispatches to.
#[derive(Debug)]
struct Target {
    rpc: &'static Rpc,
    binding: &'static Binding,
}

/// The routes of every annotated unary RPC that is not internal. The contract was read when
/// the state was made ([`AppState::new`] fails on a contract the edge cannot serve).
pub fn routes() -> Router<AppState> {
    let Ok(rpcs) = crate::contract::rpcs() else {
        return Router::new();
    };
    // Bindings that differ only by a custom verb after a variable (`{run_id}` and
    // `{run_id}:retry`) share a route; the handler tells them apart.
    let mut by_path: BTreeMap<String, BTreeMap<String, Vec<Target>>> = BTreeMap::new();
    for rpc in rpcs {
        let streaming = rpc.method.is_client_streaming() || rpc.method.is_server_streaming();
        if rpc.access == Access::Internal || streaming {
            continue;
        }
        for binding in &rpc.bindings {
            by_path
                .entry(binding.axum_path())
                .or_default()
                .entry(binding.method.to_string())
                .or_default()
                .push(Target { rpc, binding });
        }
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        let mut route: Option<MethodRouter<AppState>> = None;
        for (method, targets) in methods {
            let Ok(filter) = http::Method::from_bytes(method.as_bytes())
                .map_err(|_| ())
                .and_then(|m| MethodFilter::try_from(m).map_err(|_| ()))
            else {
                continue;
            };
            let targets = Arc::new(targets);
            let handler = axum::routing::on(filter, move |state: State<AppState>, request| {
                handle(state, targets.clone(), request)
            });
            route = Some(match route {
                Some(route) => route.merge(handler),
                None => handler,
            });
        }
        if let Some(route) = route {
            router = router.route(&path, route);
        }
    }
    router
}

async fn handle(
    State(state): State<AppState>,
    targets: Arc<Vec<Target>>,
    request: Request,
) -> Response {
    match transcode(&state, &targets, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The longest request id passed on.
const MAX_REQUEST_ID: usize = 128;

async fn transcode(
    state: &AppState,
    targets: &[Target],
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, state)
        .await
        .map_err(|rejection| ApiError::new(ErrorCode::InvalidArgument, rejection.body_text()))?;
    let params: Params = params
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let (target, params) = select(targets, params)?;
    let caller = Caller::from_request_parts(&mut parts, state).await?;
    let in_path = params
        .iter()
        .find(|(name, _)| name == "tenant_id")
        .map(|(_, value)| value.clone());
    let tenant_in_message = in_path.is_none() && target.rpc.tenant_field().is_some();
    if !tenant_in_message {
        caller.permits(target.rpc.access, in_path.as_deref())?;
    }
    let query = parts.uri.query().unwrap_or_default().to_owned();
    // The caller's request id, or one of ours: passed on, recorded by audits, and answered.
    let request_id = parts
        .headers
        .get(mfg_common::audit::REQUEST_ID)
        .filter(|id| !id.is_empty() && id.len() <= MAX_REQUEST_ID)
        .cloned()
        .unwrap_or_else(|| {
            http::HeaderValue::try_from(uuid::Uuid::now_v7().to_string())
                .expect("a UUID is a header value")
        });
    let body = match target.binding.body {
        Some(_) => Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    crate::error::payload_too_large()
                } else {
                    ApiError::new(ErrorCode::InvalidArgument, rejection.body_text())
                }
            })?,
        None => Bytes::new(),
    };
    let request = message::build(target.rpc, target.binding, &params, &query, &body)?;
    if tenant_in_message {
        let tenant = message::tenant_of(&request);
        caller.permits(target.rpc.access, Some(&tenant))?;
    }
    let answer = upstream::call(
        state,
        target.rpc,
        &caller,
        request_id.to_str().ok(),
        request,
    )
    .await?;
    let json = message::answer_json(target.rpc, target.binding, &answer)?;
    Ok((
        target.rpc.status,
        [
            (
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            ),
            (
                http::HeaderName::from_static(mfg_common::audit::REQUEST_ID),
                request_id,
            ),
        ],
        json,
    )
        .into_response())
}

/// The binding a request is for: the one whose custom verb ends the path's last variable
/// (`r1:retry`), else the one without a verb. The verb is taken off the variable's value.
fn select(targets: &[Target], mut params: Params) -> Result<(&Target, Params), ApiError> {
    let last = params.last().map(|(_, value)| value.clone());
    for target in targets {
        if let (Some(verb), Some(value)) = (&target.binding.verb, &last)
            && let Some(stripped) = value.strip_suffix(verb.as_str())
            && let Some(stripped) = stripped.strip_suffix(':')
        {
            if let Some(param) = params.last_mut() {
                param.1 = stripped.to_owned();
            }
            return Ok((target, params));
        }
    }
    targets
        .iter()
        .find(|t| t.binding.verb.is_none())
        .map(|target| (target, params))
        .ok_or_else(|| ApiError::not_found("no such route"))
}
