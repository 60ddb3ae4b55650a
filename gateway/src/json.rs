//! JSON in and out, following the proto3 JSON mapping: lowerCamelCase out, lowerCamelCase or
//! snake_case in, enums by name, int64 as strings, timestamps in RFC 3339. Messages are read
//! and written from the contract's descriptors (prost-reflect), which give the canonical forms
//! protojson and grpc-gateway write: timestamps in UTC ending in `Z`, durations such as
//! `1.500s`, every field, set or not.

use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{contract::pool, error::ApiError};

/// Parses a request body as JSON whatever its `Content-Type` says, as grpc-gateway does.
pub fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::new(
            mfg_common::ErrorCode::InvalidArgument,
            "a JSON body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::new(
            mfg_common::ErrorCode::InvalidArgument,
            format!("malformed JSON body: {error}"),
        )
    })
}

/// The proto path of a JSON path into a message, and what the field at its end expects, when
/// the contract says.
pub fn describe_path(
    root: &MessageDescriptor,
    path: &serde_path_to_error::Path,
) -> (String, Option<String>) {
    use serde_path_to_error::Segment;
    let mut field_path = String::new();
    let mut message = Some(root.clone());
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
