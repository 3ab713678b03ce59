//! The services under test as separate processes: the release
//! `credential-registry` and `token-issuer` binaries with generated
//! configuration, a Redis the bench starts itself (production), a fresh
//! PostgreSQL schema dropped afterwards, and the echo server of the floors.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::Rng;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tokio::process::{Child, Command};

/// Which deployment to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StackKind {
    /// PostgreSQL + Redis.
    Production,
    /// SQLite + the in-process token store.
    Embedded,
}

impl StackKind {
    /// Name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Embedded => "embedded",
        }
    }

    /// What it runs on.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Production => "PostgreSQL + Redis",
            Self::Embedded => "SQLite + in-process token store",
        }
    }
}

/// Where the binaries and servers are.
#[derive(Debug, Clone)]
pub(crate) struct StackOptions {
    /// The `credential-registry` binary.
    pub(crate) registry_bin: PathBuf,
    /// The `token-issuer` binary.
    pub(crate) issuer_bin: PathBuf,
    /// The `redis-server` binary.
    pub(crate) redis_server: PathBuf,
    /// PostgreSQL to create a schema in (production).
    pub(crate) postgres_url: String,
    /// Keep the temporary directory (configuration, logs) afterwards.
    pub(crate) keep_dir: bool,
    /// The issuer's `redis.cache_capacity`; `None` keeps its default.
    pub(crate) cache_capacity: Option<usize>,
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    // JSON string escapes are valid TOML basic-string escapes.
    serde_json::Value::String(value.to_owned()).to_string()
}

fn random_hex_key() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// A child process started with a clean `LATCHKEY_*`-free environment, its
/// output in `log`.
fn spawn(program: &Path, args: &[&str], log: &Path) -> anyhow::Result<Child> {
    let out = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let err = out.try_clone()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    // Only the generated configuration counts.
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("LATCHKEY_")
            || text == "DATABASE_URL"
            || text == "REDIS_URL"
            || text.starts_with("OTEL_")
        {
            command.env_remove(&name);
        }
    }
    command
        .spawn()
        .with_context(|| format!("start {}", program.display()))
}

