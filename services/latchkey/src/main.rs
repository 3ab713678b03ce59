//! `latchkey dev`: the registry and the token issuer in one process, on the
//! embedded defaults (a SQLite file and the in-process token store under a
//! data directory), still talking to each other over gRPC, through their
//! internal listeners and signed with the internal key generated into the
//! data directory.

// Dev-dependencies serve the black-box test; the lint cannot tell targets apart.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod cli;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use credential_registry::{AuthProxyConfig, BootstrapOutcome, RegistryConfig, bootstrap_admin};
use ipnet::IpNet;
use latchkey_runtime::{LogFormat, Shutdown, init_telemetry, shutdown_on_signals};
use token_issuer::{IssuerConfig, Listeners};
use tokio::net::TcpListener;

/// mimalloc instead of glibc's malloc: the hot paths allocate per request
/// (hyper, tonic, prost), and glibc's arenas cost a fifth of the issuer's
/// CPU; mimalloc cut the issuer's CPU per issuance by about a fifth in the
/// bench (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latchkey: client credentials, access tokens and gateway checks.
#[derive(Debug, Parser)]
#[command(version, after_help = cli::error::EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs both services in this process on the embedded defaults.
    Dev(Box<DevArgs>),
    #[command(flatten)]
    Client(cli::Command),
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Where the SQLite file and the hash key live.
    #[arg(long, default_value = "latchkey-data")]
    data_dir: PathBuf,
    /// The registry's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    registry_addr: SocketAddr,
    /// The issuer's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    issuer_addr: SocketAddr,
    /// The registry's internal gRPC address (for the issuer only).
    #[arg(long, default_value = "127.0.0.1:50061")]
    registry_internal_addr: SocketAddr,
    /// The issuer's internal gRPC address (for the registry only).
    #[arg(long, default_value = "127.0.0.1:50062")]
    issuer_internal_addr: SocketAddr,
    /// The issuer's HTTP address (OAuth endpoints).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// The registry's admin address (`/metrics`, `/livez`, `/readyz`);
    /// `--metrics-addr` is its earlier name.
    #[arg(long, alias = "metrics-addr", default_value = "127.0.0.1:9090")]
    registry_admin_addr: SocketAddr,
    /// The issuer's admin address (`/metrics`, `/livez`, `/readyz`).
    #[arg(long, default_value = "127.0.0.1:9091")]
    issuer_admin_addr: SocketAddr,
    /// The registry's HTTP address (the management API over HTTP/JSON);
    /// the issuer's token endpoint allows browsers from its origin (CORS).
    #[arg(long, default_value = "127.0.0.1:8081")]
    api_addr: SocketAddr,
    /// A proxy (CIDR block or single address) whose forwarding headers the
    /// issuer believes: `Forwarded` / `X-Forwarded-For`, and `X-Real-IP` on
    /// `/auth/check`. Repeatable; the issuer's `trusted_proxies`. Needed
    /// behind NGINX or any proxy in front of the issuer's HTTP port, or
    /// every client seems to call from the proxy's address.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_proxy)]
    trusted_proxies: Vec<IpNet>,
    /// A sign-in proxy (SSO) in front of the registry's HTTP listener: a
    /// CIDR block or single address it calls from. Repeatable; the
    /// registry's `auth_proxy.trusted_proxies`. A request from there with
    /// no `Authorization` and the user header acts on behalf of that member
    /// of `--auth-proxy-project`, and the console opens signed in as them;
    /// from anywhere else the header is ignored. The proxy must strip the
    /// header from its own clients' requests.
    #[arg(
        long = "auth-proxy-trusted",
        value_name = "CIDR",
        value_parser = parse_proxy,
        requires = "auth_proxy_project"
    )]
    auth_proxy_trusted: Vec<IpNet>,
    /// The header in which the sign-in proxy names the user (its
    /// `auth_proxy.user_header`).
    #[arg(long, value_name = "NAME", default_value = "x-forwarded-user")]
    auth_proxy_header: String,
    /// The project whose members the sign-in proxy signs in (its
    /// `auth_proxy.project`); needs `--auth-proxy-trusted`.
    #[arg(long, value_name = "PROJECT", requires = "auth_proxy_trusted")]
    auth_proxy_project: Option<String>,
}

/// A CIDR block, or a single address as its own block.
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither a CIDR block nor an IP address"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Dev(args) => *args,
        Command::Client(command) => {
            return cli::run(cli.global, command, <Cli as clap::CommandFactory>::command).await;
        }
    };
    let _telemetry = init_telemetry(LogFormat::Text, "info");
    match dev(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "latchkey dev failed");
            ExitCode::FAILURE
        }
    }
}

