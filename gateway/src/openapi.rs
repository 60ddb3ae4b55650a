//! The OpenAPI 3 document of the gateway, generated at start-up from the contract itself: the
//! `google.api.http` annotation of each RPC gives its route, the messages give the schemas
//! (proto3 JSON names and types), and the `.proto` comments give the descriptions. A test
//! calls every documented route on the real router, so the document and the routes cannot
//! drift apart.

use std::collections::BTreeMap;

use anyhow::Context as _;
use mfg_common::auth::Access;
use prost_reflect::{ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use prost_types::FileDescriptorProto;
use serde_json::{Map, Value, json};

use crate::contract::{Binding, Rpc, pool, rpcs};

/// `google.api.FieldBehavior.OUTPUT_ONLY`.
const OUTPUT_ONLY: i32 = 3;

/// One documented route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method, lowercase (`get`, `post`…).
    pub method: String,
    /// The OpenAPI path template, e.g. `/v1/tenants/{tenantId}`.
    pub path: String,
}

/// Builds the document.
pub fn document() -> anyhow::Result<Value> {
    let pool = pool();
    let behavior = pool.get_extension_by_name("google.api.field_behavior");
    let mut builder = Builder {
        schemas: BTreeMap::new(),
        behavior,
    };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for rpc in rpcs()? {
        let streaming = rpc.method.is_client_streaming() || rpc.method.is_server_streaming();
        if rpc.access == Access::Internal || streaming {
            continue;
        }
        for binding in &rpc.bindings {
            let (path, operation) = builder.operation(rpc, binding)?;
            paths
                .entry(path)
                .or_default()
                .insert(binding.method.as_str().to_lowercase(), operation);
        }
    }
    let alert_event = pool
        .get_message_by_name("mfg.storage.v1.AlertEvent")
        .context("no message mfg.storage.v1.AlertEvent")?;
    paths
        .entry("/v1/tenants/{tenantId}/alert-events".to_owned())
        .or_default()
        .insert("get".to_owned(), builder.alert_events(&alert_event));
    for (path, operation) in operational_routes() {
        paths
            .entry(path.to_owned())
            .or_default()
            .insert("get".to_owned(), operation);
    }
    builder
        .schemas
        .insert("google.rpc.Status".to_owned(), status_schema());
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Manufacturing Platform REST API",
            "version": "v1",
            "description": "REST/JSON at the edge of the Manufacturing Platform, generated from the v1 protobuf \
                contract (proto3 JSON mapping; errors are google.rpc.Status). Every route but health, \
                readiness, metrics and this document takes `Authorization: Bearer <token>`: the operator \
                token or a tenant API key.",
        },
        "paths": paths,
        "components": {
            "schemas": builder.schemas,
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer" } },
        },
        "security": [ { "bearerAuth": [] } ],
    }))
}

/// Returns the routes a document describes.
pub fn routes(document: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, operations) in paths {
            for method in operations.as_object().into_iter().flat_map(|o| o.keys()) {
                routes.push(Route {
                    method: method.clone(),
                    path: path.clone(),
                });
            }
        }
    }
    routes
}

struct Builder {
    schemas: BTreeMap<String, Value>,
    behavior: Option<ExtensionDescriptor>,
}

