//! TLS on the gRPC listeners and mutual TLS between registry and issuer,
//! with certificates made in the test: the whole flow works over it, and an
//! internal service refuses a caller without a client certificate.

use std::path::PathBuf;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::client_authentication_client::ClientAuthenticationClient;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_runtime::{ClientTls, InternalKey, ServerTls, TracedChannel, reason, status_reason};
use latchkey_secrets::HashKey;
use latchkey_tests::{IssuerFixture, IssuerListeners, Stack, StackBackend, TestRedis};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use token_issuer::FailureLimitsConfig;
use tonic::Code;
use tonic::transport::Endpoint;

use crate::support::{credential, introspect, issue, project_with_client};

/// A CA, a server certificate for localhost and a client certificate, as
/// PEM files in a temporary directory.
struct Certificates {
    directory: tempfile::TempDir,
}

impl Certificates {
    fn generate() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server_params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params =
            CertificateParams::new(vec!["latchkey-internal".to_owned()]).unwrap();
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &issuer).unwrap();

        let write =
            |name: &str, pem: String| std::fs::write(directory.path().join(name), pem).unwrap();
        write("ca.pem", ca.pem());
        write("server.pem", server.pem());
        write("server.key", server_key.serialize_pem());
        write("client.pem", client.pem());
        write("client.key", client_key.serialize_pem());
        Self { directory }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    fn server(&self) -> ServerTls {
        ServerTls {
            cert_file: self.path("server.pem"),
            key_file: self.path("server.key"),
            client_ca_file: Some(self.path("ca.pem")),
        }
    }

    /// With the client certificate (service to service), or without.
    fn client(&self, with_certificate: bool) -> ClientTls {
        ClientTls {
            ca_file: self.path("ca.pem"),
            cert_file: with_certificate.then(|| self.path("client.pem")),
            key_file: with_certificate.then(|| self.path("client.key")),
            domain_name: Some("localhost".to_owned()),
        }
    }
}

fn https(url: &str) -> String {
    url.replacen("http://", "https://", 1)
}

fn channel(address: &str, tls: Option<ClientTls>) -> tonic::transport::Channel {
    endpoint(address, tls).connect_lazy()
}

/// A channel signing its calls with the stack's internal key, as the
/// services do: what is left to refuse a caller is the certificate.
fn signed_channel(stack: &Stack, address: &str, tls: Option<ClientTls>) -> TracedChannel {
    let key = HashKey::from_hex(&stack.registry.internal_key()).unwrap();
    TracedChannel::lazy(&endpoint(address, tls)).signed(InternalKey::new(&key, None))
}

fn endpoint(address: &str, tls: Option<ClientTls>) -> Endpoint {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}")).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.load("test").unwrap()).unwrap();
    }
    endpoint
}

/// Both services with TLS on every listener and mutual TLS between them.
/// The test's own clients (admin, programs, gateways) need no client
/// certificate: they authenticate with tokens and secrets.
async fn secured_stack(backend: StackBackend, certificates: &Certificates) -> Stack {
    let (database, tokens) = backend.parts();
    Stack::start_configured(
        database,
        tokens,
        |registry| {
            registry.tls = Some(certificates.server());
            registry.token_issuer_url = https(&registry.token_issuer_url);
            registry.token_issuer_tls = Some(certificates.client(true));
        },
        |issuer| {
            issuer.tls = Some(certificates.server());
            issuer.public_url = https(&issuer.public_url);
            issuer.registry_url = https(&issuer.registry_url);
            issuer.registry_tls = Some(certificates.client(true));
        },
        Some(certificates.client(false)),
    )
    .await
}

