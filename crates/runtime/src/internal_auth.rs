//! Service authentication of internal calls, in every configuration and
//! independent of TLS.
//!
//! The registry and the token issuers share an **internal key** (256 bits).
//! Every internal call (`ClientAuthentication`, `UsageSink`, `AuditSink`,
//! `TokenAdmin`) carries a signature header:
//!
//! ```text
//! x-latchkey-signature: v1 t=<unix milliseconds> n=<128-bit nonce, hex> m=<MAC, hex>
//! ```
//!
//! where the MAC is a keyed BLAKE3 (under a key derived from the internal
//! key for this purpose only) over the version, the method path, the time,
//! the nonce and the BLAKE3 hash of the whole request body. The receiving
//! listener refuses, before any handler runs, a call whose signature is
//! missing or wrong, whose time is outside the allowed clock skew, or whose
//! nonce it has already seen within the window: a captured call cannot be
//! replayed later, nor its body changed, nor sent to another method.
//!
//! The signature authenticates the *caller*. Answers are not signed: whoever
//! can rewrite traffic between the services (not merely reach their ports)
//! is stopped by mutual TLS, the extra layer for untrusted networks.
//! Health and reflection stay open on internal listeners (they reveal
//! nothing but service names and statuses), so probes need no key.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use latchkey_secrets::{HashKey, SecretHash, fill_bytes};
use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request as HttpRequest, Response as HttpResponse};
use tonic::codegen::{BoxFuture, Service};
use tonic::{Code, Status};
use tower_layer::Layer;

use crate::grpc::take_ready;
use crate::status::{reason, status_with_reason};

/// The header every internal call carries.
pub const SIGNATURE_HEADER: &str = "x-latchkey-signature";

/// The key derivation context of the call MAC (never change it: both sides
/// of a rolling upgrade must derive the same key).
const MAC_CONTEXT: &str = "latchkey 2026-11 internal call signature v1";

/// Default largest difference between the caller's clock and ours.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Largest internal request body a client signs (the largest internal
/// message, an audit batch of 2,000 events, is about 1.8 MB).
pub const MAX_INTERNAL_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Most nonces remembered per window; past it internal calls are refused
/// as overload until the window turns (no legitimate pair of services comes
/// near: that is 16,000 internal calls a second).
const MAX_NONCES_PER_WINDOW: usize = 1_000_000;

/// The shared internal key: signs outgoing calls and verifies incoming ones.
/// A previous key, while set, is still accepted (never used to sign), so
/// the key can rotate without downtime: add the new key as current and the
/// old one as previous on every service, then drop the previous.
#[derive(Clone)]
pub struct InternalKey {
    current: HashKey,
    previous: Option<HashKey>,
}

impl fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalKey")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl InternalKey {
    /// The key configured as `internal_key` (and, during a rotation,
    /// `internal_previous_key`).
    pub fn new(current: &HashKey, previous: Option<&HashKey>) -> Self {
        Self {
            current: current.derive(MAC_CONTEXT),
            previous: previous.map(|key| key.derive(MAC_CONTEXT)),
        }
    }

    fn mac(key: &HashKey, path: &str, time_ms: u64, nonce: &str, body: &[u8]) -> SecretHash {
        let body_hash = blake3::hash(body);
        let mut message = Vec::with_capacity(path.len() + 96);
        message.extend_from_slice(b"v1\n");
        message.extend_from_slice(path.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(time_ms.to_string().as_bytes());
        message.push(b'\n');
        message.extend_from_slice(nonce.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(body_hash.as_bytes());
        key.hash_bytes(&message)
    }

    /// The signature header value of a call to `path` with `body`.
    pub fn sign(&self, path: &str, body: &[u8]) -> HeaderValue {
        self.sign_at(path, body, unix_millis(SystemTime::now()))
    }

    /// The signature header value as if signed at `time_ms` (Unix
    /// milliseconds): for tests of the clock-skew window.
    pub fn sign_at(&self, path: &str, body: &[u8], time_ms: u64) -> HeaderValue {
        let mut nonce = [0u8; 16];
        fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let mac = Self::mac(&self.current, path, time_ms, &nonce, body);
        let value = format!("v1 t={time_ms} n={nonce} m={}", hex::encode(mac.as_bytes()));
        HeaderValue::from_str(&value).expect("hex and digits are a valid header value")
    }

    /// Whether `mac` is the MAC of the call under the current or previous
    /// key (each comparison constant-time).
    fn verifies(&self, path: &str, signature: &Signature, body: &[u8]) -> bool {
        let presented = signature.mac.as_ref();
        let mut ok = false;
        for key in std::iter::once(&self.current).chain(self.previous.as_ref()) {
            let expected = Self::mac(key, path, signature.time_ms, &signature.nonce, body);
            ok |= presented == Some(&expected);
        }
        ok
    }
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A parsed signature header.
#[derive(Debug)]
struct Signature {
    time_ms: u64,
    nonce: String,
    mac: Option<SecretHash>,
}

impl Signature {
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(' ');
        if parts.next()? != "v1" {
            return None;
        }
        let time_ms = parts.next()?.strip_prefix("t=")?.parse().ok()?;
        let nonce = parts.next()?.strip_prefix("n=")?;
        if nonce.len() != 32 || !nonce.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let mac = hex::decode(parts.next()?.strip_prefix("m=")?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            time_ms,
            nonce: nonce.to_ascii_lowercase(),
            mac: SecretHash::from_slice(&mac),
        })
    }
}