impl Builder {
    fn operation(&mut self, rpc: &Rpc, binding: &Binding) -> anyhow::Result<(String, Value)> {
        let method = &rpc.method;
        let template = binding.template.clone();
        let body = binding.body.clone().unwrap_or_default();
        let response_body = binding.response_body.clone().unwrap_or_default();
        let input = method.input();
        let output = method.output();

        let mut path = template.clone();
        let mut path_fields = Vec::new();
        let mut parameters = Vec::new();
        for name in template
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split('}').next())
        {
            let field = input
                .get_field_by_name(name)
                .with_context(|| format!("{} has no field {name}", input.full_name()))?;
            path = path.replace(
                &format!("{{{name}}}"),
                &format!("{{{}}}", field.json_name()),
            );
            parameters.push(json!({
                "name": field.json_name(), "in": "path", "required": true,
                "description": comment_of(field.parent_file().file_descriptor_proto(), field.path()),
                "schema": { "type": "string" },
            }));
            path_fields.push(name.to_owned());
        }
        if body != "*" {
            for field in input
                .fields()
                .filter(|f| !path_fields.contains(&f.name().to_owned()) && f.name() != body)
            {
                // Nested messages are not query parameters; well-known types are strings.
                if matches!(field.kind(), Kind::Message(m) if !m.full_name().starts_with("google.protobuf."))
                    && !field.is_list()
                {
                    continue;
                }
                parameters.push(json!({
                    "name": field.json_name(), "in": "query",
                    "description": comment_of(field.parent_file().file_descriptor_proto(), field.path()),
                    "schema": self.field_schema(&field),
                }));
            }
        }
        let mut operation = json!({
            "operationId": method.name(),
            "tags": [method.parent_service().name()],
            "summary": comment_of(method.parent_file().file_descriptor_proto(), &[6, method.parent_service().index() as i32, 2, method.index() as i32]),
            "description": format!("Access: {}.", rpc.access.describe()),
            "x-mfg-access": access_json(rpc.access),
            "parameters": parameters,
        });
        if body == "*" {
            let mut properties = Map::new();
            for field in input
                .fields()
                .filter(|f| !path_fields.contains(&f.name().to_owned()))
            {
                properties.insert(field.json_name().to_owned(), self.field_schema(&field));
            }
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "type": "object", "properties": properties } } },
            });
        } else if !body.is_empty() {
            let field = input
                .get_field_by_name(&body)
                .with_context(|| format!("{} has no body field {body}", input.full_name()))?;
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": self.field_schema(&field) } },
            });
        }
        let response_schema = if response_body.is_empty() {
            self.message_ref(&output)
        } else {
            let field = output
                .get_field_by_name(&response_body)
                .with_context(|| format!("{} has no field {response_body}", output.full_name()))?;
            self.field_schema(&field)
        };
        let success = rpc.status.as_str();
        operation["responses"] = json!({
            success: { "description": "OK", "content": { "application/json": { "schema": response_schema } } },
            "default": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/google.rpc.Status" } } } },
        });
        Ok((path, operation))
    }

    /// `GET /v1/tenants/{tenantId}/alert-events`: `SubscribeAlerts` as Server-Sent Events,
    /// which no `google.api.http` rule can describe (the RPC streams both ways).
    fn alert_events(&mut self, event: &MessageDescriptor) -> Value {
        let list = |name: &str, description: &str| {
            json!({
                "name": name, "in": "query", "description": description,
                "schema": { "type": "string" },
            })
        };
        json!({
            "operationId": "StreamAlertEvents",
            "tags": ["AlertService"],
            "summary": "The tenant's alert events as Server-Sent Events (`text/event-stream`), the REST form \
                of SubscribeAlerts. Each event has the event's cursor as its `id`, its type (`opened`, \
                `updated`, `acknowledged`, `resolved`) as its `event`, and the AlertEvent in proto3 JSON \
                as its `data`. A client that reconnects with `Last-Event-ID` (or `resumeAfter`) first \
                receives what it missed. A `lagged` event says the client fell behind; the stream goes \
                on from the stored log. A comment every 15 s keeps proxies from closing an idle stream.",
            "parameters": [
                { "name": "tenantId", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "Last-Event-ID", "in": "header", "description": "The cursor of the last event received: the stream resumes after it.", "schema": { "type": "string" } },
                list("resumeAfter", "The cursor to resume after, when the client cannot send Last-Event-ID."),
                list("severity", "Only these severities, comma-separated (`critical`, or SEVERITY_CRITICAL…)."),
                list("machineId", "Only these machines, comma-separated."),
                list("ruleId", "Only these rules, comma-separated."),
            ],
            "responses": {
                "200": {
                    "description": "An endless stream of events; each `data` is an AlertEvent.",
                    "content": { "text/event-stream": {
                        "schema": { "type": "string" },
                        "x-event-data": self.message_ref(event),
                    } },
                },
                "default": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/google.rpc.Status" } } } },
            },
        })
    }

    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        match message.full_name() {
            "google.protobuf.Timestamp" => {
                return json!({ "type": "string", "format": "date-time" });
            }
            "google.protobuf.Duration" => return json!({ "type": "string", "example": "1.5s" }),
            "google.protobuf.FieldMask" => {
                return json!({ "type": "string", "example": "displayName,labels" });
            }
            _ => {}
        }
        let name = message.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            // A placeholder first: messages may refer to themselves (alert conditions do).
            self.schemas.insert(name.clone(), Value::Null);
            let mut properties = Map::new();
            for field in message.fields() {
                properties.insert(field.json_name().to_owned(), self.field_schema(&field));
            }
            let schema = json!({
                "type": "object",
                "description": comment_of(message.parent_file_descriptor_proto(), message.path()),
                "properties": properties,
            });
            self.schemas.insert(name.clone(), schema);
        }
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        let mut schema = if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => self.kind_schema(&entry.map_entry_value_field().kind()),
                _ => json!({}),
            };
            json!({ "type": "object", "additionalProperties": value })
        } else if field.is_list() {
            json!({ "type": "array", "items": self.kind_schema(&field.kind()) })
        } else {
            self.kind_schema(&field.kind())
        };
        let description = comment_of(field.parent_file().file_descriptor_proto(), field.path());
        let output_only = self.behavior.as_ref().is_some_and(|behavior| {
            let options = field.options();
            options.has_extension(behavior)
                && options
                    .get_extension(behavior)
                    .as_list()
                    .is_some_and(|values| {
                        values
                            .iter()
                            .any(|v| v.as_enum_number() == Some(OUTPUT_ONLY))
                    })
        });
        if schema.get("$ref").is_some() {
            // OpenAPI 3.0 ignores siblings of $ref: wrap it to keep the description.
            schema = json!({ "allOf": [schema] });
        }
        if !description.is_empty() {
            schema["description"] = json!(description);
        }
        if output_only {
            schema["readOnly"] = json!(true);
        }
        schema
    }

    fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "int64", "minimum": 0 })
            }
            // proto3 JSON writes 64-bit integers as strings.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "format": "byte" }),
            Kind::Enum(enumeration) => json!({
                "type": "string",
                "enum": enumeration.values().map(|v| v.name().to_owned()).collect::<Vec<_>>(),
            }),
            Kind::Message(message) => self.message_ref(message),
        }
    }
}

