//! Generated code for Latchkey's gRPC APIs.
//!
//! This crate holds only what `prost`/`tonic` generate from `proto/`; the
//! conversions to domain types live in each API's transport crate, so domain
//! and storage crates never depend on wire types.

#![allow(unreachable_pub, missing_debug_implementations, clippy::all)]

/// `latchkey.registry.v1`: the credential registry's public and internal APIs.
pub mod registry {
    /// Version 1 of the registry API.
    pub mod v1 {
        tonic::include_proto!("latchkey.registry.v1");
    }
}

/// `latchkey.token.v1`: the token issuer's public and internal APIs.
pub mod token {
    /// Version 1 of the token API.
    pub mod v1 {
        tonic::include_proto!("latchkey.token.v1");
    }
}

/// Encoded `FileDescriptorSet` of every Latchkey proto and its imports, for
/// gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/latchkey_descriptor.bin"));

/// Encoded `FileDescriptorSet` of Envoy's `envoy.service.auth.v3.Authorization`
/// and its imports, so reflection describes the ext_authz service the token
/// issuer serves.
pub const ENVOY_AUTHORIZATION_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/envoy_authorization_descriptor.bin"
));