async fn dev(args: DevArgs) -> Result<(), String> {
    let bind = |address: SocketAddr| async move {
        TcpListener::bind(address)
            .await
            .map_err(|error| format!("cannot listen on {address}: {error}"))
    };
    let http_url = local_url(args.http_addr);
    let api_url = local_url(args.api_addr);
    let registry = RegistryConfig {
        listen_addr: args.registry_addr,
        internal_listen_addr: args.registry_internal_addr,
        admin_listen_addr: args.registry_admin_addr,
        http_listen_addr: args.api_addr,
        data_dir: args.data_dir.clone(),
        token_issuer_url: format!("http://{}", args.issuer_internal_addr),
        token_endpoint: format!("{http_url}/oauth2/token"),
        auth_proxy: AuthProxyConfig {
            trusted_proxies: args.auth_proxy_trusted.clone(),
            user_header: args.auth_proxy_header.clone(),
            project: args.auth_proxy_project.clone().unwrap_or_default(),
        },
        ..RegistryConfig::default()
    };
    let mut registry = registry;
    registry.database.url = registry.embedded_database_url();
    let issuer = IssuerConfig {
        listen_addr: args.issuer_addr,
        internal_listen_addr: args.issuer_internal_addr,
        http_listen_addr: args.http_addr,
        admin_listen_addr: args.issuer_admin_addr,
        public_url: http_url.clone(),
        registry_url: format!("http://{}", args.registry_internal_addr),
        data_dir: args.data_dir.clone(),
        trusted_proxies: args.trusted_proxies.clone(),
        // The console, served on the registry's HTTP listener, signs in
        // at the token endpoint from the browser.
        cors_allowed_origins: vec![api_url.clone()],
        ..IssuerConfig::default()
    };
    registry.validate().map_err(|error| error.to_string())?;
    issuer.validate().map_err(|error| error.to_string())?;
    // Only a valid configuration binds ports.
    let registry_listeners = credential_registry::Listeners {
        grpc: bind(args.registry_addr).await?,
        internal: bind(args.registry_internal_addr).await?,
        admin: bind(args.registry_admin_addr).await?,
        http: bind(args.api_addr).await?,
    };
    let issuer_listeners = Listeners {
        grpc: bind(args.issuer_addr).await?,
        internal: bind(args.issuer_internal_addr).await?,
        http: bind(args.http_addr).await?,
        admin: bind(args.issuer_admin_addr).await?,
    };
    // The first start creates the platform admin, whose secret is shown once.
    let admin = bootstrap_admin(&registry, "ops", false)
        .await
        .map_err(|error| error.to_string())?;

    // A signal stops the issuer first; the registry only once the issuer
    // has ended, so the issuer's last usage and audit reports (sent after
    // its servers drained) still find the registry's internal listener.
    let issuer_shutdown = Shutdown::new();
    let registry_shutdown = Shutdown::new();
    shutdown_on_signals(issuer_shutdown.clone());
    let registry_task = tokio::spawn(credential_registry::serve(
        registry,
        registry_listeners,
        registry_shutdown.clone(),
    ));
    let issuer_task = tokio::spawn(token_issuer::serve(
        issuer,
        issuer_listeners,
        issuer_shutdown.clone(),
    ));
    let new_admin = match &admin {
        BootstrapOutcome::Created(created) => {
            let exports = admin_exports(&created.credential.client_id, &created.client_secret);
            let kept = keep_admin(&args.data_dir, &exports).map_err(|error| {
                tracing::warn!(%error, "cannot keep the admin's ID and secret in the data directory");
            });
            Some((exports, kept.ok()))
        }
        BootstrapOutcome::AdminsExist(_) => None,
    };
    print_getting_started(&args, &http_url, &api_url, new_admin);

    // Whichever ends first (a signal ends the issuer; a failure either),
    // the other is stopped too, so the process never keeps half of
    // Latchkey running.
    let (registry_outcome, issuer_outcome) = tokio::join!(
        stop_other_on_exit(registry_task, issuer_shutdown),
        stop_other_on_exit(issuer_task, registry_shutdown)
    );
    registry_outcome.and(issuer_outcome)
}

/// Waits for one service, then stops the other.
async fn stop_other_on_exit<E: std::fmt::Display>(
    task: tokio::task::JoinHandle<Result<(), E>>,
    other: Shutdown,
) -> Result<(), String> {
    let outcome = match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(format!("service task failed: {error}")),
    };
    other.trigger();
    outcome
}

/// The file in the data directory where the first start keeps the admin's ID
/// and secret, as `export` lines a shell can source.
const ADMIN_ENV_FILE: &str = "admin.env";

