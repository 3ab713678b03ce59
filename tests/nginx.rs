//! A real NGINX authorizing requests with `auth_request` against the token
//! issuer's `/auth/check`, in front of a small upstream that echoes what it
//! received.
//!
//! NGINX runs on the shipped `deploy/nginx/latchkey.conf`, only its three
//! marked addresses swapped for ephemeral ones and its gateway credential
//! for the test's, so the tests prove the
//! configuration operators copy. The binary comes from the machine
//! (`scripts/test` installs Debian's `nginx-light`); without it the tests
//! fail with a message saying so, they never skip.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::issuer::TokenBackend;
use crate::registry::Backend;
use crate::stack::{Stack, StackBackend};

/// The shipped configuration the fixture runs.
const SHIPPED_CONFIG: &str = include_str!("../deploy/nginx/latchkey.conf");

/// The network the gateway stack's issuer trusts: NGINX connects from
/// 127.0.0.1, so tests that pose as a remote caller use 127.0.0.2.
pub const NGINX_PROXY_NETWORK: &str = "127.0.0.1/32";

/// A registry and an issuer wired to each other, the issuer trusting
/// NGINX's `X-Real-IP` ([`NGINX_PROXY_NETWORK`] in `trusted_proxies`), and
/// NGINX in front of an echo upstream, checking every request with it.
#[derive(Debug)]
pub struct GatewayStack {
    /// NGINX and its upstream (declared first: stopped before the issuer).
    pub nginx: NginxFixture,
    /// The registry and the issuer.
    pub stack: Stack,
}

impl GatewayStack {
    /// Starts the registry and the issuer on `backend`, then NGINX.
    pub async fn start(backend: StackBackend) -> Self {
        let (database, tokens) = match backend {
            StackBackend::Embedded => (Backend::Sqlite, TokenBackend::Memory),
            StackBackend::Production => (Backend::Postgres, TokenBackend::Redis),
        };
        let stack = Stack::start_with(
            database,
            tokens,
            |_| {},
            |issuer| {
                issuer.trusted_proxies =
                    vec![NGINX_PROXY_NETWORK.parse().expect("a valid network")];
            },
        )
        .await;
        let issuer_http = stack
            .issuer
            .http_url()
            .strip_prefix("http://")
            .and_then(|address| address.parse().ok())
            .expect("the issuer's HTTP address");
        let nginx = NginxFixture::start(issuer_http, &stack.admin.basic_header()).await;
        Self { nginx, stack }
    }
}

/// A running NGINX (one process, no daemon) with its echo upstream; killed
/// when dropped.
#[derive(Debug)]
pub struct NginxFixture {
    address: SocketAddr,
    child: Child,
    upstream: EchoUpstream,
    dir: tempfile::TempDir,
}

impl NginxFixture {
    /// Starts NGINX on an ephemeral port of 127.0.0.1, checking requests
    /// with the issuer whose HTTP listener is `issuer_http`, authenticating
    /// itself with `gateway_authorization` (an `Authorization` value of a
    /// credential holding `tokens:introspect`). Panics when NGINX is not
    /// installed or does not start.
    pub async fn start(issuer_http: SocketAddr, gateway_authorization: &str) -> Self {
        const ATTEMPTS: u32 = 5;
        let binary = NginxBinary::get();
        let upstream = EchoUpstream::start().await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let config_path = dir.path().join("nginx.conf");
        for attempt in 1..=ATTEMPTS {
            // Picked by binding and releasing a port, so another process may
            // take it first: NGINX then cannot bind and another is tried.
            let address = free_port();
            let config = nginx_config(
                dir.path(),
                binary,
                ShippedAddresses {
                    listen: address,
                    issuer_http,
                    api: upstream.address,
                },
                gateway_authorization,
            );
            std::fs::write(&config_path, config).expect("write nginx.conf");
            let mut child = binary.spawn(dir.path(), &config_path);
            match wait_until_listening(&mut child, address, dir.path()).await {
                Ok(()) => {
                    return Self {
                        address,
                        child,
                        upstream,
                        dir,
                    };
                }
                Err(log) if log.contains("Address already in use") && attempt < ATTEMPTS => {
                    stop(&mut child);
                }
                Err(log) => {
                    stop(&mut child);
                    panic!("NGINX did not start (configuration {config_path:?}):\n{log}");
                }
            }
        }
        panic!("NGINX found no free port in {ATTEMPTS} attempts");
    }

