//! Alert routes, served by the storage service's `AlertService`: a tenant's alert rules, its
//! alerts, and its alert events as Server-Sent Events.
//!
//! Rules and alerts are read with read scope; rules are written with admin scope, alerts
//! acknowledged and resolved with write scope. A PATCH of a rule changes the fields its body
//! sets (or those `updateMask` names); `selector` and `condition` are replaced whole.
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
    routing::{get, post},
};
use futures::{Stream, StreamExt as _};
use mfg_common::{ErrorCode, auth::Scope};
use mfg_proto::storage::v1::{
    self as pb, subscribe_alerts_request::Message as Inbound,
    subscribe_alerts_response::Message as Outbound,
};
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use super::{ListQuery, PatchQuery, mask};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    json::{Body, Path, Query, RawBody, Reply, from_value},
};

type Result<T> = std::result::Result<Reply<T>, ApiError>;

/// Returns the alert routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/{tenant_id}/alert-rules",
            get(list_rules).post(create_rule),
        )
        .route(
            "/v1/tenants/{tenant_id}/alert-rules/{rule_id}",
            get(get_rule).patch(update_rule).delete(delete_rule),
        )
        .route("/v1/tenants/{tenant_id}/alerts", get(list_alerts))
        .route("/v1/tenants/{tenant_id}/alerts/{alert_id}", get(get_alert))
        .route(
            "/v1/tenants/{tenant_id}/alerts/{alert_id}/acknowledge",
            post(acknowledge_alert),
        )
        .route(
            "/v1/tenants/{tenant_id}/alerts/{alert_id}/resolve",
            post(resolve_alert),
        )
        .route("/v1/tenants/{tenant_id}/alert-events", get(alert_events))
}

async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Body(rule): Body<pb::AlertRule>,
) -> Result<pb::AlertRule> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let request = pb::CreateAlertRuleRequest {
        tenant_id,
        rule: Some(rule),
    };
    let reply = state.alerts().create_alert_rule(request).await?;
    Ok(Reply::created(reply.into_inner().rule.unwrap_or_default()))
}

async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<pb::ListAlertRulesResponse> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let request = pb::ListAlertRulesRequest {
        tenant_id,
        page_size: query.page_size,
        page_token: query.page_token,
    };
    Ok(Reply::ok(
        state.alerts().list_alert_rules(request).await?.into_inner(),
    ))
}

async fn get_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, rule_id)): Path<(String, String)>,
) -> Result<pb::AlertRule> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let request = pb::GetAlertRuleRequest { tenant_id, rule_id };
    let reply = state.alerts().get_alert_rule(request).await?;
    Ok(Reply::ok(reply.into_inner().rule.unwrap_or_default()))
}

async fn update_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, rule_id)): Path<(String, String)>,
    Query(query): Query<PatchQuery>,
    RawBody(body): RawBody,
) -> Result<pb::AlertRule> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let update_mask = mask(&query, &body, &[]);
    let request = pb::UpdateAlertRuleRequest {
        tenant_id,
        rule_id,
        rule: Some(from_value(body)?),
        update_mask,
    };
    let reply = state.alerts().update_alert_rule(request).await?;
    Ok(Reply::ok(reply.into_inner().rule.unwrap_or_default()))
}

async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, rule_id)): Path<(String, String)>,
) -> Result<pb::DeleteAlertRuleResponse> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let request = pb::DeleteAlertRuleRequest { tenant_id, rule_id };
    Ok(Reply::ok(
        state
            .alerts()
            .delete_alert_rule(request)
            .await?
            .into_inner(),
    ))
}

/// The parameters of a list of alerts.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlertsQuery {
    /// `open`, `acknowledged`, `resolved`, or the enum names.
    #[serde(default)]
    state: Option<String>,
    #[serde(default, alias = "page_size")]
    page_size: i32,
    #[serde(default, alias = "page_token")]
    page_token: String,
}

fn enum_value(
    field: &str,
    value: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> std::result::Result<i32, ApiError> {
    let name = if value.starts_with(prefix) {
        value.to_owned()
    } else {
        format!("{prefix}{}", value.to_uppercase())
    };
    parse(&name).ok_or_else(|| ApiError::invalid_field(field, format!("`{value}` is not one")))
}

async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(query): Query<AlertsQuery>,
) -> Result<pb::ListAlertsResponse> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let alert_state = match query.state.as_deref() {
        None | Some("") => 0,
        Some(value) => enum_value("state", value, "ALERT_STATE_", |name| {
            pb::AlertState::from_str_name(name).map(i32::from)
        })?,
    };
    let request = pb::ListAlertsRequest {
        tenant_id,
        state: alert_state,
        page_size: query.page_size,
        page_token: query.page_token,
    };
    Ok(Reply::ok(
        state.alerts().list_alerts(request).await?.into_inner(),
    ))
}

async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, alert_id)): Path<(String, String)>,
) -> Result<pb::Alert> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let request = pb::GetAlertRequest {
        tenant_id,
        alert_id,
    };
    let reply = state.alerts().get_alert(request).await?;
    Ok(Reply::ok(reply.into_inner().alert.unwrap_or_default()))
}

async fn acknowledge_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, alert_id)): Path<(String, String)>,
) -> Result<pb::Alert> {
    caller.authorize(&tenant_id, Scope::Write)?;
    let request = pb::AcknowledgeAlertRequest {
        tenant_id,
        alert_id,
    };
    let request = with_caller(request, &caller);
    let reply = state.alerts().acknowledge_alert(request).await?;
    Ok(Reply::ok(reply.into_inner().alert.unwrap_or_default()))
}

async fn resolve_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, alert_id)): Path<(String, String)>,
) -> Result<pb::Alert> {
    caller.authorize(&tenant_id, Scope::Write)?;
    let request = pb::ResolveAlertRequest {
        tenant_id,
        alert_id,
    };
    let request = with_caller(request, &caller);
    let reply = state.alerts().resolve_alert(request).await?;
    Ok(Reply::ok(reply.into_inner().alert.unwrap_or_default()))
}

/// A request that records who acted: the gateway calls the storage service as the operator, so
/// it names the key it authenticated (`x-mfg-on-behalf-of: key:<id>`).
fn with_caller<T>(message: T, caller: &Caller) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Caller::Tenant(principal) = caller
        && let Ok(value) = format!("key:{}", principal.key_id).parse()
    {
        request.metadata_mut().insert(ON_BEHALF_OF, value);
    }
    request
}

/// The metadata the gateway names the acting key in.
pub const ON_BEHALF_OF: &str = "x-mfg-on-behalf-of";

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

fn sse_event(message: std::result::Result<pb::SubscribeAlertsResponse, tonic::Status>) -> Event {
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
) -> std::result::Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>, ApiError>
{
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
