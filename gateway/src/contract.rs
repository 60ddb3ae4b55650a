//! The contract as the edge reads it: every RPC with a `google.api.http` rule becomes one or
//! more REST bindings (the rule and its `additional_bindings`), each with its path template,
//! body and response body, and the RPC's access (`mfg.options.v1.access`) and success status
//! (`mfg.options.v1.http_status`). The router, the transcoder and the OpenAPI document all
//! read this one table, so a new annotated RPC has a route, a check and a document entry the
//! day it is added.

use std::sync::LazyLock;

use anyhow::{Context as _, bail};
use http::StatusCode;
pub use mfg_common::auth::Access;
use mfg_common::auth::Scope;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor, MethodDescriptor,
};

/// A path template segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matched as is.
    Literal(String),
    /// One segment bound to a field of the request (`{tenant_id}`).
    Variable(String),
}

/// One REST binding of an RPC.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The HTTP method.
    pub method: http::Method,
    /// The template as the contract writes it (`/v1/tenants/{tenant_id}/cost:forecast`).
    pub template: String,
    /// Its segments; a custom verb (`:forecast`) is part of the last literal.
    pub segments: Vec<Segment>,
    /// The custom verb after the last variable (`retry` in `{run_id}:retry`), if any.
    pub verb: Option<String>,
    /// `*` (the whole request), a field of the request, or `None` (no body).
    pub body: Option<String>,
    /// The field of the response that is the answer, or `None` for the whole response.
    pub response_body: Option<String>,
}

impl Binding {
    /// The request fields its path binds.
    pub fn path_fields(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(field) => Some(field.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The template in axum's syntax: variables as `{field}`; a custom verb after a variable
    /// is matched by that variable's segment and split off by the transcoder.
    pub fn axum_path(&self) -> String {
        let mut path = String::new();
        for segment in &self.segments {
            path.push('/');
            match segment {
                Segment::Literal(text) => path.push_str(text),
                Segment::Variable(field) => {
                    path.push('{');
                    path.push_str(field);
                    path.push('}');
                }
            }
        }
        path
    }
}

/// An RPC of the contract that the edge knows.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// Its descriptor: input, output, service.
    pub method: MethodDescriptor,
    /// The gRPC path, `/mfg.tenant.v1.TenantService/GetTenant`.
    pub grpc_path: &'static str,
    /// The service's full name.
    pub service: &'static str,
    /// The method's name.
    pub name: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The status of a successful REST call.
    pub status: StatusCode,
    /// Its REST bindings; empty when it has none.
    pub bindings: Vec<Binding>,
}

impl Rpc {
    /// The request field that names the tenant, when the request has one.
    pub fn tenant_field(&self) -> Option<FieldDescriptor> {
        self.method.input().get_field_by_name("tenant_id")
    }
}

/// The contract's descriptors, decoded once.
pub fn pool() -> &'static DescriptorPool {
    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        DescriptorPool::decode(mfg_proto::FILE_DESCRIPTOR_SET)
            .expect("the contract's descriptors are valid")
    });
    &POOL
}

/// Every RPC of the contract's services, in the contract's order. Fails when an RPC lacks its
/// access option or has a rule the edge cannot serve: a test builds it.
pub fn rpcs() -> anyhow::Result<&'static [Rpc]> {
    static RPCS: LazyLock<Result<Vec<Rpc>, String>> =
        LazyLock::new(|| read(pool()).map_err(|error| format!("{error:#}")));
    RPCS.as_deref()
        .map_err(|error| anyhow::anyhow!("the contract: {error}"))
}

fn read(pool: &DescriptorPool) -> anyhow::Result<Vec<Rpc>> {
    let http = pool
        .get_extension_by_name("google.api.http")
        .context("google.api.http is not in the descriptors")?;
    let access = pool
        .get_extension_by_name("mfg.options.v1.access")
        .context("mfg.options.v1.access is not in the descriptors")?;
    let status = pool
        .get_extension_by_name("mfg.options.v1.http_status")
        .context("mfg.options.v1.http_status is not in the descriptors")?;
    let mut rpcs = Vec::new();
    for service in pool
        .services()
        .filter(|s| s.package_name().starts_with("mfg."))
    {
        for method in service.methods() {
            let options = method.options();
            let name = method.full_name().to_owned();
            let access = options
                .has_extension(&access)
                .then(|| access_of(&options.get_extension(&access)))
                .with_context(|| format!("{name} declares no mfg.options.v1.access"))?
                .with_context(|| format!("{name}'s access"))?;
            let code = options.get_extension(&status).as_u32().unwrap_or(0);
            let status = match code {
                0 => StatusCode::OK,
                code => StatusCode::from_u16(u16::try_from(code)?)
                    .with_context(|| format!("{name}'s http_status"))?,
            };
            let bindings = if options.has_extension(&http) {
                let rule = options.get_extension(&http);
                let rule = rule.as_message().context("google.api.http is a message")?;
                bindings_of(rule, &method.input()).with_context(|| format!("{name}'s http rule"))?
            } else {
                Vec::new()
            };
            rpcs.push(Rpc {
                grpc_path: leak(format!("/{}/{}", service.full_name(), method.name())),
                service: leak(service.full_name().to_owned()),
                name: leak(method.name().to_owned()),
                method,
                access,
                status,
                bindings,
            });
        }
    }
    Ok(rpcs)
}

