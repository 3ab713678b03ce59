//! One request to the issuer: the client-credentials grant over HTTP or
//! gRPC. No caching or retrying here; [`crate::TokenSource`] owns that.

use std::time::Duration;

use crate::error::TokenError;
use crate::secret::{AccessToken, ClientSecret};

#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod http;
mod retry_after;

#[cfg(feature = "grpc")]
pub(crate) use grpc::GrpcFetcher;
#[cfg(feature = "http")]
pub(crate) use http::HttpFetcher;
pub(crate) use retry_after::parse as retry_after;

/// What the token source asks for: whose token, with which scopes.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
    /// Empty asks for every API the credential may call.
    pub(crate) scopes: Vec<String>,
}

/// A token the issuer handed out.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) token: AccessToken,
    pub(crate) expires_in: Duration,
}

/// The transport a token source fetches with.
#[derive(Debug, Clone)]
pub(crate) enum Fetcher {
    /// `POST /oauth2/token`.
    #[cfg(feature = "http")]
    Http(HttpFetcher),
    /// `latchkey.token.v1.TokenService/IssueToken`.
    #[cfg(feature = "grpc")]
    Grpc(GrpcFetcher),
}

impl Fetcher {
    /// Asks the issuer for a token once.
    pub(crate) async fn fetch(&self, grant: &Grant) -> Result<Issued, TokenError> {
        match self {
            #[cfg(feature = "http")]
            Self::Http(fetcher) => fetcher.fetch(grant).await,
            #[cfg(feature = "grpc")]
            Self::Grpc(fetcher) => fetcher.fetch(grant).await,
        }
    }
}
