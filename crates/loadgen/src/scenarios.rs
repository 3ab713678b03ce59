//! What the closed loop sends: one [`Worker`] per kind of request, and the
//! set-up they need (projects, credentials, loaded tokens) through the real
//! admin and issuance APIs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use latchkey_proto::registry::v1 as reg;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_proto::token::v1 as tok;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::driver::Worker;
use crate::external::PostLoad;

/// The scope every bench credential may use and every token carries.
pub(crate) const API: &str = "bench.read";
/// The address the introspection requests name as the token's presenter.
const CLIENT_IP: &str = "127.0.0.1";

/// `count` HTTP/2 connections to `url` (a tonic channel each).
pub(crate) async fn connect(url: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let channel = Endpoint::from_shared(url.to_owned())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .with_context(|| format!("connect to {url}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// `Basic base64(id:secret)`.
pub(crate) fn basic(client_id: &str, client_secret: &str) -> String {
    let pair = format!("{client_id}:{client_secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A client ID and its secret.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// Scopes its tokens ask for (empty: every scope it may use).
    pub(crate) scopes: Vec<String>,
}

impl Client {
    fn issue_request(&self) -> tok::IssueTokenRequest {
        tok::IssueTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

/// Issues a token over gRPC.
pub(crate) async fn issue(channel: Channel, client: &Client) -> Result<String, tonic::Status> {
    TokenServiceClient::new(channel)
        .issue_token(client.issue_request())
        .await
        .map(|response| response.into_inner().access_token)
}

fn bearer<T>(message: T, token: &MetadataValue<tonic::metadata::Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

/// The registry, called as platform admin.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    client: CredentialRegistryClient<Channel>,
    token: MetadataValue<tonic::metadata::Ascii>,
}

impl Admin {
    /// Gets a management token for the bootstrapped admin.
    pub(crate) async fn new(
        registry: Channel,
        issuer: Channel,
        admin: &Client,
    ) -> anyhow::Result<Self> {
        // The registry listens before its database is ready: retry a while.
        let started = Instant::now();
        let token = loop {
            match issue(issuer.clone(), admin).await {
                Ok(token) => break token,
                Err(status) if started.elapsed() > Duration::from_secs(30) => {
                    bail!("issue the admin's management token: {status}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Ok(Self {
            client: CredentialRegistryClient::new(registry),
            token: format!("Bearer {token}").parse()?,
        })
    }

    /// Creates a project with `policy`.
    pub(crate) async fn create_project(
        &self,
        project_id: &str,
        policy: reg::ProjectPolicy,
    ) -> anyhow::Result<()> {
        let mut client = self.client.clone();
        client
            .create_project(bearer(
                reg::CreateProjectRequest {
                    project_id: project_id.to_owned(),
                    display_name: format!("latchkey-bench {project_id}"),
                    policy: None,
                    ..Default::default()
                },
                &self.token,
            ))
            .await
            .with_context(|| format!("create project {project_id}"))?;
        // Raised through the policy API, as an operator would.
        client
            .update_project_policy(bearer(
                reg::UpdateProjectPolicyRequest {
                    project_id: project_id.to_owned(),
                    policy: Some(policy),
                },
                &self.token,
            ))
            .await
            .with_context(|| format!("raise the policy of project {project_id}"))?;
        Ok(())
    }

    /// Creates one credential allowed `apis`.
    pub(crate) async fn create_credential(
        &self,
        project_id: &str,
        owner: &str,
        apis: &[&str],
    ) -> anyhow::Result<Client> {
        let created = self
            .client
            .clone()
            .create_credential(bearer(
                reg::CreateCredentialRequest {
                    project_id: project_id.to_owned(),
                    owner: owner.to_owned(),
                    allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
                    ..Default::default()
                },
                &self.token,
            ))
            .await
            .context("create a credential")?
            .into_inner();
        let credential = created.credential.context("no credential in the answer")?;
        Ok(Client {
            client_id: credential.client_id,
            client_secret: created.client_secret,
            scopes: if apis == [API] {
                vec![API.to_owned()]
            } else {
                Vec::new()
            },
        })
    }

    /// Creates `count` credentials allowed [`API`], a few at a time.
    pub(crate) async fn create_credentials(
        &self,
        project_id: &str,
        count: usize,
    ) -> anyhow::Result<Vec<Client>> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let admin = self.clone();
            let next = next.clone();
            let project_id = project_id.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut made = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    made.push(
                        admin
                            .create_credential(&project_id, "bench", &[API])
                            .await?,
                    );
                }
                anyhow::Ok(made)
            }));
        }
        let mut clients = Vec::with_capacity(count);
        for task in tasks {
            clients.extend(task.await??);
        }
        Ok(clients)
    }
}

/// Management calls as a console or CLI makes them, a cycle every `pace`
/// until `stop`: a credential created, disabled, enabled, its secret
/// rotated, then deleted by its name, in a project of its own. Returns the
/// cycles done and the calls that failed.
pub(crate) async fn management_churn(
    admin: Admin,
    project_id: &str,
    pace: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (u64, u64) {
    let (mut cycles, mut failures) = (0_u64, 0_u64);
    let mut client = admin.client.clone();
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += pace;
        let name = format!("churn-{cycles}-{failures}");
        let created = client
            .create_credential(bearer(
                reg::CreateCredentialRequest {
                    project_id: project_id.to_owned(),
                    owner: "churn".to_owned(),
                    name: name.clone(),
                    allowed_apis: vec![API.to_owned()],
                    ..Default::default()
                },
                &admin.token,
            ))
            .await;
        let Some(id) = created
            .ok()
            .and_then(|created| created.into_inner().credential)
            .map(|credential| credential.id)
        else {
            failures += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let token = &admin.token;
        let outcomes = [
            client
                .disable_credential(bearer(
                    reg::DisableCredentialRequest {
                        credential_id: id.clone(),
                    },
                    token,
                ))
                .await
                .is_ok(),
            client
                .enable_credential(bearer(
                    reg::EnableCredentialRequest {
                        credential_id: id.clone(),
                    },
                    token,
                ))
                .await
                .is_ok(),
            client
                .rotate_credential_secret(bearer(
                    reg::RotateCredentialSecretRequest {
                        credential_id: id.clone(),
                        grace_period_seconds: 0,
                        revoke_tokens: true,
                    },
                    token,
                ))
                .await
                .is_ok(),
            client
                .delete_credential(bearer(
                    reg::DeleteCredentialRequest {
                        credential_id: id,
                        confirm_name: name,
                    },
                    token,
                ))
                .await
                .is_ok(),
        ];
        let failed = outcomes.iter().filter(|ok| !**ok).count() as u64;
        failures += failed;
        if failed == 0 {
            cycles += 1;
        }
    }
    (cycles, failures)
}

/// Live tokens to introspect, and invalid ones.
#[derive(Debug, Default)]
pub(crate) struct TokenPool {
    /// Issued and live.
    pub(crate) valid: Vec<String>,
    /// Half malformed (bad checksum, garbage), half well-formed but unknown.
    pub(crate) invalid: Vec<String>,
}

impl TokenPool {
    /// Makes `count` invalid tokens from the shapes of the valid ones.
    pub(crate) fn make_invalid(&mut self, count: usize) {
        let mut rng = rand::rng();
        self.invalid.clear();
        if self.valid.is_empty() {
            return;
        }
        for index in 0..count {
            let real = &self.valid[rng.random_range(0..self.valid.len())];
            let token = match index % 4 {
                // Well-formed, of a real credential, never issued: UNKNOWN.
                0 | 1 => unknown_like(real),
                // A typo: the checksum fails, MALFORMED without a lookup.
                2 => {
                    let mut bytes = real.clone().into_bytes();
                    let last = bytes.len() - 1;
                    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
                    String::from_utf8(bytes).unwrap_or_default()
                }
                // Not a token at all.
                _ => format!("not-a-token-{index:08}"),
            };
            self.invalid.push(token);
        }
    }
}

/// A well-formed access token naming `real`'s credential with a random
/// body: the checksum holds, the store has no such token.
fn unknown_like(real: &str) -> String {
    // `lkt_` + 22-character credential key + 43 random + 6 checksum.
    let head = real.get(4..26).unwrap_or_default();
    latchkey_secrets::ACCESS_TOKEN.generate_with_head(head)
}

/// Loads the pool up to `target` live tokens through the real `IssueToken`
/// path: `per_credential` tokens on each of `clients` in order, `concurrency`
/// at a time. Returns the tokens that failed.
pub(crate) async fn load_tokens(
    pool: &mut TokenPool,
    target: usize,
    clients: &Arc<Vec<Client>>,
    per_credential: usize,
    channels: &[Channel],
    concurrency: usize,
) -> u64 {
    let start = pool.valid.len();
    if target <= start {
        return 0;
    }
    let next = Arc::new(AtomicUsize::new(start));
    let mut tasks = Vec::new();
    for index in 0..concurrency.max(1) {
        let next = next.clone();
        let clients = clients.clone();
        let channel = channels[index % channels.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            let mut failed = 0_u64;
            loop {
                let slot = next.fetch_add(1, Ordering::Relaxed);
                if slot >= target {
                    break;
                }
                let Some(client) = clients.get(slot / per_credential) else {
                    failed += 1;
                    continue;
                };
                let mut attempts = 0;
                loop {
                    match issue(channel.clone(), client).await {
                        Ok(token) => {
                            tokens.push(token);
                            break;
                        }
                        Err(_) if attempts < 3 => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => {
                            failed += 1;
                            break;
                        }
                    }
                }
            }
            (tokens, failed)
        }));
    }
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok((tokens, lost)) => {
                pool.valid.extend(tokens);
                failed += lost;
            }
            Err(_) => failed += 1,
        }
    }
    failed
}

