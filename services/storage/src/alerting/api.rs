//! The gRPC adapter of `mfg.storage.v1.AlertService`. Rules and alerts are read with read
//! scope; rules are written with admin scope, alerts acknowledged and resolved with write
//! scope. A key addressing another tenant is refused before anything else. `SubscribeAlerts`
//! streams a tenant's alert events (see [`subscribe`]).

mod convert;
mod subscribe;

use mfg_common::audit::Asker;
use mfg_common::{
    auth::{Caller, Scope},
    pagination::PageRequest,
    shutdown::CancellationToken,
};
use std::{pin::Pin, sync::Arc};

use futures::Stream;
use mfg_proto::storage::v1::{
    self as pb, alert_service_server::AlertService, subscribe_alerts_request,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::service::ReadyStorage;
use crate::{
    alerting::{Alerting, SubscriberCaps},
    error::StorageError,
};

/// Serves `mfg.storage.v1.AlertService`.
#[derive(Debug, Clone)]
pub struct AlertApi {
    storage: ReadyStorage,
    shutdown: CancellationToken,
    subscribers: Arc<SubscriberCaps>,
    metrics: Arc<crate::metrics::StorageMetrics>,
}

impl AlertApi {
    /// Creates the adapter over operations that become ready later; subscriptions end at
    /// `shutdown`, and are capped by `subscribers`.
    pub fn new(
        storage: ReadyStorage,
        shutdown: CancellationToken,
        subscribers: Arc<SubscriberCaps>,
        metrics: Arc<crate::metrics::StorageMetrics>,
    ) -> Self {
        Self {
            storage,
            shutdown,
            subscribers,
            metrics,
        }
    }

    fn rules(&self) -> Result<&Alerting, StorageError> {
        Ok(&self.storage.get().ok_or(StorageError::NotReady)?.alerting)
    }
}

/// Parses the id of the tenant a request names; the caller was checked against it by the
/// server's auth layer, as the contract declares.
fn tenant(tenant_id: &str) -> Result<Uuid, Status> {
    Ok(crate::telemetry::api::convert::tenant_id(tenant_id)?)
}

/// Who the caller is, as alerts record it: `key:<key id>`, or `operator`.
fn who<T>(request: &Request<T>) -> Result<String, Status> {
    Caller::acting(request)
}

fn alert_id(value: &str) -> Result<Uuid, StorageError> {
    if value.is_empty() {
        return Err(StorageError::invalid("alert_id", "is required"));
    }
    Uuid::parse_str(value).map_err(|_| StorageError::invalid("alert_id", "must be a UUID"))
}

fn rule_id(value: &str) -> Result<Uuid, StorageError> {
    if value.is_empty() {
        return Err(StorageError::invalid("rule_id", "is required"));
    }
    Uuid::parse_str(value).map_err(|_| StorageError::invalid("rule_id", "must be a UUID"))
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn create_alert_rule(
        &self,
        request: Request<pb::CreateAlertRuleRequest>,
    ) -> Result<Response<pb::CreateAlertRuleResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let id = (!request.rule_id.is_empty())
            .then(|| rule_id(&request.rule_id))
            .transpose()?;
        let spec = convert::new_rule(request.rule)?;
        let rules = self.rules()?;
        let rule = if request.validate_only {
            rules.validate(tenant, spec, id)?
        } else {
            rules.create(tenant, spec, id, &asker).await?
        };
        Ok(Response::new(pb::CreateAlertRuleResponse {
            rule: Some(convert::rule(rule)),
        }))
    }

    async fn get_alert_rule(
        &self,
        request: Request<pb::GetAlertRuleRequest>,
    ) -> Result<Response<pb::GetAlertRuleResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let rule_id = rule_id(&request.get_ref().rule_id)?;
        let rule = self.rules()?.get(tenant, rule_id).await?;
        Ok(Response::new(pb::GetAlertRuleResponse {
            rule: Some(convert::rule(rule)),
        }))
    }

    async fn list_alert_rules(
        &self,
        request: Request<pb::ListAlertRulesRequest>,
    ) -> Result<Response<pb::ListAlertRulesResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let page = PageRequest::parse(request.get_ref().page_size, &request.get_ref().page_token)
            .map_err(|violation| StorageError::InvalidArgument(vec![violation]))?;
        let (rules, next_page_token) = self.rules()?.list(tenant, &page).await?;
        Ok(Response::new(pb::ListAlertRulesResponse {
            rules: rules.into_iter().map(convert::rule).collect(),
            next_page_token,
        }))
    }

    async fn update_alert_rule(
        &self,
        request: Request<pb::UpdateAlertRuleRequest>,
    ) -> Result<Response<pb::UpdateAlertRuleResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let rule_id = rule_id(&request.get_ref().rule_id)?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let patch = convert::rule_patch(request.rule, request.update_mask)?;
        let rule = self.rules()?.update(tenant, rule_id, patch, &asker).await?;
        Ok(Response::new(pb::UpdateAlertRuleResponse {
            rule: Some(convert::rule(rule)),
        }))
    }

    async fn delete_alert_rule(
        &self,
        request: Request<pb::DeleteAlertRuleRequest>,
    ) -> Result<Response<pb::DeleteAlertRuleResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let rule_id = rule_id(&request.get_ref().rule_id)?;
        let asker = Asker::of(&request)?;
        self.rules()?.delete(tenant, rule_id, Some(&asker)).await?;
        Ok(Response::new(pb::DeleteAlertRuleResponse {}))
    }

    async fn subscribe_alerts(
        &self,
        request: Request<Streaming<pb::SubscribeAlertsRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<pb::SubscribeAlertsResponse, Status>> + Send>>>,
        Status,
    > {
        let caller = Caller::of(&request)?;
        let key = Some(who(&request)?).filter(|who| who.starts_with("key:"));
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .and_then(|m| m.message)
            .ok_or_else(|| Status::invalid_argument("the first message must be a subscribe"))?;
        let subscribe_alerts_request::Message::Subscribe(subscription) = first else {
            return Err(StorageError::invalid(
                "subscribe",
                "the first message must be a subscribe",
            )
            .into());
        };
        caller.authorize(&subscription.tenant_id, Scope::Read)?;
        let tenant = crate::telemetry::api::convert::tenant_id(&subscription.tenant_id)?;
        let filters = subscribe::Filters::parse(&subscription)?;
        let slot = self.subscribers.admit(tenant, key)?;
        let alerting = self.rules()?.clone();
        let live = alerting.journal().subscribe();
        // A cursor beyond the log would skip every event to come until one passed it.
        if subscription.resume_after > 0 {
            let newest = alerting.store().last_cursor(tenant).await?;
            if subscription.resume_after > newest {
                return Err(StorageError::CursorAhead {
                    cursor: subscription.resume_after,
                    newest,
                }
                .into());
            }
        }
        let (outbound, receiver) = mpsc::channel(subscribe::OUTBOUND);
        let task = subscribe::Subscription {
            alerting,
            tenant,
            filters,
            sent: subscription.resume_after,
            live,
            shutdown: self.shutdown.clone(),
            _slot: slot,
            metrics: self.metrics.clone(),
        };
        tokio::spawn(task.run(inbound, outbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let state = convert::state_filter(request.state)?;
        let page = PageRequest::parse(request.page_size, &request.page_token)
            .map_err(|violation| StorageError::InvalidArgument(vec![violation]))?;
        let (alerts, next_page_token) = self.rules()?.alerts(tenant, state, &page).await?;
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.into_iter().map(convert::alert).collect(),
            next_page_token,
        }))
    }

    async fn get_alert(
        &self,
        request: Request<pb::GetAlertRequest>,
    ) -> Result<Response<pb::GetAlertResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let alert_id = alert_id(&request.get_ref().alert_id)?;
        let alert = self.rules()?.alert(tenant, alert_id).await?;
        Ok(Response::new(pb::GetAlertResponse {
            alert: Some(convert::alert(alert)),
        }))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let alert_id = alert_id(&request.get_ref().alert_id)?;
        let asker = Asker::of(&request)?;
        let alert = self.rules()?.acknowledge(tenant, alert_id, &asker).await?;
        Ok(Response::new(pb::AcknowledgeAlertResponse {
            alert: Some(convert::alert(alert)),
        }))
    }

    async fn resolve_alert(
        &self,
        request: Request<pb::ResolveAlertRequest>,
    ) -> Result<Response<pb::ResolveAlertResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let alert_id = alert_id(&request.get_ref().alert_id)?;
        let asker = Asker::of(&request)?;
        let alert = self.rules()?.resolve(tenant, alert_id, &asker).await?;
        Ok(Response::new(pb::ResolveAlertResponse {
            alert: Some(convert::alert(alert)),
        }))
    }

    async fn raise_budget_alert(
        &self,
        request: Request<pb::RaiseBudgetAlertRequest>,
    ) -> Result<Response<pb::RaiseBudgetAlertResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let alert_id = alert_id(&request.get_ref().alert_id)?;
        let (breach, severity) = convert::budget_alert(request.into_inner())?;
        let alert = self
            .rules()?
            .raise_budget(tenant, alert_id, breach, severity)
            .await?;
        Ok(Response::new(pb::RaiseBudgetAlertResponse {
            alert: Some(convert::alert(alert)),
        }))
    }

    async fn resolve_budget_alerts(
        &self,
        request: Request<pb::ResolveBudgetAlertsRequest>,
    ) -> Result<Response<pb::ResolveBudgetAlertsResponse>, Status> {
        let tenant = tenant(&request.get_ref().tenant_id)?;
        let month = convert::before_month(&request.get_ref().before_month)?;
        let resolved_count = self.rules()?.resolve_budgets(tenant, month).await?;
        Ok(Response::new(pb::ResolveBudgetAlertsResponse {
            resolved_count,
        }))
    }
}
