//! Both services in-process, talking over gRPC as in production, with a
//! platform admin bootstrapped and its management token at hand.

use base64::Engine;
use credential_registry::{BootstrapOutcome, RegistryConfig, bootstrap_admin};
use latchkey_proto::token::v1::IssueTokenRequest;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_runtime::ClientTls;
use token_issuer::IssuerConfig;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// An `Introspection` client authenticated as a gateway would be.
pub type GatewayIntrospectionClient =
    IntrospectionClient<InterceptedService<Channel, crate::registry::BearerToken>>;

use crate::issuer::{IssuerFixture, IssuerListeners, TokenBackend};
use crate::registry::{Backend, RegistryFixture};

/// The two deployments every end-to-end test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackBackend {
    /// The embedded default: SQLite and the in-process token store.
    Embedded,
    /// Production: PostgreSQL and Redis.
    Production,
}

impl StackBackend {
    /// The database and token store of this deployment.
    pub fn parts(self) -> (Backend, TokenBackend) {
        match self {
            Self::Embedded => (Backend::Sqlite, TokenBackend::Memory),
            Self::Production => (Backend::Postgres, TokenBackend::Redis),
        }
    }
}

/// A platform admin's credential.
#[derive(Debug, Clone)]
pub struct AdminCredential {
    /// Its client ID.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Its project.
    pub project_id: String,
}

/// A registry and an issuer wired to each other.
#[derive(Debug)]
pub struct Stack {
    /// The credential registry; `registry.client()` acts as platform admin.
    pub registry: RegistryFixture,
    /// The token issuer.
    pub issuer: IssuerFixture,
    /// The bootstrapped platform admin.
    pub admin: AdminCredential,
}

impl AdminCredential {
    /// `(client_id, client_secret)`, for HTTP Basic.
    pub fn basic(&self) -> (&str, &str) {
        (&self.client_id, &self.client_secret)
    }

    /// The `authorization` header value for HTTP Basic.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.client_id, self.client_secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl Stack {
    /// An `Introspection` client that authenticates with the admin's client
    /// credentials (the admin holds `tokens:introspect`), as a gateway does.
    pub fn introspection_client(&self) -> GatewayIntrospectionClient {
        self.introspection_client_with(Some(&self.admin.basic_header()))
    }

    /// An `Introspection` client sending `authorization` (or nothing).
    pub fn introspection_client_with(
        &self,
        authorization: Option<&str>,
    ) -> GatewayIntrospectionClient {
        let header = authorization.map(|value| MetadataValue::try_from(value).expect("ASCII"));
        IntrospectionClient::with_interceptor(
            self.issuer.channel(),
            crate::registry::BearerToken::raw(header),
        )
    }

    /// Starts both services on `backend`.
    pub async fn start(backend: StackBackend) -> Self {
        let (database, tokens) = backend.parts();
        Self::start_with(database, tokens, |_| {}, |_| {}).await
    }

    /// Starts both services for a registry test on `database` (the issuer
    /// keeps tokens in memory).
    pub async fn for_registry(database: Backend) -> Self {
        Self::start_with(database, TokenBackend::Memory, |_| {}, |_| {}).await
    }

    /// Starts both services after `registry` and `issuer` adjust their
    /// configurations.
    pub async fn start_with(
        database: Backend,
        tokens: TokenBackend,
        registry: impl FnOnce(&mut RegistryConfig),
        issuer: impl FnOnce(&mut IssuerConfig),
    ) -> Self {
        Self::start_configured(database, tokens, registry, issuer, None).await
    }

    /// Like [`Stack::start_with`]; with `client_tls`, the test's own clients
    /// speak TLS (the customizations must configure it on both services).
    pub async fn start_configured(
        database: Backend,
        tokens: TokenBackend,
        registry: impl FnOnce(&mut RegistryConfig),
        issuer: impl FnOnce(&mut IssuerConfig),
        client_tls: Option<ClientTls>,
    ) -> Self {
        let listeners = IssuerListeners::bind().await;
        let issuer_internal = listeners.internal_address();
        let issuer_http = listeners.http_address();
        let registry = RegistryFixture::start_configured(
            database,
            |config| {
                config.token_issuer_url = format!("http://{issuer_internal}");
                config.token_endpoint = format!("http://{issuer_http}/oauth2/token");
                registry(config);
            },
            client_tls.as_ref(),
        )
        .await;
        let issuer =
            IssuerFixture::start_configured(tokens, listeners, &registry, issuer, client_tls).await;

        let BootstrapOutcome::Created(created) = bootstrap_admin(registry.config(), "admin", false)
            .await
            .expect("bootstrap the platform admin")
        else {
            panic!("a fresh registry has no admin yet");
        };
        let admin = AdminCredential {
            client_id: created.credential.client_id,
            client_secret: created.client_secret,
            project_id: "admin".to_owned(),
        };
        let mut stack = Self {
            registry,
            issuer,
            admin,
        };
        stack.renew_admin_token().await;
        stack
    }

    /// Issues a new management token for the admin; `registry.client()`
    /// presents it from now on.
    pub async fn renew_admin_token(&mut self) {
        let token = self
            .issuer
            .token_client()
            .issue_token(IssueTokenRequest {
                client_id: self.admin.client_id.clone(),
                client_secret: self.admin.client_secret.clone(),
                scopes: vec![],
            })
            .await
            .expect("the admin gets a management token")
            .into_inner()
            .access_token;
        self.registry.set_admin_token(token);
    }
}