/// The access an operation declares, as `x-mfg-access`: `{"audience": "tenant", "scope":
/// "read"}`, `{"audience": "operator"}`, `{"audience": "any_key", "scope": "read"}`.
fn access_json(access: Access) -> Value {
    match access {
        Access::Tenant(scope) => json!({ "audience": "tenant", "scope": scope.as_str() }),
        Access::Operator(_) => json!({ "audience": "operator" }),
        Access::Internal => json!({ "audience": "internal" }),
        Access::AnyKey(scope) => json!({ "audience": "any_key", "scope": scope.as_str() }),
    }
}

fn comment_of(file: &FileDescriptorProto, path: &[i32]) -> String {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|location| location.path == path))
        .and_then(|location| location.leading_comments.as_deref())
        .map(|comment| comment.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn status_schema() -> Value {
    json!({
        "type": "object",
        "description": "The error body of every failure: the gRPC status code number, a message, and \
            details such as google.rpc.BadRequest field violations.",
        "properties": {
            "code": { "type": "integer", "format": "int32" },
            "message": { "type": "string" },
            "details": { "type": "array", "items": { "type": "object", "properties": { "@type": { "type": "string" } }, "additionalProperties": true } },
        },
    })
}

fn operational_routes() -> Vec<(&'static str, Value)> {
    let open = |summary: &str, content: Value| json!({ "summary": summary, "security": [], "responses": { "200": { "description": "OK", "content": content } } });
    vec![
        (
            "/healthz",
            open(
                "Liveness: the gateway process runs.",
                json!({ "application/json": { "schema": { "type": "object" } } }),
            ),
        ),
        ("/readyz", {
            let mut op = open(
                "Readiness: 200 when every upstream service is SERVING.",
                json!({ "application/json": { "schema": { "type": "object" } } }),
            );
            op["responses"]["503"] = json!({ "description": "An upstream service is not serving" });
            op
        }),
        (
            "/metrics",
            open(
                "Prometheus metrics in the OpenMetrics text format: request counts and latency \
                 histograms per route, method and status class.",
                json!({ "application/openmetrics-text": { "schema": { "type": "string" } } }),
            ),
        ),
        (
            "/v1/openapi.json",
            open(
                "This document.",
                json!({ "application/json": { "schema": { "type": "object" } } }),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_the_served_routes_with_their_schemas() {
        let document = document().unwrap();
        let mut routes: Vec<String> = routes(&document)
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        routes.sort();
        assert_eq!(
            routes,
            [
                "delete /v1/tenants/{tenantId}",
                "delete /v1/tenants/{tenantId}/alert-rules/{ruleId}",
                "delete /v1/tenants/{tenantId}/api-keys/{keyId}",
                "delete /v1/tenants/{tenantId}/machines/{machineId}",
                "get /healthz",
                "get /metrics",
                "get /readyz",
                "get /v1/audit-events",
                "get /v1/caller",
                "get /v1/cost",
                "get /v1/maintenance/tiering",
                "get /v1/maintenance/tiering/{jobId}",
                "get /v1/onboarding-template",
                "get /v1/openapi.json",
                "get /v1/price-book",
                "get /v1/tenants",
                "get /v1/tenants/{tenantId}",
                "get /v1/tenants/{tenantId}/alert-events",
                "get /v1/tenants/{tenantId}/alert-rules",
                "get /v1/tenants/{tenantId}/alert-rules/{ruleId}",
                "get /v1/tenants/{tenantId}/alerts",
                "get /v1/tenants/{tenantId}/alerts/{alertId}",
                "get /v1/tenants/{tenantId}/api-keys",
                "get /v1/tenants/{tenantId}/audit-events",
                "get /v1/tenants/{tenantId}/budget",
                "get /v1/tenants/{tenantId}/cost",
                "get /v1/tenants/{tenantId}/cost:forecast",
                "get /v1/tenants/{tenantId}/latest",
                "get /v1/tenants/{tenantId}/machines",
                "get /v1/tenants/{tenantId}/machines/{machineId}",
                "get /v1/tenants/{tenantId}/machines/{machineId}/latest",
                "get /v1/tenants/{tenantId}/machines/{machineId}/telemetry",
                "get /v1/tenants/{tenantId}/provisioning-runs",
                "get /v1/tenants/{tenantId}/provisioning-runs/{runId}",
                "get /v1/tenants/{tenantId}/recommendations",
                "patch /v1/onboarding-template",
                "patch /v1/price-book",
                "patch /v1/tenants/{tenantId}",
                "patch /v1/tenants/{tenantId}/alert-rules/{ruleId}",
                "patch /v1/tenants/{tenantId}/budget",
                "patch /v1/tenants/{tenantId}/machines/{machineId}",
                "post /v1/maintenance/tiering",
                "post /v1/tenants",
                "post /v1/tenants/{tenantId}/alert-rules",
                "post /v1/tenants/{tenantId}/alerts/{alertId}/acknowledge",
                "post /v1/tenants/{tenantId}/alerts/{alertId}/resolve",
                "post /v1/tenants/{tenantId}/api-keys",
                "post /v1/tenants/{tenantId}/api-keys/{keyId}:claimSecret",
                "post /v1/tenants/{tenantId}/machines",
                "post /v1/tenants/{tenantId}/provisioning-runs",
                "post /v1/tenants/{tenantId}/provisioning-runs/{runId}:retry",
                "post /v1/tenants/{tenantId}/provisioning-runs/{runId}:rollback",
                "post /v1/tenants/{tenantId}/telemetry",
            ]
        );
        // Each operation states its access, from the contract.
        let get_tenant = &document["paths"]["/v1/tenants/{tenantId}"]["get"];
        assert_eq!(
            get_tenant["x-mfg-access"],
            json!({"audience": "tenant", "scope": "read"})
        );
        let list_tenants = &document["paths"]["/v1/tenants"]["get"];
        assert_eq!(
            list_tenants["x-mfg-access"],
            json!({"audience": "operator"})
        );
        let query = &document["paths"]["/v1/tenants/{tenantId}/machines/{machineId}/telemetry"]["get"]
            ["parameters"];
        assert!(
            query
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "step"),
            "{query}"
        );
        let tenant = &document["components"]["schemas"]["mfg.tenant.v1.Tenant"]["properties"];
        assert_eq!(tenant["monthlyBudgetUsd"]["type"], "number");
        assert_eq!(tenant["createTime"]["format"], "date-time");
        assert_eq!(tenant["id"]["readOnly"], true);
        assert_eq!(tenant["plan"]["enum"][1], "PLAN_SHARED");
        assert_eq!(tenant["labels"]["type"], "object");
        let create = &document["paths"]["/v1/tenants"]["post"];
        assert!(create["responses"]["201"].is_object());
        let start = &document["paths"]["/v1/maintenance/tiering"]["post"];
        assert!(start["responses"]["202"].is_object(), "{start}");
        assert!(
            create["summary"]
                .as_str()
                .unwrap()
                .starts_with("CreateTenant creates a tenant")
        );
        let events = &document["paths"]["/v1/tenants/{tenantId}/alert-events"]["get"];
        let data = &events["responses"]["200"]["content"]["text/event-stream"]["x-event-data"];
        assert_eq!(
            data["$ref"],
            "#/components/schemas/mfg.storage.v1.AlertEvent"
        );
        assert!(document["components"]["schemas"]["mfg.storage.v1.AlertEvent"].is_object());
        let list = &document["paths"]["/v1/tenants"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["pageSize", "pageToken", "showDeleted"]);
    }
}
