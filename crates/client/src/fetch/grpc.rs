//! The grant over gRPC: `latchkey.token.v1.TokenService/IssueToken`.

use std::time::Duration;

use latchkey_proto::token::v1::IssueTokenRequest;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::{Grant, Issued};
use crate::error::TokenError;
use crate::secret::AccessToken;

/// Fetches tokens over one channel to the issuer.
#[derive(Debug, Clone)]
pub(crate) struct GrpcFetcher {
    client: TokenServiceClient<Channel>,
}

impl GrpcFetcher {
    pub(crate) fn new(channel: Channel) -> Self {
        Self {
            client: TokenServiceClient::new(channel),
        }
    }

    pub(crate) async fn fetch(&self, grant: &Grant) -> Result<Issued, TokenError> {
        let request = IssueTokenRequest {
            client_id: grant.client_id.clone(),
            client_secret: grant.client_secret.expose().to_owned(),
            scopes: grant.scopes.clone(),
        };
        let issued = self
            .client
            .clone()
            .issue_token(request)
            .await
            .map_err(|status| refusal(&status))?
            .into_inner();
        Ok(Issued {
            token: AccessToken::new(issued.access_token),
            expires_in: Duration::from_secs(u64::from(issued.expires_in)),
        })
    }
}

/// The typed error of a refused call (see `token.proto` for the codes).
fn refusal(status: &Status) -> TokenError {
    let message = status.message().to_owned();
    match status.code() {
        Code::Unauthenticated => TokenError::InvalidClient,
        Code::InvalidArgument if message.starts_with("scopes:") => {
            TokenError::InvalidScope(message)
        }
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            TokenError::InvalidRequest(message)
        }
        Code::ResourceExhausted => TokenError::RateLimited {
            retry_after: status
                .metadata()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| super::retry_after(value, std::time::SystemTime::now())),
            description: message,
        },
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
            TokenError::Unavailable(message)
        }
        Code::Ok
        | Code::Unknown
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => TokenError::Protocol(format!("{:?}: {message}", status.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exhausted(retry_after: &str) -> TokenError {
        let mut status = Status::resource_exhausted("too many failed attempts");
        status
            .metadata_mut()
            .insert("retry-after", retry_after.parse().unwrap());
        refusal(&status)
    }

    #[test]
    fn retry_after_metadata_is_read_as_seconds_or_as_a_date() {
        assert_eq!(exhausted("30").retry_after(), Some(Duration::from_secs(30)));
        let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
        let wait = exhausted(&httpdate::fmt_http_date(in_a_minute))
            .retry_after()
            .unwrap();
        assert!(
            wait > Duration::from_secs(57) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
}
