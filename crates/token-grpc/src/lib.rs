//! gRPC transport of the token issuer: the `TokenService` service over the
//! domain's [`Issuer`], `Introspection` over its [`Introspector`] and
//! `TokenAdmin` over the whole [`TokenService`], and the
//! issuer's clients of the registry (`ClientAuthentication`, `UsageSink`,
//! `AuditSink`).
//!
//! [`Issuer`]: latchkey_token::Issuer
//! [`Introspector`]: latchkey_token::Introspector
//! [`TokenService`]: latchkey_token::TokenService

mod audit_reporter;
mod convert;
mod introspection;
mod peer;
mod registry_client;
mod status;
mod token_admin;
mod token_service;

pub use audit_reporter::{AuditReporter, MAX_AUDIT_BATCH};
pub use introspection::IntrospectionService;
pub use peer::client_ip;
pub use registry_client::{
    MAX_USES_PER_BATCH, RegistryAuthenticator, RollupDelivery, UsageReporter,
};
pub use token_admin::TokenAdminService;
pub use token_service::TokenGrpcService;
