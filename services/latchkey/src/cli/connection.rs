//! The registry client every management command uses: the profile's
//! credential's bearer token from `latchkey-client`'s `TokenSource`, and the
//! member the caller acts on behalf of.

use latchkey_client::{Bearer, BearerLayer, TokenSource};
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use tonic::transport::{Channel, Endpoint};

use super::error::CliError;
use super::profile::Resolved;

/// The metadata naming the member a caller acts on behalf of (the
/// registry's `ON_BEHALF_OF_METADATA`).
const ON_BEHALF_OF_METADATA: &str = "x-latchkey-on-behalf-of";

/// A connected registry client and who it acts as.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    client: CredentialRegistryClient<Bearer<Channel>>,
    on_behalf_of: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Registry {
    /// A client of the profile's registry, authenticated with the profile's
    /// credential, acting on behalf of `on_behalf_of` when given.
    pub(crate) async fn connect(
        profile: &Resolved,
        on_behalf_of: Option<&str>,
    ) -> Result<Self, CliError> {
        let source = token_source(profile)?;
        // Fetch first: a wrong secret is an authentication error, told as
        // such, before any call is made.
        source.token().await?;
        let endpoint = Endpoint::from_shared(profile.registry_url.clone()).map_err(|error| {
            CliError::Config(format!("registry URL {:?}: {error}", profile.registry_url))
        })?;
        let channel = endpoint.connect().await.map_err(|error| {
            CliError::Status(tonic::Status::unavailable(format!(
                "cannot connect to the registry at {}: {error}",
                profile.registry_url
            )))
        })?;
        let channel = tower::ServiceBuilder::new()
            .layer(BearerLayer::new(source))
            .service(channel);
        let on_behalf_of = on_behalf_of
            .map(|member| {
                member.parse().map_err(|_| {
                    CliError::Config(format!("--on-behalf-of {member:?} is not a valid user"))
                })
            })
            .transpose()?;
        Ok(Self {
            client: CredentialRegistryClient::new(channel),
            on_behalf_of,
        })
    }

    /// The client, to call.
    pub(crate) fn client(&self) -> CredentialRegistryClient<Bearer<Channel>> {
        self.client.clone()
    }

    /// `message` as a request carrying the on-behalf-of metadata.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(member) = &self.on_behalf_of {
            request
                .metadata_mut()
                .insert(ON_BEHALF_OF_METADATA, member.clone());
        }
        request
    }
}

/// A token source for the profile's credential over the HTTP token
/// endpoint.
pub(crate) fn token_source(profile: &Resolved) -> Result<TokenSource, CliError> {
    TokenSource::builder(profile.client_id.clone(), profile.client_secret.clone())
        .build_http(&profile.token_url)
        .map_err(|error| CliError::Config(format!("token URL {:?}: {error}", profile.token_url)))
}