/// Signs `request` for `key`: reads its (unary) body, adds the signature
/// header and puts the body back.
pub(crate) async fn sign_request(
    key: &InternalKey,
    request: HttpRequest<Body>,
) -> Result<HttpRequest<Body>, crate::BoxError> {
    let (mut parts, body) = request.into_parts();
    let bytes = Limited::new(body, MAX_INTERNAL_BODY_BYTES)
        .collect()
        .await?
        .to_bytes();
    let signature = key.sign(parts.uri.path(), &bytes);
    parts.headers.insert(SIGNATURE_HEADER, signature);
    Ok(HttpRequest::from_parts(parts, Body::new(Full::new(bytes))))
}

/// Nonces seen recently, in two generations of one window each: a nonce
/// stays remembered for at least one full window after it was seen, which
/// is as long as a call carrying it can pass the clock-skew check.
#[derive(Debug)]
struct SeenNonces {
    window: Duration,
    state: Mutex<NonceGenerations>,
}

#[derive(Debug, Default)]
struct NonceGenerations {
    started: Option<std::time::Instant>,
    current: HashSet<String>,
    previous: HashSet<String>,
}

/// What remembering a nonce found.
#[derive(Debug, PartialEq, Eq)]
enum NonceCheck {
    Fresh,
    Replayed,
    Overloaded,
}

impl SeenNonces {
    fn new(window: Duration) -> Self {
        Self {
            window,
            state: Mutex::new(NonceGenerations::default()),
        }
    }

    fn remember(&self, nonce: &str) -> NonceCheck {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::Instant::now();
        let started = *state.started.get_or_insert(now);
        if now.duration_since(started) >= self.window {
            let expired_too = now.duration_since(started) >= self.window * 2;
            let current = std::mem::take(&mut state.current);
            state.previous = if expired_too { HashSet::new() } else { current };
            state.started = Some(now);
        }
        if state.current.contains(nonce) || state.previous.contains(nonce) {
            return NonceCheck::Replayed;
        }
        if state.current.len() >= MAX_NONCES_PER_WINDOW {
            return NonceCheck::Overloaded;
        }
        state.current.insert(nonce.to_owned());
        NonceCheck::Fresh
    }
}

/// The verifying side: a tower layer for an internal listener's tonic
/// server (`Server::builder().layer(…)`).
#[derive(Debug, Clone)]
pub struct VerifyInternalCallsLayer {
    verifier: Arc<Verifier>,
}

#[derive(Debug)]
struct Verifier {
    key: InternalKey,
    skew: Duration,
    max_body: usize,
    nonces: SeenNonces,
}

impl VerifyInternalCallsLayer {
    /// Verifies calls against `key`, allowing `skew` between clocks and
    /// reading at most `max_body` bytes of a request (the listener's largest
    /// message: the body is buffered before its signature can be checked).
    pub fn new(key: InternalKey, skew: Duration, max_body: usize) -> Self {
        Self {
            verifier: Arc::new(Verifier {
                key,
                skew,
                max_body,
                // A call passes the skew check for 2 × skew of our time.
                nonces: SeenNonces::new(skew * 2),
            }),
        }
    }
}