async fn registry_and_issuer_talk_over_mutual_tls(backend: StackBackend) {
    let certificates = Certificates::generate();
    let stack = secured_stack(backend, &certificates).await;

    // The whole life of a credential works over TLS: issuing asks the
    // registry (ClientAuthentication), deleting tells the issuer (TokenAdmin).
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: client.credential.id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();
    assert!(!introspect(&stack, &token, "127.0.0.1", &[]).await.active);

    let registry_address = stack.registry.internal_address().to_string();
    let issuer_address = stack.issuer.internal_address().to_string();

    // Internal services refuse TLS callers without a client certificate,
    // even with a valid service signature...
    let mut authenticate = ClientAuthenticationClient::new(signed_channel(
        &stack,
        &registry_address,
        Some(certificates.client(false)),
    ));
    let refused = authenticate
        .authenticate(registry_pb::AuthenticateRequest {
            client_id: client.credential.client_id.clone(),
            client_secret: client.secret.clone(),
            client_ip: "127.0.0.1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // ...with a reason that says it is the caller's certificate, never a
    // refused client.
    assert_certificate_required(&refused);
    let mut admin = TokenAdminClient::new(signed_channel(
        &stack,
        &issuer_address,
        Some(certificates.client(false)),
    ));
    let refused = admin
        .check_caller(token_pb::CheckCallerRequest {
            token: token.clone(),
            client_ip: "127.0.0.1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_certificate_required(&refused);
    // ...and accept one that presents it.
    let mut admin = TokenAdminClient::new(signed_channel(
        &stack,
        &issuer_address,
        Some(certificates.client(true)),
    ));
    let answer = admin
        .check_caller(token_pb::CheckCallerRequest {
            token: token.clone(),
            client_ip: "127.0.0.1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.active, "the deleted credential's token");

    // Plaintext is not spoken at all.
    let mut plain = TokenAdminClient::new(channel(&issuer_address, None));
    let refused = plain
        .check_caller(token_pb::CheckCallerRequest {
            token,
            client_ip: "127.0.0.1".into(),
        })
        .await
        .unwrap_err();
    // The TLS listener drops the plaintext connection: a transport failure
    // (its code depends on timing), never an answer from the service.
    assert!(std::error::Error::source(&refused).is_some(), "{refused:?}");
}

#[track_caller]
fn assert_certificate_required(status: &tonic::Status) {
    let (reason, _) = status_reason(status).expect("a reason in the details");
    assert_eq!(reason, reason::CLIENT_CERTIFICATE_REQUIRED, "{status:?}");
}

/// An issuer that trusts the registry's CA but presents no client
/// certificate: every client it asks about gets 503, never 401, and nothing
/// is counted against any client, however often they try. Another issuer,
/// configured right, on the same token store (production: the same Redis
/// keys), still issues at once.
async fn an_issuer_without_its_certificate_locks_out_nobody(backend: StackBackend) {
    let certificates = Certificates::generate();
    let (database, tokens) = backend.parts();
    let limits = FailureLimitsConfig {
        max_per_client_address: 3,
        max_per_address: 5,
        window_seconds: 300,
    };
    let shared_keys = TestRedis::new();
    let issuer_hash_key = latchkey_secrets::HashKey::generate().to_hex();
    let same_store = |issuer: &mut token_issuer::IssuerConfig| {
        issuer.failed_authentication = limits;
        issuer.hash_key = Some(issuer_hash_key.clone());
        if let Some(redis) = &mut issuer.redis {
            redis.key_prefix = shared_keys.prefix().to_owned();
        }
    };
    let stack = Stack::start_configured(
        database,
        tokens,
        |registry| {
            registry.tls = Some(certificates.server());
            registry.token_issuer_url = https(&registry.token_issuer_url);
            registry.token_issuer_tls = Some(certificates.client(true));
        },
        |issuer| {
            issuer.tls = Some(certificates.server());
            issuer.public_url = https(&issuer.public_url);
            issuer.registry_url = https(&issuer.registry_url);
            issuer.registry_tls = Some(certificates.client(true));
            same_store(issuer);
        },
        Some(certificates.client(false)),
    )
    .await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let misconfigured = IssuerFixture::start_with(
        tokens,
        IssuerListeners::bind().await,
        &stack.registry,
        |issuer| {
            issuer.registry_url = https(&issuer.registry_url);
            issuer.registry_tls = Some(certificates.client(false));
            same_store(issuer);
        },
    )
    .await;

    let attempts = limits.max_per_client_address + limits.max_per_address + 2;
    for attempt in 0..attempts {
        let refused = misconfigured
            .token_client()
            .issue_token(token_pb::IssueTokenRequest {
                client_id: client.credential.client_id.clone(),
                client_secret: client.secret.clone(),
                scopes: vec![],
            })
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::Unavailable,
            "attempt {attempt}: {refused:?}"
        );
        let response = reqwest::Client::new()
            .post(format!("{}/oauth2/token", misconfigured.http_url()))
            .basic_auth(&client.credential.client_id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 503, "attempt {attempt}");
    }

    // Nothing was counted, per client or per address: the right secret
    // works at once from the same address.
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
}

async fn the_oauth_endpoints_speak_https(backend: StackBackend) {
    let certificates = Certificates::generate();
    let stack = secured_stack(backend, &certificates).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let port = stack
        .issuer
        .http_url()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certificates.path("ca.pem")).unwrap())
        .unwrap();
    let http = reqwest::ClientBuilder::new()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let response = http
        .post(format!("https://localhost:{port}/oauth2/token"))
        .basic_auth(&client.credential.client_id, Some(&client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(introspect(&stack, token, "127.0.0.1", &[]).await.active);
    let metadata: serde_json::Value = http
        .get(format!(
            "https://localhost:{port}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    // Plain HTTP is not spoken on the TLS port.
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/oauth2/token"))
        .body("grant_type=client_credentials")
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|response| !response.status().is_success()));
}

on_both_stacks!(
    registry_and_issuer_talk_over_mutual_tls,
    an_issuer_without_its_certificate_locks_out_nobody,
    the_oauth_endpoints_speak_https,
);
