//! JSON in and out, following the proto3 JSON mapping through the pbjson-generated serde of
//! `mfg-proto`: lowerCamelCase out, lowerCamelCase or snake_case in, enums by name, int64 as
//! strings, timestamps in RFC 3339.

use axum::{
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::error::ApiError;

/// Reads a body as JSON whatever its `Content-Type` says, as grpc-gateway does, within the
/// body size limit (413 past it).
async fn read_json<S: Send + Sync, T: DeserializeOwned>(
    request: Request,
    state: &S,
) -> Result<T, ApiError> {
    let bytes = axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                crate::error::payload_too_large()
            } else {
                ApiError::new(
                    mfg_common::ErrorCode::InvalidArgument,
                    rejection.body_text(),
                )
            }
        })?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            mfg_common::ErrorCode::InvalidArgument,
            "a JSON body is required",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::new(
            mfg_common::ErrorCode::InvalidArgument,
            format!("malformed JSON body: {error}"),
        )
    })
}

/// A JSON request body; malformed JSON and wrong types are answered as INVALID_ARGUMENT.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_json(request, state).await?))
    }
}

/// A JSON request body kept as a value, for routes that also read which fields it names.
#[derive(Debug)]
pub struct RawBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value: Value = read_json(request, state).await?;
        if !value.is_object() {
            return Err(ApiError::new(
                mfg_common::ErrorCode::InvalidArgument,
                "the body must be a JSON object",
            ));
        }
        Ok(Self(value))
    }
}

/// Converts a JSON value into a message, naming what is wrong.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|error| {
        ApiError::new(
            mfg_common::ErrorCode::InvalidArgument,
            format!("malformed JSON body: {error}"),
        )
    })
}

/// A JSON response with a status.
#[derive(Debug)]
pub struct Reply<T>(pub StatusCode, pub T);

impl<T> Reply<T> {
    /// 200 OK.
    pub fn ok(value: T) -> Self {
        Self(StatusCode::OK, value)
    }

    /// 201 Created.
    pub fn created(value: T) -> Self {
        Self(StatusCode::CREATED, value)
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

/// Returns the field paths a JSON object sets, in the proto's snake_case, descending into the
/// message fields listed in `nested` (`limits` gives `limits.max_machines`), as grpc-gateway
/// derives a PATCH's field mask from its body.
pub fn field_mask(body: &Value, nested: &[&str]) -> Vec<String> {
    let mut paths = Vec::new();
    if let Value::Object(fields) = body {
        for (key, value) in fields {
            let name = snake_case(key);
            match value {
                Value::Object(inner) if nested.contains(&name.as_str()) => {
                    paths.extend(inner.keys().map(|k| format!("{name}.{}", snake_case(k))));
                }
                _ => paths.push(name),
            }
        }
    }
    paths
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_follow_the_body() {
        let body = json!({"displayName": "x", "limits": {"maxMachines": 3}, "labels": {"lineName": "a"}, "monthly_budget_usd": 1});
        let mut mask = field_mask(&body, &["limits", "retention"]);
        mask.sort();
        assert_eq!(
            mask,
            [
                "display_name",
                "labels",
                "limits.max_machines",
                "monthly_budget_usd"
            ]
        );
    }
}

/// Path parameters whose rejection is a JSON error.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters whose rejection is a JSON error.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}
