//! The gRPC adapter of `mfg.storage.v1.AlertService`. Rules are read with read scope and
//! written with admin scope; a key addressing another tenant is refused before anything else.
//! The alert and subscription RPCs answer UNIMPLEMENTED until they are built.

mod convert;

use mfg_common::{
    auth::{Caller, Scope},
    pagination::PageRequest,
};
use mfg_proto::storage::v1::{self as pb, alert_service_server::AlertService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::ReadyStorage;
use crate::{alerting::AlertRules, error::StorageError};

/// Serves `mfg.storage.v1.AlertService`.
#[derive(Debug, Clone)]
pub struct AlertApi {
    storage: ReadyStorage,
}

impl AlertApi {
    /// Creates the adapter over operations that become ready later.
    pub fn new(storage: ReadyStorage) -> Self {
        Self { storage }
    }

    fn rules(&self) -> Result<&AlertRules, StorageError> {
        Ok(&self.storage.get().ok_or(StorageError::NotReady)?.rules)
    }
}

/// Authorizes the caller for a tenant, then parses the tenant's id.
fn tenant<T>(request: &Request<T>, tenant_id: &str, scope: Scope) -> Result<Uuid, Status> {
    Caller::of(request)?.authorize(tenant_id, scope)?;
    Ok(super::convert::tenant_id(tenant_id)?)
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
        let tenant = tenant(&request, &request.get_ref().tenant_id, Scope::Admin)?;
        let spec = convert::new_rule(request.into_inner().rule)?;
        let rule = self.rules()?.create(tenant, spec).await?;
        Ok(Response::new(pb::CreateAlertRuleResponse {
            rule: Some(convert::rule(rule)),
        }))
    }

    async fn get_alert_rule(
        &self,
        request: Request<pb::GetAlertRuleRequest>,
    ) -> Result<Response<pb::GetAlertRuleResponse>, Status> {
        let tenant = tenant(&request, &request.get_ref().tenant_id, Scope::Read)?;
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
        let tenant = tenant(&request, &request.get_ref().tenant_id, Scope::Read)?;
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
        let tenant = tenant(&request, &request.get_ref().tenant_id, Scope::Admin)?;
        let rule_id = rule_id(&request.get_ref().rule_id)?;
        let request = request.into_inner();
        let patch = convert::rule_patch(request.rule, request.update_mask)?;
        let rule = self.rules()?.update(tenant, rule_id, patch).await?;
        Ok(Response::new(pb::UpdateAlertRuleResponse {
            rule: Some(convert::rule(rule)),
        }))
    }

    async fn delete_alert_rule(
        &self,
        request: Request<pb::DeleteAlertRuleRequest>,
    ) -> Result<Response<pb::DeleteAlertRuleResponse>, Status> {
        let tenant = tenant(&request, &request.get_ref().tenant_id, Scope::Admin)?;
        let rule_id = rule_id(&request.get_ref().rule_id)?;
        self.rules()?.delete(tenant, rule_id).await?;
        Ok(Response::new(pb::DeleteAlertRuleResponse {}))
    }
}
