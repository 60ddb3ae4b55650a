//! Who is calling, at the edge. The rules live in [`mfg_common::auth`], shared with the
//! services: the operator token manages every tenant; a tenant's key acts only inside its own
//! tenant (404 otherwise) and only with its scopes (403). This module turns them into HTTP
//! answers and an axum extractor.

use axum::{extract::FromRequestParts, http::request::Parts};
pub use mfg_common::auth::Caller;
use mfg_common::{
    ErrorCode, ServiceError,
    auth::{AuthError, Denied},
};

use crate::{AppState, error::ApiError};

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(message) => ApiError::unauthenticated(message),
            error @ AuthError::Unavailable(_) => {
                ApiError::new(ErrorCode::Unavailable, error.to_string())
            }
            error @ AuthError::Internal(_) => {
                tracing::error!(%error, "authentication failed");
                ApiError::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::new(denied.error_code(), denied.to_string())
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
