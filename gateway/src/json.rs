//! JSON in and out, following the proto3 JSON mapping: lowerCamelCase out, lowerCamelCase or
//! snake_case in, enums by name, int64 as strings, timestamps in RFC 3339. Requests are read
//! with the pbjson-generated serde of `mfg-proto`; answers are written from the contract's
//! descriptors (prost-reflect), which give the canonical forms protojson and grpc-gateway
//! write: timestamps in UTC ending in `Z`, durations such as `1.500s`, every field, set or
//! not.

use axum::{
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde::de::DeserializeOwned;
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

/// Reads a body as a message: JSON syntax first, then the message's fields, so that a value
/// of the wrong type is named by its field.
async fn read_message<S: Send + Sync, T: DeserializeOwned + prost::Name>(
    request: Request,
    state: &S,
) -> Result<T, ApiError> {
    let value: Value = read_json(request, state).await?;
    from_value(value)
}

/// A JSON request body; malformed JSON and wrong types are answered as INVALID_ARGUMENT.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + prost::Name> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_message(request, state).await?))
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

/// Converts a JSON value into a message. A value that does not fit is an INVALID_ARGUMENT
/// naming its field as gRPC would (`rule.condition.threshold.comparison`, `readings[2].ts`)
/// and the form the field takes.
pub fn from_value<T: DeserializeOwned + prost::Name>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let (field, expected) = describe_path::<T>(error.path());
        let description = expected.unwrap_or_else(|| error.inner().to_string());
        ApiError::invalid_field(&field, description)
    })
}

/// The proto path of a JSON path into `T` (prefixed with the request field `T` is the body
/// of, if it is one), and what the field at its end expects, when the contract says.
fn describe_path<T: prost::Name>(path: &serde_path_to_error::Path) -> (String, Option<String>) {
    use serde_path_to_error::Segment;
    let root = pool().get_message_by_name(&T::full_name());
    let mut field_path = root.as_ref().and_then(body_field_of).unwrap_or_default();
    let mut message = root;
    let mut last = None;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => field_path.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                let name = snake_case(key);
                if !field_path.is_empty() {
                    field_path.push('.');
                }
                field_path.push_str(&name);
                let field = message.as_ref().and_then(|m| {
                    m.get_field_by_name(&name)
                        .or_else(|| m.get_field_by_json_name(key))
                });
                message = field.as_ref().and_then(|f| match f.kind() {
                    prost_reflect::Kind::Message(inner) => Some(inner),
                    _ => None,
                });
                last = field;
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    (field_path, last.and_then(|field| expected_form(&field)))
}

/// What a field's JSON must look like, for the kinds whose errors do not say.
fn expected_form(field: &prost_reflect::FieldDescriptor) -> Option<String> {
    match field.kind() {
        prost_reflect::Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => Some(
            "must be an RFC 3339 timestamp with a time zone, such as 2026-12-03T10:15:00Z"
                .to_owned(),
        ),
        prost_reflect::Kind::Message(m) if m.full_name() == "google.protobuf.Duration" => {
            Some("must be a duration in seconds, such as 30s or 1.5s".to_owned())
        }
        prost_reflect::Kind::Enum(e) => Some(format!(
            "must be one of {}",
            e.values()
                .filter(|v| v.number() != 0)
                .map(|v| v.name().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => None,
    }
}

/// The request field a message is the HTTP body of (`rule` for `AlertRule`), from the
/// contract's `google.api.http` annotations; `None` for a whole request.
fn body_field_of(message: &prost_reflect::MessageDescriptor) -> Option<String> {
    let http = pool().get_extension_by_name("google.api.http")?;
    for service in pool().services() {
        for method in service.methods() {
            if method.input() == *message {
                return None;
            }
            let options = method.options();
            if !options.has_extension(&http) {
                continue;
            }
            let rule = options.get_extension(&http);
            let body = rule
                .as_message()
                .and_then(|r| r.get_field_by_name("body"))
                .and_then(|b| b.as_str().map(str::to_owned))
                .unwrap_or_default();
            if body.is_empty() || body == "*" {
                continue;
            }
            let field = method.input().get_field_by_name(&body);
            if let Some(field) = field
                && matches!(field.kind(), prost_reflect::Kind::Message(m) if m == *message)
            {
                return Some(body);
            }
        }
    }
    None
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

    /// 202 Accepted: work started that goes on after the answer.
    pub fn accepted(value: T) -> Self {
        Self(StatusCode::ACCEPTED, value)
    }
}

impl<T: prost::Message + prost::Name> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match to_json(&self.1) {
            Ok(json) => (
                self.0,
                [(http::header::CONTENT_TYPE, "application/json")],
                json,
            )
                .into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// The contract's descriptors, decoded once.
fn pool() -> &'static DescriptorPool {
    static POOL: std::sync::LazyLock<DescriptorPool> = std::sync::LazyLock::new(|| {
        DescriptorPool::decode(mfg_proto::FILE_DESCRIPTOR_SET)
            .expect("the contract's descriptors are valid")
    });
    &POOL
}

/// Writes a message as canonical proto3 JSON, with every field (grpc-gateway's
/// `EmitUnpopulated`).
pub fn to_json<T: prost::Message + prost::Name>(message: &T) -> Result<String, ApiError> {
    let internal = |what: String| {
        tracing::error!(message = %T::full_name(), "cannot write JSON: {what}");
        ApiError::new(mfg_common::ErrorCode::Internal, "internal error")
    };
    let descriptor = pool()
        .get_message_by_name(&T::full_name())
        .ok_or_else(|| internal("no descriptor".to_owned()))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| internal(error.to_string()))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut out = serde_json::Serializer::new(Vec::with_capacity(256));
    dynamic
        .serialize_with_options(&mut out, &options)
        .map_err(|error| internal(error.to_string()))?;
    String::from_utf8(out.into_inner()).map_err(|error| internal(error.to_string()))
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
