//! Compiles the protos under `../../proto` with `protox` (pure Rust, so no
//! system `protoc` is needed) and generates prost messages and tonic stubs.

use std::path::{Path, PathBuf};

const PROTO_FILES: &[&str] = &[
    "latchkey/registry/v1/registry.proto",
    "latchkey/registry/v1/client_authentication.proto",
    "latchkey/registry/v1/usage.proto",
    "latchkey/registry/v1/audit.proto",
    "latchkey/registry/v1/member.proto",
    "latchkey/token/v1/token.proto",
    "latchkey/token/v1/introspection.proto",
    "latchkey/token/v1/token_admin.proto",
];

/// The proto of Envoy's `Authorization` service, under `third_party/envoy`.
const ENVOY_AUTHORIZATION_PROTO: &str = "envoy/service/auth/v3/external_auth.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let descriptors = protox::compile(PROTO_FILES, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The encoded set (imports included) feeds server reflection, so grpcurl
    // works without proto files at hand.
    let encoded = prost::Message::encode_to_vec(&descriptors);
    std::fs::write(out_dir.join("latchkey_descriptor.bin"), &encoded)?;

    // Envoy's ext_authz protos: only their descriptors, for reflection (the
    // generated types come from the `envoy-types` crate).
    let envoy_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party/envoy");
    println!("cargo:rerun-if-changed={}", envoy_root.display());
    let envoy = protox::compile([ENVOY_AUTHORIZATION_PROTO], [&envoy_root])?;
    std::fs::write(
        out_dir.join("envoy_authorization_descriptor.bin"),
        prost::Message::encode_to_vec(&envoy),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(prost::Message::decode(encoded.as_slice())?)?;
    Ok(())
}