impl<S> Layer<S> for VerifyInternalCallsLayer {
    type Service = VerifyInternalCalls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyInternalCalls {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// A service behind [`VerifyInternalCallsLayer`].
#[derive(Debug, Clone)]
pub struct VerifyInternalCalls<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

/// Paths that need no signature: probes and service discovery.
fn is_open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

fn refused(message: &str) -> HttpResponse<Body> {
    status_with_reason(
        Code::Unauthenticated,
        message,
        reason::SERVICE_UNAUTHENTICATED,
        [],
    )
    .into_http()
}

impl Verifier {
    /// The request with its body read back in, or the refusal to answer.
    /// Refusals are logged at debug only (anyone who reaches the port can
    /// send them); the gRPC metrics count them as `UNAUTHENTICATED` by method.
    async fn verify(
        &self,
        request: HttpRequest<Body>,
    ) -> Result<HttpRequest<Body>, HttpResponse<Body>> {
        let path = request.uri().path().to_owned();
        let signature = request
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(Signature::parse);
        let signature = match signature {
            None => {
                tracing::debug!(%path, "internal call without a service signature refused");
                return Err(refused(
                    "internal call without a service signature (x-latchkey-signature)",
                ));
            }
            Some(None) => {
                tracing::debug!(%path, "internal call with a malformed service signature refused");
                return Err(refused("malformed service signature"));
            }
            Some(Some(signature)) => signature,
        };
        let now = unix_millis(SystemTime::now());
        let skew = u64::try_from(self.skew.as_millis()).unwrap_or(u64::MAX);
        if signature.time_ms.abs_diff(now) > skew {
            tracing::debug!(%path, skew_ms = signature.time_ms.abs_diff(now), "internal call outside the clock-skew window refused");
            return Err(refused(
                "service signature outside the clock-skew window (replayed, or clocks apart)",
            ));
        }
        let (parts, body) = request.into_parts();
        let bytes = match Limited::new(body, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracing::debug!(%path, %error, "internal call body unreadable or too large");
                return Err(Status::invalid_argument(format!(
                    "request body: unreadable or larger than {} bytes",
                    self.max_body
                ))
                .into_http());
            }
        };
        if !self.key.verifies(&path, &signature, &bytes) {
            tracing::debug!(%path, "internal call with a wrong service signature refused");
            return Err(refused("wrong service signature"));
        }
        // Only a verified call may use up a nonce: otherwise anyone could
        // fill the set, or burn the nonce of a call in flight.
        match self.nonces.remember(&signature.nonce) {
            NonceCheck::Fresh => {}
            NonceCheck::Replayed => {
                tracing::debug!(%path, "replayed internal call refused");
                return Err(refused("replayed internal call"));
            }
            NonceCheck::Overloaded => {
                return Err(Status::unavailable("too many internal calls").into_http());
            }
        }
        Ok(HttpRequest::from_parts(parts, Body::new(Full::new(bytes))))
    }
}

impl<S> Service<HttpRequest<Body>> for VerifyInternalCalls<S>
where
    S: Service<HttpRequest<Body>, Response = HttpResponse<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: HttpRequest<Body>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        if is_open_path(request.uri().path()) {
            return Box::pin(async move { inner.call(request).await });
        }
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match verifier.verify(request).await {
                Ok(request) => inner.call(request).await,
                Err(refusal) => Ok(refusal),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> InternalKey {
        InternalKey::new(&HashKey::generate(), None)
    }

    fn parse(value: &HeaderValue) -> Signature {
        Signature::parse(value.to_str().unwrap()).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_its_own_path_body_and_key() {
        let key = key();
        let signature = parse(&key.sign("/a.B/C", b"body"));
        assert!(key.verifies("/a.B/C", &signature, b"body"));
        assert!(!key.verifies("/a.B/D", &signature, b"body"));
        assert!(!key.verifies("/a.B/C", &signature, b"bodz"));
        assert!(!self::key().verifies("/a.B/C", &signature, b"body"));
    }

    #[test]
    fn the_previous_key_still_verifies_during_a_rotation() {
        let old = HashKey::generate();
        let new = HashKey::generate();
        let signed_with_old = parse(&InternalKey::new(&old, None).sign("/p", b""));
        assert!(InternalKey::new(&new, Some(&old)).verifies("/p", &signed_with_old, b""));
        assert!(!InternalKey::new(&new, None).verifies("/p", &signed_with_old, b""));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "v2 t=1 n=00000000000000000000000000000000 m=00",
            "v1 t=x n=00000000000000000000000000000000 m=00",
            "v1 t=1 n=short m=00",
            "v1 t=1 n=00000000000000000000000000000000",
            "v1 t=1 n=00000000000000000000000000000000 m=zz",
            "v1 t=1 n=00000000000000000000000000000000 m=00 extra",
        ] {
            let parsed = Signature::parse(bad);
            assert!(
                parsed.is_none() || parsed.is_some_and(|signature| signature.mac.is_none()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_nonce_is_accepted_once_per_window() {
        let nonces = SeenNonces::new(Duration::from_secs(60));
        assert_eq!(nonces.remember("a"), NonceCheck::Fresh);
        assert_eq!(nonces.remember("a"), NonceCheck::Replayed);
        assert_eq!(nonces.remember("b"), NonceCheck::Fresh);
    }

    #[test]
    fn nonces_are_forgotten_after_two_windows() {
        let nonces = SeenNonces::new(Duration::from_millis(200));
        assert_eq!(nonces.remember("a"), NonceCheck::Fresh);
        std::thread::sleep(Duration::from_millis(250));
        // One window on: still remembered (in the previous generation).
        assert_eq!(nonces.remember("a"), NonceCheck::Replayed);
        std::thread::sleep(Duration::from_millis(450));
        assert_eq!(nonces.remember("a"), NonceCheck::Fresh);
    }
}