/// Which tokens a worker introspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Live tokens, expected active.
    Active,
    /// Invalid tokens, expected inactive.
    Inactive,
}

fn pick<'a>(rng: &mut SmallRng, tokens: &'a [String]) -> &'a str {
    if tokens.is_empty() {
        ""
    } else {
        &tokens[rng.random_range(0..tokens.len())]
    }
}

/// gRPC `Introspection/Introspect` of a token drawn uniformly from the pool
/// (also the echo floor: the same request to the echo server).
#[derive(Debug)]
pub(crate) struct GrpcIntrospect {
    pub(crate) client: IntrospectionClient<Channel>,
    pub(crate) authorization: MetadataValue<tonic::metadata::Ascii>,
    pub(crate) tokens: Arc<Vec<String>>,
    pub(crate) expect: Expect,
    pub(crate) rng: SmallRng,
}

impl GrpcIntrospect {
    pub(crate) fn new(
        channel: Channel,
        authorization: &str,
        tokens: Arc<Vec<String>>,
        expect: Expect,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: IntrospectionClient::new(channel),
            authorization: authorization.parse()?,
            tokens,
            expect,
            rng: SmallRng::from_rng(&mut rand::rng()),
        })
    }
}

impl Worker for GrpcIntrospect {
    async fn call(&mut self) -> Result<(), String> {
        let token = pick(&mut self.rng, &self.tokens).to_owned();
        let mut request = Request::new(tok::IntrospectRequest {
            token,
            client_ip: CLIENT_IP.to_owned(),
            required_scopes: vec![API.to_owned()],
        });
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        let answer = self
            .client
            .introspect(request)
            .await
            .map_err(|status| format!("grpc {:?}", status.code()))?
            .into_inner();
        check_answer(self.expect, answer.active, || {
            format!("{:?}", answer.reason())
        })
    }
}

