//! gRPC transport of the credential registry: the `CredentialRegistry` and
//! `ClientAuthentication` services over the domain [`Registry`], the
//! conversions between wire messages and domain types, and the one mapping
//! of domain errors to gRPC statuses.
//!
//! Handlers only convert and delegate. Authorization (a later issue) plugs
//! in as a tower layer in front of these services, not as code in each
//! handler.
//!
//! [`Registry`]: latchkey_registry::Registry

mod client_authentication;
mod convert;
mod credential_registry;
mod status;
mod token_sync;
mod usage_sink;

pub use client_authentication::ClientAuthenticationService;
pub use credential_registry::CredentialRegistryService;
pub use token_sync::TokenAdminSync;
pub use usage_sink::UsageSinkService;
