//! A request message from its REST parts, and an answer's JSON, following grpc-gateway:
//! - the body fills the whole request (`body: "*"`) or one field of it;
//! - path variables fill their fields, over what the body says;
//! - query parameters fill the remaining fields, by JSON or proto name, dotted for nested
//!   fields and repeated for lists; an enum takes its value's name, its number, or the name
//!   without the enum's prefix in any case (`avg` for `AGGREGATION_AVG`);
//! - a PATCH without `updateMask` updates the fields its body sets, descending into nested
//!   messages (`limits.max_machines`).
//!
//! The request is read as the message's proto3 JSON form, so a value that does not fit is a
//! 400 naming its field as gRPC would (`rule.condition.threshold.value`).

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Map, Value};

use crate::{
    contract::{Binding, Rpc},
    error::ApiError,
    json,
};

/// Builds the request message of `rpc` from a request to `binding`.
pub(super) fn build(
    rpc: &Rpc,
    binding: &Binding,
    params: &[(String, String)],
    query: &str,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let input = rpc.method.input();
    if binding.body.is_none()
        && query.is_empty()
        && let Some(message) = from_path(&input, params)
    {
        return Ok(message);
    }
    let mut request = match binding.body.as_deref() {
        None => Map::new(),
        Some("*") if body.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Some("*") => object(json::parse_body(body)?)?,
        Some(field) => {
            let value = object(json::parse_body(body)?)?;
            let mask = update_mask(&input, field, &value);
            let mut request = Map::new();
            if let Some(descriptor) = input.get_field_by_name(field) {
                request.insert(descriptor.json_name().to_owned(), Value::Object(value));
            }
            if let Some((name, paths)) = mask {
                request.insert(name, Value::String(paths.join(",")));
            }
            request
        }
    };
    for (name, value) in params {
        if let Some(field) = input.get_field_by_name(name) {
            request.insert(field.json_name().to_owned(), Value::String(value.clone()));
        }
    }
    if binding.body.as_deref() != Some("*") {
        add_query(&input, binding, query, &mut request)?;
    } else if !query.is_empty() {
        let name = form_urlencoded::parse(query.as_bytes())
            .next()
            .map(|(name, _)| name.into_owned())
            .unwrap_or_default();
        return Err(ApiError::invalid_field(
            &name,
            "is not a parameter of this route: the body carries the request",
        ));
    }
    from_json(&input, Value::Object(request))
}

/// A request made of string path variables only, set directly (most GETs and DELETEs).
fn from_path(input: &MessageDescriptor, params: &[(String, String)]) -> Option<DynamicMessage> {
    let mut message = DynamicMessage::new(input.clone());
    for (name, value) in params {
        let field = input.get_field_by_name(name)?;
        if field.kind() != Kind::String || field.is_list() {
            return None;
        }
        message.set_field(&field, prost_reflect::Value::String(value.clone()));
    }
    Some(message)
}

/// The request's tenant, for an RPC whose path does not name it.
pub(super) fn tenant_of(request: &DynamicMessage) -> String {
    request
        .get_field_by_name("tenant_id")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The JSON of an answer: the whole response, or its `response_body` field, with every field
/// (grpc-gateway's `EmitUnpopulated`).
pub(super) fn answer_json(
    rpc: &Rpc,
    binding: &Binding,
    answer: &DynamicMessage,
) -> Result<Vec<u8>, ApiError> {
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut out = serde_json::Serializer::new(Vec::with_capacity(512));
    let written = match binding.response_body.as_deref() {
        None => answer.serialize_with_options(&mut out, &options),
        Some(field) => match answer.get_field_by_name(field).as_deref() {
            Some(prost_reflect::Value::Message(inner)) => {
                inner.serialize_with_options(&mut out, &options)
            }
            _ => {
                return Err(internal(rpc, "the response body is not a message"));
            }
        },
    };
    written.map_err(|error| internal(rpc, &error.to_string()))?;
    Ok(out.into_inner())
}

fn internal(rpc: &Rpc, what: &str) -> ApiError {
    tracing::error!(rpc = rpc.grpc_path, "cannot write the answer: {what}");
    ApiError::new(mfg_common::ErrorCode::Internal, "internal error")
}

fn object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::new(
            mfg_common::ErrorCode::InvalidArgument,
            "the body must be a JSON object",
        )),
    }
}