fn check_answer(
    expect: Expect,
    active: bool,
    reason: impl FnOnce() -> String,
) -> Result<(), String> {
    match (expect, active) {
        (Expect::Active, true) | (Expect::Inactive, false) => Ok(()),
        (Expect::Active, false) => Err(format!("inactive {}", reason())),
        (Expect::Inactive, true) => Err("active (expected inactive)".to_owned()),
    }
}

/// gRPC `TokenService/IssueToken`, cycling through credentials.
#[derive(Debug)]
pub(crate) struct GrpcIssue {
    pub(crate) client: TokenServiceClient<Channel>,
    pub(crate) clients: Arc<Vec<Client>>,
    pub(crate) next: usize,
}

impl Worker for GrpcIssue {
    async fn call(&mut self) -> Result<(), String> {
        let client = &self.clients[self.next % self.clients.len()];
        self.next = self.next.wrapping_add(1);
        self.client
            .issue_token(client.issue_request())
            .await
            .map(|_| ())
            .map_err(|status| format!("grpc {:?}", status.code()))
    }
}

/// A form `POST` cycling through authorizations and bodies from a random
/// offset, each 200 answer checked for a substring: HTTP introspection,
/// HTTP issuance and their echo floors, the same requests wrk sends.
#[derive(Debug)]
pub(crate) struct HttpPost {
    http: reqwest::Client,
    load: Arc<PostLoad>,
    next: usize,
}

impl HttpPost {
    /// A worker over `load`.
    pub(crate) fn new(http: reqwest::Client, load: Arc<PostLoad>) -> Self {
        let next =
            rand::rng().random_range(0..load.bodies.len().max(load.authorizations.len()).max(1));
        Self { http, load, next }
    }
}