    /// `http://127.0.0.1:port`, where NGINX listens.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where NGINX listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many requests reached the upstream: only those NGINX let
    /// through.
    pub fn upstream_requests(&self) -> usize {
        self.upstream.served.load(Ordering::SeqCst)
    }

    /// NGINX's error log so far, for assertion messages.
    pub fn error_log(&self) -> String {
        read_logs(self.dir.path())
    }
}

impl Drop for NginxFixture {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Kills NGINX and reaps it. With `master_process off` there is a single
/// process, so nothing is left behind.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls until NGINX accepts connections on `address`; its logs when it
/// exited instead or did not listen within 10 s.
async fn wait_until_listening(
    child: &mut Child,
    address: SocketAddr,
    dir: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}\n{}", read_logs(dir)));
        }
        if TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not listening after 10 s\n{}", read_logs(dir)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_logs(dir: &Path) -> String {
    ["stderr.log", "error.log"]
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(name)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An address of 127.0.0.1 with a port nobody listened on a moment ago.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port")
}

/// The addresses marked in the shipped configuration.
#[derive(Debug, Clone, Copy)]
struct ShippedAddresses {
    listen: SocketAddr,
    issuer_http: SocketAddr,
    api: SocketAddr,
}

/// The full `nginx.conf`: process settings that keep every file inside
/// `dir`, then the shipped server with the test's addresses and gateway
/// credential.
fn nginx_config(
    dir: &Path,
    binary: &NginxBinary,
    addresses: ShippedAddresses,
    gateway_authorization: &str,
) -> String {
    let dir = dir.display();
    // Every temporary directory NGINX would otherwise create under
    // /var/lib/nginx; modules compiled out reject their directive.
    let temp_paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .filter(|module| binary.has_module(module))
        .map(|module| format!("    {module}_temp_path {dir}/{module}_temp;\n"))
        .collect();
    let server = shipped_server(addresses, gateway_authorization);
    format!(
        "# Written by the NGINX test fixture.\n\
         daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log notice;\n\
         events {{\n    worker_connections 256;\n}}\n\
         http {{\n\
         \x20   access_log {dir}/access.log;\n\
         {temp_paths}\
         {server}\n\
         }}\n"
    )
}

/// `deploy/nginx/latchkey.conf` with the three marked addresses and the
/// marked gateway credential replaced. Panics when a marker is missing, so
/// an edit of the shipped file cannot silently leave the tests on the wrong
/// addresses or credential.
fn shipped_server(addresses: ShippedAddresses, gateway_authorization: &str) -> String {
    let ShippedAddresses {
        listen,
        issuer_http,
        api,
    } = addresses;
    let replacements = [
        ("# latchkey: listen address", format!("listen {listen};")),
        (
            "# latchkey: issuer address",
            format!("server {issuer_http};"),
        ),
        ("# latchkey: api address", format!("server {api};")),
        (
            "# latchkey: gateway credential",
            format!(
                r#"proxy_set_header Latchkey-Gateway-Authorization "{gateway_authorization}";"#
            ),
        ),
    ];
    let mut found = [0_usize; 4];
    let lines: Vec<String> = SHIPPED_CONFIG
        .lines()
        .map(|line| {
            for (index, (marker, directive)) in replacements.iter().enumerate() {
                if line.contains(marker) {
                    found[index] += 1;
                    let indent = &line[..line.len() - line.trim_start().len()];
                    return format!("{indent}{directive}  {marker}");
                }
            }
            line.to_owned()
        })
        .collect();
    for ((marker, _), count) in replacements.iter().zip(found) {
        assert_eq!(
            count, 1,
            "deploy/nginx/latchkey.conf must have exactly one line marked {marker:?}"
        );
    }
    lines.join("\n")
}

