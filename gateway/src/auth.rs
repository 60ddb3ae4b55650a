//! Who is calling: the operator (one token that manages every tenant) or a tenant's API key,
//! resolved through the tenant service with [`KeyCache`]. And what they may do: a key acts only
//! inside its own tenant (anything else is 404, so nothing reveals that it exists) and only with
//! its scopes (403 otherwise).

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use mfg_common::{
    ErrorCode,
    auth::{AuthError, KeyCache, Principal, Scope},
    grpc::TracedChannel,
};
use mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient;
use sha2::{Digest as _, Sha256};

use crate::{AppState, error::ApiError};

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The platform operator.
    Operator,
    /// A tenant's API key.
    Tenant(Arc<Principal>),
}

impl Caller {
    /// Allows only the operator.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            Self::Tenant(_) => Err(ApiError::permission_denied("only the operator may do this")),
        }
    }

    /// Allows the operator, and a key of `tenant_id` holding `scope`.
    pub fn authorize(&self, tenant_id: &str, scope: Scope) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            Self::Tenant(principal) if principal.tenant_id != tenant_id => Err(
                ApiError::not_found(format!("tenant `{tenant_id}` not found")),
            ),
            Self::Tenant(principal) if !principal.allows(scope) => {
                Err(ApiError::permission_denied(format!(
                    "the API key lacks the `{}` scope",
                    scope.as_str()
                )))
            }
            Self::Tenant(_) => Ok(()),
        }
    }

    /// Returns the tenant of a key, `None` for the operator.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Self::Operator => None,
            Self::Tenant(principal) => Some(principal),
        }
    }
}

/// Checks bearer tokens.
#[derive(Debug)]
pub struct Authenticator {
    operator_digest: [u8; 32],
    keys: KeyCache<TenantServiceClient<TracedChannel>>,
}

impl Authenticator {
    /// Creates an authenticator for an operator token and a key cache.
    pub fn new(operator_token: &str, keys: KeyCache<TenantServiceClient<TracedChannel>>) -> Self {
        Self {
            operator_digest: Sha256::digest(operator_token.as_bytes()).into(),
            keys,
        }
    }

    /// Resolves the `Authorization: Bearer <token>` header of a request.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
        let header = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthenticated("missing `Authorization: Bearer <token>` header")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("the `Authorization` header must be `Bearer <token>`")
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Comparing digests does not leak the token through timing.
        if digest == self.operator_digest {
            return Ok(Caller::Operator);
        }
        match self.keys.authenticate(token).await {
            Ok(principal) => Ok(Caller::Tenant(principal)),
            Err(AuthError::Unauthenticated(message)) => Err(ApiError::unauthenticated(message)),
            Err(error @ AuthError::Unavailable(_)) => {
                Err(ApiError::new(ErrorCode::Unavailable, error.to_string()))
            }
            Err(error @ AuthError::Internal(_)) => {
                tracing::error!(%error, "authentication failed");
                Err(ApiError::new(ErrorCode::Internal, "internal error"))
            }
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = state.auth().authenticate(&parts.headers).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