/// Keeps the new admin's ID and secret in `data_dir/admin.env` (mode 0600),
/// so the README's walkthrough can set them with `. latchkey-data/admin.env`.
/// The data directory already holds the hash key and the internal key, which
/// are worth more than this secret; `latchkey dev` is the embedded stack only
/// (the production `bootstrap-admin` prints the secret and keeps nothing).
fn keep_admin(data_dir: &Path, exports: &str) -> std::io::Result<PathBuf> {
    let path = data_dir.join(ADMIN_ENV_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    // A file left from an earlier data directory keeps its mode on open.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let contents = format!(
        "# The platform admin `latchkey dev` created on its first start; source this file:\n\
         #   . {}\n{}",
        path.display(),
        exports
    );
    std::io::Write::write_all(&mut file, contents.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// The admin's ID and secret as shell `export` lines.
fn admin_exports(client_id: &str, client_secret: &str) -> String {
    format!("export ADMIN_ID={client_id}\nexport ADMIN_SECRET={client_secret}\n")
}

#[allow(clippy::print_stdout)] // This is the command's output for its user.
fn print_getting_started(
    args: &DevArgs,
    http_url: &str,
    api_url: &str,
    new_admin: Option<(String, Option<PathBuf>)>,
) {
    let registry = args.registry_addr;
    let admin_env = args.data_dir.join(ADMIN_ENV_FILE);
    let admin_lines = match new_admin {
        Some((exports, kept)) => {
            let kept = match kept {
                Some(path) => format!(
                    "They are kept in {path} (readable only by you): in another shell, in this\n\
                     directory, `. {path}` sets them.\n",
                    path = path.display()
                ),
                None => "They could not be kept in the data directory: copy them now.\n".to_owned(),
            };
            format!(
                "A platform admin was created:\n\n{}\n{kept}",
                indent(&exports)
            )
        }
        None if admin_env.exists() => format!(
            "The platform admin from the first start exists: `. {}` sets ADMIN_ID and\n\
             ADMIN_SECRET.\n",
            admin_env.display()
        ),
        None => "The platform admin from the first start exists; use its ID and secret\n\
             (lost them? `credential-registry bootstrap-admin --force` makes another).\n"
            .to_owned(),
    };
    let proxies = if args.trusted_proxies.is_empty() {
        "none (--trusted-proxy CIDR behind a proxy)".to_owned()
    } else {
        args.trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sign_in_proxy = match &args.auth_proxy_project {
        Some(project) => format!(
            "{header} from {from} signs in members of {project}",
            header = args.auth_proxy_header,
            from = args
                .auth_proxy_trusted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => "none (--auth-proxy-trusted CIDR --auth-proxy-project PROJECT)".to_owned(),
    };
    println!(
        r#"
Latchkey is running on the embedded defaults (data in {data}).

  credential registry (gRPC)   {registry}
  credential registry (HTTP)   {api_url} (the same API as JSON; {api_url}/openapi.json)
  console (browser)            {api_url}/ (sign in with the admin's ADMIN_ID and ADMIN_SECRET)
  token issuer (gRPC)          {issuer}
  token issuer (HTTP, OAuth)   {http_url}
  internal (registry, issuer)  {registry_internal}, {issuer_internal} (signed calls only; never expose)
  admin (registry, issuer)     {registry_admin_url}, {issuer_admin_url} (/metrics, /livez, /readyz)
  trusted proxies              {proxies}
  console sign-in proxy        {sign_in_proxy}

{admin_lines}
Try it (grpcurl needs no proto files: reflection is on; README.md walks through every call):

  # a management token for the admin
  TOKEN=$(curl -s -u "$ADMIN_ID:$ADMIN_SECRET" -d grant_type=client_credentials {http_url}/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"project_id":"demo"}}' \
      {registry} latchkey.registry.v1.CredentialRegistry/CreateProject
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"project_id":"demo","owner":"me","allowed_apis":["demo.read"]}}' \
      {registry} latchkey.registry.v1.CredentialRegistry/CreateCredential
  # the same over HTTP/JSON:
  curl -s -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{}}' \
      {api_url}/latchkey.registry.v1.CredentialRegistry/ListProjects
  # the new credential's clientId and clientSecret (shown once) get tokens the same way:
  curl -s -u "$APP_ID:$APP_SECRET" -d grant_type=client_credentials {http_url}/oauth2/token
  # gateways introspect them, authenticating as a caller with tokens:introspect (the admin has it):
  curl -s -u "$ADMIN_ID:$ADMIN_SECRET" -d "token=$APP_TOKEN" -d client_ip=127.0.0.1 {http_url}/oauth2/introspect

Stop with Ctrl-C.
"#,
        data = args.data_dir.display(),
        issuer = args.issuer_addr,
        registry_internal = args.registry_internal_addr,
        issuer_internal = args.issuer_internal_addr,
        registry_admin_url = local_url(args.registry_admin_addr),
        issuer_admin_url = local_url(args.issuer_admin_addr),
    );
}

/// `text` with every line indented by two spaces.
fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// The URL a browser on this machine (or the container's host) uses for a
/// listener: a wildcard address (`0.0.0.0`, `[::]`, as in the container
/// image) is no address to browse to or a CORS origin a page sends, so it
/// becomes `localhost`.
fn local_url(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("http://localhost:{}", address.port())
    } else {
        format!("http://{address}")
    }
}

#[cfg(test)]
mod tests {
    use super::local_url;

    #[test]
    fn wildcard_listeners_are_browsed_at_localhost() {
        assert_eq!(
            local_url("0.0.0.0:8081".parse().unwrap()),
            "http://localhost:8081"
        );
        assert_eq!(
            local_url("[::]:8080".parse().unwrap()),
            "http://localhost:8080"
        );
        assert_eq!(
            local_url("127.0.0.1:8081".parse().unwrap()),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            local_url("[::1]:8081".parse().unwrap()),
            "http://[::1]:8081"
        );
    }
}