/// Reads a request's proto3 JSON form; a value that does not fit is named by its field.
fn from_json(input: &MessageDescriptor, value: Value) -> Result<DynamicMessage, ApiError> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    DynamicMessage::deserialize_with_options(
        input.clone(),
        deserializer,
        &DeserializeOptions::new(),
    )
    .map_err(|error| {
        let (field, expected) = json::describe_path(input, &track.path());
        ApiError::invalid_field(&field, expected.unwrap_or_else(|| error.to_string()))
    })
}

/// The update mask a PATCH's body implies, when the request has an `update_mask` and the body
/// is one of its fields: `(json name of the mask, paths)`.
fn update_mask(
    input: &MessageDescriptor,
    body_field: &str,
    body: &Map<String, Value>,
) -> Option<(String, Vec<String>)> {
    let mask = input.get_field_by_name("update_mask")?;
    if !matches!(mask.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask") {
        return None;
    }
    let Kind::Message(message) = input.get_field_by_name(body_field)?.kind() else {
        return None;
    };
    let mut paths = Vec::new();
    set_paths(&message, body, "", &mut paths);
    Some((mask.json_name().to_owned(), paths))
}

/// The paths of the fields a JSON object sets, descending into nested messages (not maps,
/// lists or well-known types).
fn set_paths(
    message: &MessageDescriptor,
    body: &Map<String, Value>,
    prefix: &str,
    out: &mut Vec<String>,
) {
    for (key, value) in body {
        // An unknown field is left out: reading the body names it.
        let Some(field) = field_named(message, key) else {
            continue;
        };
        // In JSON, a mask's paths are in lowerCamelCase.
        let path = format!("{prefix}{}", field.json_name());
        match (field.kind(), value) {
            (Kind::Message(inner), Value::Object(object))
                if !field.is_list()
                    && !field.is_map()
                    && !inner.full_name().starts_with("google.protobuf.") =>
            {
                set_paths(&inner, object, &format!("{path}."), out);
            }
            _ => out.push(path),
        }
    }
}

fn field_named(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_json_name(name)
        .or_else(|| message.get_field_by_name(name))
}

/// Adds the query parameters to the request's JSON form.
fn add_query(
    input: &MessageDescriptor,
    binding: &Binding,
    query: &str,
    request: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    for (name, raw) in form_urlencoded::parse(query.as_bytes()) {
        let unknown = || ApiError::invalid_field(&name, "is not a parameter of this route");
        let mut message = input.clone();
        let mut target = &mut *request;
        let mut parts = name.split('.').peekable();
        let mut field = None;
        while let Some(part) = parts.next() {
            let found = field_named(&message, part).ok_or_else(unknown)?;
            let bound = binding.path_fields().any(|f| f == found.name())
                || binding.body.as_deref() == Some(found.name());
            if bound && field.is_none() {
                return Err(unknown());
            }
            if parts.peek().is_none() {
                field = Some(found);
                break;
            }
            let Kind::Message(inner) = found.kind() else {
                return Err(unknown());
            };
            let entry = target
                .entry(found.json_name().to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                return Err(unknown());
            };
            target = next;
            message = inner;
        }
        let field = field.ok_or_else(unknown)?;
        if raw.is_empty() {
            continue;
        }
        let value = query_value(&field, &raw);
        let key = field.json_name().to_owned();
        if field.is_list() {
            match target
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(values) => values.push(value),
                _ => return Err(unknown()),
            }
        } else {
            target.insert(key, value);
        }
    }
    Ok(())
}

