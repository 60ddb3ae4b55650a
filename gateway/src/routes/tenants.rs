//! Tenant-management routes, served by the tenant service.
//!
//! The operator creates, lists, changes and deletes tenants. A tenant's key reads its own tenant
//! (read scope), reads its machines (read) and manages its keys and machines (admin). A key
//! addressing another tenant gets 404 on every route, before any other check, so nothing
//! reveals whether that tenant exists.

use axum::{
    Router,
    extract::State,
    routing::{delete, get},
};
use mfg_common::auth::Scope;
use mfg_proto::tenant::v1 as pb;

use super::{ListQuery, PatchQuery, mask};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    json::{Body, Path, Query, RawBody, Reply, from_value},
};

type Result<T> = std::result::Result<Reply<T>, ApiError>;

/// Returns the tenant-management routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/v1/tenants/{tenant_id}",
            get(get_tenant).patch(update_tenant).delete(delete_tenant),
        )
        .route(
            "/v1/tenants/{tenant_id}/api-keys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/v1/tenants/{tenant_id}/api-keys/{key_id}",
            delete(revoke_api_key),
        )
        .route(
            "/v1/tenants/{tenant_id}/machines",
            get(list_machines).post(create_machine),
        )
        .route(
            "/v1/tenants/{tenant_id}/machines/{machine_id}",
            get(get_machine)
                .patch(update_machine)
                .delete(delete_machine),
        )
}

async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Body(tenant): Body<pb::Tenant>,
) -> Result<pb::Tenant> {
    caller.require_operator()?;
    let reply = state
        .tenant()
        .create_tenant(pb::CreateTenantRequest {
            tenant: Some(tenant),
        })
        .await?;
    Ok(Reply::created(
        reply.into_inner().tenant.unwrap_or_default(),
    ))
}

async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<pb::ListTenantsResponse> {
    caller.require_operator()?;
    let request = pb::ListTenantsRequest {
        page_size: query.page_size,
        page_token: query.page_token,
        show_deleted: query.show_deleted,
    };
    Ok(Reply::ok(
        state.tenant().list_tenants(request).await?.into_inner(),
    ))
}

async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<pb::Tenant> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let reply = state
        .tenant()
        .get_tenant(pb::GetTenantRequest { tenant_id })
        .await?;
    Ok(Reply::ok(reply.into_inner().tenant.unwrap_or_default()))
}

async fn update_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(query): Query<PatchQuery>,
    RawBody(body): RawBody,
) -> Result<pb::Tenant> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    caller.require_operator()?;
    let update_mask = mask(&query, &body, &["limits", "retention"]);
    let request = pb::UpdateTenantRequest {
        tenant_id,
        tenant: Some(from_value(body)?),
        update_mask,
    };
    let reply = state.tenant().update_tenant(request).await?;
    Ok(Reply::ok(reply.into_inner().tenant.unwrap_or_default()))
}

async fn delete_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> Result<pb::Tenant> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    caller.require_operator()?;
    let reply = state
        .tenant()
        .delete_tenant(pb::DeleteTenantRequest { tenant_id })
        .await?;
    Ok(Reply::ok(reply.into_inner().tenant.unwrap_or_default()))
}

async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    RawBody(mut body): RawBody,
) -> Result<pb::CreateApiKeyResponse> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    body["tenantId"] = serde_json::Value::String(tenant_id);
    let request: pb::CreateApiKeyRequest = from_value(body)?;
    Ok(Reply::created(
        state.tenant().create_api_key(request).await?.into_inner(),
    ))
}

async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<pb::ListApiKeysResponse> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let request = pb::ListApiKeysRequest {
        tenant_id,
        page_size: query.page_size,
        page_token: query.page_token,
    };
    Ok(Reply::ok(
        state.tenant().list_api_keys(request).await?.into_inner(),
    ))
}

async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, key_id)): Path<(String, String)>,
) -> Result<pb::ApiKey> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let reply = state
        .tenant()
        .revoke_api_key(pb::RevokeApiKeyRequest { tenant_id, key_id })
        .await?;
    Ok(Reply::ok(reply.into_inner().api_key.unwrap_or_default()))
}

async fn create_machine(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Body(machine): Body<pb::Machine>,
) -> Result<pb::Machine> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let request = pb::CreateMachineRequest {
        tenant_id,
        machine: Some(machine),
    };
    let reply = state.tenant().create_machine(request).await?;
    Ok(Reply::created(
        reply.into_inner().machine.unwrap_or_default(),
    ))
}

async fn list_machines(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<pb::ListMachinesResponse> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let request = pb::ListMachinesRequest {
        tenant_id,
        page_size: query.page_size,
        page_token: query.page_token,
    };
    Ok(Reply::ok(
        state.tenant().list_machines(request).await?.into_inner(),
    ))
}

async fn get_machine(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, machine_id)): Path<(String, String)>,
) -> Result<pb::Machine> {
    caller.authorize(&tenant_id, Scope::Read)?;
    let reply = state
        .tenant()
        .get_machine(pb::GetMachineRequest {
            tenant_id,
            machine_id,
        })
        .await?;
    Ok(Reply::ok(reply.into_inner().machine.unwrap_or_default()))
}

async fn update_machine(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, machine_id)): Path<(String, String)>,
    Query(query): Query<PatchQuery>,
    RawBody(body): RawBody,
) -> Result<pb::Machine> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let update_mask = mask(&query, &body, &[]);
    let request = pb::UpdateMachineRequest {
        tenant_id,
        machine_id,
        machine: Some(from_value(body)?),
        update_mask,
    };
    let reply = state.tenant().update_machine(request).await?;
    Ok(Reply::ok(reply.into_inner().machine.unwrap_or_default()))
}

async fn delete_machine(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant_id, machine_id)): Path<(String, String)>,
) -> Result<pb::DeleteMachineResponse> {
    caller.authorize(&tenant_id, Scope::Admin)?;
    let reply = state
        .tenant()
        .delete_machine(pb::DeleteMachineRequest {
            tenant_id,
            machine_id,
        })
        .await?;
    Ok(Reply::ok(reply.into_inner()))
}
