//! Clients of Latchkey, the client-credentials service for
//! service-to-service calls.
//!
//! - **Calling a service**: a [`TokenSource`] holds your credential's access
//!   token, fetched over HTTP (`POST /oauth2/token`) or gRPC (`IssueToken`),
//!   cached, refreshed ahead of expiry, fetched once for any number of
//!   concurrent callers, with backoff after failures. [`BearerLayer`] (tonic
//!   and other tower clients) and [`BearerMiddleware`] (`reqwest`) put it on
//!   every request.
//! - **Being called**: [`server::LatchkeyAuthLayer`] checks each incoming
//!   bearer token with Latchkey's introspection, for the caller's address
//!   and the scopes of the route, and hands the verified
//!   [`server::Identity`] to the handler.
//!
//! ```no_run
//! use latchkey_client::TokenSource;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let source = TokenSource::builder("lkc_orders", "lks_...".to_owned())
//!     .scopes(["inventory.read"])
//!     .build_http("https://latchkey.example.com/oauth2/token")?;
//! let token = source.token().await?;
//! // `Authorization: Bearer <token>`; the source refreshes it by itself.
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `http` (default): fetch tokens from the HTTP token endpoint (`reqwest`).
//! - `grpc` (default): fetch tokens over gRPC, and [`BearerLayer`] (`tonic`).
//! - `reqwest`: [`BearerMiddleware`] for `reqwest-middleware` clients.
//! - `server`: [`server::LatchkeyAuthLayer`] for tonic servers.
//! - `axum`: `server`, reading the caller's address from axum's `ConnectInfo`.
//!
//! Secrets and tokens are wrapped in [`ClientSecret`] and [`AccessToken`],
//! whose `Debug` prints `***`; nothing in this crate logs them.

#[cfg(not(any(feature = "http", feature = "grpc")))]
compile_error!("latchkey-client needs the `http` or the `grpc` feature to fetch tokens");

#[cfg(feature = "grpc")]
mod bearer;
mod error;
mod fetch;
#[cfg(feature = "reqwest")]
mod middleware;
mod policy;
mod secret;
#[cfg(feature = "server")]
pub mod server;
mod source;

#[cfg(feature = "grpc")]
pub use bearer::{Bearer, BearerLayer, BoxError, DEFAULT_RESEND_LIMIT};
pub use error::TokenError;
#[cfg(feature = "reqwest")]
pub use middleware::BearerMiddleware;
pub use policy::{RefreshPolicy, RetryPolicy};
pub use secret::{AccessToken, ClientSecret};
pub use source::{ConfigError, TokenSource, TokenSourceBuilder};
