//! Asking Latchkey whether a token may be used for one request:
//! `latchkey.token.v1.Introspection/Introspect`, authenticated as a gateway.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use latchkey_proto::token::v1 as pb;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::Channel;

use crate::secret::{ClientSecret, basic_authorization};
use crate::server::identity::Identity;

/// Why Latchkey says a token is not active (see `introspection.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InactiveReason {
    /// Not given, or unknown to this client version.
    Unspecified,
    /// Not a Latchkey token.
    Malformed,
    /// Never issued, or expired and gone.
    Unknown,
    /// The token's lifetime is over.
    Expired,
    /// The token or its credential was revoked or deleted.
    Revoked,
    /// The credential is disabled.
    CredentialDisabled,
    /// The caller's address is outside the credential's allowlist.
    IpNotAllowed,
    /// A required scope is not granted.
    ScopeNotAllowed,
    /// The credential has expired.
    CredentialExpired,
}

impl From<pb::InactiveReason> for InactiveReason {
    fn from(reason: pb::InactiveReason) -> Self {
        use pb::InactiveReason as Wire;
        match reason {
            Wire::Unspecified => Self::Unspecified,
            Wire::Malformed => Self::Malformed,
            Wire::Unknown => Self::Unknown,
            Wire::Expired => Self::Expired,
            Wire::Revoked => Self::Revoked,
            Wire::CredentialDisabled => Self::CredentialDisabled,
            Wire::IpNotAllowed => Self::IpNotAllowed,
            Wire::ScopeNotAllowed => Self::ScopeNotAllowed,
            Wire::CredentialExpired => Self::CredentialExpired,
        }
    }
}

/// Latchkey's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The token may be used; who presented it.
    Active(Identity),
    /// It may not.
    Inactive(InactiveReason),
}

/// Latchkey could not answer: unreachable, too slow, or it refused this
/// service's own credential. Requests are refused meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("latchkey introspection unavailable: {0}")]
pub struct IntrospectionUnavailable(String);

/// A client of Latchkey's introspection, authenticating with this service's
/// own credential (it must hold `tokens:introspect`) by HTTP Basic
/// metadata, as a gateway does.
///
/// Without a cache (the default) every request is introspected, so a
/// revoked or disabled credential is refused at once. With
/// [`with_cache`](Self::with_cache), a positive answer is reused for the
/// same token, caller address and scopes for at most the cache's TTL: a
/// token revoked meanwhile keeps working on this replica for up to that
/// long. Refusals are never cached.
#[derive(Clone)]
pub struct Introspector {
    client: IntrospectionClient<Channel>,
    authorization: AsciiMetadataValue,
    timeout: Duration,
    cache: Option<moka::sync::Cache<[u8; 32], Identity>>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Introspector")
            .field("authorization", &"***")
            .field("timeout", &self.timeout)
            .field(
                "cache_ttl",
                &self
                    .cache
                    .as_ref()
                    .and_then(|cache| cache.policy().time_to_live()),
            )
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// Introspects over `channel` to Latchkey's gRPC listener, as the
    /// credential `client_id` with `client_secret`. Each call times out
    /// after 2 s (see [`with_timeout`](Self::with_timeout)).
    pub fn new(channel: Channel, client_id: &str, client_secret: impl Into<ClientSecret>) -> Self {
        let secret = client_secret.into();
        let mut authorization = MetadataValue::try_from(basic_authorization(client_id, &secret))
            .unwrap_or_else(|_| MetadataValue::from_static(""));
        authorization.set_sensitive(true);
        Self {
            client: IntrospectionClient::new(channel),
            authorization,
            timeout: Duration::from_secs(2),
            cache: None,
        }
    }

    /// Gives up on an introspection (and refuses the request) after
    /// `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opts in to reusing positive answers for up to `ttl` (at most
    /// `max_entries` of them). Revocation then takes up to `ttl` to reach
    /// this service; keep it short (a few seconds).
    #[must_use]
    pub fn with_cache(mut self, ttl: Duration, max_entries: u64) -> Self {
        self.cache = Some(
            moka::sync::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_entries)
                .build(),
        );
        self
    }

    /// Whether `token` may be used by `client_ip` for `required_scopes`.
    ///
    /// # Errors
    ///
    /// [`IntrospectionUnavailable`] when Latchkey does not answer; the
    /// request must then be refused.
    pub async fn check(
        &self,
        token: &str,
        client_ip: Option<IpAddr>,
        required_scopes: &[String],
    ) -> Result<Verdict, IntrospectionUnavailable> {
        let key = self
            .cache
            .as_ref()
            .map(|_| cache_key(token, client_ip, required_scopes));
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some(identity) = cache.get(key)
        {
            return Ok(Verdict::Active(identity));
        }
        let mut request = tonic::Request::new(pb::IntrospectRequest {
            token: token.to_owned(),
            client_ip: client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            required_scopes: required_scopes.to_vec(),
        });
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let answer = match tokio::time::timeout(self.timeout, client.introspect(request)).await {
            Ok(Ok(answer)) => answer.into_inner(),
            Ok(Err(status)) => {
                // UNAUTHENTICATED / PERMISSION_DENIED here mean this
                // service's own credential is wrong: an operator's problem,
                // never the caller's, so the caller gets 503.
                tracing::warn!(code = ?status.code(), message = status.message(), "latchkey introspection failed");
                return Err(IntrospectionUnavailable(format!("{:?}", status.code())));
            }
            Err(_elapsed) => {
                tracing::warn!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    "latchkey introspection timed out"
                );
                return Err(IntrospectionUnavailable("timed out".to_owned()));
            }
        };
        if !answer.active {
            return Ok(Verdict::Inactive(answer.reason().into()));
        }
        let identity = Identity {
            client_id: answer.client_id,
            credential_id: answer.credential_id,
            project_id: answer.project_id,
            owner: answer.owner,
            scopes: answer.scopes,
        };
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.insert(key, identity.clone());
        }
        Ok(Verdict::Active(identity))
    }
}

/// A hash of what the answer depends on, so the cache never holds tokens.
fn cache_key(token: &str, client_ip: Option<IpAddr>, scopes: &[String]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(token.as_bytes());
    hasher.update(b"\0");
    let address = client_ip.map(|ip| ip.to_string()).unwrap_or_default();
    hasher.update(address.as_bytes());
    for scope in scopes {
        hasher.update(b"\0");
        hasher.update(scope.as_bytes());
    }
    *hasher.finalize().as_bytes()
}
