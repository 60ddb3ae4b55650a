//! The gRPC adapter: `mfg.tenant.v1.TenantService` on top of [`Tenants`]. It converts requests
//! to domain types, calls the domain, and converts results and errors back.

mod convert;

use std::sync::{Arc, OnceLock};

use mfg_common::{
    auth::{AuthError, KeyResolver, Principal},
    pagination::PageRequest,
};
use mfg_proto::tenant::v1::{self as pb, tenant_service_server::TenantService};
use tonic::{Request, Response, Status};

use mfg_common::audit::Asker;

use crate::{
    domain::{NewTenant, Offboarding, Tenants},
    error::TenantError,
};

/// The operations, once the database is reachable and migrated.
pub type ReadyTenants = Arc<OnceLock<Tenants>>;

/// Serves `mfg.tenant.v1.TenantService`. Until the database is ready, every RPC answers
/// UNAVAILABLE. Who may call each RPC is the contract's (`mfg.options.v1.access`), checked by
/// the server's [`mfg_common::auth::AuthLayer`] before a call gets here.
#[derive(Debug, Clone)]
pub struct TenantApi {
    tenants: ReadyTenants,
}

impl TenantApi {
    /// Creates the adapter over operations that become ready later.
    pub fn new(tenants: ReadyTenants) -> Self {
        Self { tenants }
    }

    fn tenants(&self) -> Result<&Tenants, TenantError> {
        self.tenants.get().ok_or(TenantError::NotReady)
    }
}

/// Resolves the keys of callers of the tenant service from its own database.
#[derive(Debug, Clone)]
pub struct LocalKeys {
    tenants: ReadyTenants,
}

impl LocalKeys {
    /// Resolves keys with the operations once they are ready.
    pub fn new(tenants: ReadyTenants) -> Self {
        Self { tenants }
    }
}

impl KeyResolver for LocalKeys {
    async fn resolve(&self, secret: &str) -> Result<Principal, AuthError> {
        let tenants = self
            .tenants
            .get()
            .ok_or_else(|| AuthError::Unavailable(TenantError::NotReady.to_string()))?;
        match tenants.authenticate(secret).await {
            Ok(record) => Ok(Principal::from_response(record.into())),
            Err(TenantError::Unauthenticated(message)) => {
                Err(AuthError::Unauthenticated(message.to_owned()))
            }
            Err(error @ (TenantError::Unavailable(_) | TenantError::NotReady)) => {
                Err(AuthError::Unavailable(error.to_string()))
            }
            Err(error) => Err(AuthError::Internal(error.to_string())),
        }
    }
}

