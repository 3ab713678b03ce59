//! [`TokenSource`]: a cached, self-refreshing access token for one
//! credential.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::TokenError;
use crate::fetch::{Fetcher, Grant, Issued};
use crate::policy::{RefreshPolicy, RetryPolicy};
use crate::secret::{AccessToken, ClientSecret};

/// A credential's access token, fetched from the issuer when needed and
/// shared by every caller.
///
/// - **Cached**: [`token`](Self::token) answers from memory while the token
///   is fresh.
/// - **Refreshed ahead of expiry** ([`RefreshPolicy`]): the first caller
///   after the refresh point fetches a new token while every other caller
///   keeps getting the current one; if that refresh fails, the current
///   token is served until it is no longer valid.
/// - **Single flight**: callers that find no valid token wait for one
///   fetch together (100 concurrent callers cause one request).
/// - **Backoff** ([`RetryPolicy`]): after a failure no request is made until
///   the wait is over; callers get [`TokenError::BackingOff`] meanwhile. A
///   permanent refusal (`invalid_client`, `invalid_scope`) is remembered
///   with a much longer wait, so a revoked credential never makes a hot loop.
///
/// Cloning is cheap and shares the cache. `Debug` never shows the secret or
/// the token, and nothing here logs them.
#[derive(Debug, Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    grant: Grant,
    fetcher: Fetcher,
    refresh: RefreshPolicy,
    retry: RetryPolicy,
    state: Mutex<State>,
    /// Held by the one caller fetching; the others wait on it (no valid
    /// token) or skip it (a valid token to serve meanwhile).
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    cached: Option<Cached>,
    failure: Option<Failure>,
}

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    usable_until: Instant,
}

#[derive(Debug)]
struct Failure {
    error: TokenError,
    consecutive: u32,
    next_attempt: Instant,
}

/// What the cache says about now.
enum Lookup {
    Fresh(AccessToken),
    /// Valid, but past its refresh point.
    Stale(AccessToken),
    Missing,
}

impl TokenSource {
    /// Starts configuring a source for the credential `client_id` with
    /// `client_secret`.
    pub fn builder(
        client_id: impl Into<String>,
        client_secret: impl Into<ClientSecret>,
    ) -> TokenSourceBuilder {
        TokenSourceBuilder {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Vec::new(),
            refresh: RefreshPolicy::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// The credential's client ID.
    pub fn client_id(&self) -> &str {
        &self.inner.grant.client_id
    }

    /// A valid access token: the cached one, or a new one from the issuer.
    ///
    /// # Errors
    ///
    /// The issuer's refusal or unavailability when there is no valid token
    /// to serve, or [`TokenError::BackingOff`] while waiting after such a
    /// failure.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        match self.lookup() {
            Lookup::Fresh(token) => Ok(token),
            Lookup::Stale(current) => Ok(self.refresh_ahead(current).await),
            Lookup::Missing => self.fetch_shared().await,
        }
    }

    /// Forgets `token` if it is the cached one, so the next
    /// [`token`](Self::token) fetches a new one. For a callee that refused
    /// it (HTTP 401): the token was revoked, or its credential changed.
    /// Comparing first means many requests refused together cause one fetch.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut state = self.state();
        if state
            .cached
            .as_ref()
            .is_some_and(|cached| &cached.token == token)
        {
            state.cached = None;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; the
        // worst case is a token fetched again.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lookup(&self) -> Lookup {
        let now = Instant::now();
        match &self.state().cached {
            Some(cached) if now < cached.refresh_at => Lookup::Fresh(cached.token.clone()),
            Some(cached) if now < cached.usable_until => Lookup::Stale(cached.token.clone()),
            Some(_) | None => Lookup::Missing,
        }
    }