/// The table is built once per process; tonic's method extension wants `'static` names.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn access_of(value: &prost_reflect::Value) -> anyhow::Result<Access> {
    let message = value
        .as_message()
        .context("the access option is a message")?;
    let number = |field: &str| {
        message
            .get_field_by_name(field)
            .and_then(|v| v.as_enum_number())
            .unwrap_or(0)
    };
    let scope = match number("scope") {
        0 => None,
        1 => Some(Scope::Read),
        2 => Some(Scope::Write),
        3 => Some(Scope::Admin),
        other => bail!("unknown scope {other}"),
    };
    Ok(match number("audience") {
        1 => Access::Tenant(scope.unwrap_or(Scope::Read)),
        2 => Access::Operator(scope),
        3 => Access::Internal,
        4 => Access::AnyKey(scope.unwrap_or(Scope::Read)),
        other => bail!("audience {other} is not one the edge knows"),
    })
}

fn bindings_of(rule: &DynamicMessage, input: &MessageDescriptor) -> anyhow::Result<Vec<Binding>> {
    let mut bindings = vec![binding_of(rule, input)?];
    if let Some(more) = rule.get_field_by_name("additional_bindings")
        && let Some(list) = more.as_list()
    {
        for extra in list {
            let extra = extra.as_message().context("a binding is a message")?;
            bindings.push(binding_of(extra, input)?);
        }
    }
    Ok(bindings)
}

fn binding_of(rule: &DynamicMessage, input: &MessageDescriptor) -> anyhow::Result<Binding> {
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|t| !t.is_empty())
    };
    let (method, template) = [
        (http::Method::GET, "get"),
        (http::Method::PUT, "put"),
        (http::Method::POST, "post"),
        (http::Method::DELETE, "delete"),
        (http::Method::PATCH, "patch"),
    ]
    .into_iter()
    .find_map(|(method, name)| text(name).map(|t| (method, t)))
    .context("no method and path")?;
    let (segments, verb) = parse_template(&template)?;
    let binding = Binding {
        method,
        template,
        segments,
        verb,
        body: text("body"),
        response_body: text("response_body"),
    };
    for field in binding.path_fields() {
        input
            .get_field_by_name(field)
            .with_context(|| format!("{} has no field {field}", input.full_name()))?;
    }
    if let Some(body) = binding.body.as_deref().filter(|b| *b != "*") {
        input
            .get_field_by_name(body)
            .with_context(|| format!("{} has no body field {body}", input.full_name()))?;
    }
    Ok(binding)
}

/// Splits `/v1/tenants/{tenant_id}/runs/{run_id}:retry` into segments and the custom verb
/// that follows a variable. Variables bind one segment to a top-level field; the template
/// forms `{field=pattern}` and `**` are not used by the contract and are refused.
fn parse_template(template: &str) -> anyhow::Result<(Vec<Segment>, Option<String>)> {
    let rest = template
        .strip_prefix('/')
        .context("a template starts with /")?;
    let mut segments = Vec::new();
    let mut verb = None;
    for (index, segment) in rest.split('/').enumerate() {
        let last = index == rest.split('/').count() - 1;
        if let Some(inner) = segment.strip_prefix('{') {
            let (field, after) = inner.split_once('}').context("an unclosed {")?;
            if field.contains('=') || field.contains('.') {
                bail!("{template}: only {{field}} variables are supported");
            }
            match after.strip_prefix(':') {
                Some(custom) if last && !custom.is_empty() => verb = Some(custom.to_owned()),
                None if after.is_empty() => {}
                _ => bail!("{template}: a variable must fill its segment"),
            }
            segments.push(Segment::Variable(field.to_owned()));
        } else if segment.is_empty() || segment.contains('*') || segment.contains('{') {
            bail!("{template}: segment `{segment}` is not supported");
        } else {
            segments.push(Segment::Literal(segment.to_owned()));
        }
    }
    Ok((segments, verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_declares_its_access_and_its_rules_parse() {
        let rpcs = rpcs().unwrap();
        assert!(rpcs.len() >= 47, "{}", rpcs.len());
        let get = |name: &str| rpcs.iter().find(|r| r.name == name).unwrap();
        assert_eq!(get("GetTenant").access, Access::Tenant(Scope::Read));
        assert_eq!(get("CreateTenant").status, StatusCode::CREATED);
        assert_eq!(get("AuthenticateKey").access, Access::Internal);
        let retry = &get("RetryProvisioningRun").bindings[0];
        assert_eq!(retry.verb.as_deref(), Some("retry"));
        assert_eq!(
            retry.axum_path(),
            "/v1/tenants/{tenant_id}/provisioning-runs/{run_id}"
        );
        for rpc in rpcs {
            if matches!(rpc.access, Access::Tenant(_)) {
                assert!(
                    rpc.tenant_field().is_some() || rpc.method.is_client_streaming(),
                    "{}",
                    rpc.name
                );
            }
        }
    }

    #[test]
    fn templates_split_into_segments_and_a_verb() {
        let (segments, verb) = parse_template("/v1/tenants/{tenant_id}/cost:forecast").unwrap();
        assert_eq!(
            segments,
            [
                Segment::Literal("v1".into()),
                Segment::Literal("tenants".into()),
                Segment::Variable("tenant_id".into()),
                Segment::Literal("cost:forecast".into()),
            ]
        );
        assert_eq!(verb, None);
        assert!(parse_template("/v1/{name=tenants/*}").is_err());
        assert!(parse_template("/v1/{a}x").is_err());
    }
}