fn page(page_size: i32, page_token: &str) -> Result<PageRequest, TenantError> {
    PageRequest::parse(page_size, page_token).map_err(|v| TenantError::InvalidArgument(vec![v]))
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        let asker = Asker::of(&request)?;
        let new = NewTenant::try_from(request.into_inner())?;
        let tenants = self.tenants()?;
        let tenant = tenants.create_tenant(new, &asker).await?;
        Ok(Response::new(pb::CreateTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        let id = convert::tenant_id(&request.get_ref().tenant_id, "tenant_id")?;
        let tenant = self.tenants()?.get_tenant(id).await?;
        Ok(Response::new(pb::GetTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn set_provisioning_outcome(
        &self,
        request: Request<pb::SetProvisioningOutcomeRequest>,
    ) -> Result<Response<pb::SetProvisioningOutcomeResponse>, Status> {
        let request = request.into_inner();
        let id = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        if request.run_id.is_empty() {
            return Err(TenantError::invalid("run_id", "is required").into());
        }
        let tenant = self
            .tenants()?
            .set_provisioning_outcome(id, &request.run_id, request.succeeded, &request.error)
            .await?;
        Ok(Response::new(pb::SetProvisioningOutcomeResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let request = request.into_inner();
        let page = page(request.page_size, &request.page_token)?;
        let (tenants, next_page_token) = self
            .tenants()?
            .list_tenants(page, request.show_deleted)
            .await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn list_tenant_changes(
        &self,
        request: Request<pb::ListTenantChangesRequest>,
    ) -> Result<Response<pb::ListTenantChangesResponse>, Status> {
        let request = request.into_inner();
        let tenants = self
            .tenants()?
            .list_tenant_changes(request.after_revision, request.page_size)
            .await?;
        Ok(Response::new(pb::ListTenantChangesResponse {
            tenants: tenants.into_iter().map(Into::into).collect(),
        }))
    }

    async fn update_tenant(
        &self,
        request: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::UpdateTenantResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let id = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let patch = convert::tenant_patch(request.tenant, request.update_mask)?;
        let tenants = self.tenants()?;
        let tenant = tenants.update_tenant(id, patch, &asker).await?;
        Ok(Response::new(pb::UpdateTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn delete_tenant(
        &self,
        request: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::DeleteTenantResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.get_ref();
        let id = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let offboarding = Offboarding {
            force: request.force,
            purge_archive: request.purge_archive,
        };
        let tenants = self.tenants()?;
        let tenant = tenants.delete_tenant(id, offboarding, &asker).await?;
        Ok(Response::new(pb::DeleteTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let scopes = convert::scopes(&request.scopes)?;
        let tenants = self.tenants()?;
        let created = tenants
            .create_api_key(tenant, request.display_name, scopes, &asker)
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(created.key.into()),
            secret: created.secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let page = page(request.page_size, &request.page_token)?;
        let (keys, next_page_token) = self.tenants()?.list_api_keys(tenant, page).await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.get_ref();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let key = convert::key_id(&request.key_id, "key_id")?;
        let tenants = self.tenants()?;
        let key = tenants.revoke_api_key(tenant, key, &asker).await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(key.into()),
        }))
    }

    async fn create_sealed_api_key(
        &self,
        request: Request<pb::CreateSealedApiKeyRequest>,
    ) -> Result<Response<pb::CreateSealedApiKeyResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let key = convert::key_id(&request.key_id, "key_id")?;
        let scopes = convert::scopes(&request.scopes)?;
        let key = self
            .tenants()?
            .create_sealed_api_key(tenant, key, request.display_name, scopes)
            .await?;
        Ok(Response::new(pb::CreateSealedApiKeyResponse {
            api_key: Some(key.into()),
        }))
    }

    async fn claim_api_key_secret(
        &self,
        request: Request<pb::ClaimApiKeySecretRequest>,
    ) -> Result<Response<pb::ClaimApiKeySecretResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.get_ref();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let key = convert::key_id(&request.key_id, "key_id")?;
        let tenants = self.tenants()?;
        let claimed = tenants.claim_api_key_secret(tenant, key, &asker).await?;
        Ok(Response::new(pb::ClaimApiKeySecretResponse {
            api_key: Some(claimed.key.into()),
            secret: claimed.secret,
        }))
    }

    async fn authenticate_key(
        &self,
        request: Request<pb::AuthenticateKeyRequest>,
    ) -> Result<Response<pb::AuthenticateKeyResponse>, Status> {
        let record = self
            .tenants()?
            .authenticate(&request.get_ref().secret)
            .await?;
        Ok(Response::new(record.into()))
    }

    async fn get_caller(
        &self,
        request: Request<pb::GetCallerRequest>,
    ) -> Result<Response<pb::GetCallerResponse>, Status> {
        let acting = mfg_common::auth::Caller::acting(&request)?;
        let Some(key_id) = acting.strip_prefix("key:") else {
            return Ok(Response::new(pb::GetCallerResponse {
                operator: true,
                ..Default::default()
            }));
        };
        let key_id = convert::key_id(key_id, "key_id")?;
        let (key, tenant) = self.tenants()?.caller(key_id).await?;
        Ok(Response::new(pb::GetCallerResponse {
            operator: false,
            tenant_id: tenant.id.to_string(),
            tenant_name: tenant.name.to_string(),
            key_id: key.key_id.to_string(),
            scopes: key.scopes.iter().map(|s| s.to_proto().into()).collect(),
        }))
    }

    async fn create_machine(
        &self,
        request: Request<pb::CreateMachineRequest>,
    ) -> Result<Response<pb::CreateMachineResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let new = convert::new_machine(request.machine)?;
        let tenants = self.tenants()?;
        let machine = tenants.create_machine(tenant, new, &asker).await?;
        Ok(Response::new(pb::CreateMachineResponse {
            machine: Some(machine.into()),
        }))
    }

    async fn get_machine(
        &self,
        request: Request<pb::GetMachineRequest>,
    ) -> Result<Response<pb::GetMachineResponse>, Status> {
        let request = request.get_ref();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let id = convert::machine_id(&request.machine_id, "machine_id")?;
        let machine = self.tenants()?.get_machine(tenant, &id).await?;
        Ok(Response::new(pb::GetMachineResponse {
            machine: Some(machine.into()),
        }))
    }

    async fn list_machines(
        &self,
        request: Request<pb::ListMachinesRequest>,
    ) -> Result<Response<pb::ListMachinesResponse>, Status> {
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let page = page(request.page_size, &request.page_token)?;
        let (machines, next_page_token) = self.tenants()?.list_machines(tenant, page).await?;
        Ok(Response::new(pb::ListMachinesResponse {
            machines: machines.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn update_machine(
        &self,
        request: Request<pb::UpdateMachineRequest>,
    ) -> Result<Response<pb::UpdateMachineResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let id = convert::machine_id(&request.machine_id, "machine_id")?;
        let patch = convert::machine_patch(request.machine, request.update_mask)?;
        let tenants = self.tenants()?;
        let machine = tenants.update_machine(tenant, &id, patch, &asker).await?;
        Ok(Response::new(pb::UpdateMachineResponse {
            machine: Some(machine.into()),
        }))
    }

    async fn delete_machine(
        &self,
        request: Request<pb::DeleteMachineRequest>,
    ) -> Result<Response<pb::DeleteMachineResponse>, Status> {
        let asker = Asker::of(&request)?;
        let request = request.get_ref();
        let tenant = convert::tenant_id(&request.tenant_id, "tenant_id")?;
        let id = convert::machine_id(&request.machine_id, "machine_id")?;
        let tenants = self.tenants()?;
        tenants.delete_machine(tenant, &id, &asker).await?;
        Ok(Response::new(pb::DeleteMachineResponse {}))
    }
}