/// The machine's NGINX binary and what it was built with.
#[derive(Debug)]
struct NginxBinary {
    path: PathBuf,
    configure: String,
}

impl NginxBinary {
    /// Finds NGINX once per test binary; panics when it is missing or
    /// lacks `auth_request`.
    fn get() -> &'static Self {
        static BINARY: OnceLock<NginxBinary> = OnceLock::new();
        BINARY.get_or_init(|| {
            let path = find_nginx().unwrap_or_else(|| {
                panic!(
                    "NGINX is not installed, and the NGINX end-to-end tests need a real one: \
                     run scripts/test (it installs Debian's nginx-light), or \
                     `apt-get install nginx-light`, or set LATCHKEY_TEST_NGINX to an nginx binary"
                )
            });
            let output = Command::new(&path)
                .arg("-V")
                .output()
                .unwrap_or_else(|error| panic!("cannot run {path:?} -V: {error}"));
            // `nginx -V` prints to stderr.
            let configure = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(
                configure.contains("--with-http_auth_request_module"),
                "{path:?} was built without the auth_request module; install Debian's \
                 nginx-light (or nginx), which has it:\n{configure}"
            );
            Self { path, configure }
        })
    }

    /// Whether the module whose temporary path is `name_temp_path` is in.
    fn has_module(&self, name: &str) -> bool {
        match name {
            "client_body" => true,
            module => !self
                .configure
                .contains(&format!("--without-http_{module}_module")),
        }
    }

    /// Starts NGINX in the foreground with every path under `dir`.
    fn spawn(&self, dir: &Path, config: &Path) -> Child {
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
        Command::new(&self.path)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(config)
            // The log NGINX writes to before it has read its configuration.
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {:?}: {error}", self.path))
    }
}

/// `LATCHKEY_TEST_NGINX`, or `nginx` on the `PATH` or in the sbin
/// directories a non-root `PATH` often lacks.
fn find_nginx() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LATCHKEY_TEST_NGINX") {
        return Some(PathBuf::from(path));
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let fallbacks = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(fallbacks)
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// The API behind NGINX: answers every request 200 with a JSON object of
/// its method, URI and `x-latchkey-*` headers, and counts them.
#[derive(Debug)]
struct EchoUpstream {
    address: SocketAddr,
    served: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl EchoUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let address = listener.local_addr().expect("upstream address");
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    // A broken connection is NGINX's to report (502).
                    let _ = echo(stream, &counter).await;
                });
            }
        });
        Self {
            address,
            served,
            task,
        }
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one HTTP/1.x request on `stream` and closes it. NGINX speaks
/// HTTP/1.0 to upstreams and sends bodies with `Content-Length`, which is
/// all this needs to understand.
async fn echo(mut stream: TcpStream, served: &AtomicUsize) -> std::io::Result<()> {
    const MAX_HEAD: usize = 64 * 1024;
    let mut buffer = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let mut chunk = [0_u8; 4096];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let uri = request_line.next().unwrap_or_default();
    let mut headers = serde_json::Map::new();
    let mut content_length = 0_usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            content_length = value.parse().unwrap_or(0);
        }
        if name.starts_with("x-latchkey-") {
            // Repeated headers are joined, so a client-sent copy that
            // slipped through next to NGINX's would show.
            let joined = match headers.get(&name).and_then(|seen| seen.as_str()) {
                Some(seen) => format!("{seen}, {value}"),
                None => value.to_owned(),
            };
            headers.insert(name, joined.into());
        }
    }
    served.fetch_add(1, Ordering::SeqCst);
    // Read the body before closing: unread data would make the close a
    // reset, which NGINX may see before the response.
    let mut remaining = content_length.saturating_sub(buffer.len() - head_end - 4);
    let mut sink = [0_u8; 4096];
    while remaining > 0 {
        let read = stream.read(&mut sink).await?;
        if read == 0 {
            break;
        }
        remaining = remaining.saturating_sub(read);
    }
    let body = serde_json::json!({ "method": method, "uri": uri, "headers": headers }).to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
