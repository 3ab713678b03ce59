//! The token issuer's domain.
//!
//! An access token names its credential (so every store key of one
//! credential shares a Redis Cluster hash tag) and is kept only under its
//! keyed hash. Beside a credential's tokens the store keeps the credential's
//! [`CredentialPolicy`] once, so introspection reads token and policy in one
//! round trip and a policy change reaches every live token at once.

// The shared core (no module here imports the issuer's or the
// introspector's): the vocabulary and the state both sides use.
mod audit;
mod auth_cache;
mod authenticator;
mod caller_cache;
mod core;
mod error;
mod events;
mod introspection;
mod key;
mod model;
mod rollup;
mod scope;
mod store;
mod usage;
mod verify;

// The two sides, each over the core only.
mod caller_auth;
mod gateway;
mod introspector;
mod issuer;

// The holder of both that the issuer process assembles.
mod service;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use audit::{AuditQueue, TOKEN_EVENT_TARGET, TokenAction, TokenAuditEvent};
pub use authenticator::{AuthenticatedClient, ClientAuthenticator};
pub use caller_auth::{CallerCredentials, CallerError, INTROSPECT_SCOPE};
pub use caller_cache::DEFAULT_CALLER_TTL;
pub use error::{BoxError, ClientRefusal, IssueError, StoreError, StoreIssueError};
pub use events::{NoEvents, TokenEvents, introspection_label, refusal_label};
pub use gateway::{DenyReason, Gateway, GatewayDecision};
pub use introspection::{InactiveReason, Introspection, IntrospectionRequest, TokenInfo};
pub use introspector::Introspector;
pub use issuer::{IssueRequest, IssuedToken, Issuer};
pub use key::{CredentialKey, ParsedToken, TOKEN_HASH_LEN, TokenHash, new_token, parse_token};
pub use model::{CredentialPolicy, LimitPolicy, PolicyState, TokenRecord, unix_now};
pub use rollup::{
    DEFAULT_MAX_PENDING_ROLLUPS, MAX_ROLLUP_ADDRESSES, MAX_ROLLUPS_PER_BATCH, RollupBatch,
    UsageKind, UsageRollup, UsageRollups,
};
pub use scope::{MAX_SCOPE_LEN, MAX_SCOPES, check_scope_syntax, parse_scope_list};
pub use service::TokenService;
pub use store::{
    FailureCount, FailureGuard, GuardCheck, Lookup, NewToken, PolicyOrigin, TokenStore,
};
pub use usage::{Usage, UsageTracker};
pub use verify::FailureLimits;
