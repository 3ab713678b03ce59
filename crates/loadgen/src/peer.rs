//! The peer: node-oidc-provider (npm `oidc-provider`, pinned), installed
//! once into `~/.cache/latchkey/bench-peer/<version>` with `npm install
//! --prefix`, started in production mode with one `client_secret_basic`
//! client, the client credentials grant and introspection
//! (`scripts/bench-peer/server.mjs`). Its default in-memory adapter stores
//! nothing durable, and keeps only the last 1000 tokens: both favour it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::scenarios::basic;
use crate::stack::free_port;

/// The pinned oidc-provider version.
pub(crate) const VERSION: &str = "9.13.3";

/// The provider's start script, written next to its `node_modules` (ES
/// module imports resolve from the script's directory).
const SERVER: &str = include_str!("../../../scripts/bench-peer/server.mjs");

/// A running peer.
#[derive(Debug)]
pub(crate) struct Peer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// `Basic …` of its one client.
    pub(crate) authorization: String,
    /// Its process ID (for its CPU time).
    pub(crate) pid: Option<u32>,
    http: reqwest::Client,
    _child: Child,
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("latchkey").join("bench-peer").join(VERSION)
}

fn installed(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("node_modules/oidc-provider/package.json"))
        .is_ok_and(|manifest| manifest.contains(&format!("\"version\": \"{VERSION}\"")))
}

/// Installs the pinned oidc-provider unless the cache holds it.
async fn install(dir: &Path) -> anyhow::Result<()> {
    if installed(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    eprintln!(
        "  .. installing oidc-provider@{VERSION} into {}",
        dir.display()
    );
    let output = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(dir)
        .args(["--omit=dev", "--no-audit", "--no-fund", "--save-exact"])
        .arg(format!("oidc-provider@{VERSION}"))
        .stdin(Stdio::null())
        .output()
        .await
        .context("run npm (the peer needs Node.js 20+ and npm)")?;
    if !output.status.success() || !installed(dir) {
        bail!(
            "npm install oidc-provider@{VERSION} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl Peer {
    /// Installs (once) and starts the peer, logging to `log_dir/peer.log`.
    pub(crate) async fn start(log_dir: &Path, http: reqwest::Client) -> anyhow::Result<Self> {
        let dir = cache_dir();
        install(&dir).await?;
        let script = dir.join("server.mjs");
        std::fs::write(&script, SERVER).with_context(|| format!("write {}", script.display()))?;
        let port = free_port()?;
        let secret = hex::encode(rand::random::<[u8; 24]>());
        let log_path = log_dir.join("peer.log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new("node")
            .arg(&script)
            .current_dir(&dir)
            .env("NODE_ENV", "production")
            .env("PEER_PORT", port.to_string())
            .env("PEER_CLIENT_ID", "bench-peer")
            .env("PEER_CLIENT_SECRET", &secret)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("start node")?;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("the peer exited ({status}); see {}", log_path.display());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the peer did not listen within 30 s; see {}",
                    log_path.display()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            authorization: basic("bench-peer", &secret),
            pid: child.id(),
            http,
            _child: child,
        })
    }

    /// The token endpoint.
    pub(crate) fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    /// The introspection endpoint.
    pub(crate) fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.url)
    }

    /// `count` fresh access tokens. Fetched right before each introspection
    /// round: the in-memory adapter keeps only the last 1000, and issuance
    /// rounds would push older ones out.
    pub(crate) async fn tokens(&self, count: usize) -> anyhow::Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
        }
        let mut tokens = Vec::with_capacity(count);
        for _ in 0..count {
            let answer: TokenAnswer = self
                .http
                .post(self.token_url())
                .header(reqwest::header::AUTHORIZATION, &self.authorization)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(crate::scenarios::issue_body())
                .send()
                .await?
                .error_for_status()
                .context("the peer refused to issue")?
                .json()
                .await?;
            tokens.push(answer.access_token);
        }
        Ok(tokens)
    }
}