/// Waits until `address` accepts connections or `child` exits.
async fn wait_listening(
    child: &mut Child,
    address: SocketAddr,
    what: &str,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited ({status}) before listening; see {}",
                log.display()
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{what} did not listen on {address} within 60 s; see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis the bench started: no persistence, so `INFO memory` is clean.
#[derive(Debug)]
pub(crate) struct RedisServer {
    /// `redis://127.0.0.1:PORT`.
    pub(crate) url: String,
    child: Child,
}

impl RedisServer {
    async fn start(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = dir.join("redis.log");
        let port_text = port.to_string();
        let mut child = spawn(
            binary,
            &[
                "--port",
                &port_text,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.display().to_string(),
            ],
            &log,
        )?;
        wait_listening(&mut child, loopback(port), "redis-server", &log).await?;
        Ok(Self {
            url: format!("redis://127.0.0.1:{port}"),
            child,
        })
    }
}

/// The platform admin `bootstrap-admin` created.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// Both services (and in production their Redis and PostgreSQL schema),
/// plus the echo server of the floors.
#[derive(Debug)]
pub(crate) struct Stack {
    pub(crate) kind: StackKind,
    /// `http://127.0.0.1:PORT` of the registry's gRPC.
    pub(crate) registry_url: String,
    /// `http://127.0.0.1:PORT` of the issuer's gRPC.
    pub(crate) issuer_grpc_url: String,
    /// `http://127.0.0.1:PORT` of the issuer's HTTP endpoints.
    pub(crate) issuer_http_url: String,
    /// `http://127.0.0.1:PORT` of the echo server's gRPC.
    pub(crate) echo_grpc_url: String,
    /// `http://127.0.0.1:PORT` of the echo server's HTTP.
    pub(crate) echo_http_url: String,
    /// The bench's own Redis (production).
    pub(crate) redis: Option<RedisServer>,
    /// `http://127.0.0.1:PORT/metrics` of the registry (its admin listener).
    pub(crate) registry_metrics_url: String,
    /// `http://127.0.0.1:PORT/metrics` of the issuer (its admin listener).
    pub(crate) issuer_metrics_url: String,
    pub(crate) admin: Admin,
    schema: Option<String>,
    postgres_url: String,
    registry: Option<Child>,
    issuer: Option<Child>,
    echo: Option<Child>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
}

impl Stack {
    /// Starts everything for `kind`.
    pub(crate) async fn start(kind: StackKind, options: &StackOptions) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-bench-")
            .tempdir()
            .context("create a temporary directory")?;
        let dir_path = dir.path().to_owned();
        let mut stack = Self {
            kind,
            registry_url: String::new(),
            issuer_grpc_url: String::new(),
            issuer_http_url: String::new(),
            echo_grpc_url: String::new(),
            echo_http_url: String::new(),
            redis: None,
            registry_metrics_url: String::new(),
            issuer_metrics_url: String::new(),
            admin: Admin {
                client_id: String::new(),
                client_secret: String::new(),
            },
            schema: None,
            postgres_url: options.postgres_url.clone(),
            registry: None,
            issuer: None,
            echo: None,
            dir: Some(dir),
            dir_path,
        };
        if let Err(error) = stack.start_parts(options).await {
            stack.stop().await;
            return Err(error);
        }
        if options.keep_dir
            && let Some(dir) = stack.dir.take()
        {
            let _ = dir.keep();
        }
        Ok(stack)
    }

    async fn start_parts(&mut self, options: &StackOptions) -> anyhow::Result<()> {
        let dir = self.dir_path.clone();
        let registry_port = free_port()?;
        let metrics_port = free_port()?;
        let issuer_admin_port = free_port()?;
        let issuer_port = free_port()?;
        let http_port = free_port()?;
        let registry_internal_port = free_port()?;
        let issuer_internal_port = free_port()?;
        // Both services sign their internal calls with one shared key.
        let internal_key = random_hex_key();

        // The database.
        let mut registry_toml = format!(
            "listen_addr = \"127.0.0.1:{registry_port}\"\n\
             internal_listen_addr = \"127.0.0.1:{registry_internal_port}\"\n\
             internal_key = \"{internal_key}\"\n\
             admin_listen_addr = \"127.0.0.1:{metrics_port}\"\n\
             data_dir = {}\n\
             token_issuer_url = \"http://127.0.0.1:{issuer_internal_port}\"\n\
             token_endpoint = \"http://127.0.0.1:{http_port}/oauth2/token\"\n",
            toml_string(&dir.join("registry").display().to_string()),
        );
        let mut issuer_toml = format!(
            "listen_addr = \"127.0.0.1:{issuer_port}\"\n\
             internal_listen_addr = \"127.0.0.1:{issuer_internal_port}\"\n\
             internal_key = \"{internal_key}\"\n\
             http_listen_addr = \"127.0.0.1:{http_port}\"\n\
             admin_listen_addr = \"127.0.0.1:{issuer_admin_port}\"\n\
             public_url = \"http://127.0.0.1:{http_port}\"\n\
             registry_url = \"http://127.0.0.1:{registry_internal_port}\"\n\
             data_dir = {}\n",
            toml_string(&dir.join("issuer").display().to_string()),
        );
        std::fs::create_dir_all(dir.join("registry"))?;
        std::fs::create_dir_all(dir.join("issuer"))?;
        match self.kind {
            StackKind::Production => {
                let schema = format!("bench_{:08x}", rand::rng().random::<u32>());
                let db = Database::connect(&self.postgres_url)
                    .await
                    .context("connect to PostgreSQL (--postgres-url)")?;
                db.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
                    .await
                    .context("create the bench schema")?;
                db.close().await?;
                self.schema = Some(schema.clone());
                registry_toml.push_str(&format!(
                    "hash_key = \"{}\"\n[database]\nurl = {}\nschema = {}\nmax_connections = 16\n",
                    random_hex_key(),
                    toml_string(&self.postgres_url),
                    toml_string(&schema),
                ));
                let redis = RedisServer::start(&options.redis_server, &dir).await?;
                issuer_toml.push_str(&format!(
                    "hash_key = \"{}\"\n[redis]\nurl = {}\n",
                    random_hex_key(),
                    toml_string(&redis.url),
                ));
                if let Some(capacity) = options.cache_capacity {
                    issuer_toml.push_str(&format!("cache_capacity = {capacity}\n"));
                }
                self.redis = Some(redis);
            }
            StackKind::Embedded => {}
        }
        let registry_config = dir.join("registry.toml");
        let issuer_config = dir.join("issuer.toml");
        std::fs::write(&registry_config, registry_toml)?;
        std::fs::write(&issuer_config, issuer_toml)?;

        // The first admin, straight into the database.
        self.admin = bootstrap_admin(&options.registry_bin, &registry_config, &dir).await?;

        let config = registry_config.display().to_string();
        let log = dir.join("registry.log");
        let mut registry = spawn(&options.registry_bin, &["--config", &config], &log)?;
        let config = issuer_config.display().to_string();
        let issuer_log = dir.join("issuer.log");
        let mut issuer = spawn(&options.issuer_bin, &["--config", &config], &issuer_log)?;
        let started = async {
            wait_listening(
                &mut registry,
                loopback(registry_port),
                "credential-registry",
                &log,
            )
            .await?;
            wait_listening(
                &mut issuer,
                loopback(issuer_port),
                "token-issuer",
                &issuer_log,
            )
            .await?;
            wait_listening(
                &mut issuer,
                loopback(http_port),
                "token-issuer",
                &issuer_log,
            )
            .await
        }
        .await;
        self.registry = Some(registry);
        self.issuer = Some(issuer);
        started?;
        self.registry_url = format!("http://127.0.0.1:{registry_port}");
        self.registry_metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
        self.issuer_metrics_url = format!("http://127.0.0.1:{issuer_admin_port}/metrics");
        self.issuer_grpc_url = format!("http://127.0.0.1:{issuer_port}");
        self.issuer_http_url = format!("http://127.0.0.1:{http_port}");

        // The floors' echo server: this binary, another process.
        let echo_grpc = free_port()?;
        let echo_http = free_port()?;
        let echo_log = dir.join("echo.log");
        let exe = std::env::current_exe().context("find latchkey-bench itself")?;
        let grpc_arg = loopback(echo_grpc).to_string();
        let http_arg = loopback(echo_http).to_string();
        let mut echo = spawn(
            &exe,
            &["echo-server", "--grpc", &grpc_arg, "--http", &http_arg],
            &echo_log,
        )?;
        let listening = async {
            wait_listening(&mut echo, loopback(echo_grpc), "echo server", &echo_log).await?;
            wait_listening(&mut echo, loopback(echo_http), "echo server", &echo_log).await
        }
        .await;
        self.echo = Some(echo);
        listening?;
        self.echo_grpc_url = format!("http://{grpc_arg}");
        self.echo_http_url = format!("http://{http_arg}");
        Ok(())
    }

    /// Where the configuration and logs are.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// The token issuer's process ID (for its resident memory).
    pub(crate) fn issuer_pid(&self) -> Option<u32> {
        self.issuer.as_ref().and_then(Child::id)
    }

    /// The credential registry's process ID.
    pub(crate) fn registry_pid(&self) -> Option<u32> {
        self.registry.as_ref().and_then(Child::id)
    }

    /// The server processes of the run whose CPU time counts (the loader
    /// is added by whoever drives them).
    pub(crate) fn processes(&self) -> Vec<(&'static str, u32)> {
        let mut processes = Vec::new();
        for (name, child) in [
            ("echo", &self.echo),
            ("issuer", &self.issuer),
            ("registry", &self.registry),
        ] {
            if let Some(pid) = child.as_ref().and_then(Child::id) {
                processes.push((name, pid));
            }
        }
        if let Some(pid) = self.redis.as_ref().and_then(|redis| redis.child.id()) {
            processes.push(("redis", pid));
        }
        processes
    }

    /// PostgreSQL's whole database size and the bench schema's tables with
    /// their indexes and TOAST, bytes (production).
    pub(crate) async fn postgres_sizes(&self) -> anyhow::Result<Option<(u64, u64)>> {
        let Some(schema) = &self.schema else {
            return Ok(None);
        };
        let db = Database::connect(&self.postgres_url).await?;
        let row = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_database_size(current_database())::bigint AS database, \
                 COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint AS schema \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')",
                [schema.clone().into()],
            ))
            .await
            .context("query PostgreSQL's sizes")?
            .context("no row")?;
        let database: i64 = row.try_get("", "database")?;
        let schema_bytes: i64 = row.try_get("", "schema")?;
        let _ = db.close().await;
        Ok(Some((
            u64::try_from(database).unwrap_or(0),
            u64::try_from(schema_bytes).unwrap_or(0),
        )))
    }

    /// Stops every process and drops the PostgreSQL schema.
    pub(crate) async fn stop(&mut self) {
        for child in [self.echo.take(), self.issuer.take(), self.registry.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill().await;
        }
        self.redis = None;
        if let Some(schema) = self.schema.take() {
            match Database::connect(&self.postgres_url).await {
                Ok(db) => {
                    if let Err(error) = db
                        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await
                    {
                        eprintln!("latchkey-bench: could not drop schema {schema}: {error}");
                    }
                    let _ = db.close().await;
                }
                Err(error) => {
                    eprintln!("latchkey-bench: could not drop schema {schema}: {error}");
                }
            }
        }
    }
}

