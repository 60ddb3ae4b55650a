//! Compiles the v1 contract with protox (no system `protoc`) and generates prost messages, tonic
//! clients and servers (behind the `client` and `server` features) and, with `json`, pbjson serde
//! implementations into `OUT_DIR`. Also writes the encoded descriptor set used for reflection.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "mfg/options/v1/options.proto",
    "mfg/common/v1/common.proto",
    "mfg/tenant/v1/tenant.proto",
    "mfg/storage/v1/telemetry.proto",
    "mfg/storage/v1/alerts.proto",
    "mfg/cost/v1/cost.proto",
    "mfg/provisioning/v1/provisioning.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.join("mfg").display());
    println!("cargo:rerun-if-changed={}", root.join("vendor").display());

    let includes = [root.clone(), root.join("vendor/googleapis")];
    let mut compiler = protox::Compiler::new(includes)?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?;
    // Encoded by protox itself, so that custom options (google.api.http, field_behavior) survive:
    // prost's FileDescriptorSet types drop unknown fields.
    let encoded = compiler.encode_file_descriptor_set();
    fs::write(out_dir.join("mfg_descriptor.bin"), &encoded)?;
    let descriptors = compiler.file_descriptor_set();
    fs::write(out_dir.join("codec_roles.rs"), codec_roles(&descriptors))?;
    fs::write(
        out_dir.join("access.rs"),
        access_table(&compiler.descriptor_pool())?,
    )?;

    // Every message names itself (`prost::Name`), so that the gateway can find its descriptor
    // and write the canonical proto3 JSON.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(env::var_os("CARGO_FEATURE_CLIENT").is_some())
        .build_server(env::var_os("CARGO_FEATURE_SERVER").is_some())
        // RPCs of services that are not built yet answer UNIMPLEMENTED.
        .generate_default_stubs(true)
        // Small initial buffers: an idle stream should not hold 16 KiB of them.
        .codec_path("crate::codec::LeanCodec")
        // Well-known types come from pbjson-types, which carries their proto3 JSON mapping.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds_with_config(descriptors, config)?;

    if env::var_os("CARGO_FEATURE_JSON").is_some() {
        // Unpopulated fields are emitted, as grpc-gateway v2 does by default, so that a zero
        // budget or an empty label map is visible in JSON rather than absent.
        pbjson_build::Builder::new()
            .register_descriptors(&encoded)?
            .emit_fields()
            .build(&[".mfg"])?;
    }
    Ok(())
}

/// Says, for the request and the response message of every RPC, which side decodes it, so that
/// the codec can tell a caller's undecodable request (INVALID_ARGUMENT) from an undecodable
/// answer (INTERNAL). buf's DEFAULT lint makes every RPC's request and response types unique.
fn codec_roles(descriptors: &prost_types::FileDescriptorSet) -> String {
    let rust_path = |full_name: &str| {
        let path = full_name.trim_start_matches('.');
        let path = path.strip_prefix("mfg.").unwrap_or(path);
        format!("crate::{}", path.replace('.', "::"))
    };
    let mut roles = std::collections::BTreeMap::new();
    for file in &descriptors.file {
        if !file.package().starts_with("mfg.") {
            continue;
        }
        for service in &file.service {
            for method in &service.method {
                roles.insert(rust_path(method.input_type()), "Request");
                roles.insert(rust_path(method.output_type()), "Response");
            }
        }
    }
    roles
        .iter()
        .map(|(path, role)| {
            format!("impl Decoded for {path} {{ const ROLE: Role = Role::{role}; }}\n")
        })
        .collect()
}

/// Writes each RPC's declared access (`mfg.options.v1.access`) as a `match` on its gRPC path,
/// with the number of its request's `tenant_id` field, for the services' auth layer. Fails the
/// build when an RPC declares none, or a tenant's RPC has no `tenant_id` and does not stream.
fn access_table(
    pool: &prost_reflect::DescriptorPool,
) -> Result<String, Box<dyn std::error::Error>> {
    let access = pool
        .get_extension_by_name("mfg.options.v1.access")
        .ok_or("mfg.options.v1.access is not in the contract")?;
    let mut arms = String::new();
    for service in pool
        .services()
        .filter(|s| s.package_name().starts_with("mfg."))
    {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&access) {
                return Err(
                    format!("{} declares no mfg.options.v1.access", method.full_name()).into(),
                );
            }
            let declared = options.get_extension(&access);
            let declared = declared
                .as_message()
                .ok_or("the access option is a message")?;
            let number = |field: &str| {
                declared
                    .get_field_by_name(field)
                    .and_then(|v| v.as_enum_number())
                    .unwrap_or(0)
            };
            let tenant_field = method
                .input()
                .get_field_by_name("tenant_id")
                .filter(|f| f.kind() == prost_reflect::Kind::String && !f.is_list())
                .map(|f| f.number());
            let streaming = method.is_client_streaming();
            if number("audience") == 1 && tenant_field.is_none() && !streaming {
                return Err(
                    format!("{} is a tenant's RPC without tenant_id", method.full_name()).into(),
                );
            }
            arms.push_str(&format!(
                "        \"/{}/{}\" => Declared {{ audience: {}, scope: {}, tenant_field: {:?}, client_streaming: {streaming} }},\n",
                service.full_name(),
                method.name(),
                number("audience"),
                number("scope"),
                tenant_field,
            ));
        }
    }
    Ok(format!(
        "/// The access the contract declares for an RPC, by its gRPC path.\n\
         pub fn declared(path: &str) -> Option<Declared> {{\n    Some(match path {{\n{arms}        _ => return None,\n    }})\n}}\n"
    ))
}
