//! gRPC transport of the credential registry: the `CredentialRegistry` and
//! `ClientAuthentication` services over the domain [`Registry`], the
//! conversions between wire messages and domain types, and the one mapping
//! of domain errors to gRPC statuses.
//!
//! Handlers only convert and delegate. Authentication is one tower layer
//! ([`Authenticated`]) in front of `CredentialRegistry`; it hands each
//! handler the [`Caller`], whose rights the domain checks.
//!
//! [`Caller`]: latchkey_registry::Caller
//!
//! [`Registry`]: latchkey_registry::Registry

mod audit;
mod authentication;
mod client_authentication;
mod convert;
mod credential_registry;
mod member;
mod status;
mod token_sync;
mod usage_sink;

pub use audit::AuditSinkService;
pub use authentication::{
    AUTH_PROXY_CALLER, Authenticated, CallerVerifier, ON_BEHALF_OF_METADATA, ProxiedUser,
    TokenAdminCallerVerifier,
};
pub use client_authentication::ClientAuthenticationService;
pub use credential_registry::CredentialRegistryService;
pub use token_sync::TokenAdminSync;
pub use usage_sink::UsageSinkService;