    /// Past the refresh point: one caller refreshes, the others (and that
    /// caller, should the refresh fail) get `current`.
    async fn refresh_ahead(&self, current: AccessToken) -> AccessToken {
        let Ok(_fetching) = self.inner.fetching.try_lock() else {
            return current;
        };
        match self.lookup() {
            Lookup::Fresh(token) => return token,
            Lookup::Stale(_) | Lookup::Missing => {}
        }
        if self.waiting().is_some() {
            return current;
        }
        match self.fetch_now().await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(%error, client_id = %self.client_id(), "token refresh failed; serving the current token");
                current
            }
        }
    }

    /// No valid token: one fetch for every waiting caller.
    async fn fetch_shared(&self) -> Result<AccessToken, TokenError> {
        let _fetching = self.inner.fetching.lock().await;
        match self.lookup() {
            Lookup::Fresh(token) | Lookup::Stale(token) => return Ok(token),
            Lookup::Missing => {}
        }
        if let Some(waiting) = self.waiting() {
            return Err(waiting);
        }
        self.fetch_now().await
    }

    /// The error to answer with while a failure's wait is not over.
    fn waiting(&self) -> Option<TokenError> {
        let state = self.state();
        let failure = state.failure.as_ref()?;
        let retry_in = failure
            .next_attempt
            .checked_duration_since(Instant::now())?;
        if retry_in.is_zero() {
            return None;
        }
        Some(TokenError::BackingOff {
            last: Box::new(failure.error.clone()),
            retry_in,
        })
    }

    /// Asks the issuer once (the caller holds `fetching`) and records the
    /// outcome.
    async fn fetch_now(&self) -> Result<AccessToken, TokenError> {
        let outcome = self.inner.fetcher.fetch(&self.inner.grant).await;
        let now = Instant::now();
        let mut state = self.state();
        match outcome {
            Ok(Issued { token, expires_in }) => {
                let (refresh_after, usable_for) = self.inner.refresh.schedule(expires_in);
                state.failure = None;
                state.cached = Some(Cached {
                    token: token.clone(),
                    refresh_at: now + refresh_after,
                    usable_until: now + usable_for,
                });
                tracing::debug!(client_id = %self.client_id(), expires_in_seconds = expires_in.as_secs(), "access token fetched");
                Ok(token)
            }
            Err(error) => {
                let consecutive = state
                    .failure
                    .as_ref()
                    .map_or(1, |failure| failure.consecutive.saturating_add(1));
                let wait =
                    self.inner
                        .retry
                        .delay(consecutive, error.is_permanent(), error.retry_after());
                if error.is_permanent() {
                    tracing::error!(%error, client_id = %self.client_id(), retry_in_ms = wait.as_millis() as u64, "the issuer refused the credential");
                } else {
                    tracing::warn!(%error, client_id = %self.client_id(), retry_in_ms = wait.as_millis() as u64, "token fetch failed");
                }
                state.failure = Some(Failure {
                    error: error.clone(),
                    consecutive,
                    next_attempt: now + wait,
                });
                Err(error)
            }
        }
    }
}

/// Configures a [`TokenSource`]; finish with
/// [`build_http`](Self::build_http) or [`build_grpc`](Self::build_grpc).
#[derive(Debug)]
#[must_use]
pub struct TokenSourceBuilder {
    client_id: String,
    client_secret: ClientSecret,
    scopes: Vec<String>,
    refresh: RefreshPolicy,
    retry: RetryPolicy,
}

impl TokenSourceBuilder {
    /// The scopes to ask for (each one of the credential's allowed APIs).
    /// None asks for every API the credential may call.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// When tokens are refreshed (default [`RefreshPolicy::default`]).
    pub fn refresh_policy(mut self, refresh: RefreshPolicy) -> Self {
        self.refresh = refresh;
        self
    }

    /// How long to wait after failures (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// A source fetching from the token endpoint `token_url` (e.g.
    /// `https://latchkey.example.com/oauth2/token`) with a default
    /// `reqwest` client (10 s timeout).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `token_url` is not an absolute HTTP(S) URL.
    #[cfg(feature = "http")]
    pub fn build_http(self, token_url: &str) -> Result<TokenSource, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|error| ConfigError(format!("HTTP client: {error}")))?;
        self.build_http_with(client, token_url)
    }

    /// Like [`build_http`](Self::build_http) with your own `reqwest` client
    /// (proxy, TLS roots, timeouts).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `token_url` is not an absolute HTTP(S) URL.
    #[cfg(feature = "http")]
    pub fn build_http_with(
        self,
        client: reqwest::Client,
        token_url: &str,
    ) -> Result<TokenSource, ConfigError> {
        let url = reqwest::Url::parse(token_url)
            .map_err(|error| ConfigError(format!("token URL {token_url:?}: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError(format!(
                "token URL {token_url:?}: the scheme must be http or https"
            )));
        }
        Ok(self.build(Fetcher::Http(crate::fetch::HttpFetcher::new(client, url))))
    }

    /// A source calling `TokenService/IssueToken` over `channel` (e.g.
    /// `Endpoint::from_static("https://latchkey.example.com:50051").connect_lazy()`).
    #[cfg(feature = "grpc")]
    pub fn build_grpc(self, channel: tonic::transport::Channel) -> TokenSource {
        self.build(Fetcher::Grpc(crate::fetch::GrpcFetcher::new(channel)))
    }

    fn build(self, fetcher: Fetcher) -> TokenSource {
        TokenSource {
            inner: Arc::new(Inner {
                grant: Grant {
                    client_id: self.client_id,
                    client_secret: self.client_secret,
                    scopes: self.scopes,
                },
                fetcher,
                refresh: self.refresh,
                retry: self.retry,
                state: Mutex::new(State::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// A token source or layer was configured with something unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub(crate) String);
