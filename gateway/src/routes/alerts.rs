//! A tenant's alert events as Server-Sent Events, the REST form of the storage service's
//! `SubscribeAlerts` (a stream both ways, which no `google.api.http` rule can describe).
//!
//! `GET /v1/tenants/{tenantId}/alert-events` streams the events of `SubscribeAlerts`: each SSE
//! event has the event's cursor as its `id`, its type (`opened`, `updated`, `acknowledged`,
//! `resolved`) as its `event`, and the `AlertEvent` in proto3 JSON as its `data`. A client that
//! reconnects with `Last-Event-ID` (or `?resumeAfter=`) receives what it missed first. A
//! `lagged` event says the client fell behind; the stream goes on from the stored log. Filters:
//! `severity`, `machineId`, `ruleId`, each comma-separated. A comment every 15 s keeps proxies
//! from closing an idle stream.

use std::convert::Infallible;

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
};
use futures::{Stream, StreamExt as _};
use mfg_common::{ErrorCode, auth::Scope};
use mfg_proto::storage::v1::{
    self as pb, subscribe_alerts_request::Message as Inbound,
    subscribe_alerts_response::Message as Outbound,
};
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    json::{Path, Query},
};

/// Returns the alert events' route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant_id}/alert-events", get(alert_events))
}

fn enum_value(
    field: &str,
    value: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, ApiError> {
    let name = if value.starts_with(prefix) {
        value.to_owned()
    } else {
        format!("{prefix}{}", value.to_uppercase())
    };
    parse(&name).ok_or_else(|| ApiError::invalid_field(field, format!("`{value}` is not one")))
}

/// A request that records who acted: the gateway calls the storage service as the operator, so
/// it names the key it authenticated (`x-mfg-on-behalf-of: key:<id>`).
fn with_caller<T>(message: T, caller: &Caller) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Caller::Tenant(principal) = caller
        && let Ok(value) = format!("key:{}", principal.key_id).parse()
    {
        request
            .metadata_mut()
            .insert(crate::transcode::ON_BEHALF_OF, value);
    }
    request
}

/// The parameters of an event stream.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventsQuery {
    #[serde(default, alias = "resume_after")]
    resume_after: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default, alias = "machine_id")]
    machine_id: Option<String>,
    #[serde(default, alias = "rule_id")]
    rule_id: Option<String>,
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn event_name(kind: i32) -> &'static str {
    match pb::AlertEventType::try_from(kind) {
        Ok(pb::AlertEventType::Opened) => "opened",
        Ok(pb::AlertEventType::Updated) => "updated",
        Ok(pb::AlertEventType::Acknowledged) => "acknowledged",
        Ok(pb::AlertEventType::Resolved) => "resolved",
        _ => "unknown",
    }
}

fn sse_event(message: Result<pb::SubscribeAlertsResponse, tonic::Status>) -> Event {
    match message.map(|m| m.message) {
        Ok(Some(Outbound::Event(event))) => Event::default()
            .id(event.cursor.to_string())
            .event(event_name(event.r#type))
            .data(crate::json::to_json(&event).unwrap_or_default()),
        Ok(Some(Outbound::Lagged(lagged))) => Event::default()
            .event("lagged")
            .data(crate::json::to_json(&lagged).unwrap_or_default()),
        Ok(None) => Event::default().comment("empty message"),
        Err(status) => {
            let error = ApiError::from(status);
            Event::default()
                .event("error")
                .data(serde_json::to_string(&error.body()).unwrap_or_default())
        }
    }
}

async fn alert_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.resume_after);
    let resume_after = match resume.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(value) => value.parse::<u64>().map_err(|_| {
            ApiError::invalid_field("Last-Event-ID", "must be the id of an event (a cursor)")
        })?,
    };
    let mut severities = Vec::new();
    for value in list(query.severity.as_deref()) {
        severities.push(enum_value("severity", &value, "SEVERITY_", |name| {
            pb::Severity::from_str_name(name).map(i32::from)
        })?);
    }
    let subscription = pb::AlertSubscription {
        tenant_id,
        resume_after,
        severities,
        machine_ids: list(query.machine_id.as_deref()),
        rule_ids: list(query.rule_id.as_deref()),
    };
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    requests
        .send(pb::SubscribeAlertsRequest {
            message: Some(Inbound::Subscribe(subscription)),
        })
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the subscription could not start"))?;
    // On the key's behalf: its subscriptions count against its cap in the storage service.
    let responses = state
        .alerts()
        .subscribe_alerts(with_caller(ReceiverStream::new(receiver), &caller))
        .await?
        .into_inner();
    // The request stream stays open as long as the response is read.
    let events = responses
        .map(move |message| {
            let _open = &requests;
            Ok(sse_event(message))
        })
        .take_until(state.shutdown().clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
