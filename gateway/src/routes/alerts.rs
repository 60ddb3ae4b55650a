//! Alert routes, served by the storage service's `AlertService`: a tenant's alert rules.
//!
//! Rules are read with read scope and written with admin scope. A PATCH changes the fields its
//! body sets (or those `updateMask` names); `selector` and `condition` are replaced whole.

use axum::{Router, extract::State, routing::get};
use mfg_common::auth::Scope;
use mfg_proto::storage::v1 as pb;

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
