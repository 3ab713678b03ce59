//! Helpers that keep the client tests reading like the user's story.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Extension, Router};
use latchkey_client::server::{AccessRules, Identity, Introspector, LatchkeyAuthLayer};
use latchkey_client::{TokenSource, TokenSourceBuilder};
use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{Stack, StackBackend};
use tokio::net::TcpListener;

/// The project every test's credentials live in.
pub(crate) const PROJECT: &str = "shop";

/// A credential and its secret.
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) credential_id: String,
    pub(crate) name: String,
    pub(crate) secret: String,
}

/// Both services with project `shop` (tokens living `ttl_seconds` when
/// given).
pub(crate) async fn shop(backend: StackBackend, ttl_seconds: Option<u32>) -> Stack {
    shop_on(Stack::start(backend).await, ttl_seconds).await
}

/// Creates project `shop` on a started stack.
pub(crate) async fn shop_on(stack: Stack, ttl_seconds: Option<u32>) -> Stack {
    stack
        .registry
        .client()
        .create_project(registry_pb::CreateProjectRequest {
            project_id: PROJECT.to_owned(),
            policy: Some(registry_pb::ProjectPolicy {
                token_ttl_seconds: ttl_seconds,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    stack
}

/// Creates a credential of `owner` in the shop.
pub(crate) async fn credential(stack: &Stack, owner: &str, apis: &[&str], ips: &[&str]) -> Client {
    let created = stack
        .registry
        .client()
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: PROJECT.to_owned(),
            owner: owner.to_owned(),
            allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
            allowed_ips: ips.iter().map(|ip| (*ip).to_owned()).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let credential = created.credential.unwrap();
    Client {
        client_id: credential.client_id,
        credential_id: credential.id,
        name: credential.name,
        secret: created.client_secret,
    }
}

/// Deletes a credential (its tokens are revoked at once).
pub(crate) async fn delete(stack: &Stack, client: &Client) {
    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: client.credential_id.clone(),
            confirm_name: client.name.clone(),
        })
        .await
        .unwrap();
}

/// Revokes one token as its client (RFC 7009 over gRPC).
pub(crate) async fn revoke(stack: &Stack, client: &Client, token: &str) {
    stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: token.to_owned(),
            client_id: client.client_id.clone(),
            client_secret: client.secret.clone(),
        })
        .await
        .unwrap();
}

/// A source for `client` over the issuer's HTTP token endpoint.
pub(crate) fn builder(client: &Client) -> TokenSourceBuilder {
    TokenSource::builder(client.client_id.clone(), client.secret.clone())
}

/// The issuer's token endpoint.
pub(crate) fn token_url(stack: &Stack) -> String {
    format!("{}/oauth2/token", stack.issuer.http_url())
}

/// Whether Latchkey says `token` is active for 127.0.0.1.
pub(crate) async fn active(stack: &Stack, token: &str) -> bool {
    stack
        .introspection_client()
        .introspect(token_pb::IntrospectRequest {
            token: token.to_owned(),
            client_ip: "127.0.0.1".to_owned(),
            required_scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .active
}

/// The issuer's metrics.
async fn metrics(stack: &Stack) -> String {
    let response = reqwest::get(stack.issuer.metrics_url()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// The sum of every sample whose series starts with `prefix`.
fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Tokens the issuer has handed out so far.
pub(crate) async fn issued(stack: &Stack) -> f64 {
    sum(&metrics(stack).await, "latchkey_issuer_tokens_issued_total")
}

/// Issuances the issuer has refused so far, for any reason.
pub(crate) async fn refused(stack: &Stack) -> f64 {
    sum(
        &metrics(stack).await,
        "latchkey_issuer_tokens_refused_total",
    )
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP service behind the service layer: `GET /stock/{item}` needs
/// `inventory.read`, `POST /reserve` needs `inventory.write`; both answer
/// with the caller's identity. Counts the requests its handlers saw.
pub(crate) struct Inventory {
    pub(crate) url: String,
    pub(crate) handled: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Inventory {
    /// Serves on 127.0.0.1, introspecting through `introspector`.
    pub(crate) async fn start(introspector: Introspector) -> Self {
        let handled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&handled);
        let answer = move |Extension(caller): Extension<Identity>| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                format!(
                    "{} {} {} {} {}",
                    caller.client_id,
                    caller.credential_id,
                    caller.project_id,
                    caller.owner,
                    caller.scopes.join(",")
                )
            }
        };
        let rules = AccessRules::new()
            .route("/stock", ["inventory.read"])
            .route("/reserve", ["inventory.write"]);
        let app = Router::new()
            .route("/stock/{item}", get(answer.clone()))
            .route("/reserve", post(answer))
            .layer(LatchkeyAuthLayer::new(introspector, rules));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            url: format!("http://{address}"),
            handled,
            _task: task,
        }
    }

    /// How many requests reached a handler.
    pub(crate) fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }
}

impl Drop for Inventory {
    fn drop(&mut self) {
        self._task.abort();
    }
}

/// The inventory's own credential (a gateway: `tokens:introspect`) and an
/// introspector using it.
pub(crate) async fn gateway(stack: &Stack) -> Introspector {
    let inventory = credential(stack, "inventory", &["tokens:introspect"], &[]).await;
    Introspector::new(
        stack.issuer.channel(),
        &inventory.client_id,
        inventory.secret,
    )
}