impl Worker for HttpPost {
    async fn call(&mut self) -> Result<(), String> {
        let index = self.next;
        self.next = self.next.wrapping_add(1);
        let authorization = &self.load.authorizations[index % self.load.authorizations.len()];
        let body = &self.load.bodies[index % self.load.bodies.len()];
        let response = self
            .http
            .post(&self.load.url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.clone())
            .send()
            .await
            .map_err(|error| http_error_kind(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| http_error_kind(&error))?;
        if !status.is_success() {
            return Err(format!("http {}", status.as_u16()));
        }
        let expect = self.load.expect.as_bytes();
        if bytes
            .windows(expect.len().max(1))
            .any(|window| window == expect)
        {
            Ok(())
        } else {
            Err("wrong answer".to_owned())
        }
    }
}

/// The issuance form body.
pub(crate) fn issue_body() -> String {
    form_body(&[("grant_type", "client_credentials"), ("scope", API)])
}

/// The introspection form body for `token`.
pub(crate) fn introspect_body(token: &str) -> String {
    form_body(&[("token", token), ("client_ip", CLIENT_IP), ("scope", API)])
}

/// The text an HTTP introspection answer contains when the token is (or is
/// not) active.
pub(crate) fn active_text(expect: Expect) -> &'static str {
    match expect {
        Expect::Active => "\"active\":true",
        Expect::Inactive => "\"active\":false",
    }
}

/// The text every successful token answer contains.
pub(crate) const TOKEN_TEXT: &str = "\"access_token\"";

/// The request h2load repeats for gRPC introspection of `token`.
pub(crate) fn introspect_message(token: &str) -> Vec<u8> {
    use prost::Message as _;
    tok::IntrospectRequest {
        token: token.to_owned(),
        client_ip: CLIENT_IP.to_owned(),
        required_scopes: vec![API.to_owned()],
    }
    .encode_to_vec()
}

/// Issues `per_credential` tokens for each of `clients`, so an evicting
/// project starts at its limit and every measured issuance evicts.
pub(crate) async fn fill_to_limit(
    channel: &Channel,
    clients: &[Client],
    per_credential: usize,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (channel, client) = (channel.clone(), client.clone());
        tasks.spawn(async move {
            for _ in 0..per_credential {
                issue(channel.clone(), &client).await?;
            }
            Ok::<(), tonic::Status>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .context("a filling task panicked")?
            .context("issue a token to fill the evicting project")?;
    }
    Ok(())
}

fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn http_error_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "http timeout".to_owned()
    } else if error.is_connect() {
        "http connect".to_owned()
    } else {
        "http transport".to_owned()
    }
}

/// An HTTP/1.1 keep-alive client whose pool holds a connection per stream.
pub(crate) fn http_client(streams: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("build the HTTP client")
}

/// Introspects every token once, `concurrency` at a time over `channels`,
/// so the production issuer's introspection cache holds what it can before
/// anything is measured, as after the tokens' first uses in production: a
/// warm-up of a few seconds touches only part of a million tokens, and the
/// figure would measure the cache filling instead. Returns how many
/// answers were not `Active`.
pub(crate) async fn prime(
    channels: &[Channel],
    authorization: &str,
    tokens: Arc<Vec<String>>,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..concurrency.max(1) {
        let mut worker = GrpcIntrospect::new(
            channels[index % channels.len()].clone(),
            authorization,
            Arc::new(Vec::new()),
            Expect::Active,
        )?;
        let (tokens, next, failed) = (tokens.clone(), next.clone(), failed.clone());
        tasks.spawn(async move {
            while let Some(token) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) {
                worker.tokens = Arc::new(vec![token.clone()]);
                if worker.call().await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a priming task panicked")?;
    }
    Ok(failed.load(Ordering::Relaxed))
}

/// Waits until the issuer answers an introspection as `Active` (it may
/// still be connecting to the registry).
pub(crate) async fn wait_introspectable(
    channel: Channel,
    authorization: &str,
    token: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut worker = GrpcIntrospect::new(
        channel,
        authorization,
        Arc::new(vec![token.to_owned()]),
        Expect::Active,
    )?;
    loop {
        match worker.call().await {
            Ok(()) => return Ok(()),
            Err(error) if started.elapsed() > Duration::from_secs(30) => {
                bail!("introspection still fails after 30 s: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_escaped() {
        assert_eq!(
            form_body(&[("a", "x y"), ("b", "1/2+3"), ("c", "lkt_Ab9")]),
            "a=x+y&b=1%2F2%2B3&c=lkt_Ab9"
        );
    }

    #[test]
    fn invalid_tokens_mix_malformed_and_unknown() {
        let real = latchkey_secrets::ACCESS_TOKEN.generate_with_head("0123456789ABCDEFGHIJKL");
        let mut pool = TokenPool {
            valid: vec![real.clone()],
            invalid: Vec::new(),
        };
        pool.make_invalid(8);
        assert_eq!(pool.invalid.len(), 8);
        let well_formed = pool
            .invalid
            .iter()
            .filter(|token| latchkey_secrets::ACCESS_TOKEN.check(token).is_ok())
            .count();
        assert_eq!(well_formed, 4, "{:?}", pool.invalid);
        assert!(pool.invalid.iter().all(|token| *token != real));
        assert!(pool.invalid[0].starts_with(&real[..26]));
    }
}
