//! What the issuer and the introspector share: the token store, the hash
//! key, usage tracking, events, the audit trail and client verification.
//!
//! The core imports nothing from either side (`issuer`, `introspector`,
//! `caller_auth`, `gateway`), so the two sides depend on it and never on
//! each other.

use std::sync::Arc;

use latchkey_secrets::HashKeys;

use crate::audit::Auditor;
use crate::events::TokenEvents;
use crate::store::TokenStore;
use crate::usage::UsageTracker;
use crate::verify::ClientVerifier;

/// The shared state of the token service. Every field is a shared handle,
/// so a clone is cheap and sees the same store, caches and queues.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub(crate) store: Arc<dyn TokenStore>,
    /// The current key hashes new tokens; a token issued before the key
    /// rotated is found under an older key's hash until it expires.
    pub(crate) hash_keys: HashKeys,
    pub(crate) usage: Arc<UsageTracker>,
    pub(crate) events: Arc<dyn TokenEvents>,
    pub(crate) auditor: Auditor,
    /// Client ID and secret checks: issuance and revocation verify clients,
    /// the introspector verifies introspection callers the same way.
    pub(crate) verifier: ClientVerifier,
}