/// Runs `credential-registry bootstrap-admin` and reads the admin's client
/// ID and secret from what it prints.
async fn bootstrap_admin(binary: &Path, config: &Path, dir: &Path) -> anyhow::Result<Admin> {
    let output = Command::new(binary)
        .args(["--config", &config.display().to_string()])
        .args(["bootstrap-admin", "--project", "ops"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .context("run credential-registry bootstrap-admin")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let log = dir.join("bootstrap.log");
        let _ = std::fs::write(&log, &output.stderr);
        bail!(
            "credential-registry bootstrap-admin failed ({}); see {}",
            output.status,
            log.display()
        );
    }
    let field = |name: &str| {
        stdout.lines().find_map(|line| {
            line.trim()
                .strip_prefix(name)
                .map(|rest| rest.trim().to_owned())
        })
    };
    match (field("client_id:"), field("client_secret:")) {
        (Some(client_id), Some(client_secret)) => Ok(Admin {
            client_id,
            client_secret,
        }),
        _ => bail!("bootstrap-admin printed no client ID and secret"),
    }
}

/// Redis `INFO memory` `used_memory`, bytes.
pub(crate) async fn redis_used_memory(
    connection: &mut redis::aio::ConnectionManager,
) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .context("INFO memory")?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

/// Resident memory of process `pid`, bytes (Linux `/proc`).
pub(crate) fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