/// A query parameter's value in the field's proto3 JSON form; a value that does not fit is
/// passed on as written, for the message's reading to name.
fn query_value(field: &FieldDescriptor, raw: &str) -> Value {
    match field.kind() {
        Kind::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        Kind::Enum(descriptor) => {
            if descriptor.get_value_by_name(raw).is_some() {
                return Value::String(raw.to_owned());
            }
            if let Ok(number) = raw.parse::<i32>() {
                return Value::from(number);
            }
            let prefix = descriptor
                .values()
                .find(|v| v.number() == 0)
                .and_then(|v| v.name().strip_suffix("UNSPECIFIED").map(str::to_owned))
                .unwrap_or_default();
            let name = format!("{prefix}{}", raw.to_uppercase());
            if descriptor.get_value_by_name(&name).is_some() {
                Value::String(name)
            } else {
                Value::String(raw.to_owned())
            }
        }
        // grpc-gateway takes a mask's paths as written; JSON wants them in lowerCamelCase.
        Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => Value::String(
            raw.split(',')
                .map(|path| {
                    path.trim()
                        .split('.')
                        .map(camel_case)
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => Value::String(raw.to_owned()),
    }
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use prost_reflect::Value as V;

    use super::*;
    use crate::contract::rpcs;

    fn rpc(name: &str) -> &'static Rpc {
        rpcs().unwrap().iter().find(|r| r.name == name).unwrap()
    }

    fn path(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn build_of(
        name: &str,
        params: &[(&str, &str)],
        query: &str,
        body: &str,
    ) -> Result<DynamicMessage, ApiError> {
        let rpc = rpc(name);
        build(rpc, &rpc.bindings[0], &path(params), query, body.as_bytes())
    }

    /// The field a 400 names.
    fn field_of(error: &ApiError) -> String {
        error.body()["details"][0]["fieldViolations"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn mask_of(message: &DynamicMessage) -> Vec<String> {
        let mask = message.get_field_by_name("update_mask").unwrap();
        let V::Message(mask) = mask.as_ref() else {
            panic!("{mask:?}")
        };
        let paths = mask.get_field_by_name("paths").unwrap();
        let mut paths: Vec<String> = paths
            .as_list()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn query_parameters_fill_the_remaining_fields() {
        let ids = [("tenant_id", "t1"), ("machine_id", "press")];
        let query = "metric=temp&start=2026-12-01T00:00:00Z&step=60s&aggregation=avg";
        let message = build_of("QueryTelemetry", &ids, query, "").unwrap();
        assert_eq!(
            message.get_field_by_name("tenant_id").unwrap().as_str(),
            Some("t1")
        );
        assert_eq!(
            message.get_field_by_name("metric").unwrap().as_str(),
            Some("temp")
        );
        // `avg` is AGGREGATION_AVG: an enum's name without its prefix, in any case.
        let aggregation = message.get_field_by_name("aggregation").unwrap();
        let avg = rpc("QueryTelemetry")
            .method
            .input()
            .get_field_by_name("aggregation")
            .and_then(|f| f.kind().as_enum().cloned())
            .and_then(|e| e.get_value_by_name("AGGREGATION_AVG"))
            .unwrap();
        assert_eq!(aggregation.as_enum_number(), Some(avg.number()));
        let alerts = build_of(
            "ListAlerts",
            &[("tenant_id", "t1")],
            "state=open&page_size=5",
            "",
        )
        .unwrap();
        assert_eq!(
            alerts.get_field_by_name("page_size").unwrap().as_i32(),
            Some(5)
        );
    }

    #[test]
    fn a_parameter_that_does_not_fit_is_named() {
        let ids = [("tenant_id", "t1"), ("machine_id", "press")];
        let unknown = build_of("QueryTelemetry", &ids, "nope=1", "").unwrap_err();
        assert_eq!(field_of(&unknown), "nope");
        let bound = build_of("QueryTelemetry", &ids, "tenantId=t2", "").unwrap_err();
        assert_eq!(field_of(&bound), "tenantId");
        let bad = build_of("QueryTelemetry", &ids, "step=soon", "").unwrap_err();
        assert_eq!(field_of(&bad), "step");
        // A whole-body RPC takes no query parameters.
        let ingest = build_of("IngestBatch", &[("tenant_id", "t1")], "x=1", "{}").unwrap_err();
        assert_eq!(field_of(&ingest), "x");
    }

    #[test]
    fn a_patch_updates_the_fields_its_body_sets() {
        let ids = [("tenant_id", "t1")];
        let body = r#"{"displayName": "x", "limits": {"maxMachines": 3}, "labels": {"site": "a"}}"#;
        let tenant = build_of("UpdateTenant", &ids, "", body).unwrap();
        assert_eq!(
            mask_of(&tenant),
            ["display_name", "labels", "limits.max_machines"]
        );
        // An explicit mask wins, in either spelling.
        let explicit = build_of("UpdateTenant", &ids, "updateMask=display_name", body).unwrap();
        assert_eq!(mask_of(&explicit), ["display_name"]);
        let wrong = build_of(
            "UpdateTenant",
            &ids,
            "",
            r#"{"limits": {"maxMachines": "many"}}"#,
        )
        .unwrap_err();
        assert_eq!(field_of(&wrong), "tenant.limits.max_machines");
    }
}
