//! The token issuer's domain.
//!
//! An access token names its credential (so every store key of one
//! credential shares a Redis Cluster hash tag) and is kept only under its
//! keyed hash. Beside a credential's tokens the store keeps the credential's
//! [`CredentialPolicy`] once, so introspection reads token and policy in one
//! round trip and a policy change reaches every live token at once.

mod audit;
mod auth_cache;
mod authenticator;
mod caller_auth;
mod error;
mod events;
mod gateway;
mod introspect;
mod issue;
mod key;
mod model;
mod scope;
mod store;
mod usage;
mod verify;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use audit::{AuditQueue, TokenAction, TokenAuditEvent};
pub use authenticator::{AuthenticatedClient, ClientAuthenticator};
pub use caller_auth::{CallerCredentials, CallerError, DEFAULT_CALLER_TTL, INTROSPECT_SCOPE};
pub use error::{BoxError, ClientRefusal, IssueError, StoreError, StoreIssueError};
pub use events::{NoEvents, TokenEvents, introspection_label, refusal_label};
pub use gateway::{DenyReason, Gateway, GatewayDecision};
pub use introspect::{InactiveReason, Introspection, IntrospectionRequest, TokenInfo};
pub use issue::{IssueRequest, IssuedToken, TokenService};
pub use key::{CredentialKey, ParsedToken, TOKEN_HASH_LEN, TokenHash, new_token, parse_token};
pub use model::{CredentialPolicy, LimitPolicy, PolicyState, TokenRecord, unix_now};
pub use scope::{MAX_SCOPE_LEN, MAX_SCOPES, check_scope_syntax, parse_scope_list};
pub use store::{
    FailureCount, FailureGuard, GuardCheck, Lookup, NewToken, PolicyOrigin, TokenStore,
};
pub use usage::{Usage, UsageTracker};
pub use verify::FailureLimits;
