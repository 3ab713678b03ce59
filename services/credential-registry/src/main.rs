//! `credential-registry`: serves Latchkey's credential registry, creates
//! the first platform admin, reports the hash keys' use, or copies its
//! database into another.

// The binary shares its package's dependency list with the library.
#![allow(unused_crate_dependencies)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use credential_registry::{
    BootstrapOutcome, HashKeyStatus, Listeners, RegistryConfig, ServeError, bootstrap_admin,
    hash_key_status, serve,
};
use latchkey_registry_store::{CopyReport, DatabaseConfig, copy_database};
use latchkey_runtime::{Shutdown, init_telemetry, shutdown_on_signals};

/// mimalloc instead of glibc's malloc: the hot paths allocate per request
/// (hyper, tonic, prost), and glibc's arenas cost a fifth of the issuer's
/// CPU; mimalloc cut the issuer's CPU per issuance by about a fifth in the
/// bench (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latchkey's credential registry: projects and client credentials over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file; `LATCHKEY_*` variables override it.
    #[arg(long, short, env = "LATCHKEY_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the registry (the default).
    Serve,
    /// Creates the first platform-admin credential and prints its client ID
    /// and secret, once.
    BootstrapAdmin {
        /// The project the admin credential lives in (created if missing).
        #[arg(long, default_value = "ops")]
        project: String,
        /// Create another admin even though one exists.
        #[arg(long)]
        force: bool,
    },
    /// The hash keys: which is current, and how many live secrets each
    /// still verifies (see "Rotating the hash key" in docs/operations.md).
    HashKeys {
        #[command(subcommand)]
        command: HashKeysCommand,
    },
    /// Copies every row of the configured database into another, empty one:
    /// how the embedded SQLite file moves to PostgreSQL (see "Moving from
    /// SQLite to PostgreSQL" in docs/operations.md). Stop the registry first.
    CopyDatabase {
        /// The target: `postgres://user@host/db` or `sqlite://path?mode=rwc`
        /// (from the environment, to keep a password out of the process list).
        #[arg(long, env = "TARGET_DATABASE_URL", hide_env_values = true)]
        to: String,
        /// The PostgreSQL schema of the target, instead of `public`.
        #[arg(long)]
        to_schema: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum HashKeysCommand {
    /// Checks the configured keys against the database and counts the live
    /// secrets hashed with each key.
    Status,
}

/// Exit code for bad configuration.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match RegistryConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("credential-registry: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let _telemetry = init_telemetry(config.log_format, "info");
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run(config).await,
        Command::BootstrapAdmin { project, force } => bootstrap(config, &project, force).await,
        Command::HashKeys {
            command: HashKeysCommand::Status,
        } => hash_keys_status(config).await,
        Command::CopyDatabase { to, to_schema } => copy(config, to, to_schema).await,
    };
    match outcome {
        Ok(code) => code,
        Err(error @ ServeError::Config(_)) => {
            tracing::error!(%error, "invalid configuration");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            tracing::error!(%error, "credential registry failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: RegistryConfig) -> Result<ExitCode, ServeError> {
    let bind = |address| async move {
        tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| (address, error))
    };
    let listeners = match (
        bind(config.listen_addr).await,
        bind(config.internal_listen_addr).await,
        bind(config.admin_listen_addr).await,
        bind(config.http_listen_addr).await,
    ) {
        (Ok(grpc), Ok(internal), Ok(admin), Ok(http)) => Listeners {
            grpc,
            internal,
            admin,
            http,
        },
        (Err((address, error)), _, _, _)
        | (_, Err((address, error)), _, _)
        | (_, _, Err((address, error)), _)
        | (_, _, _, Err((address, error))) => {
            tracing::error!(%address, %error, "cannot listen");
            return Ok(ExitCode::FAILURE);
        }
    };
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone());
    serve(config, listeners, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)] // The secret is shown to the operator, once.
async fn bootstrap(
    config: RegistryConfig,
    project: &str,
    force: bool,
) -> Result<ExitCode, ServeError> {
    match bootstrap_admin(&config, project, force).await? {
        BootstrapOutcome::Created(created) => {
            let credential = created.credential;
            println!("Platform admin credential created in project {project:?}.");
            println!("  credential_id: {}", credential.id);
            println!("  client_id:     {}", credential.client_id);
            println!("  client_secret: {}", created.client_secret);
            println!("The secret is shown only now: store it safely.");
            println!("Get a management token from the token issuer:");
            println!(
                "  curl -s -u \"{}:$CLIENT_SECRET\" -d grant_type=client_credentials {}",
                credential.client_id, config.token_endpoint
            );
            Ok(ExitCode::SUCCESS)
        }
        BootstrapOutcome::AdminsExist(ids) => {
            eprintln!(
                "credential-registry: a platform admin exists already ({}); use --force to create another",
                ids.join(", ")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

#[allow(clippy::print_stdout)] // The report is the command's output.
async fn hash_keys_status(config: RegistryConfig) -> Result<ExitCode, ServeError> {
    let status = hash_key_status(&config).await?;
    print!("{}", status_report(&status));
    Ok(ExitCode::SUCCESS)
}

/// One line per key: its ID, its role and its live secrets, then what is
/// left to rotate.
fn status_report(status: &HashKeyStatus) -> String {
    let mut report = String::new();
    for key in &status.keys {
        let role = if key.id == status.current {
            "current"
        } else if key.configured {
            "previous"
        } else {
            "NOT CONFIGURED (its secrets are refused)"
        };
        report.push_str(&format!(
            "hash key {}: {} live secrets, {role}\n",
            key.id, key.live_secrets
        ));
    }
    let older = status.secrets_on_older_keys();
    if older == 0 {
        report.push_str("no live secret uses an older key\n");
    } else {
        report.push_str(&format!(
            "{older} live secrets still use an older key: rotate them before removing it\n"
        ));
    }
    report
}

#[allow(clippy::print_stdout)] // The report is the command's output.
async fn copy(
    config: RegistryConfig,
    to: String,
    to_schema: Option<String>,
) -> Result<ExitCode, ServeError> {
    let target = DatabaseConfig {
        url: to,
        schema: to_schema,
        ..DatabaseConfig::default()
    };
    if target.backend_name() == "unknown" {
        eprintln!("credential-registry: --to: must start with sqlite: or postgres:");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    match copy_database(&config.database, &target).await {
        Ok(report) => {
            print!("{}", copy_report(&report));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            // Nothing was written: the target commits only a whole copy.
            eprintln!("credential-registry: nothing copied: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One line per table, the total, and what the operator does next.
fn copy_report(report: &CopyReport) -> String {
    let mut text = format!(
        "copied the registry database from {} to {}\n",
        report.source_backend, report.target_backend
    );
    for table in &report.tables {
        text.push_str(&format!("  {:<22} {:>10} rows\n", table.table, table.rows));
    }
    text.push_str(&format!(
        "{} rows in {} tables. Start the registry on the target with the same hash keys \
         (the embedded default's is data_dir/hash.key: hash_key_file), or every copied \
         secret is refused\n",
        report.rows(),
        report.tables.len()
    ));
    text
}
